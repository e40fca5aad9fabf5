"""The bounded fault-injection campaign CI runs: one seed per scenario, every fault kind at least once,
against the real stack (its own broker and redis-server, restarted by the faults). The seeds include
those that found bugs, so each of those runs again here:

* crash/10: the PSP simulator reused movement ids after a reseed and its log lost movements;
* infra/2: a processor blocked forever in send_offsets_to_transaction() after a broker restart;
* pause/11: the judge took a 409 "in flight" for a stored answer and failed a correct replay of the
  answer to a request that timed out while the gateway was paused.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from payments.chaos.model import FaultKind
from payments.chaos.plan import SCENARIOS
from tests.chaos.test_plan import CI_DURATION_S, CI_SEEDS

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bounded_campaign_covers_every_fault_kind_without_a_violation(tmp_path: Path) -> None:
    out = tmp_path / "chaos"
    seeds = ",".join(str(s) for s in CI_SEEDS)
    proc = subprocess.run(
        [sys.executable, "-m", "payments.cli", "chaos", "--seeds", seeds, "--duration", str(CI_DURATION_S),
         "--out", str(out)],
        capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    report = "\n".join(line for line in proc.stdout.splitlines() if not line.startswith("%"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == len(CI_SEEDS), report
    assert set(summary["by_scenario"]) == set(SCENARIOS)
    assert set(summary["faults_by_kind"]) == {k.value for k in FaultKind}, report
    assert summary["run_errors"] == 0, report[-6000:]
    assert summary["violations"] == 0, report[-6000:]
    assert proc.returncode == 0, report[-6000:]
    assert summary["ops_acknowledged"] > 1000  # the load was real
