"""The bulletin: everything needed to recompute a snapshot, published with it.

* ``bulletin/definition.yaml`` (or ``.json``) — the exact bytes of the definition (the payload
  of ledger entry 0); its SHA-256 is the election hash in every protocol.
* ``bulletin/commission.vkey`` — the commission's public key (C2SP note verifier key).
* ``bulletin/checkpoints.jsonl`` — every signed checkpoint up to this snapshot's.
* ``bulletin/entries/<start>.jsonl`` — every ledger entry of the prefix, 1,000 per file, each
  with its exact bytes in base64. A full chunk never changes, so it is hard-linked into later
  snapshots; only the last, partial chunk is written again.
* ``bulletin/stations.json`` — each station's device key as the definition provisions it,
  and every later change of its keys (registration, rotation, revocation) as the ledger's
  ``key_change`` entries record it.
* ``bulletin/journal.json`` — the intake journal per station in aggregate (written by the
  builder from :class:`~tallyroom.publish.station_facts.JournalTally`).

docs/bulletin.md specifies every field.
"""

from __future__ import annotations

import base64
from pathlib import Path

from tallyroom.commission import verify_key_string
from tallyroom.definition.compiled import CompiledElection
from tallyroom.ledger.checkpoint import parse_signed_checkpoint
from tallyroom.publish.exports import json_bytes
from tallyroom.publish.files import FileInfo, SnapshotWriter
from tallyroom.publish.ledger_view import LedgerPrefix, definition_bytes
from tallyroom.publish.station_facts import LedgerFacts
from tallyroom.store.sql import Store

CHUNK = 1000


def chunk_name(start: int) -> str:
    return f"bulletin/entries/{start:012d}.jsonl"


def write(
    w: SnapshotWriter,
    store: Store,
    election: CompiledElection,
    prefix: LedgerPrefix,
    note: bytes,
    prev_chunks: list[str],
    prev_dir: Path | None,
    prev_files: dict[str, FileInfo],
    facts: LedgerFacts | None = None,
) -> list[str]:
    """Write the bulletin; return the names of the *full* entry chunks (reusable later).
    ``facts`` (folded from this ``prefix``) gives the stations' key changes."""
    definition = definition_bytes(prefix)
    ext = "json" if definition.lstrip()[:1] == b"{" else "yaml"
    w.put(f"bulletin/definition.{ext}", definition)
    w.put("bulletin/commission.vkey", (verify_key_string(store) + "\n").encode())
    lines = []
    own, _ = parse_signed_checkpoint(note)
    for size, root, ts, cp_note in store.checkpoints():
        if size > own.size:
            continue
        lines.append(json_bytes({"size": size, "root": root.hex(), "time": ts, "note": cp_note.decode()}))
    w.write("bulletin/checkpoints.jsonl", b"".join(lines))
    changes = facts.key_changes if facts is not None else {}
    stations: dict[str, dict[str, object]] = {
        s.id: {"key": s.key, "key_changes": changes.get(s.id, [])} for s in election.stations
    }
    w.put("bulletin/stations.json", json_bytes({"format": "tallyroom-stations/1", "stations": stations}))
    full: list[str] = []
    reusable = set(prev_chunks)
    for start in range(0, prefix.size, CHUNK):
        name = chunk_name(start)
        entries = prefix.entries[start : start + CHUNK]
        complete = len(entries) == CHUNK
        if complete and name in reusable and prev_dir is not None and name in prev_files:
            w.link(prev_dir, name, prev_files[name])
        else:
            w.write(
                name,
                b"".join(
                    json_bytes(
                        {
                            "index": e.index,
                            "kind": e.kind,
                            "leaf_hash": e.leaf_hash.hex(),
                            "data": base64.b64encode(e.data).decode(),
                        }
                    )
                    for e in entries
                ),
            )
        if complete:
            full.append(name)
    return full
