"""`tallyroom serve | keys | submit | admin`: the intake server and its tools.

Thin, like the rest of the CLI: parse, call tallyroom.intake / tallyroom.store.intake,
format. Secrets (device private keys, API tokens) are written to files or shown once and
never logged.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from tallyroom.cli import Ctx, console, err_console, fail, pass_ctx, user_errors
from tallyroom.intake.errors import Rejection


def intake_store(ctx: Ctx) -> Any:
    """The store, checked to hold an election and to have the intake tables."""
    store = ctx.store()
    if not getattr(ctx, "_intake_ready", False):
        with user_errors():
            store.election()
            store.migrate()  # adds the intake tables to a store made before them
        ctx._intake_ready = True  # type: ignore[attr-defined]
    return store


@contextmanager
def rejections() -> Iterator[None]:
    with user_errors():
        try:
            yield
        except Rejection as rej:
            fail(rej.message)


# -- serve ---------------------------------------------------------------------------------


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Web worker processes; they check submissions in parallel and one writer "
                   "process commits for all of them. For speed: one per core (2 on 2 cores).")
@click.option("--server", "server_name", type=click.Choice(["granian", "uvicorn"]),
              default="uvicorn", show_default=True)
@click.option("--max-batch", default=1000, show_default=True, type=click.IntRange(1, 100_000),
              help="Most submissions committed in one transaction (group commit).")
@click.option("--writer", "writer_mode", type=click.Choice(["process", "thread"]),
              default="process", show_default=True,
              help="Commit in one writer process fed by every worker, or in a thread of each "
                   "worker (the earlier design, kept for comparison).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--publish-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Publish snapshots into DIR while intake runs and serve the site from it at /.")
@click.option("--publish-every", default=5.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds between snapshots (with --publish-dir).")
@click.option("--publish-workers", default=None, type=click.IntRange(1, 256),
              help="Processes that render the pages of a snapshot (with --publish-dir; default: "
                   "one per CPU this process may use, at most 8).")
@pass_ctx
def serve(ctx: Ctx, host: str, port: int, workers: int, server_name: str, max_batch: int,
          writer_mode: str, log_level: str, publish_dir: Path | None, publish_every: float,
          publish_workers: int | None) -> None:
    """Run the signed intake server (station API, staff API, receipts).

    With --publish-dir, also publish a snapshot every --publish-every seconds (behind the
    publish gate; a refusal keeps the previous snapshot live and never stops intake) and serve
    the public site from DIR at /, the API staying under /api/v1/.
    """
    from tallyroom.commission import key_path, load_key
    from tallyroom.web import server

    store = intake_store(ctx)
    with user_errors():
        kp = key_path(ctx.db)
        _name, key = load_key(kp)
        if key.verify_key.encode().hex() != store.meta("commission_public_key"):
            fail(f"{kp} is not the key this election was initialised with")
    store.close()
    os.environ["TALLYROOM_DB"] = ctx.db
    os.environ["TALLYROOM_COMMISSION_KEY"] = str(kp.resolve())
    os.environ["TALLYROOM_MAX_BATCH"] = str(max_batch)
    plan = None
    if publish_dir is not None:
        publish_dir = publish_dir.resolve()
        os.environ["TALLYROOM_PUBLISH_DIR"] = str(publish_dir)
        plan = server.PublishPlan(ctx.db, publish_dir, publish_every, publish_workers)
    else:
        os.environ.pop("TALLYROOM_PUBLISH_DIR", None)
    writer = (
        server.WriterPlan(ctx.db, kp.resolve(), max_batch) if writer_mode == "process" else None
    )
    site = f"; site from {publish_dir}, a snapshot every {publish_every:g} s" if plan else ""
    err_console.print(
        f"tallyroom intake on http://{host}:{port} ({workers} worker(s) + writer {writer_mode}, "
        f"{server_name}); store {ctx.db if '@' not in ctx.db else ctx.db.split('@')[-1]}{site}",
        highlight=False,
    )
    server.run(host, port, workers, server_name, log_level, plan, writer)


# -- keys ----------------------------------------------------------------------------------


@click.group()
def keys() -> None:
    """Station device keys: generate, rotate, revoke, list."""


def _stations(ctx: Ctx, spec: str) -> list[str]:
    election = ctx.election()
    if spec == "all":
        return [s.id for s in election.stations]
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    if not wanted:
        fail("--stations needs 'all' or a comma-separated list of station ids")
    return wanted


@keys.command("generate")
@click.option("--stations", "spec", default="all", show_default=True,
              help="'all' or comma-separated station ids.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the private key files (mode 0600), one per station.")
@click.option("--by", default=os.environ.get("USER", "cli"), show_default=False,
              help="Who registers the keys (recorded in the ledger).")
@pass_ctx
def keys_generate(ctx: Ctx, spec: str, out: Path, by: str) -> None:
    """Make one Ed25519 key pair per station; register the public keys in the ledger."""
    from tallyroom.intake.keys import generate_for

    with rejections():
        made = generate_for(intake_store(ctx), _stations(ctx, spec), out, by)
    console.print(f"{len(made):,} device key(s) written to {out}/ and registered "
                  "(one key_change ledger entry)")


@keys.command("rotate")
@click.option("--station", required=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--reason", default=None)
@click.option("--by", default=os.environ.get("USER", "cli"))
@pass_ctx
def keys_rotate(ctx: Ctx, station: str, out: Path, reason: str | None, by: str) -> None:
    """Give a station a new key and revoke its old ones (one key_change ledger entry)."""
    from tallyroom.intake.keys import rotate

    with rejections():
        key = rotate(intake_store(ctx), station, out, by, reason)
    console.print(f"station {station}: new key {key.key_id} written to {out}/; old keys revoked")


@keys.command("revoke")
@click.argument("key_id")
@click.option("--reason", default=None)
@click.option("--by", default=os.environ.get("USER", "cli"))
@pass_ctx
def keys_revoke(ctx: Ctx, key_id: str, reason: str | None, by: str) -> None:
    """Revoke a device key (a key_change ledger entry); its submissions are refused."""
    from tallyroom.intake.keys import revoke

    with rejections():
        idx = revoke(intake_store(ctx), key_id, by, reason)
    console.print(f"key {key_id} revoked (ledger entry {idx})")


@keys.command("list")
@click.option("--station", default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_ctx
def keys_list(ctx: Ctx, station: str | None, fmt: str) -> None:
    """List registered device keys (public halves only)."""
    import base64

    from tallyroom.store import intake as db

    with user_errors():
        rows = db.list_keys(intake_store(ctx), station)
    if fmt == "json":
        click.echo(json.dumps([
            {"key_id": r.key_id, "station": r.station, "status": r.status,
             "public_key": base64.b64encode(r.public_key).decode()} for r in rows
        ], indent=2))
        return
    for r in rows:
        console.print(f"{r.station:>10}  {r.key_id}  {r.status}", highlight=False)


# -- submit (the device side) --------------------------------------------------------------


def _endpoint(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/api/v1/protocols") else url + "/api/v1/protocols"


def post_signed(url: str, body: bytes, headers: dict[str, str], timeout: float,
                method: str = "POST", content_type: str = "application/json") -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={**headers, "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


@click.command()
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The station's device key file.")
@click.option("--url", required=True, help="Server base URL, e.g. http://127.0.0.1:8000")
@click.option("--image", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also upload the paper protocol photo the body's image_sha256 names.")
@click.option("--retries", default=3, show_default=True, type=click.IntRange(0, 100),
              help="Retries on a network error or 503 (a resend gets the same receipt).")
@click.option("--timeout", default=30.0, show_default=True)
@click.argument("protocol", type=click.Path(dir_okay=False, path_type=Path))
def submit(key_file: Path, url: str, image: Path | None, retries: int, timeout: float,
           protocol: Path) -> None:
    """Sign PROTOCOL.json's exact bytes with the device key, send it, print the receipt."""
    from tallyroom.intake.signature import KeyFileError, load_key_file

    try:
        key = load_key_file(key_file)
        body = protocol.read_bytes()
    except KeyFileError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot read {protocol}: {exc.strerror}")
    status, answer = 0, b""
    for attempt in range(retries + 1):
        try:
            status, answer = post_signed(_endpoint(url), body, key.headers(body), timeout)
        except (urllib.error.URLError, OSError) as exc:
            if attempt == retries:
                fail(f"cannot reach {url}: {getattr(exc, 'reason', exc)}")
            time.sleep(min(2**attempt, 10))
            continue
        if status != 503 or attempt == retries:
            break
        time.sleep(min(2**attempt, 10))
    data = _decode(answer)
    if status in (200, 201):
        click.echo(json.dumps(data.get("receipt", data), indent=2))
        err_console.print(f"{data.get('status', status)} (HTTP {status})", highlight=False)
    else:
        click.echo(json.dumps(data, indent=2))
        fail(f"HTTP {status}: {data.get('error', answer[:200].decode('utf-8', 'replace'))}", 1)
    if image is not None:
        _upload_image(url, key, protocol, image, timeout)


