"""schemathesis hooks for ``test_schemathesis`` (loaded by the CLI through ``SCHEMATHESIS_HOOKS``).

Generated Idempotency-Keys repeat (``0``, ``A``...) with different bodies, so most fuzzed POSTs would stop
at 422 ``idempotency_key_reused``; a valid key is made unique per case so that the payloads reach the
intake, the processor and the read model. Invalid keys are left alone: they are what the negative cases
test."""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

_VALID_BARE_KEY = re.compile(r"^[!#-\[\]-~]{1,255}$")


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and _VALID_BARE_KEY.match(key):
        headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4().hex}"
