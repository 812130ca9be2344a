"""Commission staff API tokens and what each role may do.

A token is ``trt_`` followed by 43 URL-safe characters (256 random bits). Only its SHA-256
is stored: with that much entropy a slow password hash adds nothing, and a stolen database
does not reveal a usable token. The plain token is shown once, when created.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum

TOKEN_PREFIX = "trt_"


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMINISTRATOR = "administrator"
    AUDITOR = "auditor"


class Permission(StrEnum):
    READ = "read"  # journal, conflicts, proposals, keys
    PROPOSE = "propose"  # corrections, annulments, conflict resolutions
    DECIDE = "decide"  # approve or reject someone else's proposal
    MANAGE = "manage"  # device keys


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.AUDITOR: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.PROPOSE}),
    Role.SUPERVISOR: frozenset({Permission.READ, Permission.PROPOSE, Permission.DECIDE}),
    Role.ADMINISTRATOR: frozenset({Permission.READ, Permission.PROPOSE, Permission.MANAGE}),
}


def new_token() -> tuple[str, str]:
    """A fresh token and the hash to store."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)


def allowed(role: str, permission: Permission) -> bool:
    try:
        return permission in GRANTS[Role(role)]
    except ValueError:
        return False
