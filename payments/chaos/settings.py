"""Settings of a chaos campaign (``PAYMENTS_CHAOS_*``): timings that make a run converge in seconds."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ChaosSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_CHAOS_", frozen=True)

    partitions: int = Field(default=4, ge=1)  # per topic; two processors share them
    processors: int = Field(default=2, ge=1, le=2)  # TARGETS names processor-0 and processor-1
    # The operation deadline (docs/design.md §2 step 6). Short, so that invariant 9 is judged within a run.
    operation_ttl_ms: int = Field(default=30_000, ge=5_000)
    expire_grace_ms: int = Field(default=8_000, ge=1_000)  # above the psp-caller's call time-out
    psp_call_timeout_s: float = Field(default=3.0, gt=0)
    psp_timeout_hang_s: float = Field(default=5.0, gt=0)  # an injected PSP time-out hangs this long
    session_timeout_ms: int = Field(default=6_000, ge=3_000)  # how soon a dead consumer's partitions move
    client_timeout_s: float = Field(default=5.0, gt=0)  # one HTTP attempt of the workload's clients
    retry_window_s: float = Field(default=40.0, gt=0)  # after the load window, how long clients retry
    converge_slack_s: float = Field(default=30.0, ge=0)  # beyond TTL + grace, before invariant 9 fails
    read_every_s: float = Field(default=0.25, gt=0)  # each account's reader polls GET this often
