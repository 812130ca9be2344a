"""The phrases of all languages at once (tallyroom.publish.neutral): a slot filled in for a
language is exactly what that language's phrases give, for any number, share or message."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallyroom.definition.compiled import compile_election
from tallyroom.definition.load import load_definition
from tallyroom.publish.fastpages import Phrases
from tallyroom.publish.i18n import LANGUAGES
from tallyroom.publish.neutral import NeutralPhrases
from tallyroom.simulate import kyrgyzstan as kg


@pytest.fixture(scope="module")
def phrases() -> list[Phrases]:
    definition = kg.generate_definition(2021)
    election = compile_election(load_definition(kg.definition_yaml(definition), "definition.yaml"))
    return [Phrases(election, lang, LANGUAGES) for lang in LANGUAGES]


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.none(), st.integers(min_value=-(10**15), max_value=10**15)))
def test_numbers(phrases: list[Phrases], value: int | None) -> None:
    neutral = NeutralPhrases(phrases)
    assert neutral.resolve(neutral.num(value)) == [p.num(value).encode() for p in phrases]


_SHARES = st.one_of(
    st.none(),
    st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, allow_infinity=False, places=2).map(
        lambda d: str(Decimal(d))
    ),
    st.integers(min_value=0, max_value=10**7).map(str),
    st.sampled_from(["0", "100", "100.00", "0.05", "-0.5", "١٢", "7"]),
)


@settings(max_examples=300, deadline=None)
@given(value=_SHARES)
def test_shares(phrases: list[Phrases], value: str | None) -> None:
    neutral = NeutralPhrases(phrases)
    assert neutral.resolve(neutral.pct(value)) == [p.pct(value).encode() for p in phrases]


@settings(max_examples=100, deadline=None)
@given(n=st.integers(min_value=0, max_value=10**9), text=st.text(max_size=20))
def test_messages_with_slots_among_their_values(phrases: list[Phrases], n: int, text: str) -> None:
    """A message whose values are themselves slots (a formatted number, a name) is filled in
    with each language's values; text from data is escaped as each language escapes it."""
    neutral = NeutralPhrases(phrases)
    page = "<p>" + neutral.f("Registered voters in the station list: %(n)s.", n=neutral.num(n)) + "</p>"
    page += neutral.f("signed by the station's device key %(k)s", k=text.replace("\x00", ""))
    page += neutral.f("ledger entry %(i)s counts now", i=n)  # a raw number, the same everywhere
    want = [
        (
            "<p>"
            + p.f("Registered voters in the station list: %(n)s.", n=p.num(n))
            + "</p>"
            + p.f("signed by the station's device key %(k)s", k=text.replace("\x00", ""))
            + p.f("ledger entry %(i)s counts now", i=n)
        ).encode()
        for p in phrases
    ]
    assert neutral.resolve(page) == want
    # The slots of a page are forgotten once it is resolved: the tables do not grow.
    assert not neutral._dynamic
    sizes = [len(t) for t in neutral.tables]
    neutral.resolve(neutral.f("Registered voters in the station list: %(n)s.", n=neutral.num(n)))
    assert [len(t) for t in neutral.tables] == sizes
