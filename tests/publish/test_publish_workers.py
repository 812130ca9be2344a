"""A page worker process killed in the middle of a full build (the kernel's OOM killer, a
signal) abandons that snapshot at once: nothing is published, no staging folder is left, and
the next attempt publishes. With multiprocessing.Pool the publisher waited for the dead
worker's pages for ever and stopped publishing without a word."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from publish_support import make_store

from tallyroom.publish import builder, memory
from tallyroom.publish.builder import Publisher, PublishError

pytestmark = pytest.mark.timeout(300)


def _killed(task: object) -> object:
    os.kill(os.getpid(), signal.SIGKILL)
    return None


def test_a_killed_page_worker_abandons_the_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, key = make_store(tmp_path, machine=40, hand=0)
    out = tmp_path / "pub"
    pub = Publisher(store, out, key, workers=2)
    render = builder._render_chunk
    monkeypatch.setattr(builder, "_render_chunk", _killed)
    with pytest.raises(PublishError, match="page worker process was killed"):
        pub.publish()
    assert not (out / "current").exists()
    assert [p.name for p in (out / "snapshots").iterdir()] == []
    monkeypatch.setattr(builder, "_render_chunk", render)
    outcome = pub.publish()
    assert outcome.status == "published" and outcome.snapshot == 1, outcome.failures
    assert outcome.pages_rendered >= builder.PARALLEL_MIN  # the forked workers made them
    assert (out / "current").resolve() == (out / "snapshots" / "1").resolve()
    store.close()


def test_pages_are_the_same_bytes_in_process_inherited_or_sent_to_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page workers read the station records they inherit from the publisher (small
    elections) or get them from a file written before the fork (from PAYLOAD_MIN_RECORDS on):
    the snapshot is the same, byte for byte, either way, with any number of workers, and as
    when rendered in-process."""
    import shutil

    (tmp_path / "a").mkdir()
    store, key = make_store(tmp_path / "a", machine=120, hand=40)
    store.close()
    for name in ("b", "c", "d"):
        shutil.copytree(tmp_path / "a", tmp_path / name)

    def build(name: str, workers: int) -> dict[str, str]:
        from tallyroom.store.sql import open_store

        s = open_store(str(tmp_path / name / "kg.db"))
        outcome = Publisher(
            s, tmp_path / name / "pub", tmp_path / name / key.name, workers=workers, clock=lambda: 1.6e9
        ).publish()
        s.close()
        assert outcome.status == "published", outcome.failures
        assert outcome.pages_rendered >= builder.PARALLEL_MIN
        snap = tmp_path / name / "pub" / "snapshots" / "1"
        return {
            str(p.relative_to(snap)): p.read_bytes().hex()
            for p in sorted(snap.rglob("*"))
            if p.is_file() and p.suffix not in (".gz", ".br")
        }

    in_process = build("a", 1)
    inherited = build("b", 2)
    more_than_cores = build("d", 3)  # as on a machine with more cores (docs/decisions/0019)
    monkeypatch.setattr(builder, "PAYLOAD_MIN_RECORDS", 0)
    monkeypatch.setattr(memory, "SHARE_MEMORY_FRACTION", 0.0)  # no room for copies
    sent = build("c", 2)
    assert len(in_process) > 200
    assert in_process == inherited
    assert in_process == more_than_cores
    assert in_process == sent


