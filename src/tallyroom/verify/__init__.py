"""The observer's verifier: recompute and check everything a tallyroom site publishes.

It reads published files only (docs/bulletin.md) and imports nothing of ``tallyroom.store``,
``tallyroom.web`` or ``tallyroom.publish`` — an observer can trust it without trusting the
server. It reuses the pure logic: Merkle hashing and signed checkpoints (``tallyroom.ledger``),
the definition, control rules, seat allocation and audit mathematics.

* :mod:`~tallyroom.verify.source` — a snapshot folder, a publish folder or a site's URL;
* :mod:`~tallyroom.verify.bulletin` — manifest, file hashes, entries, Merkle tree, checkpoints;
* :mod:`~tallyroom.verify.ledger` — the walk over every entry: signatures, rules, protocols in
  force, key history, snapshot records;
* :mod:`~tallyroom.verify.expected` — every number recomputed, each able to say why;
* :mod:`~tallyroom.verify.compare_json`, :mod:`~tallyroom.verify.compare_tables`,
  :mod:`~tallyroom.verify.compare_html`, :mod:`~tallyroom.verify.compare_misc` — every published
  number against its recomputed value;
* :mod:`~tallyroom.verify.audits`, :mod:`~tallyroom.verify.receipts`,
  :mod:`~tallyroom.verify.observer`, :mod:`~tallyroom.verify.watch` — audits, receipts,
  observers' own protocol copies, monitoring a live site;
* :mod:`~tallyroom.verify.run` — one verification, start to end; :mod:`~tallyroom.verify.cli` —
  ``tallyroom verify`` (docs/verify.md).
"""
