"""Encode many imported protocol bodies of one shape fast, byte for byte as `encode_body` does.

An import writes thousands of bodies that differ only in the station, the line values and the
row: the election, contest, count kind, line ids, format, file hash and file name are the same
for all of them. `BodyTemplate` encodes those fixed parts once (with the same msgspec encoder,
so strings are escaped exactly alike) and fills in the rest with one generated f-string per
body (one BUILD_STRING: faster than `%`-formatting thirty values or encoding a dict).

The result must equal `encode_body(ProtocolBody(...))` exactly: the ledger hashes these bytes
and anyone can re-encode a body to check. A template checks itself against `encode_body` when
it is made (`BodyTemplate.for_shape` returns None if it ever disagrees, and callers then use
`encode_body`), and the tests compare the two on random bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from tallyroom.definition.model import CountKind
from tallyroom.protocol.model import ProtocolBody, Source, encode_body

_json = msgspec.json.Encoder()


def _j(value: str) -> str:
    """A JSON string exactly as msgspec writes it."""
    return _json.encode(value).decode()


Render = Callable[[str, Sequence[object], int], str]


def _renderer(parts: Sequence[str]) -> Render:
    """`render(sj, v, row)` = parts[0] sj parts[1] v[0] parts[2] v[1] … parts[-2] row parts[-1].

    The fixed parts are bound as default arguments, never written into the generated source,
    so no file name or id can change what the code does.
    """
    width = len(parts) - 3
    fields = "{c0}{sj}" + "".join(f"{{c{i + 1}}}{{v[{i}]}}" for i in range(width))
    fields += f"{{c{width + 1}}}{{row}}{{c{width + 2}}}"
    defaults = ", ".join(f"c{i}=_parts[{i}]" for i in range(len(parts)))
    namespace: dict[str, Render] = {}
    exec(  # the source holds only names and indices
        compile(f"def render(sj, v, row, {defaults}):\n    return f'{fields}'\n", "<body>", "exec"),
        {"__builtins__": {}, "_parts": list(parts)},
        namespace,
    )
    return namespace["render"]


class BodyTemplate:
    """The body of an imported protocol with fixed election, contest, kind, lines and source.

    `render(station_json, values, row)` returns the body as text: `station_json` is the station
    id already JSON-encoded (`json_string`), `values` the line values in `line_ids` order as
    ints or as their canonical decimal text, `row` the row number.
    """

    __slots__ = ("line_ids", "render")

    def __init__(
        self,
        election_sha256: str,
        contest: str,
        count_kind: CountKind,
        line_ids: Sequence[str],
        fmt: str,
        file_sha256: str,
        file_name: str | None,
    ) -> None:
        self.line_ids = tuple(line_ids)
        keys = [f"{_j(lid)}:" for lid in self.line_ids]
        parts = [
            f'{{"election":{_j(election_sha256)},"station":',
            f',"contest":{_j(contest)},"count_kind":{_j(str(count_kind))},"lines":{{',
        ]
        if keys:
            parts[-1] += keys[0]
            parts += [f",{k}" for k in keys[1:]]
            parts.append("}")
        else:
            parts[-1] += "}"
        parts[-1] += f',"source":{{"format":{_j(fmt)},"file_sha256":{_j(file_sha256)},"row":'
        parts.append("}}" if file_name is None else f',"file_name":{_j(file_name)}}}}}')
        self.render: Render = _renderer(parts)

    @classmethod
    def for_shape(
        cls,
        election_sha256: str,
        contest: str,
        count_kind: CountKind,
        line_ids: Sequence[str],
        fmt: str,
        file_sha256: str,
        file_name: str | None,
    ) -> BodyTemplate | None:
        """A template for this shape, or None if it does not reproduce `encode_body` exactly."""
        t = cls(election_sha256, contest, count_kind, line_ids, fmt, file_sha256, file_name)
        sample = dict(zip(t.line_ids, range(1_000_003, 1_000_003 + len(t.line_ids)), strict=True))
        for station, row in (('st "1"\\é%s', 2), ("0", 1_234_567)):
            body = ProtocolBody(
                election=election_sha256,
                station=station,
                contest=contest,
                count_kind=count_kind,
                lines=sample,
                source=Source(format=fmt, file_sha256=file_sha256, row=row, file_name=file_name),
            )
            mine = t.render(json_string(station), list(sample.values()), row).encode()
            if mine != encode_body(body):
                return None
        return t


def json_string(value: str) -> str:
    """`value` as a JSON string, exactly as the body encoder writes it."""
    return _json.encode(value).decode()
