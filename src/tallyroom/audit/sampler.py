"""Reproducible sampling from a public seed with SHA-256.

Everything here is a pure function of a public seed (for example, digits from dice rolled in
public after the results are published) and the published manifest, so any observer can
recompute the sample. Three procedures are implemented, each reproducing a published one:

* :func:`rivest_2011_sample` — the counter-mode SHA-256 sampler of R. L. Rivest,
  ``sampler.py`` (version of 14 November 2011, http://people.csail.mit.edu/rivest/sampler.py):
  the i-th pick is ``a + int(SHA256(seed + "," + str(i))) mod (b - a + 1)``, i = 1, 2, …;
  duplicates are rejected when sampling without replacement.
* :func:`consistent_sample` / :func:`sample_ballots` — Rivest's *consistent sampler*
  (``consistent_sampler.py``, 2018, https://github.com/ron-rivest/consistent_sampler), the
  sampler VotingWorks' Arlo uses for ballot polling (``server/audit_math/sampler.py``,
  ``draw_sample``). Every item gets a pseudo-random "ticket number" in (0, 1) from the seed and
  its id; items are drawn in increasing ticket order; when sampling with replacement a drawn
  item gets a new, larger ticket. Sampling a sub-collection gives the same relative order
  ("consistency"), so escalating an audit extends its sample.
* :func:`sample_batches` — sampling batches with replacement with probability proportional to
  an integer weight: probability proportional to error bound (PPEB, Aslam, Popa & Rivest 2008;
  applied to batch audits by Stark 2009, "Risk-limiting post-election audits: P-values from
  common probability inequalities"). The j-th draw is Rivest's 2011 sampler's j-th output on
  ``0 … W - 1`` (W = total weight), mapped to the batch whose cumulative-weight interval
  contains it. Anyone can reproduce it with Rivest's program and the published weights.

Ticket arithmetic is done on decimal strings, exactly as in the reference implementations, so
ticket numbers match theirs digit for digit.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
from collections.abc import Iterable, Sequence
from typing import TypeVar

import msgspec

#: Digits of ticket numbers shown after the leading run of 9s (Arlo uses 18).
DEFAULT_TICKET_DIGITS = 18


class Ticket(msgspec.Struct, frozen=True):
    """One draw of the consistent sampler.

    ``ticket_number`` is the full-precision decimal string ``"0.ddd…"``; ``item_id`` the
    drawn item's id string; ``generation`` how many times this item has been drawn so far,
    including this draw (always 1 without replacement).
    """

    ticket_number: str
    item_id: str
    generation: int


class BallotDraw(msgspec.Struct, frozen=True):
    """One sampled ballot: ``ballot`` is the 1-based position within batch ``batch_id``.

    ``ticket_number`` is trimmed to the requested digits (as Arlo shows it); ``generation``
    counts how many times this ballot has been drawn so far (sampling with replacement).
    """

    ticket_number: str
    batch_id: str
    ballot: int
    generation: int


class BatchDraw(msgspec.Struct, frozen=True):
    """One PPEB draw: the ``draw``-th draw (1-based) picked ``batch_id``.

    ``value`` is the integer that Rivest's 2011 sampler produced for this draw on
    ``0 … total_weight - 1``; ``times`` counts how often ``batch_id`` has been drawn so far,
    including this draw.
    """

    draw: int
    value: int
    batch_id: str
    times: int


# --- SHA-256 primitives --------------------------------------------------------------------


def sha256_hex(text: str) -> str:
    """Return the hex SHA-256 digest of the UTF-8 encoding of ``text``.

    This is ``sha256_hex`` of Rivest's ``consistent_sampler.py``;
    ``sha256_hex("abc") == "ba7816bf…15ad"`` (FIPS 180-2 test vector).
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_uniform(text: str) -> str:
    """Map ``text`` to a decimal fraction string ``"0.ddd…"`` uniform on (0, 1).

    Rivest, ``consistent_sampler.py`` (``sha256_uniform``): the SHA-256 digest read as an
    integer, written in decimal padded to at least 64 digits, with the digits reversed (the
    low-order digits are unbiased, so they go first).
    """
    digits = f"{int(sha256_hex(text), 16):064d}"
    return "0." + digits[::-1]


def _first_non_nine(x: str) -> int:
    """Index in ``x + "0"`` of the first digit after ``"0."`` that is not a 9."""
    padded = x + "0"
    for i in range(2, len(padded)):
        if padded[i] < "9":
            return i
    raise AssertionError("unreachable: the padding digit is 0")  # pragma: no cover


def first_fraction(item_id: str, seed: str) -> str:
    """Generation-1 ticket number of ``item_id`` under ``seed``.

    Rivest, ``consistent_sampler.py`` (``first_fraction``):
    ``sha256_uniform(sha256_hex(seed) + item_id)``.
    """
    return sha256_uniform(sha256_hex(seed) + item_id)


