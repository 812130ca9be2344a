"""Errors in a definition, each with the path of the offending element."""

from __future__ import annotations


class DefinitionError(ValueError):
    """Every problem found in a definition, reported together.

    Each message starts with a path such as `stations[812].areas[1]` so that a commission can
    find the line in a file of 100,000 stations.
    """

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        shown = "\n".join(f"  {e}" for e in errors[:200])
        more = f"\n  … and {len(errors) - 200} more" if len(errors) > 200 else ""
        n = len(errors)
        super().__init__(
            f"{source}: {n} error{'s' if n != 1 else ''} in the definition:\n{shown}{more}"
        )