def test_a_large_election_shares_the_records_only_while_the_copies_fit_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From PAYLOAD_MIN_RECORDS records on, forked processes read the records they inherit
    only while one copy of this process's anonymous memory per forked process fits in the
    allowed share of the memory available, to the machine or to its memory cgroup if that is
    less; without /proc to tell, they are sent copies."""
    assert builder.may_share(builder.PAYLOAD_MIN_RECORDS - 1, 3)
    monkeypatch.setattr(memory, "SHARE_MEMORY_FRACTION", 0.0)
    assert builder.may_share(builder.PAYLOAD_MIN_RECORDS - 1, 3)  # small: always
    assert not builder.may_share(builder.PAYLOAD_MIN_RECORDS, 3)
    anon = memory._proc_kib("/proc/self/status", "RssAnon:")
    available = memory._proc_kib("/proc/meminfo", "MemAvailable:")
    assert anon is not None and available is not None and 0 < anon < available
    # exactly at the limit for 3 processes: allowed for 3, not for 4
    monkeypatch.setattr(memory, "_proc_kib", lambda path, field: 1000 if "status" in path else 6000)
    monkeypatch.setattr(memory, "SHARE_MEMORY_FRACTION", 0.5)
    monkeypatch.setattr(memory, "cgroup_room_kib", lambda: None)
    assert builder.may_share(builder.PAYLOAD_MIN_RECORDS, 3)
    assert not builder.may_share(builder.PAYLOAD_MIN_RECORDS, 4)
    # a memory cgroup with less room than the machine decides
    monkeypatch.setattr(memory, "cgroup_room_kib", lambda: 5000)
    assert not builder.may_share(builder.PAYLOAD_MIN_RECORDS, 3)
    assert builder.may_share(builder.PAYLOAD_MIN_RECORDS, 2)
    monkeypatch.setattr(memory, "_proc_kib", lambda path, field: None)
    assert not builder.may_share(builder.PAYLOAD_MIN_RECORDS, 1)


def test_a_worker_creates_its_files_folder_by_folder_and_waits_for_a_folder_another_holds(
    tmp_path: Path,
) -> None:
    """Page workers write into the same folders (``en/station/`` …); two processes creating
    files in one folder at once spin on its lock (SnapshotWriter.write_many). A worker takes a
    folder no other holds first, and waits for the one that is held; the files and their
    manifest entries are those :meth:`SnapshotWriter.write` makes."""
    import fcntl
    import threading
    import time

    from tallyroom.publish.files import SnapshotWriter

    page = "<!doctype html>" + "<p>Station 1: 1 234 votes</p>" * 40
    items = [
        (f"{lang}/station/{n}.html", f"{lang} {n} {page}".encode()) for lang in ("en", "ru") for n in range(3)
    ] + [("en/index.html", page.encode())]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = SnapshotWriter(tmp_path / "a")
    for rel, data in items:
        plain.write(rel, data)
    plain.close()

    other = SnapshotWriter(tmp_path / "b")  # another worker, holding en/station/
    held = other.dirs.fd("en/station")
    fcntl.flock(held, fcntl.LOCK_EX)
    w = SnapshotWriter(tmp_path / "b")
    done = threading.Event()
    thread = threading.Thread(target=lambda: (w.write_many(iter(items)), done.set()))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "b/en/index.html.gz").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert sorted(p.name for p in (tmp_path / "b/ru/station").iterdir()) == [
            f"{n}.html.gz" for n in range(3)
        ]
        assert list((tmp_path / "b/en/station").iterdir()) == []
        assert not done.is_set()
    finally:
        fcntl.flock(held, fcntl.LOCK_UN)
        thread.join(20)
    other.close()
    w.close()
    assert done.is_set()
    assert w.files == plain.files and w.written == len(items)
    for rel in ("en/station/2.html.gz", "ru/station/0.html.gz", "en/index.html", "en/index.html.br"):
        assert (tmp_path / "b" / rel).read_bytes() == (tmp_path / "a" / rel).read_bytes()


def test_the_room_a_memory_cgroup_leaves_is_read_from_the_tightest_level(tmp_path: Path) -> None:
    """A container's or a systemd unit's memory limit bounds what forked processes may copy:
    the least room (limit minus usage) of this process's memory cgroup and its parents, in
    cgroup v2 and v1; no room is known where no level sets a limit."""
    membership = tmp_path / "cgroup"
    root = tmp_path / "fs"

    def level(folder: Path, limit: str, usage: int, v1: bool = False) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        names = ("memory.limit_in_bytes", "memory.usage_in_bytes") if v1 else ("memory.max", "memory.current")
        (folder / names[0]).write_text(limit + "\n")
        (folder / names[1]).write_text(f"{usage}\n")

    # v2: the unit has no limit of its own; its parent (the container) has 1 GiB, 200 MiB used.
    membership.write_text("0::/pod/unit\n")
    level(root / "pod" / "unit", "max", 100 << 20)
    level(root / "pod", str(1 << 30), 200 << 20)
    assert memory.cgroup_room_kib(membership, root) == (1024 - 200) * 1024
    # ... and a tighter limit on the unit itself wins.
    level(root / "pod" / "unit", str(300 << 20), 100 << 20)
    assert memory.cgroup_room_kib(membership, root) == 200 * 1024
    # Usage above the limit (page cache) leaves no room rather than a negative one.
    level(root / "pod" / "unit", str(50 << 20), 100 << 20)
    assert memory.cgroup_room_kib(membership, root) == 0
    # v1: the memory controller's own hierarchy, other controllers ignored.
    membership.write_text("4:cpu,cpuacct:/x\n3:memory:/svc\n0::/\n")
    for f in ("memory.max", "memory.current"):
        (root / f).unlink(missing_ok=True)
    level(root / "memory" / "svc", str(2 << 30), 1 << 30, v1=True)
    assert memory.cgroup_room_kib(membership, root) == 1 << 20
    # No limit anywhere (v2 "max", v1's number near 2**63), or no cgroup files: nothing known.
    membership.write_text("0::/free\n")
    level(root / "free", "max", 1)
    assert memory.cgroup_room_kib(membership, root) is None
    membership.write_text("3:memory:/open\n")
    level(root / "memory" / "open", "9223372036854771712", 1 << 30, v1=True)
    assert memory.cgroup_room_kib(membership, root) is None
    assert memory.cgroup_room_kib(tmp_path / "missing", root) is None


@pytest.mark.parametrize("mode", ["in-process", "inherited", "sent"])
def test_station_files_written_unlike_the_checked_records_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The publisher reads back the station files and per-row files it wrote and compares
    them with the records and rows the gate checked: a fault between the two (here a station
    file that states another ledger entry) abandons the snapshot, whether the read-back runs
    while the page workers render (they read inherited records, or render here) or after them
    (they were sent their records), and the next attempt publishes."""
    import msgspec

    from tallyroom.publish import exports

    store, key = make_store(tmp_path, machine=120, hand=40)
    if mode == "sent":
        monkeypatch.setattr(builder, "PAYLOAD_MIN_RECORDS", 0)
        monkeypatch.setattr(memory, "SHARE_MEMORY_FRACTION", 0.0)
    out = tmp_path / "pub"
    pub = Publisher(store, out, key, workers=1 if mode == "in-process" else 2)
    original = exports.station_json_part
    victims: list[str] = []

    def faulty(r: dict) -> bytes:
        part = original(r)
        if not victims or victims[0] == r["station"]:
            victims.append(r["station"])
            doc = msgspec.json.decode(part)
            doc["ledger_index"] += 1
            return msgspec.json.encode(doc)
        return part

    monkeypatch.setattr(exports, "station_json_part", faulty)
    with pytest.raises(PublishError, match=r"station \S+ differs from the checked record"):
        pub.publish()
    assert victims
    assert not (out / "current").exists()
    assert [p.name for p in (out / "snapshots").iterdir()] == []
    monkeypatch.setattr(exports, "station_json_part", original)
    outcome = pub.publish()
    assert outcome.status == "published" and outcome.snapshot == 1, outcome.failures
    assert outcome.pages_rendered >= builder.PARALLEL_MIN
    steps = list(outcome.timings)
    early = steps.index("read-back") < steps.index("pages")
    assert early == (mode != "sent"), steps
    store.close()


