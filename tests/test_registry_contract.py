"""The registry contract checker on a real redis-server: valid entries pass, each broken field is named."""

from __future__ import annotations

import redis

from acceptance.registry_contract import read_service

VALID = {
    "instance_id": "a1", "service": "greeter", "host": "127.0.0.1", "port": "50051", "version": "1.0.0",
    "api_version": "v1", "status": "SERVING", "started_at": "1796150823114", "heartbeat_at": "1796150830118",
    "incarnation": "1796150823109402771",
}


def register(client: redis.Redis, instance_id: str, fields: dict[str, str], *, indexed: bool = True) -> None:
    seconds, _ = client.time()
    key = f"reg:v1:svc:greeter:inst:{instance_id}"
    client.hset(key, mapping=fields)
    client.pexpire(key, 3000)
    if indexed:
        client.zadd("reg:v1:svc:greeter:idx", {instance_id: int(seconds) * 1000 + 3000})
    client.sadd("reg:v1:services", "greeter")


def test_a_valid_entry_is_serving_at_its_endpoint(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    register(client, "a1", VALID)
    reading = read_service(client, "greeter", redis_url)
    assert reading.problems == []
    assert [entry.endpoint for entry in reading.serving] == ["127.0.0.1:50051"]


def test_every_broken_field_is_named_with_its_key(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    broken = {k: v for k, v in VALID.items() if k not in ("version", "api_version")}
    register(client, "a1", {**broken, "port": "80.5", "host": "0.0.0.0", "heartbeat_at": "1796150830"})
    reading = read_service(client, "greeter", redis_url)
    assert reading.serving == []
    [problem] = reading.problems
    assert problem.startswith("reg:v1:svc:greeter:inst:a1: missing fields version, api_version; ")
    assert "host '0.0.0.0' is not an address a caller can dial" in problem
    assert "port '80.5' is not an integer 1-65535" in problem
    assert "heartbeat_at '1796150830' is not a Unix time in milliseconds" in problem
    assert "no SERVING instance of 'greeter' is registered in " + redis_url in reading.explain_none()


def test_an_entry_missing_from_the_index_or_without_expiry_is_reported(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    register(client, "b2", {**VALID, "instance_id": "b2"}, indexed=False)
    register(client, "c3", {**VALID, "instance_id": "c3"})
    client.persist("reg:v1:svc:greeter:inst:c3")
    problems = read_service(client, "greeter").problems
    assert "reg:v1:svc:greeter:inst:c3: it has no expiry: set PEXPIRE to the TTL at every heartbeat" in problems
    assert any(p.startswith("reg:v1:svc:greeter:inst:b2 exists but reg:v1:svc:greeter:idx does not list 'b2'")
               for p in problems)


def test_a_draining_entry_is_not_an_instance_and_says_why(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    register(client, "a1", {**VALID, "status": "DRAINING"})
    reading = read_service(client, "greeter", redis_url)
    assert reading.serving == [] and len(reading.draining) == 1
    assert "reg:v1:svc:greeter:inst:a1 is DRAINING (shutting down)" in reading.explain_none()


def test_an_index_score_in_seconds_is_named_as_such(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    register(client, "a1", VALID)
    client.zadd("reg:v1:svc:greeter:idx", {"a1": int(client.time()[0]) + 3})
    [problem] = read_service(client, "greeter").problems
    assert "(seconds instead of milliseconds?): callers skip it while reg:v1:svc:greeter:inst:a1 still lives" in problem


def test_a_field_that_is_not_a_number_is_a_problem_not_a_crash(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    register(client, "a1", {**VALID, "port": "²", "incarnation": "--5"})
    [problem] = read_service(client, "greeter").problems
    assert "port '²' is not an integer 1-65535" in problem and "incarnation '--5' is not a non-negative" in problem