def next_fraction(x: str) -> str:
    """Next ticket number after ``x``: pseudo-random in (x, 1), a function of ``x`` only.

    Rivest, ``consistent_sampler.py`` (``next_fraction``): keep the leading run of 9s of
    ``x`` and replace the rest by the digits of ``sha256_uniform(x + ":" + str(i))`` for
    i = 1, 2, … until the result exceeds ``x``.
    """
    if not x.startswith("0."):
        raise ValueError(f"ticket number must look like '0.ddd', got {x!r}")
    padded = x + "0"
    keep = padded[: _first_non_nine(x)]
    i = 0
    y = "0."
    while y <= padded:
        i += 1
        y = keep + sha256_uniform(f"{x}:{i}")[2:]
    return y


def trim(x: str, digits: int = DEFAULT_TICKET_DIGITS) -> str:
    """Truncate ticket number ``x`` to ``digits`` digits after its leading run of 9s.

    Rivest, ``consistent_sampler.py`` (``trim``): ``trim("0.9991234567890", 4) ==
    "0.9991234"``. Truncation, not rounding.
    """
    return x[: _first_non_nine(x) + digits]


# --- consistent sampler ---------------------------------------------------------------------


P = TypeVar("P")


def _draw(
    items: Iterable[tuple[str, P]], seed: str, take: int, drop: int, with_replacement: bool
) -> list[tuple[Ticket, P]]:
    """Draws ``drop + 1 … drop + take`` of the consistent sampler, with each item's payload.

    Only items whose first ticket is among the ``drop + take`` smallest can be drawn that
    early (an item's first ticket is its smallest, and each earlier draw uses up a ticket at
    most that large), so one pass keeps just those candidates: O(N) hashes, O(take) memory.
    """
    seed_hash = sha256_hex(seed)
    wanted = drop + take
    tickets = (
        (sha256_uniform(seed_hash + item_id), item_id, payload) for item_id, payload in items
    )
    candidates = heapq.nsmallest(wanted, tickets, key=lambda t: (t[0], t[1]))
    payloads = {item_id: payload for _, item_id, payload in candidates}
    heap = [(number, item_id, 1) for number, item_id, _ in candidates]
    heapq.heapify(heap)
    out: list[tuple[Ticket, P]] = []
    count = 0
    while heap and count < wanted:
        number, item_id, generation = heap[0]
        if with_replacement:
            heapq.heapreplace(heap, (next_fraction(number), item_id, generation + 1))
        else:
            heapq.heappop(heap)
        count += 1
        if count > drop:
            out.append((Ticket(number, item_id, generation), payloads[item_id]))
    return out


def consistent_sample(
    item_ids: Iterable[str],
    seed: str,
    take: int,
    *,
    with_replacement: bool = False,
    drop: int = 0,
) -> list[Ticket]:
    """Draw ``take`` tickets after skipping the first ``drop`` (Rivest's consistent sampler).

    Implements ``sampler(id_list, seed, with_replacement, drop, take)`` of Rivest's
    ``consistent_sampler.py``: items are drawn in increasing order of their ticket numbers;
    with replacement, a drawn item gets its next ticket (:func:`next_fraction`) and stays in.

    Inputs: ``item_ids`` distinct id strings; ``seed`` the public seed; ``take`` how many
    draws to return; ``drop`` how many earlier draws to skip (escalation: pass the size of
    the sample already drawn). Output: the tickets in draw order, full precision.
    """
    if take < 0 or drop < 0:
        raise ValueError("take and drop must be non-negative")
    ids = list(item_ids)
    seen: set[str] = set()
    for item_id in ids:
        if item_id in seen:
            raise ValueError(f"duplicate item id {item_id!r}")
        seen.add(item_id)
    return [t for t, _ in _draw(((i, None) for i in ids), seed, take, drop, with_replacement)]


def ballot_id(batch_id: str, ballot: int) -> str:
    """Id string of ballot ``ballot`` (1-based) in ``batch_id`` for the consistent sampler.

    This is Python's ``str((batch_id, ballot))``, e.g. ``"('pct 1', 25)"`` — the id Arlo's
    ``draw_sample`` hashes — so tallyroom samples coincide with Arlo's for the same manifest.
    """
    return str((batch_id, ballot))


