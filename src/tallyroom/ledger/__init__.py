"""The append-only ledger core: RFC 6962/9162 Merkle hashing and proofs, C2SP signed
checkpoints, and the byte format of entries. Pure logic: no database, no web.

- :mod:`tallyroom.ledger.merkle` — hashes, :class:`Frontier`, proofs and their checks.
- :mod:`tallyroom.ledger.note` — C2SP signed notes and Go-compatible key strings.
- :mod:`tallyroom.ledger.checkpoint` — C2SP tlog-checkpoint signing and verification.
- :mod:`tallyroom.ledger.entry` — entry kinds and the stored bytes of an entry.
"""
