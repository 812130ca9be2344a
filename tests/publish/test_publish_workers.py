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

from tallyroom.publish import builder
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
