"""A Python client generated from the gateway's OpenAPI document by openapi-python-client has every
operation: a generator that cannot read an operation (an array header, say) skips it with a warning, which
is how all six money-moving endpoints once went missing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from payments.gateway.app import create_app
from payments.gateway.settings import GatewaySettings

# Installed with the dev extra, next to this interpreter.
_GENERATOR = Path(sys.executable).with_name("openapi-python-client")


def test_generated_client_has_every_operation(tmp_path: Path) -> None:
    spec = create_app(GatewaySettings()).openapi()
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    # No post-hooks: formatting the generated code is not what is tested, and ruff may not be on PATH.
    (tmp_path / "config.json").write_text(json.dumps({"post_hooks": [], "project_name_override": "gw"}))
    run = subprocess.run(
        [
            str(_GENERATOR),
            "generate",
            "--path",
            "spec.json",
            "--config",
            "config.json",
            "--output-path",
            "out",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    # The generator reports what it could not handle ("Warning(s) encountered", "Skipping ...",
    # "Unable to parse ..."); every one of them means a piece of the client is missing.
    for complaint in ("Warning", "Skipping", "Unable"):
        assert complaint not in output, output
    package = tmp_path / "out" / "gw"
    modules = {p.stem for p in (package / "api").rglob("*.py") if p.stem != "__init__"}
    operation_ids = {op["operationId"] for ops in spec["paths"].values() for op in ops.values()}
    assert modules == operation_ids
    for op_id in operation_ids:
        (module,) = list((package / "api").rglob(f"{op_id}.py"))
        source = module.read_text()
        assert "def sync(" in source, op_id
        assert "async def asyncio(" in source, op_id
    # The required key is a required argument of the money-moving calls, Prefer a plain string.
    payment = next((package / "api").rglob("create_payment.py")).read_text()
    assert "idempotency_key: str," in payment
    assert "prefer: str | Unset = UNSET" in payment
