"""A choice of a published row as a struct read like a dict.

The publisher keeps a record per counted protocol for its whole life; a dict per choice (six
keys, about 320 bytes with its own key table) was half of a record's memory, and a
1,000,000-station election has 14 million of them (docs/decisions/0012). A struct with the
same fields is a fifth of that, is encoded by msgspec as the same JSON object, and reads like
the dict it replaces, so code written for dicts reads it alike. It is a pure data type, here
beside the tally so that any package may use it.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Fields(msgspec.Struct, gc=False):
    """A struct read and written like the JSON object it is encoded as (``x["votes"]``).
    ``gc=False``: the fields are strings, numbers and booleans, which make no reference
    cycles."""

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self.__struct_fields__:
            raise KeyError(key)
        setattr(self, key, value)

    def __contains__(self, key: object) -> bool:
        return key in self.__struct_fields__

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default) if key in self.__struct_fields__ else default

    def keys(self) -> tuple[str, ...]:
        return self.__struct_fields__


class Choice(Fields, gc=False):
    """One choice of a published row (docs/bulletin.md §7.1): its id, English name, votes,
    share and base. Fields are in alphabetical order, as the canonical JSON
    (``order="deterministic"``) sorts a dict's keys but writes a struct's fields in their
    declared order."""

    against_all: bool
    id: str
    name: str
    percent: str | None
    percent_base: str
    votes: int
