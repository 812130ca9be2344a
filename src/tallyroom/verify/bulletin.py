"""The bulletin of one snapshot: manifest, ledger entries, checkpoints, commission key.

Checks, each naming the file and what is wrong (docs/bulletin.md §3–§5):

* every file the manifest lists has its SHA-256 and size, and each precompressed copy
  decompresses to the same bytes; no unlisted file sits in a snapshot folder;
* entry files hold entries 0 … S−1 in order, 1,000 per file, each leaf hash recomputed from
  the entry's bytes; the Merkle root of the first S entries is the checkpoint's root;
* ``checkpoint.txt`` and every line of ``checkpoints.jsonl`` carry a valid signature of the
  commission key in ``commission.vkey``; the root of the first ``size`` entries equals each
  checkpoint's root, and each later checkpoint is proved consistent with each earlier one
  (RFC 9162 §2.1.4 proofs built from the published entries and checked).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec
import nacl.signing

from tallyroom.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    parse_signed_checkpoint,
    parse_vkey,
    verify_checkpoint,
)
from tallyroom.ledger.entry import EntryError, entry_kind
from tallyroom.ledger.merkle import (
    MemoryNodes,
    ProofError,
    check_consistency,
    consistency_proof,
    leaf_hash,
)
from tallyroom.ledger.note import NoteError
from tallyroom.verify.report import Tally
from tallyroom.verify.source import FileMissing, Snapshot

#: The manifest's encoding for a file stored only as ``<file>.gz`` (docs/bulletin.md §2).
GZIP_ONLY = "gzip-only"

MANIFEST = "manifest.json"
SNAPSHOT_FORMAT = "tallyroom-snapshot/1"
CHUNK = 1000
_CHUNK_NAME = re.compile(r"^bulletin/entries/(\d{12})\.jsonl$")


class ManifestError(Exception):
    """The manifest cannot be used at all (so nothing else can be checked)."""


@dataclass(frozen=True, slots=True)
class FileInfo:
    sha256: str
    size: int
    encodings: list[str]

    @classmethod
    def of(cls, entry: Any) -> FileInfo | None:
        """From a manifest entry ``[sha256, size, [encodings]]``; None if malformed."""
        try:
            sha, size, encodings = entry
            return cls(str(sha), int(size), [str(e) for e in encodings])
        except (TypeError, ValueError):
            return None


@dataclass
class Manifest:
    raw: bytes
    sha256: str
    #: path -> the manifest's entry ``[sha256, size, [encodings]]`` (see :meth:`FileInfo.of`)
    files: dict[str, Any]
    snapshot: dict[str, Any]
    languages: list[str]

    @property
    def number(self) -> int:
        return int(self.snapshot["number"])


def parse_manifest(raw: bytes) -> Manifest:
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ManifestError(f"manifest.json is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != SNAPSHOT_FORMAT:
        raise ManifestError(f"manifest.json is not a {SNAPSHOT_FORMAT} manifest")
    try:
        files = doc["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not an object")
        snapshot = dict(doc["snapshot"])
        for key in ("number", "ledger_size", "root", "definition_sha256"):
            snapshot[key]
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"manifest.json lacks a field or has a malformed one: {exc}") from None
    return Manifest(raw, hashlib.sha256(raw).hexdigest(), files, snapshot, list(doc.get("languages", [])))


def safe_path(rel: str) -> bool:
    """A relative path that stays inside the snapshot folder."""
    parts = rel.split("/")
    return (
        bool(rel)
        and not rel.startswith("/")
        and "\\" not in rel
        and all(p not in ("", ".", "..") for p in parts)
    )


def check_file(snap: Snapshot, rel: str, entry: Any, out: Tally) -> bytes | None:
    """Read one listed file, check its hash, size and compressed copies; return its bytes."""
    info = FileInfo.of(entry)
    if info is None:
        out.fail("manifest", MANIFEST, f"files[{rel}]", "not a [sha256, size, [encodings]] entry")
        return None
    if not safe_path(rel):
        out.fail("manifest", MANIFEST, f"files[{rel}]", "a path outside the snapshot folder: not read")
        return None
    only = info.encodings == [GZIP_ONLY]
    try:
        data = snap.read_gzip_only(rel) if only else snap.read(rel)
    except FileMissing:
        what = f"{rel}.gz (the file is listed as stored only as its gzip copy)" if only else rel
        out.fail("file-missing", rel, "", f"listed in manifest.json but not published: {what}")
        return None
    except ValueError as exc:  # a served compressed copy that does not decompress
        out.fail("compressed-copy", rel, "", str(exc))
        return None
    out.files += 1
    sha = hashlib.sha256(data).hexdigest()
    if sha != info.sha256 or len(data) != info.size:
        out.add(
            "file-hash",
            rel,
            "SHA-256",
            f"{sha} ({len(data):,} bytes)",
            f"{info.sha256} ({info.size:,} bytes)",
            "the file's bytes differ from what manifest.json lists for it: it was changed after "
            "the snapshot was published (its numbers are checked one by one below)",
        )
    for enc, decoded in snap.copies(rel, [] if only else info.encodings):
        suffix = ".gz" if enc == "gzip" else ".br"
        if decoded is None:
            out.fail("compressed-copy", rel + suffix, "", f"manifest.json lists a {enc} copy; it is missing")
        elif decoded != data:
            out.fail(
                "compressed-copy",
                rel + suffix,
                "",
                f"decompresses to {len(decoded):,} bytes with SHA-256 "
                f"{hashlib.sha256(decoded).hexdigest()[:16]}…, not the bytes of {rel}: a reader "
                "whose browser accepts this encoding is served different content",
            )
    return data


# -- ledger entries ---------------------------------------------------------------------------


class _Line(msgspec.Struct):
    #: Standard base64, decoded by msgspec as it reads the line (strictly, as
    #: ``base64.b64decode(…, validate=True)``): a third of the time of decoding it afterwards,
    #: in the part of the run that has one core.
    data: bytes
    index: int
    kind: str
    leaf_hash: str


_line = msgspec.json.Decoder(_Line)


@dataclass
class Ledger:
    """The published ledger prefix: exact entry bytes and the Merkle tree over them."""

    data: list[bytes] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    #: Where each entry was published: (file, line number).
    where: list[tuple[str, int]] = field(default_factory=list)
    nodes: MemoryNodes = field(default_factory=MemoryNodes)

    @property
    def size(self) -> int:
        return len(self.data)

    def root(self, size: int | None = None) -> bytes:
        return self.nodes.root(self.size if size is None else size)

    def locate(self, index: int) -> str:
        if 0 <= index < len(self.where):
            f, line = self.where[index]
            return f"{f} line {line}"
        return f"ledger entry {index}"


def entry_files(manifest: Manifest) -> list[tuple[int, str]]:
    out = []
    for rel in manifest.files:
        m = _CHUNK_NAME.match(rel)
        if m:
            out.append((int(m.group(1)), rel))
    return sorted(out)


def read_ledger(snap: Snapshot, manifest: Manifest, out: Tally) -> Ledger:
    """Every published entry, in index order, each checked against its file and position."""
    ledger = Ledger()
    expected_start = 0
    last = -1
    for start, rel in entry_files(manifest):
        raw = check_file(snap, rel, manifest.files[rel], out)
        if raw is None:
            continue
        if start != expected_start:
            out.fail(
                "ledger-files",
                rel,
                "",
                f"starts at entry {start:,}, but the entries before end at {expected_start - 1:,}: "
                f"entries {expected_start:,}–{start - 1:,} are not published",
            )
        lines = raw.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for n, line in enumerate(lines, start=1):
            try:
                item = _line.decode(line)
            except msgspec.DecodeError as exc:
                out.fail("ledger-entry", rel, f"line {n}", f"not a ledger entry line: {exc}")
                continue
            data = item.data
            index = last + 1
            if item.index != index:
                missing = (
                    f"entry {index:,} is missing"
                    if item.index == index + 1
                    else f"entries {index:,}–{item.index - 1:,} are missing"
                    if item.index > index
                    else f"entry {item.index:,} appears twice or out of order"
                )
                out.add(
                    "ledger-gap",
                    rel,
                    f"line {n}: index",
                    item.index,
                    index,
                    f"indices must run 0, 1, 2, … without gaps: {missing}; the published entries "
                    "no longer hash to the signed roots",
                )
            last = item.index
            leaf = leaf_hash(data)
            if leaf.hex() != item.leaf_hash:
                out.add(
                    "ledger-leaf-hash",
                    rel,
                    f"line {n} (entry {item.index}): leaf_hash",
                    item.leaf_hash,
                    leaf.hex(),
                    "SHA-256(0x00 ‖ entry bytes) of the published entry bytes",
                )
            try:
                kind = entry_kind(data)
                if kind != item.kind:  # a StrEnum: equal to its name
                    out.add(
                        "ledger-entry",
                        rel,
                        f"line {n} (entry {item.index}): kind",
                        item.kind,
                        str(kind),
                        "the kind in the entry's own header line",
                    )
            except EntryError as exc:
                out.fail("ledger-entry", rel, f"line {n} (entry {item.index})", str(exc))
            ledger.data.append(data)
            ledger.kinds.append(item.kind)
            ledger.leaves.append(leaf)
            ledger.where.append((rel, n))
        expected_start = start + len(lines)
        if len(lines) != CHUNK and start + CHUNK < int(manifest.snapshot["ledger_size"]):
            out.fail(
                "ledger-files",
                rel,
                "",
                f"holds {len(lines):,} entries; every file but the last holds {CHUNK:,}",
            )
    ledger.nodes = MemoryNodes(ledger.leaves)
    return ledger


# -- the commission key and checkpoints ----------------------------------------------------------


@dataclass
class CommissionKey:
    name: str
    key: nacl.signing.VerifyKey
    vkey: str


def read_vkey(raw: bytes, out: Tally) -> CommissionKey | None:
    text = raw.decode("utf-8", "replace").strip()
    try:
        name, key = parse_vkey(text)
    except NoteError as exc:
        out.fail("commission-key", "bulletin/commission.vkey", "", f"not a verifier key: {exc}")
        return None
    return CommissionKey(name, key, text)


def verify_note(
    note: bytes, key: CommissionKey, file: str, where: str, out: Tally, origin: str | None = None
) -> Checkpoint | None:
    """A checkpoint if ``note`` is validly signed by the commission key, else a mismatch."""
    try:
        return verify_checkpoint(note, key.name, key.key, origin=origin)
    except CheckpointError as exc:
        try:
            cp, _ = parse_signed_checkpoint(note)
            what = f"checkpoint of size {cp.size:,}"
        except CheckpointError:
            what = "checkpoint"
        out.fail("checkpoint-signature", file, where, f"{what} is not validly signed by {key.name}: {exc}")
        return None


def check_root(ledger: Ledger, cp: Checkpoint, file: str, where: str, out: Tally) -> bool:
    """The published entries hash to the checkpoint's root at its size."""
    if cp.size > ledger.size:
        out.fail(
            "checkpoint-root",
            file,
            where,
            f"signed checkpoint of size {cp.size:,}, but only {ledger.size:,} entries are published",
        )
        return False
    got = ledger.root(cp.size)
    if got != cp.root:
        out.add(
            "checkpoint-root",
            file,
            f"{where} (size {cp.size:,})",
            cp.root.hex(),
            got.hex(),
            f"the Merkle root of the first {cp.size:,} published entries: the commission signed a "
            "different tree than the entries now published (an entry was changed, removed, "
            "added or re-ordered)",
        )
        return False
    return True


