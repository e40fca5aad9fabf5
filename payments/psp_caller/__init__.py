"""The psp-caller (docs/design.md §2 step 4): consumes ``payments.psp-requests``, calls the PSP with the
operation id as idempotency key on every attempt, and produces the outcome back to ``payments.commands``."""
