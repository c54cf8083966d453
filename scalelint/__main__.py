"""`scalelint` and `python -m scalelint`: a check goes to the project's daemon when one
runs (see daemon.py), before the command line and the analysis are even imported."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["check"]:
        from scalelint.daemon import forward

        code = forward(sys.argv[1:])
        if code is not None:
            sys.exit(code)
    from scalelint.cli import main as command_line

    command_line(prog_name="scalelint")


if __name__ == "__main__":
    main()