def _decode(answer: bytes) -> dict[str, Any]:
    try:
        data = json.loads(answer)
    except ValueError:
        return {"error": answer[:200].decode("utf-8", "replace")}
    return data if isinstance(data, dict) else {"value": data}


def _upload_image(url: str, key: Any, protocol: Path, image: Path, timeout: float) -> None:
    body = json.loads(protocol.read_bytes())
    data = image.read_bytes()
    target = (f"{url.rstrip('/').removesuffix('/api/v1/protocols')}/api/v1/protocols/"
              f"{body['station']}/{body['contest']}/{body['count_kind']}/image")
    status, answer = post_signed(target, data, key.headers(data), timeout, "PUT",
                                 "application/octet-stream")
    result = _decode(answer)
    if status not in (200, 201):
        fail(f"image upload: HTTP {status}: {result.get('error')}", 1)
    err_console.print(f"image {result.get('sha256')} stored (HTTP {status})", highlight=False)


# -- admin ---------------------------------------------------------------------------------


@click.group()
def admin() -> None:
    """Commission staff: API tokens, intake journal, conflicts, corrections, annulments."""


@admin.group()
def token() -> None:
    """API tokens (stored hashed; shown once when made)."""


@token.command("create")
@click.option("--name", required=True, help="The person the token belongs to.")
@click.option("--role", type=click.Choice(["operator", "supervisor", "administrator", "auditor"]),
              required=True)
