"""Shortening of values that must never appear in full in logs (card tokens, idempotency keys)."""

from __future__ import annotations

_KEEP = 4  # characters kept: enough to correlate log lines, too few to replay a key or use a token


def redact(value: str | None) -> str:
    if value is None:
        return "-"
    if len(value) <= _KEEP:
        return "*" * len(value)
    return f"{value[:_KEEP]}…({len(value)})"
