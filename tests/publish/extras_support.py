"""A mini Kyrgyz store with everything a station page shows besides its protocols in force:
corrections, an annulment, a dismissed conflict, device-signed protocols declaring photos of
their paper protocols (one uploaded, one not), intake journal lines (forged signatures, an
unattributed malformed body) and station key changes (registration, rotation, revocation).

Everything goes through the same store functions the intake server and the admin API call.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from support import kyrgyz_lines
from tallyroom.intake.corrections import Person, decide, propose
from tallyroom.intake.journal import JournalLine, Outcome
from tallyroom.intake.keys import generate_for, revoke, rotate
from tallyroom.intake.signature import DeviceKey
from tallyroom.protocol.model import decode_body
from tallyroom.protocol.pending import prepare, protocol_payload
from tallyroom.store import intake as db
from tallyroom.store.sql import Store

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64)) + b"photo of the paper protocol"
NOT_UPLOADED = b"\xff\xd8\xff\xe0" + b"a photo that never arrives"
OLGA, SAM = Person("olga", "operator"), Person("sam", "supervisor")
AT = "2021-11-28T20:00:00Z"


@dataclass
class Extras:
    corrected: str
    annulled: str
    #: A device protocol with an uploaded photo, and a conflicting reading turned down.
    photo: str
    #: A device protocol whose declared photo was not uploaded; its key was rotated after.
    no_photo: str
    #: Five forged submissions in the journal; its key was revoked.
    forged: str
    keys: dict[str, DeviceKey] = field(default_factory=dict)

    @property
    def photo_sha(self) -> str:
        return hashlib.sha256(PNG).hexdigest()

    @property
    def missing_sha(self) -> str:
        return hashlib.sha256(NOT_UPLOADED).hexdigest()


def _device_body(store: Store, station: str, seed: int, image: bytes | None) -> bytes:
    election = store.election()
    c = election.contest("party-list")
    registered = election.stations[election.station_index[station]].registered
    doc = {
        "election": election.sha256,
        "station": station,
        "contest": "party-list",
        "count_kind": "hand",
        "lines": kyrgyz_lines(list(c.choice_ids), registered, random.Random(seed)),
        "sequence": seed,
    }
    if image is not None:
        doc["image_sha256"] = hashlib.sha256(image).hexdigest()
    return json.dumps(doc).encode()


def submit(store: Store, key: DeviceKey, raw: bytes) -> None:
    """Append a device-signed protocol as the intake server does."""
    envelope = {"key_id": key.key_id, "signature": key.sign(raw), "received_at": AT}
    (status,) = [
        r.status for r in store.append_protocols([prepare(store.election(), decode_body(raw), raw, envelope)])
    ]
    assert status == "new", status


def journal(store: Store, station: str | None, outcome: Outcome, reason: str | None, n: int = 1) -> None:
    line = JournalLine(AT, station, None, outcome, reason, 400, "test")
    db.journal(store, [line.row()] * n)


def add_extras(store: Store, folder: Path) -> Extras:
    election = store.election()
    counted = {
        (election.stations[s].id, election.contests[c].id, k) for c, s, k, _counts in store.active_protocols()
    }
    imported = sorted(k for k in counted if k[1] == "party-list" and k[2] == "hand")
    free = [s.id for s in election.stations if (s.id, "party-list", "hand") not in counted]
    x = Extras(
        corrected=imported[3][0], annulled=imported[5][0], photo=free[0], no_photo=free[1], forged=free[2]
    )
    made = generate_for(store, free[:3], folder / "keys", "setup")
    x.keys = {k.station: k for k in made}
    # Device protocols: one with its photo uploaded, one whose photo never arrives.
    submit(store, x.keys[x.photo], _device_body(store, x.photo, 1, PNG))
    db.put_image(store, x.photo_sha, "image/png", PNG, x.photo, "party-list", "hand", x.keys[x.photo].key_id)
    submit(store, x.keys[x.no_photo], _device_body(store, x.no_photo, 2, NOT_UPLOADED))
    journal(store, x.photo, Outcome.ACCEPTED, None)
    journal(store, x.no_photo, Outcome.ACCEPTED, None)
    # A second, different reading from the photo station's device: held, then turned down.
    raw = _device_body(store, x.photo, 3, None)
    key = x.keys[x.photo]
    current = db.in_force(store, x.photo, "party-list", "hand")
    assert current is not None
    held = db.HeldConflict(
        x.photo,
        "party-list",
        "hand",
        key.key_id,
        current.entry_idx,
        hashlib.sha256(raw).hexdigest(),
        protocol_payload({"key_id": key.key_id, "signature": key.sign(raw), "received_at": AT}, raw),
        AT,
    )
    with db.transaction(store):
        (conflict,) = db.hold_conflicts_in_tx(store, [held]).values()
    journal(store, x.photo, Outcome.CONFLICT, "conflict")
    p = propose(store, OLGA, "dismiss-conflict", "the device misread the sheet", conflict_id=conflict)
    decide(store, SAM, p.id, True)
    # A correction and an annulment of imported protocols.
    station, contest, kind = imported[3]
    body = json.loads(db.bodies_for(store, station, contest, kind)[-1])
    body.pop("source", None)
    lines = body["lines"]
    choices = list(election.contest(contest).choice_ids)
    movable = next(c for c in choices if lines[c] >= 3)
    other = next(c for c in choices if c != movable)
    lines[movable] -= 3
    lines[other] += 3
    p = propose(
        store, OLGA, "correction", "recounted at the district commission", station, contest, kind, body
    )
    decide(store, SAM, p.id, True)
    p = propose(store, OLGA, "annulment", "signed by one member only", *imported[5])
    decide(store, SAM, p.id, True)
    # Forged submissions and a body nobody can attribute; key rotation and revocation.
    journal(store, x.forged, Outcome.REJECTED, "forged-signature", 5)
    journal(store, None, Outcome.REJECTED, "malformed-json")
    rotate(store, x.no_photo, folder / "rotated", "ada", "device lost")
    revoke(store, x.keys[x.forged].key_id, "ada", "key stolen")
    return x
