"""Signed intake: the pure-ish services behind the station API (issue 4).

- :mod:`tallyroom.intake.errors` — a rejection: HTTP status, journal reason, field, rules.
- :mod:`tallyroom.intake.strict` — strict JSON for protocol bodies (no duplicate keys, no
  NaN, no decimals, no strings for numbers, valid UTF-8).
- :mod:`tallyroom.intake.signature` — device keys (Ed25519), key files, signing, checking.
- :mod:`tallyroom.intake.submission` — one submission from raw bytes to a checked protocol.
- :mod:`tallyroom.intake.receipts` — commission-signed receipts and how to check them.
- :mod:`tallyroom.intake.images` — paper protocol photos: type by content.
- :mod:`tallyroom.intake.tokens` — staff API tokens and roles.
- :mod:`tallyroom.intake.corrections` — the two-person rule and the ledger payloads of
  corrections, annulments and conflict dismissals.
- :mod:`tallyroom.intake.journal` — outcomes of intake attempts.

Nothing here speaks HTTP; `tallyroom.web` does, and `tallyroom.store.intake` does the SQL.
"""
