"""Finding the running dev stack: the state dir from cwd or $PAYMENTS_DEVSTACK_DIR, parsing, precedence."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from payments.devstack.discovery import (
    DiscoveryError,
    StackInfo,
    discover_settings,
    find_stack,
    parse_stack,
    remove_stack,
    render_stack,
    resolve,
    stack_dir,
    write_stack,
)
from payments.settings import KafkaSettings, RedisSettings, TopicNames

INFO = StackInfo(
    bootstrap="127.0.0.1:41001",
    partitions=4,
    topics=TopicNames(results="x.results"),
    redis_url="redis://127.0.0.1:41002/0",
    psp_url="http://127.0.0.1:41003",
    gateway_url="http://127.0.0.1:41004",
    supervisor_pid=None,
)


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    ops_port: int = 0


@pytest.fixture(autouse=True)
def _no_payments_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings classes read the real environment: nothing of the caller's may leak in."""
    import os

    for name in list(os.environ):
        if name.startswith("PAYMENTS_"):
            monkeypatch.delenv(name)


def _stack_in(root: Path, info: StackInfo = INFO) -> Path:
    d = root / ".devstack"
    d.mkdir(parents=True)
    write_stack(d, info)
    return d


def test_round_trip() -> None:
    assert parse_stack(render_stack(INFO)) == INFO


def test_garbage_is_a_discovery_error() -> None:
    with pytest.raises(DiscoveryError):
        parse_stack('{"bootstrap": "x"}')


def test_state_dir_is_found_from_cwd_upwards(tmp_path: Path) -> None:
    d = _stack_in(tmp_path)
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert stack_dir(nested, {}) == d
    assert stack_dir(tmp_path, {}) == d


def test_a_devstack_dir_without_a_stack_file_is_not_a_stack(tmp_path: Path) -> None:
    (tmp_path / ".devstack").mkdir()
    assert find_stack(tmp_path, {}) is None


def test_env_override_and_off(tmp_path: Path) -> None:
    d = _stack_in(tmp_path / "elsewhere")
    assert stack_dir(tmp_path, {"PAYMENTS_DEVSTACK_DIR": str(d)}) == d
    _stack_in(tmp_path)
    assert stack_dir(tmp_path, {"PAYMENTS_DEVSTACK_DIR": "off"}) is None


def test_a_stack_whose_supervisor_is_gone_is_ignored(tmp_path: Path) -> None:
    _stack_in(tmp_path, INFO.model_copy(update={"supervisor_pid": 12345}))
    assert find_stack(tmp_path, {}, pid_alive=lambda _: False) is None
    found = find_stack(tmp_path, {}, pid_alive=lambda _: True)
    assert found is not None
    assert found.info.bootstrap == INFO.bootstrap


def test_remove(tmp_path: Path) -> None:
    d = _stack_in(tmp_path)
    remove_stack(d)
    assert find_stack(tmp_path, {}) is None
    remove_stack(d)  # idempotent


def test_precedence_flag_env_stack_default(tmp_path: Path) -> None:
    found = find_stack(_stack_in(tmp_path).parent, {})
    res = resolve(
        {"kafka", "redis"},
        {("kafka", "bootstrap"): "flag:1"},
        {"PAYMENTS_REDIS__URL": "redis://env:1/0"},
        found,
    )
    assert res.kwargs["kafka"]["bootstrap"] == "flag:1"
    assert "redis" not in res.kwargs  # the settings class reads the environment itself
    assert res.kwargs["kafka"]["partitions"] == 4
    assert res.kwargs["kafka"]["topics"]["results"] == "x.results"
    assert "psp_url" not in res.sources  # not a field of this settings class
    assert res.sources["kafka.bootstrap"] == "flag"
    assert res.sources["redis.url"] == "env"
    assert res.sources["kafka.partitions"].endswith("stack.json")
    no_stack = resolve({"kafka"}, {}, {}, None)
    assert no_stack.kwargs == {}
    assert no_stack.sources["kafka.bootstrap"] == "default"


def test_discover_settings_builds_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _stack_in(tmp_path)
    monkeypatch.setenv("PAYMENTS_KAFKA__TOPICS__LEDGER", "env.ledger")
    env = {"PAYMENTS_KAFKA__TOPICS__LEDGER": "env.ledger"}
    settings, res = discover_settings(
        _Settings, {"ops_port": 9, "kafka.bootstrap": None}, cwd=tmp_path, env=env
    )
    assert settings.kafka.bootstrap == INFO.bootstrap
    assert settings.kafka.topics.results == "x.results"
    assert settings.kafka.topics.ledger == "env.ledger"  # env beats the stack, and nested merges
    assert settings.redis.url == INFO.redis_url
    assert settings.ops_port == 9
    assert f"kafka.bootstrap={INFO.bootstrap} from {tmp_path / '.devstack' / 'stack.json'}" in res.describe(
        settings
    )
    assert "redis.url=" in res.describe(settings)


def test_an_unreadable_stack_file_falls_back_to_defaults(tmp_path: Path) -> None:
    d = tmp_path / ".devstack"
    d.mkdir()
    (d / "stack.json").write_text("{")
    settings, res = discover_settings(_Settings, cwd=tmp_path, env={})
    assert settings.kafka.bootstrap == KafkaSettings().bootstrap
    assert res.sources["kafka.bootstrap"] == "default"


def test_describe_never_shows_a_redis_password() -> None:
    class _WithSecret(_Settings):
        pass

    settings = _WithSecret(redis=RedisSettings(url="redis://user:hunter2@db:6379/0"))
    res = resolve({"redis"}, {("redis", "url"): settings.redis.url}, {}, None)
    text = res.describe(settings)
    assert "hunter2" not in text
    assert "redis.url=redis://user:***@db:6379/0 from flag" in text
