"""ConfigurationServiceClient against a real configuration-service servicer on loopback, found through a
real Redis registry, with a fake clock driving the cache TTL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import redis.asyncio as aioredis
from fakes import FakeClock

from acceptance.waits import wait_until_async
from ecosystem.api.config.v1 import config_pb2, config_pb2_grpc
from ecosystem.client_manager import InterServiceClientManager
from ecosystem.config_client import ConfigurationError, ConfigurationServiceClient
from ecosystem.config_store import ConfigStore
from ecosystem.discovery import ServiceRegistration, ServiceResolver
from ecosystem.names import CONFIGURATION_SERVICE
from ecosystem.services.configuration_service import DEFAULT_SEED, ConfigurationServicer
from ecosystem.settings import BreakerSettings

TTL_S = 10.0
WAIT_S = 5.0
MAX_QUANTITY = "risk.max_order_quantity"


class CountingServicer(ConfigurationServicer):
    """The real servicer, counting the GetConfiguration RPCs it serves."""

    gets = 0

    async def GetConfiguration(
        self, request: config_pb2.GetConfigurationRequest, context: grpc.aio.ServicerContext
    ) -> config_pb2.Configuration:
        self.gets += 1
        return await super().GetConfiguration(request, context)


@dataclass
class ConfigServer:
    servicer: CountingServicer
    server: grpc.aio.Server
    registration: ServiceRegistration
    stub: config_pb2_grpc.ConfigurationServiceStub
    channel: grpc.aio.Channel

    async def stop(self) -> None:
        await self.channel.close()
        await self.registration.stop()
        await self.server.stop(grace=None)

    async def set(self, key: str, value: str, type_: config_pb2.ValueType) -> config_pb2.Configuration:
        request = config_pb2.SetConfigurationRequest(key=key, value=value, type=type_, environment="testing")
        return await self.stub.SetConfiguration(request, timeout=WAIT_S)


async def start_config_server(redis: aioredis.Redis) -> ConfigServer:
    store = ConfigStore(redis, seed=DEFAULT_SEED)  # seeds again after a flush, as the service does
    await store.seed(DEFAULT_SEED)
    servicer = CountingServicer(store)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    config_pb2_grpc.add_ConfigurationServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    registration = ServiceRegistration(
        redis, service=CONFIGURATION_SERVICE, host="127.0.0.1", port=port, version="test", ttl_ms=3_000
    )
    await registration.start()
    channel = grpc.aio.insecure_channel(registration.endpoint)
    return ConfigServer(servicer, server, registration, config_pb2_grpc.ConfigurationServiceStub(channel), channel)


@pytest.fixture
async def config_server(aredis: aioredis.Redis) -> AsyncIterator[ConfigServer]:
    server = await start_config_server(aredis)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def manager(aredis: aioredis.Redis) -> AsyncIterator[InterServiceClientManager]:
    resolver = ServiceResolver(aredis, refresh_interval_s=0.5, block_ms=200)
    await resolver.start()
    manager = InterServiceClientManager(resolver, breaker=BreakerSettings(), retry_attempts=2)
    yield manager
    await manager.close()
    await resolver.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(
    config_server: ConfigServer, manager: InterServiceClientManager, clock: FakeClock
) -> AsyncIterator[ConfigurationServiceClient]:
    client = ConfigurationServiceClient(manager, environment="testing", cache_ttl_s=TTL_S, clock=clock)
    yield client
    await client.close()


async def test_typed_accessors_return_the_seeded_values_of_the_environment(client: ConfigurationServiceClient) -> None:
    assert await client.get_number(MAX_QUANTITY) == 1000.0
    assert await client.get_number("trading.risk_check_timeout_ms") == 1000.0  # the testing override
    assert await client.get_bool("trading.enabled") is True
    assert await client.get_string("trading.venue") == "SIM"
    assert await client.get_json("risk.allowed_symbols") == ["BTC-USD", "ETH-USD", "SOL-USD"]

    value = await client.get(MAX_QUANTITY)
    assert (value.key, value.value, value.type, value.environment, value.version, value.stale) == (
        MAX_QUANTITY,
        "1000",
        "number",
        "testing",
        1,
        False,
    )


async def test_fifty_concurrent_first_reads_make_one_rpc(
    client: ConfigurationServiceClient, config_server: ConfigServer
) -> None:
    values = await asyncio.gather(*(client.get_number(MAX_QUANTITY) for _ in range(50)))

    assert values == [1000.0] * 50
    assert client.stats().fetches == 1
    assert config_server.servicer.gets == 1


async def test_a_value_is_fetched_again_once_its_ttl_has_passed(
    client: ConfigurationServiceClient, config_server: ConfigServer, clock: FakeClock
) -> None:
    assert await client.get_number(MAX_QUANTITY) == 1000.0
    await config_server.set(MAX_QUANTITY, "42", config_pb2.VALUE_TYPE_NUMBER)

    clock.now += TTL_S - 0.1
    assert await client.get_number(MAX_QUANTITY) == 1000.0
    assert (client.stats().fetches, config_server.servicer.gets) == (1, 1)

    clock.now += 0.2
    assert await client.get_number(MAX_QUANTITY) == 42.0
    assert (client.stats().fetches, config_server.servicer.gets) == (2, 2)


async def test_a_watched_change_replaces_the_cached_value_without_a_fetch(
    client: ConfigurationServiceClient, config_server: ConfigServer
) -> None:
    await client.start()
    await asyncio.wait_for(client.watching.wait(), WAIT_S)
    assert await client.get_number(MAX_QUANTITY) == 1000.0

    await config_server.set(MAX_QUANTITY, "7", config_pb2.VALUE_TYPE_NUMBER)

    await wait_until_async(
        lambda: client.get(MAX_QUANTITY),
        lambda value: value.value == "7" and value.version == 2,
        timeout=WAIT_S,
        what=f"the watch delivers {MAX_QUANTITY} = 7 (version 2) to the client's cache",
    )
    assert (client.stats().fetches, config_server.servicer.gets) == (1, 1)


async def test_a_reseeded_value_replaces_a_cached_later_version(
    client: ConfigurationServiceClient, config_server: ConfigServer, clock: FakeClock, aredis: aioredis.Redis
) -> None:
    await config_server.set(MAX_QUANTITY, "7", config_pb2.VALUE_TYPE_NUMBER)
    await config_server.set(MAX_QUANTITY, "8", config_pb2.VALUE_TYPE_NUMBER)
    assert (await client.get(MAX_QUANTITY)).version == 3
    await aredis.flushall()  # a Redis restart without persistence: the next read seeds again, at version 1

    clock.now += TTL_S + 1
    reseeded = await client.get(MAX_QUANTITY)

    assert (reseeded.value, reseeded.version) == ("1000", 1)


async def test_changes_to_keys_the_client_never_read_are_not_cached(
    client: ConfigurationServiceClient, config_server: ConfigServer
) -> None:
    await client.start()
    await asyncio.wait_for(client.watching.wait(), WAIT_S)
    assert await client.get_number(MAX_QUANTITY) == 1000.0
    for index in range(20):
        await config_server.set(f"app.unread_{index}", "x", config_pb2.VALUE_TYPE_STRING)
    await config_server.set(MAX_QUANTITY, "8", config_pb2.VALUE_TYPE_NUMBER)

    # The last change arrives after the twenty before it, on the same stream.
    await wait_until_async(
        lambda: client.get(MAX_QUANTITY),
        lambda value: value.value == "8",
        timeout=WAIT_S,
        what=f"the watch delivers {MAX_QUANTITY} = 8 after twenty changes to other keys",
    )
    assert client.stats().cache_size == 1


async def test_a_change_missed_while_the_watch_was_down_is_read_when_it_reconnects(
    client: ConfigurationServiceClient, config_server: ConfigServer, aredis: aioredis.Redis
) -> None:
    await client.start()
    await asyncio.wait_for(client.watching.wait(), WAIT_S)
    assert (client.stats().watching, client.stats().watch_connects) == (True, 1)
    assert await client.get_number(MAX_QUANTITY) == 1000.0
    await config_server.stop()
    await wait_until_async(
        lambda: asyncio.sleep(0, client.watching.is_set()),
        lambda watching: not watching,
        timeout=WAIT_S,
        what="the client notices its watch is gone",
    )
    assert client.stats().watching is False
    await ConfigStore(aredis).set(MAX_QUANTITY, "9", "number", "testing")
    assert await client.get_number(MAX_QUANTITY) == 1000.0, "the cached value until the watch is back"

    replacement = await start_config_server(aredis)
    try:
        await wait_until_async(
            lambda: client.get(MAX_QUANTITY),
            lambda value: value.value == "9",
            timeout=WAIT_S,
            what=f"the reconnected watch re-reads {MAX_QUANTITY} and finds the change it missed",
        )
    finally:
        await replacement.stop()
    assert client.stats().fetches == 1, "re-read on reconnect, not fetched on a read"
    stats = client.stats_proto()
    assert stats.watch_connects == 2, "the reconnection is counted, as the suite reads it from StatsService"


async def test_the_last_value_is_served_stale_when_the_service_is_gone(
    client: ConfigurationServiceClient, config_server: ConfigServer, clock: FakeClock
) -> None:
    assert await client.get_number(MAX_QUANTITY) == 1000.0
    await config_server.server.stop(grace=None)  # still registered: calls to it fail UNAVAILABLE
    clock.now += TTL_S + 1

    value = await client.get(MAX_QUANTITY)

    assert (value.value, value.version, value.stale) == ("1000", 1, True)
    stats = client.stats()
    assert (stats.stale_served, stats.fetches) == (1, 2)


async def test_the_last_value_is_served_stale_once_the_service_has_deregistered(
    client: ConfigurationServiceClient,
    config_server: ConfigServer,
    manager: InterServiceClientManager,
    clock: FakeClock,
) -> None:
    assert await client.get_number(MAX_QUANTITY) == 1000.0
    await config_server.registration.stop()
    await wait_until_async(
        lambda: manager.status(CONFIGURATION_SERVICE),
        lambda status: status.endpoints == [],
        timeout=WAIT_S,
        what="the resolver drops the deregistered configuration-service",
    )
    clock.now += TTL_S + 1

    value = await client.get(MAX_QUANTITY)

    assert (value.value, value.stale) == ("1000", True)
    assert client.stats().stale_served == 1
    assert config_server.servicer.gets == 1


async def test_a_key_never_read_is_unavailable_when_the_service_is_gone(
    client: ConfigurationServiceClient, config_server: ConfigServer
) -> None:
    await config_server.server.stop(grace=None)

    with pytest.raises(ConfigurationError) as raised:
        await client.get(MAX_QUANTITY)

    assert str(raised.value).startswith(f"Configuration {MAX_QUANTITY} (testing) is unavailable: ")
    assert "UNAVAILABLE" in str(raised.value)

    assert client.stats().stale_served == 0


async def test_an_unknown_key_is_configuration_not_found(client: ConfigurationServiceClient) -> None:
    with pytest.raises(ConfigurationError, match=r"^Configuration not found: risk\.foo \(environment testing\)$"):
        await client.get("risk.foo")


async def test_a_typed_read_of_another_type_names_the_key_and_both_types(client: ConfigurationServiceClient) -> None:
    with pytest.raises(ConfigurationError) as raised:
        await client.get_number("trading.venue")

    assert str(raised.value) == "Configuration trading.venue (testing) is of type string, expected number"


async def test_stats_count_hits_misses_and_the_hit_rate(client: ConfigurationServiceClient) -> None:
    assert client.stats().hit_rate == 0.0
    for _ in range(3):
        await client.get(MAX_QUANTITY)
    await client.get("trading.venue")

    stats = client.stats()

    assert (stats.cache_size, stats.cache_hits, stats.cache_misses, stats.total_requests, stats.fetches) == (
        2,
        2,
        2,
        4,
        2,
    )
    assert stats.hit_rate == pytest.approx(0.5)
    assert stats.stale_served == 0
    proto = client.stats_proto()
    assert (proto.cache_hits, proto.cache_misses, proto.hit_rate) == (2, 2, pytest.approx(0.5))


async def test_get_many_serves_cached_keys_and_fetches_only_the_missing_ones(
    client: ConfigurationServiceClient, config_server: ConfigServer
) -> None:
    assert await client.get_number(MAX_QUANTITY) == 1000.0

    quantity, venue, enabled = await client.get_many((MAX_QUANTITY, "trading.venue", "trading.enabled"))

    assert (quantity.as_number(), venue.as_string(), enabled.as_bool()) == (1000.0, "SIM", True)
    assert (client.stats().fetches, config_server.servicer.gets) == (3, 3), "one fetch per key never read before"
    expected = "trading.venue (testing) is of type string, expected number"
    with pytest.raises(ConfigurationError, match=re.escape(expected)):
        venue.as_number()


async def test_cached_gives_every_value_or_none_and_counts_hits_only_when_it_gives_them(
    client: ConfigurationServiceClient, config_server: ConfigServer
) -> None:
    assert await client.get_number(MAX_QUANTITY) == 1000.0
    hits = client.stats().cache_hits

    assert client.cached((MAX_QUANTITY, "trading.venue")) is None, "trading.venue was never read"
    assert client.stats().cache_hits == hits
    await client.get("trading.venue")
    quantity, venue = client.cached((MAX_QUANTITY, "trading.venue")) or ()

    assert (quantity.as_number(), venue.as_string()) == (1000.0, "SIM")
    assert client.stats().cache_hits == hits + 2
    assert config_server.servicer.gets == 2, "cached() itself never calls configuration-service"
