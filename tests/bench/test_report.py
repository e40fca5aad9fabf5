"""The table rows, the Markdown table and the JSON writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.config import Accounts, Load, Mode, Scenario, System
from bench.loadgen import LoadResult, Sample
from bench.measure import RunResult, measure
from bench.report import markdown, rows, scenario_markdown, write_json


def _result(system: System, per_s: int) -> RunResult:
    scenario = Scenario("a-hot", "(a)", Accounts.HOT, 0, Load(Mode.CLOSED, 10, warmup_s=0), (system,))
    samples = [
        Sample(due=i / per_s, answered=i / per_s + 0.002, status=201, op_id=f"p{i}")
        for i in range(per_s * 10)
    ]
    return measure(scenario, system, LoadResult(Mode.CLOSED, 0.0, 10.0, samples), cpu_s={"app": 1.0})


def test_rows_give_ours_relative_to_each_system() -> None:
    results = [_result(System.OURS, 100), _result(System.BASELINE_LOCKED, 25)]
    ours, baseline = rows(results)
    assert ours.vs_ours == "1.00x"
    assert baseline.vs_ours == "4.00x"
    assert baseline.completed_per_s == pytest.approx(25.0)
    assert baseline.completion_p50 == "2.0"
    assert baseline.cpu_ms == "4.0"  # 1 s of CPU for 250 payments


def test_markdown_table_shape() -> None:
    text = markdown(["a", "b"], [["1", "2"], ["3", "4"]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |", "| 3 | 4 |"]
    md = scenario_markdown([_result(System.OURS, 10)])
    assert md.count("\n") == 2
    assert "| a-hot | ours |" in md


def test_json_results_round_trip_without_nan_or_inf(tmp_path: Path) -> None:
    result = _result(System.OURS, 10)
    path = tmp_path / "out" / "x.json"
    write_json(path, {"runs": [result.as_json()]})
    doc = json.loads(path.read_text())
    assert doc["runs"][0]["system"] == "ours"
    assert doc["runs"][0]["completion_latency_s"]["missing"] == 0


def test_json_writer_refuses_nan(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        write_json(tmp_path / "bad.json", {"x": float("nan")})
