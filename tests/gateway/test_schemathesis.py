"""schemathesis against the real gateway process (with a processor and the projector on the session's
broker and Redis): no answer is a server error, and every answer conforms to the OpenAPI document (status,
content type, headers, body schema)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from payments.devstack.ports import free_port
from payments.devstack.probe import wait_http_ok
from payments.gateway.seed import create_api_key
from payments.settings import KafkaSettings
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
# Test cases per operation and phase: 16 operations x (examples + coverage + 15 fuzzed) stay near a
# minute on a loaded 2-core machine.
MAX_EXAMPLES = 15


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
    headers = {"Authorization": f"Bearer {admin_key}", "Prefer": "wait=10"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        opened = client.post(
            "/v1/accounts",
            json={"currency": "EUR", "members": ["admin", "alice"]},
            headers={"Idempotency-Key": "fuzz-account"},
        )
        assert opened.status_code == 201, opened.text
        account_id = str(opened.json()["id"])
        funded = client.post(
            f"/v1/accounts/{account_id}/adjustments",
            json={"amount": 1_000_000, "currency": "EUR", "reason": "fuzzing funds"},
            headers={"Idempotency-Key": "fuzz-funding"},
        )
        assert funded.status_code == 201, funded.text
    return account_id


@pytest.fixture
def live(kafka_settings: KafkaSettings, redis_db: str, tmp_path: Path) -> Iterator[Live]:
    prefix = f"f{uuid.uuid4().hex[:8]}."
    env = service_env(kafka_settings, prefix, PAYMENTS_REDIS__URL=redis_db)
    port = free_port()
    services = [
        processor(kafka_settings, prefix, 0, tmp_path),
        Service(["projector"], env | {"PAYMENTS_GROUP_ID": f"{prefix}projector"}, tmp_path / "projector.log"),
        Service(["gateway", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / "gateway.log"),
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


def test_schemathesis_finds_nothing(live: Live, tmp_path: Path) -> None:
    # Half of the fuzzed account ids are the real account (the others reach 404 and the like).
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
            "--workers", "2",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    output = run.stdout + run.stderr
    print(output)  # the summary: operations, test cases and any failure, shown when the test fails
    assert run.returncode == 0, output[-20000:]
    assert "No issues found" in output or " 0 failures" in output or "passed" in output, output[-5000:]
