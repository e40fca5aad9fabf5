"""``with_bootstrap``: a ``--bootstrap`` flag replaces only the bootstrap of a service's settings."""

from __future__ import annotations

import pytest

from payments.processor.main import ProcessorSettings
from payments.settings import with_bootstrap


def test_a_bootstrap_flag_overrides_the_environment_and_keeps_everything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYMENTS_KAFKA__BOOTSTRAP", "10.0.0.1:9092")
    monkeypatch.setenv("PAYMENTS_KAFKA__TOPICS__RESULTS", "t1.payments.results")
    settings = ProcessorSettings(instance=3)
    flagged = with_bootstrap(settings, "127.0.0.1:19092")
    assert flagged.kafka.bootstrap == "127.0.0.1:19092"
    assert flagged.kafka.topics.results == "t1.payments.results"
    assert flagged.instance == 3
    assert settings.kafka.bootstrap == "10.0.0.1:9092"  # frozen: the original is untouched


@pytest.mark.parametrize("flag", [None, ""])
def test_no_bootstrap_flag_keeps_the_environments(monkeypatch: pytest.MonkeyPatch, flag: str | None) -> None:
    monkeypatch.setenv("PAYMENTS_KAFKA__BOOTSTRAP", "10.0.0.1:9092")
    settings = ProcessorSettings()
    assert with_bootstrap(settings, flag) is settings
