"""schemathesis hooks for ``test_schemathesis`` (loaded by the CLI through ``SCHEMATHESIS_HOOKS``).

* Generated Idempotency-Keys repeat (``0``, ``A``...) with different bodies, so most fuzzed POSTs would
  stop at 422 ``idempotency_key_reused``; a valid key is made unique per case so that the payloads reach
  the intake, the processor and the read model. Invalid keys are left alone: they are what the negative
  cases test.
* Fuzzed PSP webhooks are signed with the gateway's secret (``FUZZ_WEBHOOK_SECRET``), so that they get
  past the signature check into event parsing and publishing instead of all stopping at 400.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from typing import Any

import schemathesis

from payments.standard_webhooks import signed_headers

_VALID_BARE_KEY = re.compile(r"^[!#-\[\]-~]{1,255}$")
WEBHOOK_SECRET_ENV = "FUZZ_WEBHOOK_SECRET"


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    if case.headers is None:
        case.headers = {}
    key = case.headers.get("Idempotency-Key")
    if isinstance(key, str) and _VALID_BARE_KEY.match(key):
        case.headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4().hex}"
    secret = os.environ.get(WEBHOOK_SECRET_ENV)
    if secret and case.path == "/v1/psp/webhooks" and isinstance(case.body, dict | list | str | int | float):
        # Bytes are sent as they are, so the signature covers exactly what the gateway receives.
        body = json.dumps(case.body).encode()
        case.body = body
        case.headers.update(signed_headers([secret], f"msg_{uuid.uuid4().hex}", int(time.time()), body))
