"""The script of one election night, decided in advance from a seed: who sends what, when.

:func:`plan_night` takes the ground truth — every station's machine and hand protocols — and
decides, with a seeded random generator, for every protocol:

* when its station's device sends it (scanner counts in the first part of the night, hand
  counts after them), and whether it declares a photo of the paper protocol;
* its **role**: counted as sent; sent wrong and then *corrected* by commission staff; counted
  and then *annulled*; two versions racing (*out of order*); or followed by a *conflicting*
  version that staff dismiss — each decided by two people;
* the extra faults it suffers (:mod:`.faults`): duplicates, timeouts, broken bodies, forged
  signatures, another station's key, replays, arithmetic errors, slow lines.

The plan also states the **final truth**: what must count when the night is over (the truth,
minus the annulled protocols). Nothing here does I/O; the same seed gives the same plan.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from tallyroom.definition.compiled import CompiledElection
from tallyroom.simulate.faults import MALFORMED, Fault, misread

#: (station, contest, count kind)
ProtoKey = tuple[str, str, str]

#: Parts of the night, as fractions of its duration: scanner counts, then hand counts.
MACHINE_WINDOW = (0.02, 0.40)
HAND_WINDOW = (0.40, 0.80)
#: Staff act on a case this long (fraction of the night) after it arises, at most.
STAFF_DELAY = 0.08


class Role(StrEnum):
    NORMAL = "normal"
    CORRECTION = "correction"
    ANNULMENT = "annulment"
    OUT_OF_ORDER = "out-of-order"
    CONFLICT = "conflict"


@dataclass
class ProtocolPlan:
    station: str
    contest: str
    kind: str
    truth: dict[str, int]
    role: Role = Role.NORMAL
    #: The other reading: sent first and corrected (correction), the older racing version
    #: (out-of-order), or the conflicting later one (conflict).
    other: dict[str, int] | None = None
    faults: set[Fault] = field(default_factory=set)
    malformed: str | None = None
    photo: bool = False

    @property
    def key(self) -> ProtoKey:
        return (self.station, self.contest, self.kind)


@dataclass
class DevicePlan:
    """One station's device sending one count kind: its protocols, one contest after another."""

    station: str
    kind: str
    at: float  # seconds after the night starts
    protocols: list[ProtocolPlan]


@dataclass
class NightPlan:
    election_sha256: str
    duration: float
    devices: list[DevicePlan]
    #: What must count at the end: protocol key -> lines.
    final: dict[ProtoKey, dict[str, int]]
    stations: int

    def count(self, role: Role) -> int:
        return sum(1 for d in self.devices for p in d.protocols if p.role == role)

    def faulted(self, fault: Fault) -> int:
        return sum(1 for d in self.devices for p in d.protocols if fault in p.faults)

    def roles(self) -> str:
        """E.g. "8 corrections, 32 annulments, 10 out-of-order, 9 conflicts, 60 photos"."""
        parts = [
            f"{self.count(r):,} {r.value}{'s' if r != Role.OUT_OF_ORDER else ''}"
            for r in (Role.CORRECTION, Role.ANNULMENT, Role.OUT_OF_ORDER, Role.CONFLICT)
        ]
        photos = sum(1 for d in self.devices for p in d.protocols if p.photo)
        return ", ".join([*parts, f"{photos:,} photos"])


@dataclass(frozen=True)
class NightOptions:
    duration: float = 120.0
    rates: Mapping[Fault, float] = field(default_factory=dict)
    #: Protocols sent wrong and corrected by two people (None: about 1 in 250 stations).
    corrections: int | None = None
    #: Stations whose result of one count kind is annulled (None: 20 in 2,494, as in 2021).
    annulments: int | None = None
    #: Count kinds whose results may be annulled.
    annul_kinds: tuple[str, ...] = ("machine", "hand")
    #: Share of hand-count protocols sent with a photo of the paper protocol.
    photo_rate: float = 0.05