@pass_ctx
def token_create(ctx: Ctx, name: str, role: str) -> None:
    """Make a token; it is printed once and only its hash is stored."""
    from tallyroom.intake.tokens import new_token
    from tallyroom.store import intake as db

    plain, hashed = new_token()
    with user_errors():
        store = intake_store(ctx)
        tid = db.create_token(store, hashed, name, role)
    err_console.print(f"token {tid} for {name} ({role}); store it now, it is not shown again:")
    click.echo(plain)


@token.command("list")
@pass_ctx
def token_list(ctx: Ctx) -> None:
    from tallyroom.store import intake as db

    with user_errors():
        rows = db.list_tokens(intake_store(ctx))
    for r in rows:
        state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
        console.print(f"{r.id:>4}  {r.name:<20} {r.role:<14} {state}", highlight=False)


@token.command("revoke")
@click.argument("token_id", type=int)
@pass_ctx
def token_revoke(ctx: Ctx, token_id: int) -> None:
    from tallyroom.store import intake as db

    with user_errors():
        if not db.revoke_token(intake_store(ctx), token_id):
            fail(f"no active token {token_id}")
    console.print(f"token {token_id} revoked")


def _person(ctx: Ctx, tok: str | None) -> Any:
    from tallyroom.intake.corrections import Person
    from tallyroom.intake.tokens import token_hash
    from tallyroom.store import intake as db

    if not tok:
        fail("this needs --token (or TALLYROOM_TOKEN): the person acting")
    with user_errors():
        row = db.find_token(intake_store(ctx), token_hash(tok))
    if row is None:
        fail("the token is unknown or revoked")
    return Person(row.name, row.role)


_token_option = click.option("--token", "tok", envvar="TALLYROOM_TOKEN", default=None,
                             help="Your API token (env TALLYROOM_TOKEN).")


@admin.command("stations")
@click.option("--station", default=None)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_ctx
def admin_stations(ctx: Ctx, station: str | None, fmt: str) -> None:
    """Intake attempts per station, from the journal (e.g. forged attempts)."""
    from tallyroom.intake.journal import summarise
    from tallyroom.store import intake as db

    with user_errors():
        rows = summarise(db.journal_counts(intake_store(ctx), station))
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    for r in rows:
        console.print(r.sentence(), highlight=False)


