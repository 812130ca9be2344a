"""One verification, start to end: read, check, recompute, compare every file.

1. the manifest; the bulletin (definition, commission key, checkpoints, every entry), each
   file hashed against the manifest;
2. the Merkle tree and every checkpoint (signatures, roots, consistency);
3. the ledger walk (signatures, rules, protocols in force, key history, snapshot records,
   audits) and the recomputation of every row, station record and seat projection;
4. every other listed file, in parallel worker processes: hash and compressed copies, then
   every number in it against the recomputation;
5. files the specification requires that are missing, files present but not listed;
6. with a publish folder or a site: ``current.json`` and every earlier snapshot the ledger
   records (its manifest's hash, its checkpoint against today's tree).
"""

from __future__ import annotations

import gc
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import msgspec

from tallyroom.cpus import usable_cpus
from tallyroom.verify import compare_html, compare_json, compare_misc, compare_tables, reconcile
from tallyroom.verify.audits import check_audits
from tallyroom.verify.bulletin import (
    GZIP_ONLY,
    MANIFEST,
    CommissionKey,
    FileInfo,
    Ledger,
    Manifest,
    ManifestError,
    check_checkpoints,
    check_file,
    consistent_with,
    entry_files,
    parse_manifest,
    read_ledger,
    read_vkey,
    safe_path,
    verify_note,
)
from tallyroom.verify.expected import Expected, compute
from tallyroom.verify.ledger import Walk, walk
from tallyroom.verify.report import Report, Tally
from tallyroom.verify.source import FileMissing, Opened, PublishRoot, Snapshot, SourceError
from tallyroom.verify.workers import fork_map

#: Files per task handed to a worker process.
TASK = 64
#: Below this many files one process does all the work.
PARALLEL_FILES = 400


@dataclass
class Verified:
    """What one verified snapshot leaves for the next (watch mode, receipts, comparison)."""

    report: Report
    number: int | None
    manifest: Manifest | None
    ledger: Ledger | None
    walk: Walk | None
    expected: Expected | None
    key: CommissionKey | None = None


def default_workers() -> int:
    """Up to 2 processes, never more than the CPUs this process may use (its affinity and CPU
    quota: :func:`tallyroom.cpus.usable_cpus`)."""
    return min(2, usable_cpus())


def verify_opened(
    opened: Opened, workers: int | None = None, progress: Callable[[str], None] | None = None
) -> Verified:
    return verify_snapshot(opened.snapshot, opened.publish, opened.number_hint, workers, progress)


