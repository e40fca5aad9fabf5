"""The baseline: the same payments API written the way most teams would, on FastAPI and PostgreSQL.

One ``accounts`` row per balance locked with ``SELECT ... FOR UPDATE``, idempotency keys in a table with a
unique constraint, and the PSP called synchronously, so the HTTP answer is the final one. Two variants
(``Variant``): ``locked`` calls the PSP inside the transaction that holds the row lock; ``unlocked``
places a hold in one short transaction, calls the PSP with no transaction open, and settles in a second.
"""
