"""Rebuild a store's tally from its ledger: `tallyroom.tally.rebuild.rebuild`, fed a chunk at a time.

`rebuild` is the pure function (a ledger prefix in, totals out). This reads the store's
ledger in chunks of `CHUNK` entries straight into `Folder.add`, with the collector paused
from the first read to the last (see `paused_gc`), so the result, and any error and the
entry it names, are those of `rebuild` over the same entries.

Measured, and not done: decoding chunks in worker processes while this one folds. Sending
the decoded counts back (pickled lists of ints) cost more than decoding them: 80% more CPU in
all, and slower on this 2-core machine (decision 0007).
"""

from __future__ import annotations

from tallyroom.store.sql import Store
from tallyroom.tally.rebuild import CHUNK, Folder, Rebuilt, paused_gc


def rebuild_store(store: Store) -> Rebuilt:
    """`rebuild` over every entry of the store's ledger, as it is when this starts."""
    folder = Folder(store.election())
    size = store.head().size
    with paused_gc():
        for start in range(0, size, CHUNK):
            stop = min(size, start + CHUNK)
            folder.add([(i, d) for i, _k, d, _h in store.entries(start, stop, batch=CHUNK)])
    return folder.finish()
