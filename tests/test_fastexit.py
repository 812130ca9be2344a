"""The `tallyroom` process ends without the interpreter's teardown, but with everything a
normal exit does that anyone could see: output flushed through a pipe, exit handlers run,
temporary folders removed, and the same exit status as ``sys.exit``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "tallyroom"


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_output_and_exit_handlers_survive_the_fast_exit(tmp_path: Path) -> None:
    done = _python(
        "import atexit, tempfile\n"
        "from tallyroom.fastexit import exit_now\n"
        f"folder = tempfile.TemporaryDirectory(dir={str(tmp_path)!r})\n"
        "open(folder.name + '/file', 'w').close()\n"
        "atexit.register(lambda: print('handler ran'))\n"
        "print('x' * 100_000, end='')  # more than a pipe's buffer, still in Python's\n"
        "exit_now(3)\n"
    )
    assert done.returncode == 3
    assert done.stdout == "x" * 100_000 + "handler ran\n"
    assert list(tmp_path.iterdir()) == []  # the TemporaryDirectory's finalizer ran


def test_the_exit_status_is_the_one_sys_exit_gives() -> None:
    for arg, status, err in (("None", 0, ""), ("0", 0, ""), ("1", 1, ""), ("'refused'", 1, "refused\n")):
        done = _python(f"from tallyroom.fastexit import exit_now\nexit_now({arg})\n")
        assert (done.returncode, done.stderr) == (status, err), arg


def test_the_entry_point_prints_its_last_line_and_exits_with_the_commands_status(tmp_path: Path) -> None:
    """An unreadable source: exit status 2 and the summary line, through a pipe."""
    done = subprocess.run(
        [str(BIN), "verify", str(tmp_path / "nothing-here"), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout.splitlines()[-1].startswith("verified 0 numbers in 0 files"), done.stdout
    assert "Traceback" not in done.stderr
    helped = subprocess.run([str(BIN), "--version"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "version" in helped.stdout
