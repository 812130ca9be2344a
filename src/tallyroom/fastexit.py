"""Ending the ``tallyroom`` process without the interpreter's teardown.

After a command has printed its last line, closed its store and written its files, the
interpreter would still collect and free every object it holds before the process ends: at
the end of verifying a 100,000-station night, a final collection of 3.2 million objects took
4.3 s of the 107–118 s the command took (docs/decisions/0016). The process ends the way
``multiprocessing`` ends the workers it forks: streams flushed, the exit handlers run (they
remove temporary folders, stop logging), then ``os._exit``.

Only the ``tallyroom`` entry point does this (:func:`tallyroom.cli.run`); a command invoked
in-process (click's test runner) ends with ``sys.exit`` as usual.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import NoReturn


def exit_code(code: object) -> int:
    """The process exit status ``sys.exit(code)`` gives (a text is printed to stderr)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def exit_now(code: object) -> NoReturn:
    """End the process with ``sys.exit(code)``'s status, skipping the interpreter's teardown."""
    status = exit_code(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)
