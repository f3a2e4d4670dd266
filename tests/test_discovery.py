"""The service registry against a real redis-server: registration, expiry, repair, incarnations, the resolver."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import redis
import redis.asyncio

from acceptance.redis_server import RedisServer, free_port
from acceptance.waits import wait_until_async
from ecosystem.discovery import (
    EVENTS_KEY,
    SERVICES_KEY,
    RegistryError,
    ServiceInstance,
    ServiceRegistration,
    ServiceResolver,
    index_key,
    instance_key,
    list_services,
    lookup,
    lookup_sync,
    registry_snapshot,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVICE = "risk-monitor"

Register = Callable[..., Awaitable[ServiceRegistration]]
T = TypeVar("T")


def registration(client: redis.asyncio.Redis, **overrides: object) -> ServiceRegistration:
    fields: dict = {"service": SERVICE, "host": "127.0.0.1", "port": 50051, "version": "1.2.3", **overrides}
    return ServiceRegistration(client, **fields)


@pytest.fixture
async def register(aredis: redis.asyncio.Redis) -> AsyncIterator[Register]:
    """Start registrations on the session Redis; every one is stopped after the test."""
    started: list[ServiceRegistration] = []

    async def register_(**overrides: object) -> ServiceRegistration:
        entry = registration(aredis, **overrides)
        await entry.start()
        started.append(entry)
        return entry

    yield register_
    for entry in started:
        await entry.stop()


@pytest.fixture
async def resolver(aredis: redis.asyncio.Redis) -> AsyncIterator[ServiceResolver]:
    """A resolver whose periodic re-read never comes during a test: only the watch can update it."""
    watching = ServiceResolver(aredis, refresh_interval_s=3600)
    await watching.start()
    yield watching
    await watching.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A private redis-server, for tests that stop and restart Redis."""
    server = RedisServer().start()
    yield server
    server.close()


async def events(client: redis.asyncio.Redis) -> list[dict[str, str]]:
    return [fields for _id, fields in await client.xrange(EVENTS_KEY)]


async def redis_now_ms(client: redis.asyncio.Redis) -> int:
    seconds, micros = await client.time()
    return seconds * 1000 + micros // 1000