def test_the_slow_pages_go_first_and_the_tasks_shrink_toward_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers take the national, area and reconciliation pages first and the station
    pages after them, in tasks that shrink to TASK_MIN pages at the end (guided
    self-scheduling): neither worker is left with a large last task while the other waits.
    Every page is in exactly one task."""
    store, key = make_store(tmp_path, machine=120, hand=40)
    seen: list[tuple[list[bool], list[list[int]]]] = []
    payloads = builder._payloads

    def spy(site: object, jobs: list[builder.Job], *args: object) -> tuple[object, list[builder._Task]]:
        fh, tasks = payloads(site, jobs, *args)  # type: ignore[arg-type]
        seen.append(([builder._is_station_job(j) for j in jobs], [t[0] for t in tasks]))
        return fh, tasks

    monkeypatch.setattr(builder, "_payloads", spy)
    monkeypatch.setattr(builder, "TASK_MIN", 2)
    outcome = Publisher(store, tmp_path / "pub", key, workers=2).publish()
    store.close()
    assert outcome.status == "published", outcome.failures
    ((station, tasks),) = seen
    first = station.index(True)
    assert first > 10 and all(station[first:])  # every other page before the first station page
    assert sorted(i for t in tasks for i in t) == list(range(len(station)))
    sizes = [len(t) for t in tasks]
    assert sizes[0] == len(station) // 16  # workers * 8 tasks' worth, above TASK_MIN
    assert sizes == sorted(sizes, reverse=True), sizes
    assert sizes[-1] <= 2 and sizes[-3] <= 2, sizes


def test_a_full_build_leaves_no_collection_behind_and_keeps_what_another_froze(
    tmp_path: Path,
) -> None:
    """The collector is off while a snapshot is built; what the build kept goes to the
    oldest generation, so that turning the collector back on does not make the next
    allocation walk it all. Objects someone else froze stay frozen."""
    import gc

    store, key = make_store(tmp_path, machine=120, hand=40)
    assert gc.isenabled()
    before = [s["collections"] for s in gc.get_stats()]
    outcome = Publisher(store, tmp_path / "pub", key, workers=1).publish()
    after = [s["collections"] for s in gc.get_stats()]
    assert outcome.status == "published", outcome.failures
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert after == before, (before, after)
    (tmp_path / "again").mkdir()
    again, again_key = make_store(tmp_path / "again", machine=40, hand=0)
    gc.freeze()
    frozen = gc.get_freeze_count()
    try:
        assert frozen > 0
        outcome = Publisher(again, tmp_path / "again" / "pub", again_key, workers=1).publish()
        assert outcome.status == "published", outcome.failures
        assert gc.get_freeze_count() > frozen // 2  # (some died: reference counting frees them)
    finally:
        gc.unfreeze()
    again.close()
    store.close()


@pytest.mark.parametrize("bad", ["0", "-1", "two", "", "1.5"])
def test_publisher_process_refuses_a_bad_worker_count(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The publisher process's WORKERS argument (written by `serve --publish-workers`) is
    checked before anything is opened or made: a clear error, exit code 2."""
    from tallyroom.web import server

    out = tmp_path / "pub"
    assert server._main(["publish-loop", str(tmp_path / "none.db"), str(out), "5", "1", bad]) == 2
    assert f"WORKERS must be a whole number of at least 1, not {bad!r}" in capsys.readouterr().err
    assert not out.exists()
