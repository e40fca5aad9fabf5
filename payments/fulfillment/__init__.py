"""The reference downstream consumer: ``payments.results`` → an external store (SQLite), exactly once.

The pattern for downstream teams (docs/downstream.md):

- consume ``read_committed`` with auto-commit off;
- per batch, in ONE store transaction: dedupe each result by its per-account ``seq`` against the stored
  ``last_seq``, apply the side effect, advance ``last_seq``, and store the next Kafka offset per partition;
- on assignment, seek to the offsets stored in the store; group offset commits are a monitoring aid only.

``apply`` is the pure decision (apply / duplicate / gap), ``store`` the SQLite I/O, ``consumer`` the Kafka
loop, ``main`` the wiring (``payments fulfillment-example``).
"""