def probe(read: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    """A probe for wait_until_async that reads in-memory state."""

    async def read_now() -> T:
        return read()

    return read_now


def logged(capsys: pytest.CaptureFixture[str], seen: list[dict]) -> list[dict]:
    """Every log_event line written so far (accumulated in `seen`: readouterr consumes what it returns)."""
    seen.extend(json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{"))
    return seen


async def test_a_registered_instance_is_found_with_a_routable_host_and_an_int_port(
    register: Register, aredis: redis.asyncio.Redis, redis_url: str
) -> None:
    entry = await register(meta={"zone": "a"})

    [found] = await lookup(aredis, SERVICE)

    assert (found.instance_id, found.service, found.endpoint) == (entry.instance_id, SERVICE, "127.0.0.1:50051")
    assert type(found.port) is int
    assert (found.version, found.api_version, found.status, found.meta) == ("1.2.3", "v1", "SERVING", {"zone": "a"})
    assert found.incarnation == entry.incarnation
    assert found.expires_at_ms == found.heartbeat_at_ms + entry.ttl_ms
    assert await list_services(aredis) == [SERVICE]
    with redis.Redis.from_url(redis_url) as raw_client:  # bytes replies: no decode_responses
        assert lookup_sync(raw_client, SERVICE) == [found]
        assert registry_snapshot(raw_client) == {SERVICE: [found.as_dict()]}


async def test_heartbeats_emit_an_event_only_when_the_entry_changes(
    register: Register, aredis: redis.asyncio.Redis
) -> None:
    entry = await register()
    assert await entry.heartbeat()
    assert await entry.heartbeat()

    assert await events(aredis) == [
        {"type": "up", "service": SERVICE, "instance_id": entry.instance_id, "incarnation": str(entry.incarnation)}
    ]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
async def test_an_unroutable_host_is_refused_and_nothing_is_written(host: str, aredis: redis.asyncio.Redis) -> None:
    entry = registration(aredis, host=host)

    with pytest.raises(ValueError, match="not routable"):
        await entry.start()

    assert await aredis.keys("*") == []


async def test_a_graceful_stop_removes_the_entry_at_once_and_announces_down(
    register: Register, aredis: redis.asyncio.Redis
) -> None:
    entry = await register()

    await entry.stop()

    assert await lookup(aredis, SERVICE) == []
    assert await aredis.exists(instance_key(SERVICE, entry.instance_id)) == 0
    assert await aredis.zscore(index_key(SERVICE), entry.instance_id) is None
    assert (await events(aredis))[-1] == {
        "type": "down", "service": SERVICE, "instance_id": entry.instance_id, "incarnation": str(entry.incarnation)
    }


async def test_a_draining_instance_is_not_looked_up_but_stays_in_the_snapshot(
    register: Register, aredis: redis.asyncio.Redis, redis_url: str
) -> None:
    entry = await register()

    await entry.set_status("DRAINING")

    assert await lookup(aredis, SERVICE) == []
    assert [e["type"] for e in await events(aredis)] == ["up", "update"]
    with redis.Redis.from_url(redis_url) as client:
        assert [e["status"] for e in registry_snapshot(client)[SERVICE]] == ["DRAINING"]


async def test_an_entry_with_a_float_port_is_dropped_not_misparsed(aredis: redis.asyncio.Redis) -> None:
    now_ms = await redis_now_ms(aredis)
    await aredis.hset(instance_key(SERVICE, "legacy"), mapping={
        "instance_id": "legacy", "service": SERVICE, "host": "127.0.0.1", "port": "50051.0", "version": "1",
        "api_version": "v1", "status": "SERVING", "started_at": now_ms, "heartbeat_at": now_ms, "incarnation": 1,
    })
    await aredis.zadd(index_key(SERVICE), {"legacy": now_ms + 60_000})

    assert await lookup(aredis, SERVICE) == []


KILLABLE_INSTANCE = """
import asyncio, sys
import redis.asyncio
from ecosystem.discovery import ServiceRegistration

async def main():
    client = redis.asyncio.Redis.from_url(sys.argv[1])
    entry = ServiceRegistration(client, service=sys.argv[2], host="127.0.0.1", port=50052, version="1", ttl_ms=600)
    await entry.start()
    print(entry.instance_id, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@contextlib.asynccontextmanager
async def killable_instance(redis_url: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """A separate process registered with a 600 ms TTL: (process, instance_id); killed on exit if still running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLABLE_INSTANCE, redis_url, SERVICE,
        cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=15)
        assert line, f"the registering subprocess exited: {(await process.stderr.read()).decode()}"
        yield process, line.decode().strip()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_killed_instance_leaves_within_its_ttl_and_not_before_its_expiry(
    aredis: redis.asyncio.Redis, redis_url: str
) -> None:
    async with killable_instance(redis_url) as (process, instance_id):
        last_seen = await lookup(aredis, SERVICE)
        assert [i.instance_id for i in last_seen] == [instance_id]
        process.kill()
        await process.wait()
        killed_at_ms = await redis_now_ms(aredis)

    async def still_there() -> list[ServiceInstance]:
        found = await lookup(aredis, SERVICE)
        last_seen[:] = found or last_seen
        return found

    await wait_until_async(still_there, lambda found: not found, timeout=5, what=f"killed {instance_id} expires")
    gone_at_ms = await redis_now_ms(aredis)
    assert last_seen[0].expires_at_ms <= killed_at_ms + 600, "the last heartbeat promised more than one TTL"
    assert gone_at_ms >= last_seen[0].expires_at_ms, "the entry left lookups before its expiry"


async def test_the_resolver_drops_a_killed_instance_without_a_down_event(
    resolver: ServiceResolver, aredis: redis.asyncio.Redis, redis_url: str
) -> None:
    heard: list[list[str]] = []
    resolver.subscribe(lambda _service, found: heard.append([i.instance_id for i in found]))
    async with killable_instance(redis_url) as (process, instance_id):
        assert [i.instance_id for i in await resolver.instances(SERVICE)] == [instance_id]
        process.kill()
        await process.wait()

    await wait_until_async(probe(lambda: heard), timeout=5, what=f"the resolver re-reads after {instance_id} expires")
    assert heard == [[]]
    assert await resolver.instances(SERVICE) == []
    assert [e["type"] for e in await events(aredis)] == ["up"]


async def test_flushall_is_repaired_by_the_next_heartbeat(register: Register, aredis: redis.asyncio.Redis) -> None:
    entry = await register(ttl_ms=600)

    await aredis.flushall()
    repaired = await wait_until_async(
        lambda: lookup(aredis, SERVICE), timeout=5, what="the background heartbeat re-registers after FLUSHALL"
    )
    assert [i.instance_id for i in repaired] == [entry.instance_id]
    assert await aredis.smembers(SERVICES_KEY) == {SERVICE}

    await aredis.flushall()
    assert await entry.heartbeat()
    assert [i.instance_id for i in await lookup(aredis, SERVICE)] == [entry.instance_id]
    assert (await events(aredis))[-1]["type"] == "up"


async def test_a_redis_restart_is_repaired_and_the_heartbeat_survives_the_outage(
    own_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    client = redis.asyncio.Redis.from_url(own_redis.url, decode_responses=True)
    entry = registration(client, ttl_ms=600)
    seen: list[dict] = []
    try:
        await entry.start()
        own_redis.stop()
        await wait_until_async(
            probe(lambda: [e["event"] for e in logged(capsys, seen)]),
            lambda names: "heartbeat_failed" in names,
            timeout=15,
            what="a failed heartbeat is logged while Redis is down",
        )
        own_redis.start()

        repaired = await wait_until_async(
            lambda: lookup(client, SERVICE), timeout=15, what="the heartbeat re-registers on the restarted Redis"
        )
        assert [i.instance_id for i in repaired] == [entry.instance_id]
    finally:
        with contextlib.suppress(RegistryError):
            await entry.stop()
        await client.aclose()


async def test_an_older_incarnation_is_refused_and_overwrites_nothing(
    register: Register, aredis: redis.asyncio.Redis
) -> None:
    newer = await register(instance_id="shared-id", incarnation=10**19, port=50061)
    older = registration(aredis, instance_id="shared-id", incarnation=10**19 - 1, port=50062)

    assert await older.heartbeat() is False
    with pytest.raises(RegistryError, match="newer incarnation"):
        await older.start()
    await older.stop()

    [found] = await lookup(aredis, SERVICE)
    assert (found.incarnation, found.port) == (newer.incarnation, 50061)


async def test_a_superseded_instance_is_told_with_the_owners_incarnation(
    register: Register, aredis: redis.asyncio.Redis
) -> None:
    told: list[str] = []
    entry = await register(instance_id="taken", incarnation=10, ttl_ms=300, on_superseded=told.append)
    await aredis.hset(instance_key(SERVICE, "taken"), "incarnation", "11")  # another process owns it now

    await wait_until_async(lambda: asyncio.sleep(0, told), timeout=5, what="the heartbeat finds the entry taken")

    assert told == ["11"], "told once, with the owner's incarnation"
    assert await aredis.hget(instance_key(SERVICE, "taken"), "incarnation") == "11", "the newer owner's entry stays"
    assert entry.instance_id == "taken"


async def test_the_resolver_picks_up_a_new_instance_through_the_watch(
    resolver: ServiceResolver, register: Register
) -> None:
    assert await resolver.instances(SERVICE) == []
    assert resolver.source(SERVICE) == "registry"

    entry = await register()

    found = await wait_until_async(
        lambda: resolver.instances(SERVICE), timeout=5, what="the watch delivers the new instance"
    )
    assert [i.instance_id for i in found] == [entry.instance_id]


async def test_a_resolver_that_read_late_asks_redis_before_dropping_a_live_instance(
    register: Register, aredis: redis.asyncio.Redis
) -> None:
    # No watch loop: the cache is as old as its one read, as when a busy machine runs the loop late.
    late = ServiceResolver(aredis)
    entry = await register(ttl_ms=300)
    [cached] = await late.instances(SERVICE)
    assert late.fresh_instances(SERVICE) == [cached], "within its expiry, the cached instance is served as it is"
    await wait_until_async(
        lambda: redis_now_ms(aredis), lambda now: now > cached.expires_at_ms, timeout=5,
        what="the cached expiry of the instance has passed (it keeps heartbeating)",
    )
    assert late.fresh_instances(SERVICE) is None, "past its expiry, the cached instance is for Redis to confirm"

    found = await late.instances(SERVICE)

    assert [i.instance_id for i in found] == [entry.instance_id]
    assert found[0].expires_at_ms > cached.expires_at_ms


async def test_the_resolver_drops_an_instance_that_starts_draining(
    resolver: ServiceResolver, register: Register
) -> None:
    entry = await register()
    assert len(await resolver.instances(SERVICE)) == 1

    await entry.set_status("DRAINING")

    await wait_until_async(
        lambda: resolver.instances(SERVICE), lambda found: found == [], timeout=5, what="the draining instance leaves"
    )


async def test_subscribers_hear_of_every_change_in_the_instance_set(
    resolver: ServiceResolver, register: Register
) -> None:
    heard: list[tuple[str, list[str]]] = []
    resolver.subscribe(lambda service, found: heard.append((service, [i.instance_id for i in found])))
    await resolver.instances(SERVICE)

    entry = await register()
    await wait_until_async(probe(lambda: heard), timeout=5, what="a subscriber hears of the new instance")
    await entry.stop()
    await wait_until_async(
        probe(lambda: heard), lambda h: len(h) == 2, timeout=5, what="a subscriber hears of the stop"
    )

    assert heard == [(SERVICE, [entry.instance_id]), (SERVICE, [])]


async def test_the_resolver_serves_its_cache_while_redis_is_down_and_recovers(
    own_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    registering = redis.asyncio.Redis.from_url(own_redis.url, decode_responses=True)
    resolving = redis.asyncio.Redis.from_url(own_redis.url, decode_responses=True)
    entry = registration(registering, ttl_ms=600)
    watching = ServiceResolver(resolving, refresh_interval_s=3600)
    seen: list[dict] = []
    try:
        await entry.start()
        await watching.start()
        known = await watching.instances(SERVICE)
        assert len(known) == 1

        own_redis.stop()
        await wait_until_async(
            probe(lambda: watching.source(SERVICE)), lambda source: source == "cache", timeout=15,
            what="the resolver notices Redis is unreachable",
        )
        await wait_until_async(
            probe(lambda: time.time_ns() // 1_000_000), lambda now_ms: now_ms > known[0].expires_at_ms,
            timeout=5, what="the cached instance's expiry passes",
        )
        assert await watching.instances(SERVICE) == known

        own_redis.start()
        await wait_until_async(
            probe(lambda: watching.source(SERVICE)), lambda source: source == "registry", timeout=15,
            what="the resolver reads the restarted Redis",
        )
        found = await wait_until_async(
            lambda: watching.instances(SERVICE), timeout=15, what="the re-registered instance is resolved"
        )
        assert [i.instance_id for i in found] == [entry.instance_id]
        assert [e["event"] for e in logged(capsys, seen)].count("registry_unreachable") == 1
    finally:
        await watching.close()
        with contextlib.suppress(RegistryError):
            await entry.stop()
        await registering.aclose()
        await resolving.aclose()


async def test_after_an_outage_a_known_instance_gets_a_whole_ttl_to_register_again(own_redis: RedisServer) -> None:
    """Its heartbeats failed while Redis was down, which is no sign that it died: until it had a TTL on the Redis
    that came back (empty, as a restart without persistence leaves it), it is still called."""
    registering = redis.asyncio.Redis.from_url(own_redis.url, decode_responses=True, retry=None)
    resolving = redis.asyncio.Redis.from_url(own_redis.url, decode_responses=True)
    entry = registration(registering, ttl_ms=3000)  # heartbeats only when the test says so
    watching = ServiceResolver(resolving, refresh_interval_s=3600)
    try:
        assert await entry.heartbeat()
        await watching.start()
        [known] = await watching.instances(SERVICE)

        own_redis.stop()
        await wait_until_async(
            probe(lambda: watching.source(SERVICE)), lambda source: source == "cache", timeout=15,
            what="the resolver notices Redis is unreachable",
        )
        await wait_until_async(
            probe(lambda: time.time_ns() // 1_000_000), lambda now_ms: now_ms > known.expires_at_ms,
            timeout=10, what="the cached instance's expiry passes during the outage",
        )
        own_redis.start()
        await wait_until_async(
            probe(lambda: watching.source(SERVICE)), lambda source: source == "registry", timeout=15,
            what="the resolver reads the restarted, empty Redis",
        )
        fresh = redis.asyncio.Redis.from_url(own_redis.url, decode_responses=True)
        try:
            assert await lookup(fresh, SERVICE) == [], "the restarted Redis holds no entry"
        finally:
            await fresh.aclose()
        assert [i.instance_id for i in await watching.instances(SERVICE)] == [entry.instance_id], (
            "an instance that could not heartbeat during the outage is dropped as soon as Redis is back"
        )

        await wait_until_async(
            lambda: watching.refresh(SERVICE), lambda found: not found, timeout=15,
            what=f"the resolver drops {entry.instance_id}, which did not register again within a TTL",
        )
    finally:
        await watching.close()
        await registering.aclose()
        await resolving.aclose()


async def test_start_fails_naming_the_instance_when_redis_is_unreachable() -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=free_port(), retry=None)  # fail at once, no backoff
    entry = registration(client)
    try:
        with pytest.raises(RegistryError, match=f"heartbeat of service '{SERVICE}' instance {entry.instance_id}"):
            await entry.start()
    finally:
        await client.aclose()


def test_an_invalid_entry_is_skipped_and_logged_once_naming_its_missing_field(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = redis.Redis.from_url(redis_url)
    now_ms = int(client.time()[0]) * 1000
    client.hset("reg:v1:svc:greeter:inst:a1", mapping={"instance_id": "a1", "service": "greeter"})
    client.zadd("reg:v1:svc:greeter:idx", {"a1": now_ms + 60_000})

    assert lookup_sync(client, "greeter") == lookup_sync(client, "greeter") == []

    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "registry_entry_invalid" in line]
    assert len(logged) == 1
    assert logged[0]["key"] == "reg:v1:svc:greeter:inst:a1" and logged[0]["error"] == "missing field 'host'"


async def test_a_caller_whose_clock_runs_an_hour_ahead_still_reads_the_registry_once(
    register: Register, aredis: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register(ttl_ms=3000)
    real_time_ns = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() + 3600 * 10**9)  # this host's clock only
    skewed = ServiceResolver(aredis)

    async def lookups() -> int:
        stats = await aredis.info("commandstats")
        return int(stats.get("cmdstat_zrangebyscore", {}).get("calls", 0))

    before = await lookups()
    first = await skewed.instances(SERVICE)
    again = await skewed.instances(SERVICE)

    assert len(first) == 1 and again == first, "the live instance is seen, not taken for expired"
    assert await lookups() - before == 1, "expiries compare in Redis time: no read per call"


@pytest.mark.parametrize(("host", "port"), [("0.0.0.0", "50051"), ("127.0.0.1", "0"), ("", "50051")])
def test_an_entry_no_caller_can_dial_is_never_returned(redis_url: str, host: str, port: str) -> None:
    client = redis.Redis.from_url(redis_url)
    now_ms = int(client.time()[0]) * 1000
    client.hset(instance_key(SERVICE, "x"), mapping={
        "instance_id": "x", "service": SERVICE, "host": host, "port": port, "version": "1", "api_version": "v1",
        "status": "SERVING", "started_at": now_ms, "heartbeat_at": now_ms, "incarnation": 1,
    })
    client.zadd(index_key(SERVICE), {"x": now_ms + 60_000})

    assert lookup_sync(client, SERVICE) == []


def test_an_entry_filed_under_another_service_is_never_returned(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    now_ms = int(client.time()[0]) * 1000
    client.hset(instance_key(SERVICE, "x"), mapping={
        "instance_id": "x", "service": "trading-system-engine", "host": "127.0.0.1", "port": "50051", "version": "1",
        "api_version": "v1", "status": "SERVING", "started_at": now_ms, "heartbeat_at": now_ms, "incarnation": 1,
    })
    client.zadd(index_key(SERVICE), {"x": now_ms + 60_000})

    assert lookup_sync(client, SERVICE) == []


async def test_with_its_index_deleted_a_service_is_found_from_its_instance_keys(
    register: Register, aredis: redis.asyncio.Redis
) -> None:
    entry = await register(ttl_ms=60_000)  # no heartbeat during the test re-adds it to the index
    await aredis.delete(index_key(SERVICE))

    found = await lookup(aredis, SERVICE)

    assert [i.instance_id for i in found] == [entry.instance_id]
    assert 0 < found[0].expires_at_ms - await redis_now_ms(aredis) <= 60_000, "its expiry is the entry's own PTTL"


async def test_a_known_instance_missing_from_the_index_is_read_from_its_own_key(
    resolver: ServiceResolver, register: Register, aredis: redis.asyncio.Redis
) -> None:
    first = await register(ttl_ms=60_000)
    second = await register(ttl_ms=60_000, port=50052)
    assert {i.instance_id for i in await resolver.refresh(SERVICE)} == {first.instance_id, second.instance_id}
    await aredis.zrem(index_key(SERVICE), first.instance_id)

    assert {i.instance_id for i in await resolver.refresh(SERVICE)} == {first.instance_id, second.instance_id}
    # What its own key says now counts, not the cached copy: a draining instance is dropped.
    await aredis.hset(instance_key(SERVICE, first.instance_id), "status", "DRAINING")
    assert [i.instance_id for i in await resolver.refresh(SERVICE)] == [second.instance_id]


async def test_a_live_instance_whose_entry_vanished_without_a_down_event_is_kept_until_its_expiry(
    resolver: ServiceResolver, register: Register, aredis: redis.asyncio.Redis
) -> None:
    entry = await register(ttl_ms=60_000)
    [known] = await resolver.refresh(SERVICE)
    await aredis.flushall()  # what a Redis restart without persistence leaves

    assert [i.instance_id for i in await resolver.refresh(SERVICE)] == [entry.instance_id]
    assert await entry.heartbeat(), "the instance's next heartbeat writes its entry back"
    await entry.stop()  # a graceful stop announces `down`: that one is dropped at once
    await wait_until_async(
        lambda: resolver.instances(SERVICE), lambda found: not found, timeout=5,
        what=f"the resolver drops {known.instance_id} on its down event",
    )
