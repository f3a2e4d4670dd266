"""The Redis users a secure stack gets, on a real redis-server: each service writes only its own registry keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from acceptance.redis_acl import RedisUsers
from acceptance.redis_server import RedisServer

SERVICES = ["risk-monitor", "trading-system-engine", "configuration-service"]


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    server = RedisServer(users=RedisUsers.create(SERVICES)).start()
    yield server
    server.close()


def client(server: RedisServer, user: str) -> redis.Redis:
    return redis.Redis.from_url(server.url_for(user), socket_timeout=2)


def test_a_service_writes_its_own_entry_and_reads_the_whole_registry(server: RedisServer) -> None:
    engine = client(server, "trading-system-engine")
    engine.hset("reg:v1:svc:trading-system-engine:inst:a", "port", "1")
    engine.zadd("reg:v1:svc:trading-system-engine:idx", {"a": 1})
    engine.sadd("reg:v1:services", "trading-system-engine")
    assert client(server, "risk-monitor").hget("reg:v1:svc:trading-system-engine:inst:a", "port") == b"1"


def test_a_service_cannot_write_another_services_keys_or_run_dangerous_commands(server: RedisServer) -> None:
    risk = client(server, "risk-monitor")
    with pytest.raises(redis.exceptions.NoPermissionError):
        risk.hset("reg:v1:svc:trading-system-engine:inst:x", "host", "203.0.113.7")
    with pytest.raises(redis.exceptions.NoPermissionError):
        risk.set("cfg:v1:testing:risk.max_order_quantity", "1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        risk.flushall()


def test_only_the_configuration_service_writes_configuration(server: RedisServer) -> None:
    client(server, "configuration-service").hset("cfg:v1:testing:k", "value", "1")


def test_the_default_user_is_off_and_the_suite_may_do_everything(server: RedisServer) -> None:
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(server.plain_url, socket_timeout=2).ping()
    suite = redis.Redis.from_url(server.url, socket_timeout=2)
    suite.set("anything", "1")
    suite.flushall()