def plan_night(
    election: CompiledElection,
    protocols: Mapping[str, Sequence[tuple[str, str, Mapping[str, int]]]],
    seed: int,
    options: NightOptions,
) -> NightPlan:
    """The night's script. ``protocols``: count kind -> (station, contest, lines), the truth."""
    rng = random.Random(f"tallyroom-night:{seed}")
    rates = options.rates
    n_stations = len(election.stations)
    plans: dict[ProtoKey, ProtocolPlan] = {}
    for kind in ("machine", "hand"):
        for station, contest, lines in protocols.get(kind, ()):
            truth = lines if isinstance(lines, dict) else dict(lines)  # shared, never changed
            plans[(station, contest, kind)] = ProtocolPlan(station, contest, kind, truth)
    keys = list(plans)

    def choices(p: ProtocolPlan) -> list[str]:
        return list(election.contest(p.contest).choice_ids)

    def can_misread(p: ProtocolPlan) -> bool:
        return sum(1 for c in choices(p) if p.truth[c] > 0) > 0 and len(choices(p)) > 1

    # Roles, each protocol at most one.
    n_corr = options.corrections if options.corrections is not None else max(1, n_stations // 250)
    for key in rng.sample(keys, min(len(keys), n_corr * 3)):
        p = plans[key]
        if n_corr <= 0:
            break
        if p.role == Role.NORMAL and can_misread(p):
            p.role, p.other = Role.CORRECTION, misread(p.truth, choices(p), rng)
            n_corr -= 1
    n_ann = options.annulments
    if n_ann is None:
        n_ann = max(1, round(n_stations * 20 / 2494))
    kinds = [k for k in options.annul_kinds if k in protocols]
    by_station: dict[tuple[str, str], list[ProtocolPlan]] = {}
    for p in plans.values():
        by_station.setdefault((p.station, p.kind), []).append(p)
    candidates = [sk for sk in by_station if sk[1] in kinds]
    rng.shuffle(candidates)
    for sk in candidates:
        if n_ann <= 0:
            break
        group = by_station[sk]
        if all(p.role == Role.NORMAL for p in group):
            for p in group:
                p.role = Role.ANNULMENT
            n_ann -= 1
    for key in keys:
        p = plans[key]
        if p.role != Role.NORMAL or not can_misread(p):
            continue
        if rng.random() < rates.get(Fault.OUT_OF_ORDER, 0.0):
            p.role, p.other = Role.OUT_OF_ORDER, misread(p.truth, choices(p), rng)
            p.faults.add(Fault.OUT_OF_ORDER)
        elif rng.random() < rates.get(Fault.CONFLICT, 0.0):
            p.role, p.other = Role.CONFLICT, misread(p.truth, choices(p), rng)
            p.faults.add(Fault.CONFLICT)

    # Faults added to the sending of any protocol.
    extra = (
        Fault.DUPLICATE,
        Fault.TIMEOUT,
        Fault.MALFORMED,
        Fault.FORGED,
        Fault.WRONG_KEY,
        Fault.ARITHMETIC,
        Fault.SLOW,
    )
    malformations = sorted(MALFORMED)
    for key in keys:
        p = plans[key]
        for f in extra:
            if rng.random() < rates.get(f, 0.0):
                p.faults.add(f)
        if Fault.MALFORMED in p.faults:
            p.malformed = rng.choice(malformations)
        # Superseded and annulled bytes are always replayed when replays are on; a protocol
        # in force is replayed at the fault's rate.
        replay = rates.get(Fault.REPLAY, 0.0)
        if replay > 0 and (
            p.role in (Role.CORRECTION, Role.ANNULMENT, Role.OUT_OF_ORDER) or rng.random() < replay
        ):
            p.faults.add(Fault.REPLAY)
        if p.kind == "hand" and rng.random() < options.photo_rate:
            p.photo = True

    # When: each station's scanner reports in the first window, its hand count in the second;
    # arrivals bunch up in the middle of each window (the evening rush).
    duration = options.duration
    devices = []
    for (station, kind), group in by_station.items():
        lo, hi = MACHINE_WINDOW if kind == "machine" else HAND_WINDOW
        x = _bunched(rng)
        devices.append(
            DevicePlan(station, kind, duration * (lo + (hi - lo) * x), sorted(group, key=lambda p: p.contest))
        )
    devices.sort(key=lambda d: d.at)
    final = {k: p.truth for k, p in plans.items() if p.role != Role.ANNULMENT}
    return NightPlan(election.sha256, duration, devices, final, n_stations)


def _bunched(rng: random.Random) -> float:
    """A number in [0, 1), denser in the middle (the mean of two uniforms, then smoothed)."""
    x = (rng.random() + rng.random()) / 2
    return min(math.nextafter(1.0, 0.0), max(0.0, x))