@admin.command("journal")
@click.option("--station", default=None)
@click.option("--limit", default=100, show_default=True)
@pass_ctx
def admin_journal(ctx: Ctx, station: str | None, limit: int) -> None:
    """Journal lines: time, station, key, outcome, reason."""
    from tallyroom.store import intake as db

    with user_errors():
        lines = db.journal_lines(intake_store(ctx), station, limit)
    for ln in lines:
        console.print(
            f"{ln['at']}  {ln['station'] or '-':>8}  {ln['key_id'] or '-':<25} {ln['outcome']:<9} "
            f"{ln['http_status']} {ln['reason'] or ''}  {ln['detail']}",
            highlight=False,
        )


@admin.command("conflicts")
@click.option("--status", type=click.Choice(["held", "accepted", "dismissed"]), default=None)
@pass_ctx
def admin_conflicts(ctx: Ctx, status: str | None) -> None:
    """Submissions that differ from the protocol in force."""
    from tallyroom.store import intake as db

    with user_errors():
        rows = db.list_conflicts(intake_store(ctx), status)
    for c in rows:
        console.print(f"conflict {c.id}: station {c.station} {c.contest} {c.count_kind}, "
                      f"in force: entry {c.existing_index}, {c.status}", highlight=False)


@admin.command("proposals")
@click.option("--status", type=click.Choice(["proposed", "approved", "rejected"]), default=None)
@pass_ctx
def admin_proposals(ctx: Ctx, status: str | None) -> None:
    """Corrections, annulments and conflict resolutions and their state."""
    from tallyroom.store import intake as db

    with user_errors():
        rows = db.list_proposals(intake_store(ctx), status)
    for p in rows:
        decided = f" by {p.decided_by}" if p.decided_by else ""
        console.print(f"proposal {p.id}: {p.action} station {p.station} {p.contest} "
                      f"{p.count_kind} by {p.proposed_by}: {p.status}{decided}", highlight=False)


@admin.command("propose")
@_token_option
@click.option("--action", type=click.Choice(["correction", "annulment", "accept-conflict",
                                             "dismiss-conflict"]), required=True)
@click.option("--station", default=None)
@click.option("--contest", default=None)
@click.option("--count-kind", default=None)
@click.option("--body", "body_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The corrected protocol (JSON) for --action correction.")
@click.option("--conflict", "conflict_id", type=int, default=None)
@click.option("--reason", required=True)
@pass_ctx
def admin_propose(ctx: Ctx, tok: str | None, action: str, station: str | None,
                  contest: str | None, count_kind: str | None, body_file: Path | None,
                  conflict_id: int | None, reason: str) -> None:
    """Propose a correction, annulment or conflict resolution (needs a second person)."""
    from tallyroom.intake.corrections import propose
    from tallyroom.intake.strict import parse_json

    person = _person(ctx, tok)
    body = None
    with rejections():
        if body_file is not None:
            body = parse_json(body_file.read_bytes())
        row = propose(intake_store(ctx), person, action, reason, station, contest, count_kind, body,
                      conflict_id)
    console.print(f"proposal {row.id} recorded: {row.action} of station {row.station} "
                  f"{row.contest} {row.count_kind}; a different supervisor must approve it")


@admin.command("approve")
@_token_option
@click.argument("proposal_id", type=int)
@click.option("--note", default="")
@pass_ctx
def admin_approve(ctx: Ctx, tok: str | None, proposal_id: int, note: str) -> None:
    """Approve someone else's proposal: writes the ledger entry and moves the tally."""
    from tallyroom.intake.corrections import decide

    person = _person(ctx, tok)
    with rejections():
        row = decide(intake_store(ctx), person, proposal_id, True, note)
    console.print(f"proposal {row.id} approved by {row.decided_by}: ledger entry {row.ledger_index}")


@admin.command("reject")
@_token_option
@click.argument("proposal_id", type=int)
@click.option("--note", default="")
@pass_ctx
def admin_reject(ctx: Ctx, tok: str | None, proposal_id: int, note: str) -> None:
    """Reject a proposal (or withdraw your own)."""
    from tallyroom.intake.corrections import decide

    person = _person(ctx, tok)
    with rejections():
        row = decide(intake_store(ctx), person, proposal_id, False, note)
    console.print(f"proposal {row.id} rejected by {row.decided_by}")


__all__ = ["admin", "keys", "serve", "submit"]
_ = sys
