"""The JSON Schema of a definition file, generated from the model (never written by hand)."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from tallyroom.definition.model import Definition


@cache
def definition_schema() -> dict[str, Any]:
    schema: dict[str, Any] = msgspec.json.schema(Definition)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tallyroom election definition"
    return schema


if __name__ == "__main__":
    import json

    print(json.dumps(definition_schema(), indent=2, ensure_ascii=False))
