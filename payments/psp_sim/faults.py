"""Fault configuration and seeded fault decisions, pure: the caller owns the ``random.Random``.

Reproducibility contract: every money-moving request draws exactly one number from the fault stream
(``decide_fault``) whatever the rates, so the same seed and the same request sequence give the same faults.
The order of ``REQUEST_FAULTS`` is part of that contract; changing it changes every seeded run.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class FaultKind(StrEnum):
    TIMEOUT_AFTER_COMMIT = "timeout_after_commit"
    ERROR_BEFORE_COMMIT = "error_before_commit"
    ERROR_AFTER_COMMIT = "error_after_commit"
    AMBIGUOUS_ERROR = "ambiguous_error"
    RATE_LIMIT = "rate_limit"
    # Not drawn per request; listed so metrics label every injected fault the same way.
    OUTAGE = "outage"
    WEBHOOK_DUPLICATE = "webhook_duplicate"
    WEBHOOK_REORDER = "webhook_reorder"


REQUEST_FAULTS: tuple[FaultKind, ...] = (
    FaultKind.TIMEOUT_AFTER_COMMIT,
    FaultKind.ERROR_BEFORE_COMMIT,
    FaultKind.ERROR_AFTER_COMMIT,
    FaultKind.AMBIGUOUS_ERROR,
    FaultKind.RATE_LIMIT,
)


class LatencyConfig(BaseModel):
    """Response latency in milliseconds; ``{"median": 0, "max": 0}`` means no delay."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    median: NonNegative
    max: NonNegative

    @model_validator(mode="after")
    def _max_not_below_median(self) -> Self:
        if self.max < self.median:
            raise ValueError("latency_ms.max must be >= latency_ms.median")
        return self


class FaultConfig(BaseModel):
    """What ``POST /_sim/faults`` accepts and ``GET /_sim/faults`` shows.

    Request fault rates are probabilities of mutually exclusive outcomes, so they must sum to at most 1.
    ``outage_seconds`` starts an outage window when posted; when shown it is the time left in the window.
    ``seed``, when posted, reseeds every random stream of the simulator.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_after_commit: Probability = 0.0
    error_before_commit: Probability = 0.0
    error_after_commit: Probability = 0.0
    ambiguous_error: Probability = 0.0
    rate_limit: Probability = 0.0
    webhook_duplicate: Probability = 0.0
    webhook_reorder: Probability = 0.0
    webhook_delay_ms: NonNegative = 0.0
    # How long a reordered webhook is held back so that later events overtake it.
    webhook_reorder_hold_ms: NonNegative = 1000.0
    outage_seconds: NonNegative = 0.0
    timeout_hang_s: NonNegative = 30.0
    latency_ms: LatencyConfig = LatencyConfig(median=0.0, max=0.0)
    seed: int | None = None

    @model_validator(mode="after")
    def _rates_are_exclusive(self) -> Self:
        total = sum(self.rate_of(kind) for kind in REQUEST_FAULTS)
        if total > 1.0 + 1e-9:
            names = ", ".join(kind.value for kind in REQUEST_FAULTS)
            raise ValueError(f"{names} are exclusive outcomes of one request and must sum to <= 1")
        return self

    def rate_of(self, kind: FaultKind) -> float:
        rate: float = getattr(self, kind.value)
        return rate


def decide_fault(rng: random.Random, config: FaultConfig) -> FaultKind | None:
    """The fault of one money-moving request, or None. Always draws exactly one number."""
    draw = rng.random()
    threshold = 0.0
    for kind in REQUEST_FAULTS:
        threshold += config.rate_of(kind)
        if draw < threshold:
            return kind
    return None


def decide_read_fault(rng: random.Random, config: FaultConfig) -> FaultKind | None:
    """The fault of one read (lookup, report). Reads move no money, so only rate limiting applies."""
    return FaultKind.RATE_LIMIT if rng.random() < config.rate_limit else None


def ambiguous_commits(rng: random.Random) -> bool:
    """Whether an ambiguous error happens after the movement was committed (a fair coin)."""
    return rng.random() < 0.5


@dataclass(frozen=True)
class WebhookPlan:
    duplicate: bool
    reorder: bool


def decide_webhook(rng: random.Random, config: FaultConfig) -> WebhookPlan:
    """Duplicate and reorder decisions of one event. Always draws two numbers."""
    duplicate = rng.random() < config.webhook_duplicate
    reorder = rng.random() < config.webhook_reorder
    return WebhookPlan(duplicate=duplicate, reorder=reorder)


def _deep_merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in patch.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def merge_faults(current: FaultConfig, patch: Mapping[str, Any]) -> FaultConfig:
    """``current`` with the fields of a partial body replaced (nested ``latency_ms`` merged too).

    Raises ``pydantic.ValidationError`` for unknown fields, wrong types or out-of-range values.
    """
    return FaultConfig.model_validate(_deep_merge(current.model_dump(), patch))
