"""Errors raised by seat allocation.

Every error is a :class:`SeatsError`, a :class:`ValueError`, whose message names the input that
is wrong and the numbers involved, so a commission operator (or the ``tallyroom seats calc``
command) can show it as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tallyroom.seats.thresholds import ThresholdCheck

__all__ = ["NoEligibleChoicesError", "SeatsError"]


class SeatsError(ValueError):
    """Bad input to a seat allocation, or an allocation the rules make impossible."""


class NoEligibleChoicesError(SeatsError):
    """No choice passed the thresholds, so no seat can be allocated.

    ``checks`` holds every threshold decision (numbers, base, pass/fail) so the outcome can be
    published and explained even though there is no allocation.
    """

    def __init__(self, message: str, checks: tuple[ThresholdCheck, ...]) -> None:
        super().__init__(message)
        self.checks = checks