@dataclass
class Checkpoints:
    own: Checkpoint | None
    listed: list[tuple[Checkpoint, bytes]]


def check_checkpoints(
    snap: Snapshot,
    manifest: Manifest,
    ledger: Ledger,
    key: CommissionKey,
    own_raw: bytes | None,
    listed_raw: bytes | None,
    out: Tally,
    notes: list[str] | None = None,
) -> Checkpoints:
    notes = notes if notes is not None else []
    own: Checkpoint | None = None
    if own_raw is not None:
        own = verify_note(own_raw, key, "checkpoint.txt", "", out)
    if own is not None:
        out.numbers += 2
        check_root(ledger, own, "checkpoint.txt", "root", out)
        if own.size != ledger.size:
            out.add(
                "checkpoint-size",
                "checkpoint.txt",
                "size",
                own.size,
                ledger.size,
                "the number of ledger entries published in bulletin/entries/",
            )
        snap_doc = manifest.snapshot
        if snap_doc.get("ledger_size") != own.size:
            out.add(
                "manifest-snapshot",
                MANIFEST,
                "snapshot.ledger_size",
                snap_doc.get("ledger_size"),
                own.size,
                "the size of the signed checkpoint.txt",
            )
        if snap_doc.get("root") != own.root.hex():
            out.add(
                "manifest-snapshot",
                MANIFEST,
                "snapshot.root",
                snap_doc.get("root"),
                own.root.hex(),
                "the root of the signed checkpoint.txt",
            )
    listed: list[tuple[Checkpoint, bytes]] = []
    if listed_raw is None:
        return Checkpoints(own, listed)
    file = "bulletin/checkpoints.jsonl"
    previous: Checkpoint | None = None
    lines = [ln for ln in listed_raw.split(b"\n") if ln]
    for n, line in enumerate(lines, start=1):
        try:
            doc = msgspec.json.decode(line)
            note = str(doc["note"]).encode()
        except (msgspec.DecodeError, KeyError, TypeError) as exc:
            out.fail("checkpoints-file", file, f"line {n}", f"not a checkpoint line: {exc}")
            continue
        cp = verify_note(note, key, file, f"line {n}", out)
        if cp is None:
            continue
        out.numbers += 3
        for name, value, want in (
            ("size", doc.get("size"), cp.size),
            ("root", doc.get("root"), cp.root.hex()),
            ("time", doc.get("time"), cp.time),
        ):
            if value != want:
                out.add(
                    "checkpoints-file",
                    file,
                    f"line {n}: {name}",
                    value,
                    want,
                    "the signed note on the same line",
                )
        check_root(ledger, cp, file, f"line {n}", out)
        if previous is not None:
            if cp.size <= previous.size:
                out.fail(
                    "checkpoints-file",
                    file,
                    f"line {n}",
                    f"size {cp.size:,} after size {previous.size:,}: "
                    "checkpoints must be listed in increasing size",
                )
            elif cp.size <= ledger.size:
                _check_consistent(ledger, previous, cp, file, f"lines {n - 1}–{n}", out)
        listed.append((cp, note))
        previous = cp
    if own is not None and own_raw is not None:
        last = listed[-1][0] if listed else None
        if last is None or (last.size, last.root) != (own.size, own.root):
            out.fail(
                "checkpoints-file",
                file,
                "last line",
                "is not the snapshot's own checkpoint.txt (every checkpoint up to this one must be listed)",
            )
        elif listed[-1][1] != own_raw:
            notes.append(
                f"{file}: the last line is another signed checkpoint of the same tree (size {own.size:,}, "
                f"time {last.time}) than checkpoint.txt (time {own.time}); docs/bulletin.md §4 lists every "
                "checkpoint, so checkpoint.txt itself should be there"
            )
    return Checkpoints(own, listed)


