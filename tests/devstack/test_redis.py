"""The local redis-server: a real server on a free loopback port, gone without a trace when stopped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from payments.devstack.errors import DevstackError
from payments.devstack.redis import RedisServer, ensure_redis_installed


def test_the_session_server_answers_ping(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping() is True
    finally:
        client.close()


def test_redis_db_starts_empty(redis_db: str) -> None:
    client = redis.Redis.from_url(redis_db)
    try:
        assert client.dbsize() == 0
        client.set("left-behind", "1")  # the next test using redis_db must not see this
    finally:
        client.close()


def test_redis_db_is_flushed_between_tests(redis_db: str) -> None:
    client = redis.Redis.from_url(redis_db)
    try:
        assert client.get("left-behind") is None
    finally:
        client.close()


def test_a_server_of_its_own_listens_on_loopback_and_leaves_nothing_behind() -> None:
    with RedisServer() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        pid, data_dir = server.pid, server.data_dir
        assert pid is not None
        client = redis.Redis.from_url(server.url)
        try:
            assert client.ping() is True
            assert client.config_get("save") == {"save": ""}  # nothing is persisted
            assert client.config_get("bind") == {"bind": "127.0.0.1"}
        finally:
            client.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not data_dir.exists()


def test_ensure_redis_installed_finds_the_installed_server() -> None:
    assert Path(ensure_redis_installed()).name == "redis-server"


def test_a_missing_server_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(DevstackError, match="apt-get install -y redis-server"):
        RedisServer(tmp_path).start()