def sample_ballots(
    seed: str,
    population: Sequence[tuple[str, int]],
    sample_size: int,
    with_replacement: bool = True,
    *,
    already_sampled: int = 0,
    digits: int = DEFAULT_TICKET_DIGITS,
) -> list[BallotDraw]:
    """Sample ballots from a ballot manifest with the consistent sampler (ballot polling).

    Inputs: ``population`` the manifest as ``(batch id, number of ballots)`` pairs (ballots
    are numbered 1…n within a batch); ``sample_size`` draws to make; ``already_sampled`` the
    number of draws made in earlier rounds (they are skipped, so rounds extend one sample);
    ``digits`` ticket digits to show. Output: the draws in ticket order.

    Same procedure and output as Arlo's ``draw_sample(seed, manifest, sample_size,
    num_sampled, with_replacement)`` with ``digits=18`` (Rivest's consistent sampler over ids
    ``str((batch, position))``). Cost: one SHA-256 per ballot in the manifest.
    """
    batch_ids = [batch_id for batch_id, _ in population]
    if len(set(batch_ids)) != len(batch_ids):
        raise ValueError("batch ids in the manifest must be unique")
    for batch_id, ballots in population:
        if ballots < 0:
            raise ValueError(f"batch {batch_id!r} has a negative number of ballots")
    total = sum(ballots for _, ballots in population)
    if not with_replacement and already_sampled + sample_size > total:
        raise ValueError(
            f"cannot draw {already_sampled + sample_size} distinct ballots from {total}"
        )
    ballots_in_order = (
        (ballot_id(batch_id, position), (batch_id, position))
        for batch_id, ballots in population
        for position in range(1, ballots + 1)
    )
    drawn = _draw(ballots_in_order, seed, sample_size, already_sampled, with_replacement)
    return [
        BallotDraw(trim(t.ticket_number, digits), batch_id, position, t.generation)
        for t, (batch_id, position) in drawn
    ]


# --- Rivest 2011 counter-mode sampler -----------------------------------------------------


def rivest_2011_value(seed: str, counter: int) -> int:
    """The 256-bit integer ``SHA256(seed + "," + str(counter))`` of Rivest's 2011 sampler."""
    return int(sha256_hex(f"{seed},{counter}"), 16)


def rivest_2011_sample(
    seed: str,
    n: int,
    a: int,
    b: int,
    *,
    with_replacement: bool,
    skip: int = 0,
) -> list[int]:
    """Rivest's 2011 ``sampler.py``: ``n`` picks from ``a … b`` after skipping ``skip``.

    Pick i (i = 1, 2, …) is ``a + SHA256(seed + "," + str(i)) mod (b - a + 1)``; without
    replacement a pick equal to an earlier one is rejected (and uses up its counter). The
    first ``skip`` accepted picks form the "previous sample" and are not returned, which is
    how Rivest's program expands a sample for an escalating audit.
    """
    if n < 0 or skip < 0:
        raise ValueError("n and skip must be non-negative")
    if a > b:
        raise ValueError(f"empty range {a}..{b}")
    size = b - a + 1
    if not with_replacement and n + skip > size:
        raise ValueError(f"cannot draw {n + skip} distinct values from {size}")
    picked: set[int] = set()
    out: list[int] = []
    accepted = 0
    counter = 0
    while accepted < n + skip:
        counter += 1
        pick = a + rivest_2011_value(seed, counter) % size
        if not with_replacement:
            if pick in picked:
                continue
            picked.add(pick)
        accepted += 1
        if accepted > skip:
            out.append(pick)
    return out


# --- PPEB batch sampling --------------------------------------------------------------------


def sample_batches(
    seed: str,
    batches: Sequence[tuple[str, int]],
    sample_size: int,
    *,
    already_sampled: int = 0,
) -> list[BatchDraw]:
    """Sample batches with replacement, with probability proportional to an integer weight.

    For MACRO the weight of batch p is its error bound u_p in fixed units (see
    :func:`tallyroom.audit.macro.ppeb_weights`), which makes this PPEB sampling (Aslam, Popa &
    Rivest 2008; Stark 2009). Draw j (1-based) takes value x_j, the j-th output of
    :func:`rivest_2011_sample` with replacement on ``0 … W - 1`` (W = sum of weights), and
    picks the batch whose interval ``[w_1 + … + w_{p-1}, w_1 + … + w_p)`` contains x_j, in the
    order given. Batches of weight 0 are never drawn.

    Inputs: ``batches`` as ``(batch id, weight ≥ 0)``; ``sample_size`` draws to make;
    ``already_sampled`` draws made in earlier rounds (skipped). Output: the draws in order.
    """
    if sample_size < 0 or already_sampled < 0:
        raise ValueError("sample_size and already_sampled must be non-negative")
    cumulative: list[int] = []
    total = 0
    seen: set[str] = set()
    for batch_id, weight in batches:
        if weight < 0:
            raise ValueError(f"batch {batch_id!r} has a negative weight")
        if batch_id in seen:
            raise ValueError(f"duplicate batch id {batch_id!r}")
        seen.add(batch_id)
        total += weight
        cumulative.append(total)
    if total == 0:
        raise ValueError("all batch weights are zero: nothing can be sampled")
    times: dict[str, int] = {}
    out: list[BatchDraw] = []
    for draw in range(1, already_sampled + sample_size + 1):
        value = rivest_2011_value(seed, draw) % total
        batch_id = batches[bisect.bisect_right(cumulative, value)][0]
        times[batch_id] = times.get(batch_id, 0) + 1
        if draw > already_sampled:
            out.append(BatchDraw(draw, value, batch_id, times[batch_id]))
    return out