def _check_consistent(
    ledger: Ledger, old: Checkpoint, new: Checkpoint, file: str, where: str, out: Tally
) -> None:
    """An RFC 9162 consistency proof from the published entries, checked against both roots."""
    try:
        proof = consistency_proof(old.size, new.size, ledger.nodes)
        check_consistency(old.size, new.size, old.root, new.root, proof)
    except ProofError as exc:
        out.fail(
            "checkpoint-consistency",
            file,
            where,
            f"the checkpoint of size {new.size:,} does not extend the one of size {old.size:,}: {exc} "
            "— published history was rewritten",
        )


def consistent_with(ledger: Ledger, old_size: int, old_root: bytes) -> str | None:
    """None if the published tree extends (old_size, old_root); else why not."""
    if old_size > ledger.size:
        return (
            f"an earlier checkpoint covers {old_size:,} entries but only {ledger.size:,} are published now: "
            "the ledger shrank"
        )
    try:
        new_root = ledger.root()
        proof = consistency_proof(old_size, ledger.size, ledger.nodes)
        check_consistency(old_size, ledger.size, old_root, new_root, proof)
    except ProofError as exc:
        got = ledger.root(old_size)
        return (
            f"the first {old_size:,} entries now hash to {got.hex()}, not {old_root.hex()} ({exc}): "
            "the new history does not extend the old one"
        )
    return None
