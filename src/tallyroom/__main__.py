"""``python -m tallyroom``: the same command line as the ``tallyroom`` entry point (for a
machine where the virtualenv's scripts are not on the PATH)."""

from tallyroom.cli import run

run()
