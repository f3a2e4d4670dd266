"""ConfigurationServicer on a real grpc.aio server over loopback, backed by a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import grpc
import pytest
import redis.asyncio as aioredis

from acceptance.waits import wait_until_async
from ecosystem.api.config.v1 import config_pb2, config_pb2_grpc
from ecosystem.config_store import ConfigStore, StoredConfig
from ecosystem.services.configuration_service import DEFAULT_SEED, ConfigurationServicer


class WatchCountingStore(ConfigStore):
    """Counts change iterators that are open, to see the servicer close them when a watch ends."""

    open_watches = 0

    def changes(self, prefix: str, environment: str, *, start_id: str = "$") -> AsyncGenerator[StoredConfig, None]:
        return self._counted(super().changes(prefix, environment, start_id=start_id))

    async def _counted(self, changes: AsyncGenerator[StoredConfig, None]) -> AsyncGenerator[StoredConfig, None]:
        self.open_watches += 1
        try:
            async with contextlib.aclosing(changes):
                async for change in changes:
                    yield change
        finally:
            self.open_watches -= 1


@pytest.fixture
async def store(aredis: aioredis.Redis) -> WatchCountingStore:
    store = WatchCountingStore(aredis)
    await store.seed(DEFAULT_SEED)
    return store


@pytest.fixture
async def servicer(store: ConfigStore) -> ConfigurationServicer:
    return ConfigurationServicer(store)


@pytest.fixture
async def stub(servicer: ConfigurationServicer) -> AsyncIterator[config_pb2_grpc.ConfigurationServiceStub]:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    config_pb2_grpc.add_ConfigurationServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield config_pb2_grpc.ConfigurationServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(grace=None)


async def test_get_configuration_returns_the_typed_seeded_value(stub: config_pb2_grpc.ConfigurationServiceStub) -> None:
    found = await stub.GetConfiguration(
        config_pb2.GetConfigurationRequest(key="risk.max_order_quantity", environment="production"), timeout=5
    )

    assert (found.key, found.value, found.type, found.environment, found.version) == (
        "risk.max_order_quantity",
        "100",
        config_pb2.VALUE_TYPE_NUMBER,
        "production",
        1,
    )
    assert found.updated_at.ToMilliseconds() > 0


async def test_a_missing_key_is_not_found_with_key_and_environment(
    stub: config_pb2_grpc.ConfigurationServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetConfiguration(config_pb2.GetConfigurationRequest(key="risk.foo", environment="development"))

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "Configuration not found: risk.foo (environment development)"


@pytest.mark.parametrize(
    ("key", "environment", "named"),
    [("risk..foo", "development", "key 'risk..foo'"), ("risk.foo", "staging", "environment 'staging'")],
)
async def test_a_malformed_key_or_environment_is_invalid_argument_naming_it(
    stub: config_pb2_grpc.ConfigurationServiceStub, key: str, environment: str, named: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetConfiguration(config_pb2.GetConfigurationRequest(key=key, environment=environment))

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in raised.value.details()


async def test_get_configurations_names_the_missing_key(stub: config_pb2_grpc.ConfigurationServiceStub) -> None:
    found = await stub.GetConfigurations(
        config_pb2.GetConfigurationsRequest(keys=["trading.enabled", "trading.venue"], environment="docker")
    )
    assert [(c.key, c.value, c.type) for c in found.configurations] == [
        ("trading.enabled", "true", config_pb2.VALUE_TYPE_BOOLEAN),
        ("trading.venue", "SIM", config_pb2.VALUE_TYPE_STRING),
    ]

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetConfigurations(
            config_pb2.GetConfigurationsRequest(keys=["trading.enabled", "trading.nope"], environment="docker")
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "Configuration not found: trading.nope (environment docker)"


async def test_list_configurations_by_dotted_prefix(stub: config_pb2_grpc.ConfigurationServiceStub) -> None:
    listed = await stub.ListConfigurations(config_pb2.ListConfigurationsRequest(prefix="risk", environment="testing"))

    assert [c.key for c in listed.configurations] == [
        "risk.allowed_symbols",
        "risk.max_order_quantity",
        "risk.position_limits.max_notional",
    ]
    assert listed.configurations[0].type == config_pb2.VALUE_TYPE_JSON


async def test_set_configuration_stores_canonical_value_and_bumps_version(
    stub: config_pb2_grpc.ConfigurationServiceStub,
) -> None:
    request = config_pb2.SetConfigurationRequest(
        key="risk.max_order_quantity", value="2.5e2", type=config_pb2.VALUE_TYPE_NUMBER, environment="development"
    )
    written = await stub.SetConfiguration(request)

    assert (written.value, written.version) == ("250", 2)
    read = await stub.GetConfiguration(
        config_pb2.GetConfigurationRequest(key="risk.max_order_quantity", environment="development")
    )
    assert read == written


@pytest.mark.parametrize(
    ("value", "type_", "named"),
    [
        ("abc", config_pb2.VALUE_TYPE_NUMBER, "value 'abc' of risk.max_order_quantity is not a number"),
        ("maybe", config_pb2.VALUE_TYPE_BOOLEAN, "value 'maybe' of risk.max_order_quantity is not a boolean"),
        ("1", config_pb2.VALUE_TYPE_UNSPECIFIED, "type of risk.max_order_quantity is VALUE_TYPE_UNSPECIFIED"),
        ("1", 42, "type of risk.max_order_quantity is 42"),
    ],
)
async def test_set_configuration_refuses_a_value_that_is_not_its_type(
    stub: config_pb2_grpc.ConfigurationServiceStub, value: str, type_: int, named: str
) -> None:
    request = config_pb2.SetConfigurationRequest(
        key="risk.max_order_quantity", value=value, type=type_, environment="development"
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.SetConfiguration(request)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in raised.value.details()


async def test_watch_configuration_streams_a_change_made_after_it_started(
    stub: config_pb2_grpc.ConfigurationServiceStub, store: WatchCountingStore
) -> None:
    call = stub.WatchConfiguration(config_pb2.WatchConfigurationRequest(prefix="trading", environment="testing"))
    try:
        # The server sends headers once its watch is in place.
        await asyncio.wait_for(call.initial_metadata(), timeout=10)
        assert store.open_watches == 1
        await stub.SetConfiguration(
            config_pb2.SetConfigurationRequest(
                key="risk.max_order_quantity", value="5", type=config_pb2.VALUE_TYPE_NUMBER, environment="testing"
            )
        )
        written = await stub.SetConfiguration(
            config_pb2.SetConfigurationRequest(
                key="trading.enabled", value="FALSE", type=config_pb2.VALUE_TYPE_BOOLEAN, environment="testing"
            )
        )

        change = await asyncio.wait_for(call.read(), timeout=10)
    finally:
        call.cancel()

    assert change.configuration == written
    assert (change.configuration.key, change.configuration.value, change.configuration.version) == (
        "trading.enabled",
        "false",
        2,
    )

    async def open_watches() -> int:
        return store.open_watches

    await wait_until_async(open_watches, lambda count: count == 0, timeout=10, what="the cancelled watch is closed")


async def test_a_draining_server_ends_its_watches_so_watchers_move_on_at_once(
    stub: config_pb2_grpc.ConfigurationServiceStub, servicer: ConfigurationServicer, store: WatchCountingStore
) -> None:
    call = stub.WatchConfiguration(config_pb2.WatchConfigurationRequest(prefix="", environment="testing"))
    await asyncio.wait_for(call.initial_metadata(), timeout=10)

    await servicer.end_streams()

    assert await asyncio.wait_for(call.read(), timeout=10) is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK

    async def open_watches() -> int:
        return store.open_watches

    await wait_until_async(open_watches, lambda count: count == 0, timeout=10, what="the ended watch is closed")


async def test_watch_configuration_refuses_a_malformed_prefix(stub: config_pb2_grpc.ConfigurationServiceStub) -> None:
    call = stub.WatchConfiguration(config_pb2.WatchConfigurationRequest(prefix="trading.", environment="testing"))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await asyncio.wait_for(call.read(), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "prefix 'trading.'" in raised.value.details()
