"""The election definition: the domain model every other package reads.

A definition is one document (YAML or JSON) describing areas, stations, contests, choices,
protocol forms, control rules and allocation rules. Its SHA-256 is part of every signed
submission, so a device can never submit against a definition other than the published one.

The shapes here are msgspec Structs so that a 100,000-station definition decodes in well under
a second; `tallyroom.definition.schema` generates the JSON Schema from these same classes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

#: A name in one or more languages (`{"en": "Chui", "ru": "Чуйская", "ky": "Чүй"}`), or one
#: plain string used for every language.
Name = str | dict[str, str]

Identifier = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}$",
        description="Letters, digits, '_', '.', ':' and '-'; starts with a letter or digit.",
    ),
]


class CountKind(StrEnum):
    """How a protocol's numbers were obtained; never mixed in one total (DESIGN.md)."""

    MACHINE = "machine"
    HAND = "hand"
    RECOUNT = "recount"


class ContestKind(StrEnum):
    PARTY_LIST = "party_list"
    CANDIDATES = "candidates"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class LineRole(StrEnum):
    """What a protocol line means, so tallies, pages and seats work for any law's form."""

    REGISTERED = "registered"
    BALLOTS_RECEIVED = "ballots_received"
    ISSUED = "issued"
    CANCELLED = "cancelled"
    IN_BOXES = "in_boxes"
    INVALID = "invalid"
    VALID = "valid"
    CHOICE = "choice"
    OTHER = "other"


class Figure(StrEnum):
    """The standard figures every tally reports, each a linear expression over form lines."""

    REGISTERED = "registered"
    TOOK_PART = "took_part"
    BALLOTS_CAST = "ballots_cast"
    VALID = "valid"
    INVALID = "invalid"


class Line(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One line of a protocol form (not a choice line: those come from the contest's choices)."""

    id: Identifier
    name: Name
    role: LineRole = LineRole.OTHER
    number: str | None = None  # the line's printed number on the paper form ("1", "10а")


class Rule(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A control relationship between lines, e.g. `valid == sum(choices)`."""

    id: Identifier
    expr: str
    severity: Severity = Severity.ERROR
    description: Name | None = None


class Form(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The protocol form of a contest: its lines, control rules and figure expressions."""

    lines: list[Line]
    rules: list[Rule] = []
    #: Figure name -> expression, e.g. {"took_part": "issued_early + issued_station"}.
    figures: dict[Figure, str] = {}


class Choice(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: Identifier
    name: Name
    short_name: Name | None = None
    against_all: bool = False
    color: str | None = None
    #: For open lists: the party's candidates (used for within-list seat order).
    candidates: list[Candidate] = []
    #: For single-member contests: the party nominating the candidate, if any.
    party: str | None = None


class Candidate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: Identifier
    name: Name
    gender: str | None = None
    list_position: int | None = None


class RegionalThreshold(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    percent: str
    areas: list[str]


class Allocation(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """How seats follow from the tally; interpreted by `tallyroom.seats`."""

    method: str
    seats: int
    threshold_percent: str | None = None
    threshold_base: Figure = Figure.VALID
    regional_threshold: RegionalThreshold | None = None
    cap: int | None = None
    women_min_share_percent: str | None = None
    tie_break: str = "lot"


class Contest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: Identifier
    name: Name
    kind: ContestKind
    #: The area whose stations vote in this contest (the country, or one constituency).
    area: str
    choices: list[Choice]
    #: A named form from the profile, or an inline form.
    form: str | Form
    #: Extra rules on top of the form's rules.
    rules: list[Rule] = []
    official_count: CountKind = CountKind.HAND
    #: The figure percentages are stated against (law-specific; DESIGN invariant 6).
    percent_base: Figure = Figure.VALID
    allocation: Allocation | None = None


class Hierarchy(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: Identifier
    name: Name


class Area(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: Identifier
    name: Name
    hierarchy: str
    parent: str | None = None
    kind: str = "area"
    #: Optional code linking the area to a boundary file (e.g. an OCHA P-code).
    code: str | None = None


class Station(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: Identifier
    name: Name
    #: The station's parent area in each hierarchy (one per hierarchy at most).
    areas: list[str]
    registered: int
    #: Base64 Ed25519 public key of the station's device, when provisioned in the file.
    key: str | None = None
    abroad: bool = False


class Election(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: Identifier
    name: Name
    date: str
    country: str | None = None
    languages: list[str] = msgspec.field(default_factory=lambda: ["en"])
    #: The Merkle log's origin line in checkpoints (C2SP tlog-checkpoint).
    origin: str | None = None


class Definition(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A whole election definition file."""

    election: Election
    hierarchies: list[Hierarchy]
    areas: list[Area]
    stations: list[Station]
    contests: list[Contest]
    #: A law profile (`kyrgyzstan`, `russia-duma`) providing named forms.
    profile: str | None = None
    #: Forms defined in this file, by name (override the profile's).
    forms: dict[str, Form] = {}
    version: int = 1
