"""InterServiceClientManager against real grpc.aio servers registered in a real Redis registry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
import pytest
import redis.asyncio as aioredis

from acceptance.redis_server import free_port
from acceptance.waits import wait_until_async
from ecosystem.api.risk.v1 import risk_pb2, risk_pb2_grpc
from ecosystem.client_manager import InterServiceClientManager, ServiceCommunicationError
from ecosystem.discovery import ServiceInstance, ServiceRegistration, ServiceResolver
from ecosystem.names import RISK_MONITOR
from ecosystem.settings import BreakerSettings
from ecosystem.telemetry import TRACING_USER_AGENT, setup_tracing

WAIT_S = 5.0
REQUEST = risk_pb2.CheckOrderRequest(order=risk_pb2.Order(strategy_id="s1", symbol="BTC-USD"))


class RiskStub(risk_pb2_grpc.RiskMonitorServiceServicer):
    """CheckOrder that counts its calls and answers as told: OK, an abort code, never (`hang`), or once
    `release` is set."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hits = 0
        self.abort_code: grpc.StatusCode | None = None
        self.hang = False
        self.release: asyncio.Event | None = None
        self.time_remaining: list[float | None] = []
        self.user_agents: list[str] = []

    async def CheckOrder(
        self, request: risk_pb2.CheckOrderRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.CheckOrderResponse:
        self.hits += 1
        self.time_remaining.append(context.time_remaining())
        self.user_agents.append(dict(context.invocation_metadata() or ()).get("user-agent", ""))
        if self.abort_code is not None:
            await context.abort(self.abort_code, f"{self.name} was told to fail")
        if self.hang:
            await asyncio.Event().wait()  # cancelled when the caller's deadline passes
        if self.release is not None:
            await self.release.wait()
        return risk_pb2.CheckOrderResponse(decision=risk_pb2.DECISION_APPROVED, instance_id=self.name)


@dataclass
class Instance:
    servicer: RiskStub
    server: grpc.aio.Server
    registration: ServiceRegistration

    @property
    def endpoint(self) -> str:
        return self.registration.endpoint


class Cluster:
    """Starts risk-monitor instances on loopback, registered in discovery; stops whatever it started."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self.instances: list[Instance] = []

    async def add(self, name: str) -> Instance:
        servicer = RiskStub(name)
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        risk_pb2_grpc.add_RiskMonitorServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        registration = ServiceRegistration(
            self._redis, service=RISK_MONITOR, host="127.0.0.1", port=port, version="test", ttl_ms=3_000
        )
        await registration.start()
        instance = Instance(servicer, server, registration)
        self.instances.append(instance)
        return instance

    async def close(self) -> None:
        for instance in self.instances:
            await instance.registration.stop()
            await instance.server.stop(grace=None)


@pytest.fixture
async def cluster(aredis: aioredis.Redis) -> AsyncIterator[Cluster]:
    cluster = Cluster(aredis)
    yield cluster
    await cluster.close()


@pytest.fixture
async def resolver(aredis: aioredis.Redis) -> AsyncIterator[ServiceResolver]:
    resolver = ServiceResolver(aredis, refresh_interval_s=0.5, block_ms=200)
    await resolver.start()
    yield resolver
    await resolver.close()


@pytest.fixture
async def make_manager(resolver: ServiceResolver) -> AsyncIterator[Callable[..., InterServiceClientManager]]:
    managers: list[InterServiceClientManager] = []

    def make(retry_attempts: int = 3) -> InterServiceClientManager:
        manager = InterServiceClientManager(
            resolver,
            breaker=BreakerSettings(failure_threshold=5, recovery_timeout_s=60.0),
            retry_attempts=retry_attempts,
            default_timeout_s=5.0,
        )
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        await manager.close()


async def check(manager: InterServiceClientManager, *, timeout: float | None = None) -> risk_pb2.CheckOrderResponse:
    return await manager.call(
        RISK_MONITOR, "CheckOrder", lambda stub, t: stub.CheckOrder(REQUEST, timeout=t), timeout=timeout
    )


async def test_calls_are_spread_round_robin_over_both_instances(cluster: Cluster, make_manager) -> None:
    a, b = await cluster.add("a"), await cluster.add("b")
    manager = make_manager()
    assert len(await manager.watch(RISK_MONITOR)) == 2

    answered_by = [(await check(manager)).instance_id for _ in range(6)]

    assert sorted(answered_by) == ["a", "a", "a", "b", "b", "b"]
    assert all(answered_by[i] != answered_by[i + 1] for i in range(5))
    assert (a.servicer.hits, b.servicer.hits) == (3, 3)


async def test_a_call_to_a_vanished_instance_is_retried_on_the_other_one(cluster: Cluster, make_manager) -> None:
    gone, alive = await cluster.add("gone"), await cluster.add("alive")
    manager = make_manager()
    await manager.watch(RISK_MONITOR)
    await gone.server.stop(grace=None)  # still registered: it vanished without deregistering

    answered_by = [(await check(manager)).instance_id for _ in range(4)]

    assert answered_by == ["alive"] * 4
    assert gone.servicer.hits == 0 and alive.servicer.hits == 4
    status = await manager.status(RISK_MONITOR)
    assert status.failures == 0 and status.breaker.state == "CLOSED"


async def test_an_instance_that_refused_the_connection_is_called_only_when_no_other_is_left(
    cluster: Cluster, make_manager
) -> None:
    gone = await cluster.add("gone")
    await cluster.add("alive")
    manager = make_manager()
    await manager.watch(RISK_MONITOR)
    await gone.server.stop(grace=None)

    answered_by = [(await check(manager)).instance_id for _ in range(6)]

    assert answered_by == ["alive"] * 6
    assert (await manager.status(RISK_MONITOR)).retries <= 1, "only the first call met the refusing instance"


async def test_entries_that_never_answer_cost_no_call_while_a_live_instance_answers(
    cluster: Cluster, make_manager, aredis: aioredis.Redis
) -> None:
    alive = await cluster.add("alive")
    manager = make_manager()
    await manager.watch(RISK_MONITOR)
    await check(manager)  # the live instance has answered
    bogus = [
        ServiceRegistration(aredis, service=RISK_MONITOR, host="127.0.0.1", port=free_port(), version="x", ttl_ms=3_000)
        for _ in range(20)
    ]
    for entry in bogus:
        await entry.start()
    try:
        await wait_until_async(lambda: manager.watch(RISK_MONITOR), lambda found: len(found) == 21, timeout=WAIT_S,
                               what="the manager's resolver sees the 20 entries that refuse connections")

        answered_by = [(await check(manager)).instance_id for _ in range(50)]

        assert answered_by == ["alive"] * 50 and alive.servicer.hits == 51
        status = await manager.status(RISK_MONITOR)
        assert (status.failures, status.breaker.state) == (0, "CLOSED")
    finally:
        for entry in bogus:
            await entry.stop()


async def test_an_entry_pointing_at_another_service_is_skipped_and_reported(
    cluster: Cluster, make_manager, aredis: aioredis.Redis
) -> None:
    alive = await cluster.add("alive")
    other = grpc.aio.server(options=[("grpc.so_reuseport", 0)])  # serves no RiskMonitorService
    port = other.add_insecure_port("127.0.0.1:0")
    await other.start()
    impostor = ServiceRegistration(aredis, service=RISK_MONITOR, host="127.0.0.1", port=port, version="x", ttl_ms=3_000)
    await impostor.start()
    try:
        manager = make_manager()
        assert len(await manager.watch(RISK_MONITOR)) == 2

        answered_by = [(await check(manager)).instance_id for _ in range(4)]

        assert answered_by == ["alive"] * 4 and alive.servicer.hits == 4
        status = await manager.status(RISK_MONITOR)
        assert [r.instance_id for r in status.rejected] == [impostor.instance_id]
        assert "does not serve ecosystem.risk.v1.RiskMonitorService" in status.rejected[0].reason
        assert status.failures == 0
    finally:
        await impostor.stop()
        await other.stop(grace=None)


async def test_unavailable_is_tried_exactly_retry_attempts_times_then_named_in_the_error(
    cluster: Cluster, make_manager
) -> None:
    instance = await cluster.add("down")
    instance.servicer.abort_code = grpc.StatusCode.UNAVAILABLE
    manager = make_manager(retry_attempts=3)

    with pytest.raises(ServiceCommunicationError) as raised:
        await check(manager)

    assert instance.servicer.hits == 3
    error = raised.value
    assert (error.service, error.operation, error.endpoint, error.code) == (
        RISK_MONITOR,
        "CheckOrder",
        instance.endpoint,
        grpc.StatusCode.UNAVAILABLE,
    )
    assert f"risk-monitor.CheckOrder at {instance.endpoint} failed with UNAVAILABLE" in str(error)


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND])
async def test_business_errors_are_not_retried_and_never_open_the_breaker(
    cluster: Cluster, make_manager, code: grpc.StatusCode
) -> None:
    instance = await cluster.add("picky")
    instance.servicer.abort_code = code
    manager = make_manager(retry_attempts=3)

    for calls in range(1, 8):
        with pytest.raises(ServiceCommunicationError) as raised:
            await check(manager)
        assert raised.value.code == code
        assert instance.servicer.hits == calls

    breaker = (await manager.status(RISK_MONITOR)).breaker
    assert (breaker.state, breaker.consecutive_failures, breaker.opened_count) == ("CLOSED", 0, 0)


async def test_the_breaker_opens_after_five_transport_failures_and_then_fails_fast(
    cluster: Cluster, make_manager
) -> None:
    instance = await cluster.add("flaky")
    instance.servicer.abort_code = grpc.StatusCode.UNAVAILABLE
    manager = make_manager(retry_attempts=1)

    for _ in range(5):
        with pytest.raises(ServiceCommunicationError, match="UNAVAILABLE"):
            await check(manager)
    assert instance.servicer.hits == 5

    with pytest.raises(ServiceCommunicationError) as raised:
        await check(manager)

    assert instance.servicer.hits == 5
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE and raised.value.endpoint is None
    assert "circuit breaker for risk-monitor is OPEN" in str(raised.value)
    breaker = (await manager.status(RISK_MONITOR)).breaker
    assert (breaker.state, breaker.opened_count, breaker.last_failure) == ("OPEN", 1, "UNAVAILABLE")


async def test_the_channel_of_an_instance_that_leaves_the_registry_is_closed(
    cluster: Cluster, make_manager, resolver: ServiceResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: dict[str, grpc.aio.Channel] = {}
    real_insecure_channel = grpc.aio.insecure_channel

    def recording_channel(target: str, *args, **kwargs) -> grpc.aio.Channel:
        opened[target] = channel = real_insecure_channel(target, *args, **kwargs)
        return channel

    monkeypatch.setattr(grpc.aio, "insecure_channel", recording_channel)
    leaving, staying = await cluster.add("leaving"), await cluster.add("staying")
    manager = make_manager()
    await manager.watch(RISK_MONITOR)
    for _ in range(2):
        await check(manager)
    assert set(opened) == {leaving.endpoint, staying.endpoint}
    changes: list[list[ServiceInstance]] = []
    resolver.subscribe(lambda service, instances: changes.append(instances))

    await leaving.registration.stop()

    await wait_until_async(
        lambda: asyncio.sleep(0, changes),
        lambda seen: any(leaving.endpoint not in {i.endpoint for i in instances} for instances in seen),
        timeout=WAIT_S,
        what=f"the resolver reports that {leaving.endpoint} left risk-monitor",
    )
    assert (await manager.status(RISK_MONITOR)).endpoints == [staying.endpoint]
    await wait_until_async(
        lambda: asyncio.sleep(0, opened[leaving.endpoint].get_state()),
        lambda state: state == grpc.ChannelConnectivity.SHUTDOWN,
        timeout=WAIT_S,
        what=f"the manager's channel to {leaving.endpoint} is closed",
    )
    assert opened[staying.endpoint].get_state() != grpc.ChannelConnectivity.SHUTDOWN
    assert (await check(manager)).instance_id == "staying"


async def test_a_call_in_flight_to_an_instance_that_leaves_the_registry_still_gets_its_answer(
    cluster: Cluster, make_manager
) -> None:
    leaving = await cluster.add("leaving")
    manager = make_manager()
    await manager.watch(RISK_MONITOR)
    leaving.servicer.release = asyncio.Event()
    in_flight = asyncio.create_task(check(manager))
    await wait_until_async(
        lambda: asyncio.sleep(0, leaving.servicer.hits), timeout=WAIT_S, what="the call reached the instance"
    )

    await leaving.registration.stop()
    await wait_until_async(
        lambda: manager.status(RISK_MONITOR),
        lambda status: status.endpoints == [],
        timeout=WAIT_S,
        what=f"the manager learns that {leaving.endpoint} left risk-monitor",
    )
    leaving.servicer.release.set()

    assert (await in_flight).instance_id == "leaving", "a drain must not lose the calls it is finishing"


async def test_no_registered_instance_is_unavailable_naming_the_service(make_manager) -> None:
    manager = make_manager(retry_attempts=2)

    with pytest.raises(ServiceCommunicationError) as raised:
        await check(manager)

    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert raised.value.endpoint is None
    assert "no instance of risk-monitor is registered" in str(raised.value)


async def test_the_timeout_reaches_the_server_as_its_deadline(cluster: Cluster, make_manager) -> None:
    instance = await cluster.add("slow")
    instance.servicer.hang = True
    manager = make_manager()

    with pytest.raises(ServiceCommunicationError) as raised:
        await check(manager, timeout=0.3)

    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert raised.value.endpoint == instance.endpoint
    [remaining] = instance.servicer.time_remaining
    assert remaining is not None and 0 < remaining <= 0.3
    status = await manager.status(RISK_MONITOR)
    assert status.breaker.consecutive_failures == 1
    assert "DEADLINE_EXCEEDED" in status.last_error


async def test_an_unknown_service_name_lists_the_known_ones(make_manager) -> None:
    manager = make_manager()

    with pytest.raises(ValueError, match=r"'risk-monitr'.*risk-monitor"):
        await manager.call("risk-monitr", "CheckOrder", lambda stub, t: stub.CheckOrder(REQUEST, timeout=t))


async def test_only_a_manager_that_traces_says_so_to_the_services_it_calls(
    cluster: Cluster, resolver: ServiceResolver
) -> None:
    """A callee reads a call without a trace context from a caller that traces as left out of the sample; a caller
    that does not trace must not say it traces, or a traced callee would never start a trace for it."""
    instance = await cluster.add("a")
    # Samples nothing, so it never exports to its (unreachable) endpoint.
    tracing = setup_tracing("trading-system-engine", "engine-1", f"127.0.0.1:{free_port()}", sample_ratio=0.0)
    managers = [InterServiceClientManager(resolver, breaker=BreakerSettings(), tracing=t) for t in (None, tracing)]
    try:
        for manager in managers:
            await check(manager)
    finally:
        for manager in managers:
            await manager.close()
        if tracing is not None:
            await tracing.shutdown()

    untraced, traced = instance.servicer.user_agents
    assert not untraced.startswith(TRACING_USER_AGENT), untraced
    assert traced.startswith(TRACING_USER_AGENT + " "), traced
