"""Seat allocation: apportionment methods, thresholds, caps, ties, against-all, open lists.

Pure logic over plain data (imports nothing from ``store`` or ``web``), exact integers and
fractions only. Every result explains itself and serialises with ``to_json_dict()``.

* :func:`allocate` — proportional seats by any :class:`Method`, with thresholds, a cap,
  against-all lines, a tie rule and a provisional flag.
* :func:`plurality` and :func:`two_round` — single-member contests (with the Kyrgyz
  "against all wins, the election fails" rule).
* :func:`open_list` — who takes a party's seats, by preference votes, with a minimum share for
  women.
* :mod:`tallyroom.seats.dutch` — the Dutch seat rules as they changed from 1918 to today.
* :mod:`tallyroom.seats.cli` — ``tallyroom seats calc``, the parliament calculator.

See docs/seats.md.
"""

from tallyroom.seats.allocate import allocate, method_info
from tallyroom.seats.errors import NoEligibleChoicesError, SeatsError
from tallyroom.seats.model import (
    DIVISOR_METHODS,
    QUOTA_METHODS,
    Allocation,
    CapStep,
    Explanation,
    Method,
    MethodInfo,
    PartyLine,
    Provisional,
    Status,
    parse_method,
)
from tallyroom.seats.openlist import Candidate, ListSeat, OpenListResult, open_list
from tallyroom.seats.single import (
    CandidateVotes,
    MajorityResult,
    Outcome,
    SingleMemberResult,
    plurality,
    two_round,
)
from tallyroom.seats.thresholds import (
    AnyOf,
    Base,
    CoalitionThreshold,
    FullQuota,
    MinimumWins,
    PercentThreshold,
    Region,
    RegionalThreshold,
    Threshold,
    ThresholdCheck,
    ThresholdReport,
    evaluate_thresholds,
)
from tallyroom.seats.ties import ListedOrder, Lot, LotDraw, TieRecord, TieRule, lot_digest

__all__ = [
    "DIVISOR_METHODS",
    "QUOTA_METHODS",
    "Allocation",
    "AnyOf",
    "Base",
    "Candidate",
    "CandidateVotes",
    "CapStep",
    "CoalitionThreshold",
    "Explanation",
    "FullQuota",
    "ListSeat",
    "ListedOrder",
    "Lot",
    "LotDraw",
    "MajorityResult",
    "Method",
    "MethodInfo",
    "MinimumWins",
    "NoEligibleChoicesError",
    "OpenListResult",
    "Outcome",
    "PartyLine",
    "PercentThreshold",
    "Provisional",
    "Region",
    "RegionalThreshold",
    "SeatsError",
    "SingleMemberResult",
    "Status",
    "Threshold",
    "ThresholdCheck",
    "ThresholdReport",
    "TieRecord",
    "TieRule",
    "allocate",
    "evaluate_thresholds",
    "lot_digest",
    "method_info",
    "open_list",
    "parse_method",
    "plurality",
    "two_round",
]
