"""schemathesis against the real gateway process (with a processor and the projector on the session's
broker and Redis): no answer is a server error, and every answer conforms to the OpenAPI document (status,
content type, headers, body schema)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from payments.devstack.ports import free_port
from payments.devstack.probe import wait_http_ok
from payments.gateway.seed import create_api_key
from payments.settings import KafkaSettings
from tests.gateway.schemathesis_hooks import WEBHOOK_SECRET_ENV
from tests.support import Service, processor, service_env

pytestmark = pytest.mark.integration

_SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
# Test cases per operation in the fuzzing phase (the examples, coverage and stateful phases add theirs):
# about 770 requests in all; the schemathesis run took 85 s on the 2-core machine at a load average of 10
# (the coverage phase is most of it and does not depend on this number).
MAX_EXAMPLES = 10
# The hooks sign the fuzzed webhooks with it (Standard Webhooks: whsec_ + base64 of the key).
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"schemathesis fuzzing secret!").decode()


@dataclass(frozen=True)
class Live:
    base_url: str
    admin_key: str
    account_id: str


async def _seed(redis_url: str) -> str:
    r = aioredis.Redis.from_url(redis_url)
    try:
        return await create_api_key(r, "admin", "admin")
    finally:
        await r.aclose()


def _open_funded_account(base_url: str, admin_key: str) -> str:
    """An open account with the admin as a member and some funds, so that the fuzzed payments, top-ups
    and reads reach the processor's and the read model's paths instead of stopping at 404."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        opened = client.post(
            "/v1/accounts",
            json={"currency": "EUR", "members": ["admin", "alice"]},
            headers={"Idempotency-Key": "fuzz-account"},
        )
        assert opened.status_code in (201, 202), opened.text
        account_id = str(opened.json()["id"])
        _until(client, f"/v1/accounts/{account_id}", lambda _account: True)
        funded = client.post(
            f"/v1/accounts/{account_id}/adjustments",
            json={"amount": 1_000_000, "currency": "EUR", "reason": "fuzzing funds"},
            headers={"Idempotency-Key": "fuzz-funding"},
        )
        assert funded.status_code in (201, 202), funded.text
        _until(client, f"/v1/accounts/{account_id}", lambda account: account["posted"] == 1_000_000)
    return account_id


def _until(client: httpx.Client, path: str, done: Callable[[dict[str, Any]], bool]) -> None:
    # A replay of the POST would repeat its first answer (202 while the processor starts): read instead.
    deadline = time.monotonic() + 90
    while True:
        answer = client.get(path)
        if answer.status_code == 200 and done(answer.json()):
            return
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.5)


@pytest.fixture
def live(kafka_settings: KafkaSettings, redis_db: str, tmp_path: Path) -> Iterator[Live]:
    prefix = f"f{uuid.uuid4().hex[:8]}."
    env = service_env(kafka_settings, prefix, PAYMENTS_REDIS__URL=redis_db)
    # No PSP here, so payments and top-ups never finish: a fuzzed `Prefer: wait=10` would hold each
    # request for 10 s. Capped at 1 s, the wait paths are still taken.
    gateway_env = env | {
        "PAYMENTS_MAX_PREFER_WAIT_S": "1",
        "PAYMENTS_ACCOUNT_OPEN_WAIT_S": "1",
        "PAYMENTS_WEBHOOK_SECRETS": json.dumps([WEBHOOK_SECRET]),
    }
    port = free_port()
    services = [
        processor(kafka_settings, prefix, 0, tmp_path),
        Service(["projector"], env | {"PAYMENTS_GROUP_ID": f"{prefix}projector"}, tmp_path / "projector.log"),
        Service(
            ["gateway", "--host", "127.0.0.1", "--port", str(port)], gateway_env, tmp_path / "gateway.log"
        ),
    ]
    admin_key = asyncio.run(_seed(redis_db))
    for service in services:
        service.start()
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_http_ok(f"{base_url}/readyz")
        yield Live(base_url, admin_key, _open_funded_account(base_url, admin_key))
    finally:
        for service in reversed(services):
            service.stop()
    gateway_log = (tmp_path / "gateway.log").read_text()
    assert "unhandled error" not in gateway_log, gateway_log[-5000:]


def _answers(base_url: str) -> dict[str, int]:
    """``"<METHOD> <route> <status>"`` → requests the gateway answered, from its own metrics."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    pattern = r'payments_gateway_requests_total\{method="(\w+)",route="([^"]+)",status="(\d+)"\} (\S+)'
    return {f"{m} {r} {s}": int(float(n)) for m, r, s, n in re.findall(pattern, text)}


def test_schemathesis_finds_nothing(live: Live, tmp_path: Path) -> None:
    # Every generated account id is the real account: the others would all stop at 404 before the
    # interesting paths (404s still come from the payment and top-up ids and the webhook).
    (tmp_path / "schemathesis.toml").write_text(f'[parameters]\n"path.account_id" = "{live.account_id}"\n')
    run = subprocess.run(
        [
            str(_SCHEMATHESIS),
            "--config-file", str(tmp_path / "schemathesis.toml"),
            "run", f"{live.base_url}/openapi.json",
            "--checks", ",".join(CHECKS),
            "--header", f"Authorization: Bearer {live.admin_key}",
            "--max-examples", str(MAX_EXAMPLES),
            "--seed", "20261204",
            "--generation-database", "none",
            "--request-timeout", "20",
            # One worker: hypothesis parses lambda sources with ast.parse, which races between threads on
            # CPython 3.11 ("AST constructor recursion depth mismatch", a run error in the tool, not the API).
            "--workers", "1",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            **os.environ,
            "NO_COLOR": "1",
            "SCHEMATHESIS_HOOKS": "tests.gateway.schemathesis_hooks",
            WEBHOOK_SECRET_ENV: WEBHOOK_SECRET,
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        },
    )  # fmt: skip
    output = run.stdout + run.stderr
    answers = _answers(live.base_url)
    # The summary and what the gateway answered, shown when the test fails (or with pytest -s).
    print(output, *sorted(f"{k}: {v}" for k, v in answers.items()), sep="\n")
    assert run.returncode == 0, output[-20000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", output)
    assert cases is not None, output[-5000:]
    assert cases.group(1) == cases.group(2)
    # The fuzzed requests got past validation into the intake and the read model, not only to 4xx.
    for reached in (
        "POST /v1/accounts/{account_id}/payments 202",
        "GET /v1/accounts/{account_id}/ledger 200",
        "POST /v1/psp/webhooks 422",  # authentic but not an event we can read
    ):
        assert answers.get(reached, 0) > 0, reached
