"""Law profiles: named protocol forms and control rules shipped as data, not code."""

from __future__ import annotations

from functools import cache
from importlib import resources

import msgspec
import yaml

from tallyroom.definition.model import Form, Name


class Profile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    profile: str
    name: Name
    forms: dict[str, Form]


class ProfileError(ValueError):
    pass


def available_profiles() -> list[str]:
    files = resources.files("tallyroom") / "profiles"
    return sorted(p.name.removesuffix(".yaml") for p in files.iterdir() if p.name.endswith(".yaml"))


@cache
def load_profile(name: str) -> Profile:
    """Load a law profile by name (`kyrgyzstan`, `russia-duma`)."""
    if name not in available_profiles():
        raise ProfileError(
            f'unknown profile "{name}" (available: {", ".join(available_profiles())})'
        )
    text = (resources.files("tallyroom") / "profiles" / f"{name}.yaml").read_text("utf-8")
    return msgspec.convert(yaml.safe_load(text), Profile)
