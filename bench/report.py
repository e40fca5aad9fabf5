"""Results out: the terminal table (rich), the JSON files in ``bench/results/`` and a Markdown table for
``bench/README.md``. Pure but for the writes."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.measure import RunResult, fmt_ms
from bench.stats import ratio


@dataclass(frozen=True)
class Row:
    scenario: str
    system: str
    accepted_per_s: float
    completed_per_s: float
    accept_p50: str
    accept_p99: str
    completion_p50: str
    completion_p99: str
    unfinished: int
    cpu_ms: str  # CPU milliseconds of the whole system per completed payment
    vs_ours: str  # ours' completed/s divided by this row's


def _fmt_rate(x: float) -> str:
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def _fmt_ratio(x: float) -> str:
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "∞"
    return f"{x:.2f}x" if x < 10 else f"{x:,.0f}x"


def rows(results: Sequence[RunResult]) -> list[Row]:
    ours = {r.scenario: r.completed_per_s for r in results if r.system == "ours"}
    out = []
    for r in results:
        vs = (
            "1.00x"
            if r.system == "ours"
            else (_fmt_ratio(ratio(ours[r.scenario], r.completed_per_s)) if r.scenario in ours else "-")
        )
        out.append(
            Row(
                scenario=r.scenario,
                system=r.system,
                accepted_per_s=r.accepted_per_s,
                completed_per_s=r.completed_per_s,
                accept_p50=fmt_ms(r.accept.p50),
                accept_p99=fmt_ms(r.accept.p99),
                completion_p50=fmt_ms(r.completion.p50),
                completion_p99=fmt_ms(r.completion.p99),
                unfinished=r.completion.missing,
                cpu_ms="-" if math.isnan(r.cpu_ms_per_payment) else f"{r.cpu_ms_per_payment:.1f}",
                vs_ours=vs,
            )
        )
    return out


HEADERS = (
    "scenario", "system", "accepted/s", "completed/s", "accept p50 ms", "accept p99 ms",
    "completion p50 ms", "completion p99 ms", "unfinished", "CPU ms/payment", "ours ÷ this (completed/s)",
)  # fmt: skip


def _cells(row: Row) -> list[str]:
    return [
        row.scenario, row.system, _fmt_rate(row.accepted_per_s), _fmt_rate(row.completed_per_s), row.accept_p50,
        row.accept_p99, row.completion_p50, row.completion_p99, str(row.unfinished), row.cpu_ms, row.vs_ours,
    ]  # fmt: skip


def scenario_table(results: Sequence[RunResult], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for i, h in enumerate(HEADERS):
        table.add_column(h, justify="left" if i < 2 else "right")
    last = None
    for row in rows(results):
        if last is not None and row.scenario != last:
            table.add_section()
        table.add_row(*_cells(row))
        last = row.scenario
    return table


def markdown(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def scenario_markdown(results: Sequence[RunResult]) -> str:
    return markdown(HEADERS, [_cells(r) for r in rows(results)])


def simple_table(title: str, headers: Sequence[str], body: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i == 0 else "right")
    for cells in body:
        table.add_row(*cells)
    return table


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
