"""The report on standard output: a reader that stops early is not an error, a report
that cannot be written is (one line, exit 2)."""

from __future__ import annotations

import os
import sys


def write_stdout(text: str) -> str | None:
    """Write and flush `text` on standard output; why it could not be written, if so."""
    if sys.stdout is None:  # the process was started with standard output closed
        return "standard output is closed (use --output FILE)"
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`scalelint check | head`): what is still buffered goes nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError) as error:
        return getattr(error, "strerror", None) or str(error)
    return None