def verify_snapshot(
    snap: Snapshot,
    publish: PublishRoot | None,
    number_hint: int | None,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Verified:
    """Verify one snapshot (see the module's docstring for the steps)."""
    # Millions of small, short-lived objects and almost no reference cycles: the cyclic
    # garbage collector would cost a quarter of the time. Reference counting frees the rest.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _verify_snapshot(snap, publish, number_hint, workers, progress)
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def _verify_snapshot(
    snap: Snapshot,
    publish: PublishRoot | None,
    number_hint: int | None,
    workers: int | None,
    progress: Callable[[str], None] | None,
) -> Verified:
    workers = default_workers() if workers is None else max(1, workers)
    say = progress or (lambda _msg: None)
    report = Report(snap.label)
    out = report.tally
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        report.timings[name] = report.timings.get(name, 0.0) + now - t
        t = now

    try:
        raw = snap.read(MANIFEST)
    except FileMissing:
        raise SourceError(f"{snap.label}: no manifest.json") from None
    try:
        manifest = parse_manifest(raw)
    except ManifestError as exc:
        out.fail("manifest", MANIFEST, "", str(exc))
        return Verified(report, number_hint, None, None, None, None)
    out.files += 1
    report.snapshot = manifest.number
    say(f"snapshot {manifest.number}: {len(manifest.files):,} files listed")
    if number_hint is not None and manifest.number != number_hint:
        out.add(
            "manifest",
            MANIFEST,
            "snapshot.number",
            manifest.number,
            number_hint,
            "the snapshot's folder name / the current pointer",
        )
    done: set[str] = set()

    def listed(rel: str) -> bytes | None:
        info = manifest.files.get(rel)
        done.add(rel)
        if info is None:
            out.fail("file-missing", rel, "", "required by docs/bulletin.md §2 but not in manifest.json")
            return None
        return check_file(snap, rel, info, out)

    definition_rel = next(
        (r for r in ("bulletin/definition.yaml", "bulletin/definition.json") if r in manifest.files),
        "bulletin/definition.yaml",
    )
    definition_raw = listed(definition_rel)
    vkey_raw = listed("bulletin/commission.vkey")
    key = read_vkey(vkey_raw, out) if vkey_raw is not None else None
    own_raw = listed("checkpoint.txt")
    listed_raw = listed("bulletin/checkpoints.jsonl")
    for _start, rel in entry_files(manifest):
        done.add(rel)
    ledger = read_ledger(snap, manifest, out)
    report.ledger_size = ledger.size
    lap("ledger")
    say(f"ledger: {ledger.size:,} entries read; checking checkpoints")
    # The checkpoints are checked beside the protocol bodies, by the walk's worker processes
    # when there are any (seconds on a large ledger; this process waits for them then).
    job = None if key is None else (snap, manifest, ledger, key, own_raw, listed_raw)
    # The device signatures are checked by worker processes while this process recomputes.
    walked = Tally()
    w = walk(
        ledger,
        key,
        walked,
        workers,
        defer_signatures=True,
        beside=None if job is None else partial(_check_checkpoints, job),
    )
    if job is not None:  # the checkpoints' findings first, as when they were checked first
        found, notes = w.beside if w.beside is not None else _check_checkpoints(job)
        out.merge(found)
        report.notes.extend(notes)
    out.merge(walked)
    report.protocols = w.protocols
    report.signatures = w.signatures
    lap("walk")
    if w.election is None:
        if w.signature_check is not None:
            w.signature_check.finish(out)
        return Verified(report, manifest.number, manifest, ledger, w, None, key)
    election = w.election
    say(
        f"ledger walk: {w.protocols:,} protocols ({w.signatures:,} device signatures, "
        f"{w.imported:,} imported), {len(w.active):,} in force"
    )
    try:  # the signature workers are stopped if anything below fails
        if definition_raw is not None and definition_raw != w.definition_bytes:
            out.fail("definition", definition_rel, "", "differs from the definition in ledger entry 0")
        if manifest.snapshot.get("definition_sha256") != election.sha256:
            out.add(
                "manifest-snapshot",
                MANIFEST,
                "snapshot.definition_sha256",
                manifest.snapshot.get("definition_sha256"),
                election.sha256,
                "SHA-256 of ledger entry 0's definition",
            )
        origin = election.definition.election.origin
        if key is not None and own_raw is not None:
            cp = verify_note(own_raw, key, "checkpoint.txt", "", Tally())
            if cp is not None and origin and cp.origin != origin:
                out.add(
                    "checkpoint-origin",
                    "checkpoint.txt",
                    "origin",
                    cp.origin,
                    origin,
                    "the definition's election.origin",
                )
        _snapshot_records(report, manifest, w, ledger, publish, key, out)
        check_audits(w.audits, election, ledger, out, report)
        ex = compute(w)
        _invariants(ex, out)
    except BaseException:
        if w.signature_check is not None:
            w.signature_check.cancel()
        raise
    for p in ex.seats.values():
        if "tie_note" in p:
            report.notes.append(p["tie_note"])
    lap("recompute")
    if w.signature_check is not None:
        w.signature_check.finish(out)
    lap("signatures")
    say(
        f"recomputed {len(ex.rows):,} rows, {len(ex.stations):,} station records, {len(ex.seats):,} seat "
        "projections; comparing every file"
    )
    stations_rel = "bulletin/stations.json"
    st_raw = listed(stations_rel)
    if st_raw is not None:
        compare_misc.check_station_keys(stations_rel, _json(st_raw, stations_rel, out), ex, out, report.notes)
    journal_rel = "bulletin/journal.json"
    journal_raw = listed(journal_rel)
    if journal_raw is not None:
        ex.journal = compare_misc.check_journal(journal_rel, _json(journal_raw, journal_rel, out), ex, out)
    ex.images = _published_images(manifest)
    gc.freeze()  # what was built so far lives to the end: the collector need not scan it again
    todo = [LISTING, *sorted(rel for rel in manifest.files if rel not in done)]
    ctx = _Ctx(snap, manifest, ex, w)
    out.merge(_run_files(ctx, todo, workers))
    lap("files")
    _required_files(manifest, ex, out)
    if publish is not None and number_hint is not None:
        try:
            doc = msgspec.json.decode(publish.read("current.json"))
            current_number, _ = publish.current()
            if current_number == manifest.number:
                compare_misc.check_current(doc, manifest.number, manifest, out)
        except (FileMissing, SourceError, msgspec.DecodeError):
            pass
    lap("finish")
    return Verified(report, manifest.number, manifest, ledger, w, ex, key)


def _check_checkpoints(
    job: tuple[Snapshot, Manifest, Ledger, CommissionKey, bytes | None, bytes | None],
) -> tuple[Tally, list[str]]:
    """:func:`check_checkpoints`, its findings and notes returned (it may run in a worker)."""
    found, notes = Tally(), list[str]()
    check_checkpoints(*job, found, notes)
    return found, notes


_IMAGE = re.compile(r"^images/([0-9a-f]{64})\.(jpg|png|pdf)$")


def _published_images(manifest: Manifest) -> dict[str, str]:
    """Photos the manifest lists under the SHA-256 it vouches for (their bytes are checked
    against the manifest with every other file)."""
    out = {}
    for rel, entry in manifest.files.items():
        m = _IMAGE.match(rel)
        info = FileInfo.of(entry)
        if m is not None and info is not None and info.sha256 == m.group(1):
            out[m.group(1)] = rel
    return out


def _check_image_file(ctx: _Ctx, rel: str, out: Tally) -> None:
    """``images/<sha256>.<ext>``: named by the SHA-256 of its bytes, declared by a protocol in
    force (docs/bulletin.md §2)."""
    m = _IMAGE.match(rel)
    if m is None:
        out.fail("image", rel, "", "not a photo name images/<sha256>.<jpg|png|pdf>")
        return
    info = FileInfo.of(ctx.manifest.files[rel])
    out.numbers += 1
    if info is not None and info.sha256 != m.group(1):
        out.add(
            "image",
            rel,
            "SHA-256",
            info.sha256,
            m.group(1),
            "a photo is published under the SHA-256 of its bytes: these are not the declared photo",
        )
    if ctx.declared is None:  # once per process: there may be thousands of photos
        ctx.declared = {
            ctx.walk.images[p.index] for p in ctx.walk.active.values() if p.index in ctx.walk.images
        }
    if m.group(1) not in ctx.declared:
        out.fail("image", rel, "", "no protocol in force declares this photo (image_sha256)")


def _json(raw: bytes, file: str, out: Tally) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        out.fail("json", file, "", f"not valid JSON: {exc}")
        return None


def _invariants(ex: Expected, out: Tally) -> None:
    """The recomputed tally itself must keep DESIGN invariant 2 (it can only fail if the ledger
    holds protocols that break the order of figures)."""
    from tallyroom.tally.invariants import check_tally

    stations = {(p.contest, p.station, p.count_kind): p.counts for p in ex.walk.active.values()}
    for f in check_tally(ex.election, ex.tally, stations)[:50]:
        out.fail(
            "invariant",
            "ledger",
            f"{f.contest} / {f.area} / {f.count_kind}",
            f"{f.invariant}: {f.message} in the totals recomputed from the ledger",
        )


def _snapshot_records(
    report: Report,
    manifest: Manifest,
    w: Walk,
    ledger: Ledger,
    publish: PublishRoot | None,
    key: Any,
    out: Tally,
) -> None:
    """Earlier snapshots: logged in the ledger, unchanged since, on a history this one extends."""
    n = manifest.number
    numbers = [r.number for r in w.snapshots]
    want = list(range(1, n))
    prev = manifest.snapshot.get("previous")
    if prev != (n - 1 if n > 1 else None):
        out.add(
            "manifest-snapshot",
            MANIFEST,
            "snapshot.previous",
            prev,
            n - 1 if n > 1 else None,
            "snapshots are numbered 1, 2, 3, …",
        )
    if numbers != want:
        missing = sorted(set(want) - set(numbers))
        out.fail(
            "snapshot-history",
            "bulletin/entries/",
            "snapshot entries",
            f"the ledger logs snapshots {numbers[:10]}{'…' if len(numbers) > 10 else ''}; before snapshot "
            f"{n} it must log 1–{n - 1}" + (f" (missing: {missing[:10]})" if missing else ""),
        )
    if publish is None:
        return
    for r in w.snapshots:
        if r.number >= n:
            continue
        snap = publish.snapshot(r.number)
        rel = f"snapshots/{r.number}/manifest.json"
        try:
            raw = snap.read(MANIFEST)
        except (FileMissing, SourceError):
            report.warnings.append(
                f"{rel} is not available: snapshot {r.number} could not be compared with "
                f"its ledger record (entry {r.index})"
            )
            continue
        out.numbers += 1
        sha = hashlib.sha256(raw).hexdigest()
        if sha != r.manifest_sha256:
            out.add(
                "snapshot-history",
                rel,
                "SHA-256",
                sha,
                r.manifest_sha256,
                f"ledger entry {r.index} records snapshot {r.number}'s manifest as published: the snapshot "
                "was changed or replaced afterwards",
            )
        if key is None:
            continue
        try:
            note = snap.read("checkpoint.txt")
        except (FileMissing, SourceError):
            continue
        cp = verify_note(note, key, f"snapshots/{r.number}/checkpoint.txt", "", out)
        if cp is None:
            continue
        if cp.size <= ledger.size:
            out.numbers += 1
            if ledger.root(cp.size) != cp.root:
                why = consistent_with(ledger, cp.size, cp.root) or ""
                out.add(
                    "snapshot-history",
                    f"snapshots/{r.number}/checkpoint.txt",
                    f"root at size {cp.size:,}",
                    cp.root.hex(),
                    ledger.root(cp.size).hex(),
                    f"the Merkle root of the first {cp.size:,} entries of the current ledger — {why}",
                )


@dataclass
class _Ctx:
    snap: Snapshot
    manifest: Manifest
    ex: Expected
    walk: Walk
    #: The photos (SHA-256) the protocols in force declare, once asked for.
    declared: set[str] | None = None


_CTX: _Ctx | None = None

_LANG_PAGE = re.compile(r"^([a-z]{2,3})/(index\.html|area/(.+)\.html|station/(.+)\.html)$")
_API_ROW = re.compile(r"^api/v1/results/([^/]+)/([^/]+)/([^/]+)\.json$")
_RECON_API = re.compile(r"^api/v1/reconcile/([^/]+)/([^/]+)\.json$")
_RECON_PAGE = re.compile(r"^([a-z]{2,3})/reconcile/([^/]+)/([^/]+)\.html$")


#: The task that lists the snapshot folder for files the manifest does not vouch for.
LISTING = "\x00listing"


def _unlisted(ctx: _Ctx, out: Tally) -> None:
    listing = ctx.snap.listing()
    if listing is None:
        return
    files = ctx.manifest.files
    extra: list[tuple[str, str]] = []
    for rel in listing:
        if rel == MANIFEST:
            continue
        if rel in files:
            info = FileInfo.of(files[rel])
            if info is not None and info.encodings == [GZIP_ONLY]:
                # Nothing checks this second copy, and a server might send it.
                extra.append(
                    (
                        rel,
                        "manifest.json lists this file as stored only as its gzip copy "
                        f"({rel}.gz); a plain copy that nothing vouches for lies beside it",
                    )
                )
            continue
        base, dot, suffix = rel.rpartition(".")
        if dot and suffix in ("gz", "br") and base == MANIFEST:
            continue
        if dot and suffix in ("gz", "br") and base in files:
            info = FileInfo.of(files[base])
            listed = {"gzip", GZIP_ONLY} if suffix == "gz" else {"br"}
            if info is None or listed.intersection(info.encodings):
                continue
            # nginx's gzip_static and brotli_static send any copy they find.
            extra.append((rel, f"manifest.json lists no {suffix} copy of {base}: nothing vouches for it"))
            continue
        extra.append((rel, "in the snapshot folder but not in manifest.json: nothing vouches for it"))
    for rel, why in sorted(extra)[:100]:
        out.fail("unlisted-file", rel, "", why)
    if len(extra) > 100:
        out.per_check["unlisted-file"] += len(extra) - 100


def _check_one(ctx: _Ctx, rel: str, out: Tally) -> None:
    if rel == LISTING:
        _unlisted(ctx, out)
        return
    info = ctx.manifest.files[rel]
    data = check_file(ctx.snap, rel, info, out)
    if data is None:
        return
    ex = ctx.ex
    snapshot = ctx.manifest.snapshot
    e = ex.election
    if rel == "data/results.json":
        compare_json.check_results(rel, _json(data, rel, out), ex, snapshot, out)
    elif rel == "data/reconciliation.json":
        reconcile.check_document(rel, _json(data, rel, out), ex, out)
    elif rel == "data/reconciliation.csv":
        reconcile.check_csv(rel, data, ex, out)
    elif (m := _RECON_API.match(rel)) is not None:
        reconcile.check_page_json(rel, _json(data, rel, out), m.group(1), m.group(2), ex, out)
    elif (m := _RECON_PAGE.match(rel)) is not None:
        text = data.decode("utf-8", "replace")
        reconcile.check_page_html(rel, text, m.group(1), m.group(2), m.group(3), ex, out)
    elif rel.startswith("data/stations/") and rel.endswith(".json"):
        group = rel[len("data/stations/") : -len(".json")]
        compare_json.check_station_records(rel, _json(data, rel, out), group, ex, out)
    elif rel.startswith("data/csv/stations/") and rel.endswith(".csv"):
        group = rel[len("data/csv/stations/") : -len(".csv")]
        compare_tables.check_station_csv(rel, data, group, ex, out)
    elif rel.startswith("data/csv/") and rel.endswith(".csv"):
        level = rel[len("data/csv/") : -len(".csv")]
        compare_tables.check_csv(rel, data, compare_tables.level_rows(ex, level), level, ex, out)
    elif rel.startswith("data/nist-err-") and rel.endswith(".json"):
        kind = rel[len("data/nist-err-") : -len(".json")]
        compare_tables.check_nist(rel, _json(data, rel, out), kind, ex, out)
    elif rel == "data/tallyroom.sqlite":
        compare_tables.check_sqlite(rel, data, ctx.snap.local_path(rel), ex, snapshot, out)
    elif rel == "api/v1/results/index.json":
        page = _json(data, rel, out)
        compare_json.check_area_page(rel, page, e.areas[e.roots[0]].id, ex, out)
        reconcile.check_sensitivity_json(rel, page, e.areas[e.roots[0]].id, ex, out)
    elif rel.startswith("api/v1/results/area/"):
        aid = rel[len("api/v1/results/area/") : -len(".json")]
        if aid in e.area_index:
            page = _json(data, rel, out)
            compare_json.check_area_page(rel, page, aid, ex, out)
            reconcile.check_sensitivity_json(rel, page, aid, ex, out)
        else:
            out.fail("page-json", rel, "", f"a page for unknown area {aid}")
    elif rel.startswith("api/v1/results/station/"):
        sid = rel[len("api/v1/results/station/") : -len(".json")]
        if sid in e.station_index:
            compare_json.check_station_page(rel, _json(data, rel, out), sid, ex, out)
        else:
            out.fail("page-json", rel, "", f"a page for unknown station {sid}")
    elif rel.startswith("api/v1/results/seats/"):
        parts = rel[len("api/v1/results/seats/") : -len(".json")].split("/")
        exp = ex.seats.get((parts[0], parts[1])) if len(parts) == 2 else None
        if exp is None:
            out.fail("seats", rel, "", "a seat projection the definition gives no rules for")
        else:
            compare_json.check_seats(out, ex, rel, "", exp, _json(data, rel, out))
    elif rel in ("changes.json", "api/v1/changes.json"):
        compare_misc.check_changes(rel, _json(data, rel, out), ex, ctx.manifest, ctx.walk.snapshots, out)
    elif rel == "api/v1/snapshots.json":
        compare_misc.check_snapshot_list(rel, _json(data, rel, out), ctx.manifest, ctx.walk.snapshots, out)
    elif rel == "api/v1/downloads.json":
        compare_misc.check_downloads(rel, _json(data, rel, out), ctx.manifest, out)
    elif rel.startswith("images/"):
        _check_image_file(ctx, rel, out)
    elif (m := _API_ROW.match(rel)) is not None:
        key = (m.group(1), m.group(3), m.group(2))
        row = ex.rows.get(key)
        if row is None:
            out.fail("api-row", rel, "", "a row that should not exist (no such contest, area or count kind)")
        else:
            got = _json(data, rel, out)
            if got != row:
                compare_json.compare_row(out, ex, key, rel, "", row, got, "api-row")
            else:
                out.numbers += _row_numbers(row)
    elif (m := _LANG_PAGE.match(rel)) is not None:
        lang = m.group(1)
        if m.group(4) is not None and m.group(4) in e.station_index:
            compare_html.check_station_html(rel, data, lang, m.group(4), ex, out)
            return
        text = data.decode("utf-8", "replace")
        if m.group(2) == "index.html":
            _area_html(ctx, rel, text, lang, e.areas[e.roots[0]].id, "api/v1/results/index.json", out)
        elif m.group(3) is not None and m.group(3) in e.area_index:
            _area_html(ctx, rel, text, lang, m.group(3), f"api/v1/results/area/{m.group(3)}.json", out)
        else:
            out.fail("html", rel, "", "a page for an area or station the definition does not have")


def _area_html(ctx: _Ctx, rel: str, text: str, lang: str, area: str, twin: str, out: Tally) -> None:
    try:
        page = msgspec.json.decode(ctx.snap.read(twin))
    except (FileMissing, msgspec.DecodeError, ValueError):
        page = {}
    compare_html.check_area_html(rel, text, lang, area, page, ctx.ex, out, ctx.manifest.number)
    reconcile.check_sensitivity_html(rel, text, lang, area, ctx.ex, out)


def _row_numbers(row: dict[str, Any]) -> int:
    return 8 + len(row["choices"]) * 2 + len(row["lines"])


def _subject(rel: str) -> tuple[str, str]:
    m = _LANG_PAGE.match(rel)
    if m is not None:
        return (m.group(2), rel)
    if rel.startswith("api/v1/results/station/") or rel.startswith("api/v1/results/area/"):
        kind = "station" if "/station/" in rel else "area"
        return (f"{kind}/{rel.rsplit('/', 1)[1][: -len('.json')]}.html", rel)
    return ("~", rel)


def _stored_as(manifest: Manifest, rel: str) -> list[str]:
    """The names on disk of a listed file and its compressed copies."""
    info = FileInfo.of(manifest.files.get(rel))
    if info is None:
        return [rel]
    if info.encodings == [GZIP_ONLY]:
        return [rel + ".gz"]
    return [rel] + [rel + (".gz" if e == "gzip" else ".br") for e in info.encodings if e in ("gzip", "br")]


def _task(rels: list[str]) -> Tally:
    assert _CTX is not None
    out = Tally()
    if len(rels) > 1:
        names = (name for rel in rels if safe_path(rel) for name in _stored_as(_CTX.manifest, rel))
        _CTX.snap.prefetch(list(names))
    for rel in rels:
        try:
            _check_one(_CTX, rel, out)
        except SourceError as exc:
            out.fail("file-missing", rel, "", f"could not be fetched: {exc}")
    return out


def _run_files(ctx: _Ctx, rels: list[str], workers: int) -> Tally:
    global _CTX
    _CTX = ctx
    try:
        if workers <= 1 or len(rels) < PARALLEL_FILES:
            return _task(sorted(rels, key=_subject))
        # Heavy files first, so that no worker is left with them at the end.
        heavy = [r for r in rels if r.startswith("data/") or r == LISTING]
        # The pages of one station (JSON and every language) together: they share work.
        light = sorted((r for r in rels if not (r.startswith("data/") or r == LISTING)), key=_subject)
        tasks = [[r] for r in heavy] + [light[i : i + TASK] for i in range(0, len(light), TASK)]
        total = Tally()
        for part in fork_map(_task, tasks, workers):
            total.merge(part)
        return total
    finally:
        _CTX = None


def _required_files(manifest: Manifest, ex: Expected, out: Tally) -> None:
    """Files docs/bulletin.md §2 says every snapshot has."""
    e = ex.election
    need: list[str] = [
        "data/results.json",
        "data/tallyroom.sqlite",
        "changes.json",
        "api/v1/results/index.json",
    ]
    need += [f"data/nist-err-{k}" + ".json" for k in sorted({k for ks in ex.kinds.values() for k in ks})]
    need += [f"data/stations/{g}.json" for g in ex.groups] + [f"data/csv/stations/{g}.csv" for g in ex.groups]
    need += [f"data/csv/{level}.csv" for level in ex.levels]
    need += [f"api/v1/results/{c}/{k}/{a}.json" for (c, a, k) in ex.rows]
    need += [f"api/v1/results/seats/{c}/{k}.json" for (c, k) in ex.seats]
    if ex.reconciliation:
        need += ["data/reconciliation.json", "data/reconciliation.csv"]
    recon = [f"reconcile/{c}/{o}" for c in ex.reconciliation for o in reconcile.ORDERS]
    need += [f"api/v1/{r}.json" for r in recon]
    need += [f"{lang}/{r}.html" for lang in manifest.languages for r in recon]
    need += [f"api/v1/results/station/{s.id}.json" for s in e.stations]
    root = e.roots[0]
    need += [f"api/v1/results/area/{a.id}.json" for i, a in enumerate(e.areas) if i != root]
    for lang in manifest.languages:
        need.append(f"{lang}/index.html")
        need += [f"{lang}/station/{s.id}.html" for s in e.stations]
        need += [f"{lang}/area/{a.id}.html" for i, a in enumerate(e.areas) if i != root]
    missing = [rel for rel in need if rel not in manifest.files]
    for rel in missing[:200]:
        out.fail("file-missing", rel, "", "required by docs/bulletin.md §2 but not in manifest.json")
    if len(missing) > 200:
        out.per_check["file-missing"] += len(missing) - 200
