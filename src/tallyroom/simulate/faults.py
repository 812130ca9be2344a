"""The faults an election night throws at intake, each with a rate, and what each must get.

A rate is the probability that one protocol (a station's count of one contest, machine or
hand) suffers the fault. ``--faults all`` turns every fault on at its default rate,
``--faults none`` turns them all off, and a list turns on some, with optional rates:
``--faults duplicate,forged=0.05,slow=0.1``.

Each fault, what the night does, and the answer it must get:

- ``duplicate``: the device sends its protocol again (same bytes, or renumbered) → 200 with
  the same receipt;
- ``timeout``: the device gives up after 5 ms and sends again → 201 or 200, one entry;
- ``out-of-order``: two versions of a protocol race, the older may land first → one counts,
  the other is a conflict; staff make the newer one count;
- ``malformed``: a signed body that is broken (not JSON, NaN, a duplicate key, …) → 400, 413
  or 422 naming the problem;
- ``forged``: someone signs with a key that is not the station's → 401 forged-signature;
- ``wrong-key``: a protocol for station A signed with station B's key → 403 wrong-station;
- ``replay``: old bytes sent again — a superseded or annulled protocol → 409 replay; the
  protocol in force → 200 with the same receipt;
- ``arithmetic``: lines that do not add up (then the right protocol) → 422 rules;
- ``conflict``: after the protocol counts, a different one arrives → 409 conflict; staff
  dismiss it;
- ``slow``: the body arrives in pieces over a second or two → accepted like any other.

Server kills (``--kill-every``) are not a rate: they are the night's clock.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from enum import StrEnum


class Fault(StrEnum):
    DUPLICATE = "duplicate"
    TIMEOUT = "timeout"
    OUT_OF_ORDER = "out-of-order"
    MALFORMED = "malformed"
    FORGED = "forged"
    WRONG_KEY = "wrong-key"
    REPLAY = "replay"
    ARITHMETIC = "arithmetic"
    CONFLICT = "conflict"
    SLOW = "slow"


#: Default rates (``--faults all``): per protocol.
DEFAULT_RATES: dict[Fault, float] = {
    Fault.DUPLICATE: 0.05,
    Fault.TIMEOUT: 0.02,
    Fault.OUT_OF_ORDER: 0.005,
    Fault.MALFORMED: 0.01,
    Fault.FORGED: 0.01,
    Fault.WRONG_KEY: 0.005,
    Fault.REPLAY: 0.01,
    Fault.ARITHMETIC: 0.01,
    Fault.CONFLICT: 0.005,
    Fault.SLOW: 0.005,
}

#: The demo's light faults: a fifth of the default rates.
LIGHT_RATES: dict[Fault, float] = {f: r / 5 for f, r in DEFAULT_RATES.items()}


class FaultSpecError(ValueError):
    """A --faults value that is not all, none or a list of known faults with rates."""


def parse_faults(spec: str) -> dict[Fault, float]:
    """``all`` | ``none`` | ``light`` | ``name[=rate],…`` → rate per fault (0 when off)."""
    text = spec.strip().lower()
    rates = dict.fromkeys(Fault, 0.0)
    if text in ("", "none"):
        return rates
    if text == "all":
        return dict(DEFAULT_RATES)
    if text == "light":
        return dict(LIGHT_RATES)
    for item in text.split(","):
        name, _, value = item.strip().partition("=")
        try:
            fault = Fault(name.strip())
        except ValueError:
            known = ", ".join(f.value for f in Fault)
            raise FaultSpecError(f'unknown fault "{name.strip()}" (known: {known}; or all, none)') from None
        if not value:
            rates[fault] = DEFAULT_RATES[fault]
            continue
        try:
            rate = float(value)
        except ValueError:
            raise FaultSpecError(f'rate of {fault.value} must be a number, got "{value}"') from None
        if not 0.0 <= rate <= 1.0:
            raise FaultSpecError(f"rate of {fault.value} must be between 0 and 1, got {rate}")
        rates[fault] = rate
    return rates


def describe(rates: Mapping[Fault, float]) -> str:
    on = [f"{f.value} {r:.1%}" for f, r in rates.items() if r > 0]
    return ", ".join(on) if on else "no faults"


# -- broken bodies ---------------------------------------------------------------------------

#: Ways a signed body can be broken, and the (status, reason) intake must answer for each.
MALFORMED: dict[str, tuple[int, str]] = {
    "truncated": (400, "malformed-json"),
    "duplicate-key": (400, "duplicate-key"),
    "unknown-field": (400, "unknown-field"),
    "nan": (400, "not-a-number"),
    "string-count": (400, "wrong-type"),
    "decimal-count": (400, "wrong-type"),
    "invalid-utf8": (400, "invalid-utf8"),
    "too-large": (413, "too-large"),
    "negative": (422, "lines"),
}
#: Largest body intake takes (docs/intake-api.md); "too-large" goes just over it.
MAX_BODY = 65_536


def malformed_body(kind: str, obj: dict[str, object], rng: random.Random) -> bytes:
    """A broken version of the protocol ``obj`` (the device still signs it)."""
    good = json.dumps(obj, separators=(",", ":")).encode()
    lines = obj["lines"]
    assert isinstance(lines, dict)
    first = next(iter(lines))
    value = lines[first]
    if kind == "truncated":
        return good[: rng.randint(10, len(good) - 2)]
    if kind == "duplicate-key":
        return good.replace(b'"contest":', b'"station":"' + str(obj["station"]).encode() + b'","contest":', 1)
    if kind == "unknown-field":
        return good[:-1] + b',"comment":"recounted"}'
    if kind == "nan":
        return good.replace(f'"{first}":{value}'.encode(), f'"{first}":NaN'.encode(), 1)
    if kind == "string-count":
        return good.replace(f'"{first}":{value}'.encode(), f'"{first}":"{value}"'.encode(), 1)
    if kind == "decimal-count":
        return good.replace(f'"{first}":{value}'.encode(), f'"{first}":{value}.0'.encode(), 1)
    if kind == "invalid-utf8":
        return good.replace(b'"count_kind":"', b'"count_kind":"\xff', 1)
    if kind == "too-large":
        return good[:-1] + b',"time":"' + b" " * MAX_BODY + b'"}'
    if kind == "negative":
        return good.replace(f'"{first}":{value}'.encode(), f'"{first}":-{int(str(value)) + 1}'.encode(), 1)
    raise ValueError(f"unknown malformation {kind!r}")


def misread(lines: Mapping[str, int], choices: list[str], rng: random.Random) -> dict[str, int]:
    """Another reading of a protocol that still passes every rule: 1-3 votes of one choice
    counted for another (a typo on the form, a misread mark)."""
    out = dict(lines)
    donors = [c for c in choices if out[c] > 0]
    if not donors or len(choices) < 2:
        raise ValueError("no votes to move")
    donor = rng.choice(donors)
    k = rng.randint(1, min(3, out[donor]))
    out[donor] -= k
    out[rng.choice([c for c in choices if c != donor])] += k
    return out


def unbalanced(lines: Mapping[str, int], choices: list[str], rng: random.Random) -> dict[str, int]:
    """A protocol whose choices no longer add up to the valid votes (an arithmetic error)."""
    out = dict(lines)
    out[rng.choice(choices)] += rng.randint(1, 9)
    return out
