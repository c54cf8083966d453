"""`scalelint` and `python -m scalelint`: a check goes to the project's daemon when one
runs (see daemon.py), before the command line and the analysis are even imported."""

from __future__ import annotations

import contextlib
import gc
import os
import sys


def main() -> None:
    checking = sys.argv[1:2] == ["check"]
    if checking:
        from scalelint.daemon import forward

        code = forward(sys.argv[1:])
        if code is not None:
            sys.exit(code)
    if checking:
        # The process ends with `_leave`: nothing of a check needs collecting after it,
        # and what parsing leaves behind is collected file by file (engine._parsed_one).
        gc.disable()
    from scalelint.cli import main as command_line

    try:
        command_line(prog_name="scalelint")
    except SystemExit as stop:
        if not checking:
            raise
        _leave(stop.code)


def _leave(code: object) -> None:
    """End a check without tearing the interpreter down.

    A check's memory is the facts of every file and the model built on them; freeing
    them object by object at exit took 0.1-0.2 s on a mid-size project, which the
    operating system does at once. Output is flushed first; nothing else of a check
    waits for exit (the cache is closed, worker processes are joined).
    """
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    from scalelint.output import write_stdout

    # What is still buffered: a report that did not reach its destination is not a result.
    problem = write_stdout("") if sys.stdout is not None else None
    if problem is not None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            print(f"scalelint: error: cannot write the report: {problem}", file=sys.stderr)
        status = 2
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
