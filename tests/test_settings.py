"""``with_bootstrap``: a ``--bootstrap`` flag replaces only the bootstrap of a service's settings."""

from __future__ import annotations

import pytest

from payments.processor.main import ProcessorSettings
from payments.settings import KafkaSettings, with_bootstrap
from payments.streaming.config import consumer_config, producer_config


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


def test_streaming_consumers_long_poll_but_producers_get_no_consumer_properties() -> None:
    kafka = KafkaSettings(bootstrap="127.0.0.1:1", fetch_min_bytes=4096, fetch_wait_max_ms=25)
    consumer = consumer_config(kafka, "g")
    assert (consumer["fetch.min.bytes"], consumer["fetch.wait.max.ms"]) == (4096, 25)
    # librdkafka warns about (and ignores) consumer properties on a producer: keep them apart.
    assert not {"fetch.min.bytes", "fetch.wait.max.ms"} & set(producer_config(kafka))
