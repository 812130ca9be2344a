"""Machine-vs-hand reconciliation, outcome sensitivity and risk-limiting audits.

Pure logic over plain data (no store, no web); every function cites the paper it implements.

* :mod:`~tallyroom.audit.sampler` — SHA-256 sampling from a public seed (Rivest 2011 sampler,
  Rivest's consistent sampler as used by Arlo, PPEB batch draws).
* :mod:`~tallyroom.audit.assertions` — linear assertions (winner beat loser, party passed or
  failed a threshold) whose margins the audits test.
* :mod:`~tallyroom.audit.bravo` — BRAVO ballot polling (Lindeman, Stark & Yates 2012).
* :mod:`~tallyroom.audit.macro` — MACRO batch comparison with stations as batches (Stark
  2008, Kaplan–Markov P-value of Stark 2009).
* :mod:`~tallyroom.audit.reconcile` — per-station machine vs hand count, recount rules,
  region summaries, histograms.
* :mod:`~tallyroom.audit.sensitivity` — votes each threshold and seat decision rests on.
* :mod:`~tallyroom.audit.cli` — ``tallyroom audit sample-size``.

See docs/audit.md for the mathematics.
"""
