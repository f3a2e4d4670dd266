"""FaultInjector on a fake clock, and the control plane end to end: coordinator, registry and links on real servers."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import redis.asyncio
from fakes import FakeClock

from acceptance.waits import wait_until_async
from ecosystem.api.coordinator.v1 import coordinator_pb2 as pb
from ecosystem.api.coordinator.v1 import coordinator_pb2_grpc
from ecosystem.client_manager import InterServiceClientManager
from ecosystem.control_plane import ControlPlaneLink, FaultInjector
from ecosystem.discovery import ServiceResolver, lookup
from ecosystem.names import GRPC_SERVICES, RISK_MONITOR, TEST_COORDINATOR
from ecosystem.server import ServiceHost
from ecosystem.services.test_coordinator import TestCoordinatorServicer
from ecosystem.settings import BreakerSettings, Settings

BUSINESS_METHOD = "/ecosystem.risk.v1.RiskMonitorService/CheckOrder"



class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class FakeContext:
    """The two ServicerContext methods the injector uses; abort raises like grpc's."""

    def __init__(self, time_remaining: float | None = None) -> None:
        self._time_remaining = time_remaining

    def time_remaining(self) -> float | None:
        return self._time_remaining

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


class RecordedSleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def chaos(event_type: int, event_id: str = "ev-1", **parameters: str) -> pb.ChaosEvent:
    return pb.ChaosEvent(event_id=event_id, event_type=event_type, target_service=RISK_MONITOR, parameters=parameters)


@dataclass
class Injector:
    faults: FaultInjector
    clock: FakeClock
    sleeps: RecordedSleeps


@pytest.fixture
def injector() -> Injector:
    clock, sleeps = FakeClock(100.0), RecordedSleeps()
    return Injector(FaultInjector(rng=random.Random(20240601), clock=clock, sleep=sleeps), clock, sleeps)


async def count_aborts(faults: FaultInjector, calls: int) -> dict[grpc.StatusCode, int]:
    aborted: dict[grpc.StatusCode, int] = {}
    for _ in range(calls):
        try:
            await faults.before_call(BUSINESS_METHOD, FakeContext())
        except Aborted as exc:
            aborted[exc.code] = aborted.get(exc.code, 0) + 1
    return aborted


async def test_error_injection_aborts_at_its_percentage(injector: Injector) -> None:
    injector.faults.activate(chaos(pb.ERROR_INJECTION, code="RESOURCE_EXHAUSTED", percentage="25"), until=200.0)
    aborted = await count_aborts(injector.faults, 1_000)
    # 25 % of 1000 with a binomial standard deviation of 13.7: the bounds are five deviations wide.
    assert 180 <= aborted[grpc.StatusCode.RESOURCE_EXHAUSTED] <= 320, aborted
    assert set(aborted) == {grpc.StatusCode.RESOURCE_EXHAUSTED}


async def test_abort_names_the_event_code_and_percentage(injector: Injector) -> None:
    injector.faults.activate(chaos(pb.ERROR_INJECTION, event_id="ev-9", code="unavailable", percentage="100"), 200.0)
    with pytest.raises(Aborted) as caught:
        await injector.faults.before_call(BUSINESS_METHOD, FakeContext())
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details == "fault injected by chaos event ev-9: UNAVAILABLE at 100%"


async def test_packet_loss_fails_calls_unavailable(injector: Injector) -> None:
    injector.faults.activate(chaos(pb.NETWORK_PACKET_LOSS, percentage="50"), until=200.0)
    aborted = await count_aborts(injector.faults, 1_000)
    assert set(aborted) == {grpc.StatusCode.UNAVAILABLE}
    assert 400 <= aborted[grpc.StatusCode.UNAVAILABLE] <= 600, aborted


async def test_latency_is_the_whole_delay_whatever_the_callers_deadline(injector: Injector) -> None:
    injector.faults.activate(chaos(pb.NETWORK_LATENCY, delay_ms="250"), until=200.0)
    await injector.faults.before_call(BUSINESS_METHOD, FakeContext(time_remaining=None))
    await injector.faults.before_call(BUSINESS_METHOD, FakeContext(time_remaining=5.0))
    await injector.faults.before_call(BUSINESS_METHOD, FakeContext(time_remaining=0.04))
    assert injector.sleeps.calls == [0.25, 0.25, 0.25]


async def test_latency_comes_before_the_abort(injector: Injector) -> None:
    injector.faults.activate(chaos(pb.NETWORK_LATENCY, event_id="slow", delay_ms="100"), until=200.0)
    injector.faults.activate(chaos(pb.ERROR_INJECTION, event_id="fail", code="INTERNAL", percentage="100"), 200.0)
    assert sorted(injector.faults.active_event_ids()) == ["fail", "slow"]
    with pytest.raises(Aborted):
        await injector.faults.before_call(BUSINESS_METHOD, FakeContext())
    assert injector.sleeps.calls == [0.1]


async def test_expired_and_deactivated_faults_are_ignored(injector: Injector) -> None:
    injector.faults.activate(chaos(pb.ERROR_INJECTION, event_id="short", code="INTERNAL", percentage="100"), 150.0)
    injector.faults.activate(chaos(pb.NETWORK_LATENCY, event_id="long", delay_ms="100"), until=300.0)
    injector.clock.now = 150.0
    assert injector.faults.active_event_ids() == ["long"]
    injector.faults.deactivate("long")
    injector.faults.deactivate("never-activated")
    await injector.faults.before_call(BUSINESS_METHOD, FakeContext())
    assert injector.faults.active_event_ids() == []
    assert injector.sleeps.calls == []


async def test_the_chaos_control_plane_rpcs_are_exempt(injector: Injector) -> None:
    injector.faults.activate(chaos(pb.ERROR_INJECTION, code="INTERNAL", percentage="100"), until=200.0)
    coordinator = GRPC_SERVICES[TEST_COORDINATOR]
    for method in (
        "ReportChaosEvent", "WatchControlEvents", "InjectChaos", "GetChaosEvent", "ListChaosEvents", "EndChaosEvent",
    ):
        await injector.faults.before_call(f"/{coordinator}/{method}", FakeContext())
    with pytest.raises(Aborted):
        await injector.faults.before_call(f"/{coordinator}/StartScenario", FakeContext())


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (chaos(pb.SERVICE_KILL), "cannot be applied"),
        (chaos(pb.NETWORK_LATENCY, delay_ms="soon"), "delay_ms"),
        (chaos(pb.ERROR_INJECTION, code="NOPE", percentage="5"), "code"),
        (chaos(pb.ERROR_INJECTION, code="INTERNAL", percentage="250"), "percentage"),
    ],
)
def test_events_it_cannot_apply_are_refused(injector: Injector, event: pb.ChaosEvent, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        injector.faults.activate(event, until=200.0)
    assert injector.faults.active_event_ids() == []


# End to end: a registered coordinator and services that follow it through their ControlPlaneLink.


@dataclass
class Member:
    """A service process's side of the control plane, without a server of its own."""

    resolver: ServiceResolver
    clients: InterServiceClientManager
    faults: FaultInjector
    link: ControlPlaneLink

    async def close(self) -> None:
        await self.link.close()
        await self.clients.close()
        await self.resolver.close()


@contextlib.asynccontextmanager
async def member(aredis: redis.asyncio.Redis, service: str, instance_id: str) -> AsyncIterator[Member]:
    resolver = ServiceResolver(aredis, refresh_interval_s=0.2)
    await resolver.start()
    clients = InterServiceClientManager(resolver, breaker=BreakerSettings(recovery_timeout_s=0.2), default_timeout_s=2)
    faults = FaultInjector()
    link = ControlPlaneLink(service, instance_id, clients, faults)
    await link.start()
    joined = Member(resolver, clients, faults, link)
    try:
        yield joined
    finally:
        await joined.close()


@contextlib.asynccontextmanager
async def coordinator_host(
    redis_url: str, servicer: TestCoordinatorServicer | None = None
) -> AsyncIterator[ServiceHost]:
    settings = Settings(redis_url=redis_url, registry_ttl_ms=3_000, shutdown_grace_s=0.5, call_timeout_s=2.0)
    async with ServiceHost(TEST_COORDINATOR, settings) as host:
        servicer = servicer or TestCoordinatorServicer()
        host.add_service(
            coordinator_pb2_grpc.add_TestCoordinatorServiceServicer_to_server, servicer, GRPC_SERVICES[TEST_COORDINATOR]
        )
        host.on_shutdown(servicer.end_streams)
        serving = asyncio.create_task(host.serve())
        try:
            yield host
        finally:
            host.stop()
            await serving


async def coordinator_stub(
    aredis: redis.asyncio.Redis, stack: contextlib.AsyncExitStack
) -> coordinator_pb2_grpc.TestCoordinatorServiceStub:
    async def registered() -> list:
        return await lookup(aredis, TEST_COORDINATOR)

    instances = await wait_until_async(registered, timeout=10, what=f"{TEST_COORDINATOR} is registered in Redis")
    channel = grpc.aio.insecure_channel(instances[0].endpoint)
    stack.push_async_callback(channel.close)
    return coordinator_pb2_grpc.TestCoordinatorServiceStub(channel)


async def event_state(stub: coordinator_pb2_grpc.TestCoordinatorServiceStub, event_id: str) -> pb.ChaosEvent:
    return await stub.GetChaosEvent(pb.GetChaosEventRequest(event_id=event_id), timeout=2)


async def test_latency_event_is_injected_and_recovers(redis_url: str, aredis: redis.asyncio.Redis) -> None:
    async with contextlib.AsyncExitStack() as stack:
        # The service starts before any coordinator is registered: its link keeps retrying.
        risk = await stack.enter_async_context(member(aredis, RISK_MONITOR, "risk-a"))
        await stack.enter_async_context(coordinator_host(redis_url))
        stub = await coordinator_stub(aredis, stack)
        scenario = await stub.StartScenario(pb.StartScenarioRequest(name="latency"), timeout=2)

        async def followed_scenarios() -> list[str]:
            return risk.link.active_scenarios()

        await wait_until_async(
            followed_scenarios, lambda ids: ids == [scenario.scenario_id], timeout=10,
            what="risk-a's link follows the coordinator and sees the active scenario",
        )
        request = pb.InjectChaosRequest(
            event_type=pb.NETWORK_LATENCY, target_service=RISK_MONITOR, parameters={"delay_ms": "50"}, duration_ms=500
        )
        event = await stub.InjectChaos(request, timeout=2)
        recovered = await wait_until_async(
            lambda: event_state(stub, event.event_id),
            lambda e: e.status == pb.RECOVERED,
            timeout=10,
            what=f"chaos event {event.event_id} is INJECTED then RECOVERED by risk-a",
        )
        assert list(recovered.acknowledged_by) == ["risk-a"]
        assert recovered.HasField("injected_at")
        assert recovered.recovery_time_ms >= 0
        assert risk.faults.active_event_ids() == []

        await stub.CompleteScenario(pb.CompleteScenarioRequest(scenario_id=scenario.scenario_id), timeout=2)
        await wait_until_async(
            followed_scenarios, lambda ids: ids == [], timeout=10, what="risk-a's link sees the scenario completed"
        )


async def test_an_instance_connecting_late_keeps_the_events_schedule(
    redis_url: str, aredis: redis.asyncio.Redis
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(coordinator_host(redis_url))
        stub = await coordinator_stub(aredis, stack)
        first = await stack.enter_async_context(member(aredis, RISK_MONITOR, "risk-a"))
        request = pb.InjectChaosRequest(
            event_type=pb.NETWORK_LATENCY, target_service=RISK_MONITOR, parameters={"delay_ms": "50"}, duration_ms=3_000
        )
        event = await stub.InjectChaos(request, timeout=2)
        injected = await wait_until_async(
            lambda: event_state(stub, event.event_id),
            lambda e: e.status == pb.INJECTED,
            timeout=10,
            what=f"chaos event {event.event_id} is INJECTED by risk-a",
        )
        assert first.faults.active_event_ids() == [event.event_id]

        second = await stack.enter_async_context(member(aredis, RISK_MONITOR, "risk-b"))
        both = await wait_until_async(
            lambda: event_state(stub, event.event_id),
            lambda e: list(e.acknowledged_by) == ["risk-a", "risk-b"],
            timeout=10,
            what=f"risk-b, connecting late, acknowledges chaos event {event.event_id}",
        )
        assert both.injected_at == injected.injected_at, "the first acknowledgement fixes the schedule"
        assert second.faults.active_event_ids() == [event.event_id]

        recovered = await wait_until_async(
            lambda: event_state(stub, event.event_id),
            lambda e: e.status == pb.RECOVERED,
            timeout=10,
            what=f"chaos event {event.event_id} is RECOVERED by both instances",
        )
        # Neither instance removed the fault before the end scheduled by the first acknowledgement.
        assert recovered.recovered_at.ToMilliseconds() >= injected.injected_at.ToMilliseconds() + 3_000
        assert recovered.recovery_time_ms >= 0
        assert first.faults.active_event_ids() == second.faults.active_event_ids() == []


async def test_an_event_ended_early_is_removed_and_recovered(redis_url: str, aredis: redis.asyncio.Redis) -> None:
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(coordinator_host(redis_url))
        stub = await coordinator_stub(aredis, stack)
        risk = await stack.enter_async_context(member(aredis, RISK_MONITOR, "risk-a"))
        request = pb.InjectChaosRequest(
            event_type=pb.ERROR_INJECTION, target_service=RISK_MONITOR,
            parameters={"code": "INTERNAL", "percentage": "100"}, duration_ms=600_000,
        )
        event = await stub.InjectChaos(request, timeout=2)
        await wait_until_async(
            lambda: event_state(stub, event.event_id),
            lambda e: e.status == pb.INJECTED,
            timeout=10,
            what=f"chaos event {event.event_id} is INJECTED by risk-a",
        )
        await stub.EndChaosEvent(pb.EndChaosEventRequest(event_id=event.event_id), timeout=2)
        recovered = await wait_until_async(
            lambda: event_state(stub, event.event_id),
            lambda e: e.status == pb.RECOVERED,
            timeout=10,
            what=f"chaos event {event.event_id}, ended early, is RECOVERED by risk-a",
        )
        assert recovered.duration_ms < 600_000
        assert recovered.recovery_time_ms >= 0
        assert risk.faults.active_event_ids() == []


async def test_an_instance_that_stops_reports_its_faults_recovered(redis_url: str, aredis: redis.asyncio.Redis) -> None:
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(coordinator_host(redis_url))
        stub = await coordinator_stub(aredis, stack)
        request = pb.InjectChaosRequest(
            event_type=pb.NETWORK_LATENCY, target_service=RISK_MONITOR, parameters={"delay_ms": "50"},
            duration_ms=600_000,
        )
        async with member(aredis, RISK_MONITOR, "risk-stopping"):
            event = await stub.InjectChaos(request, timeout=2)
            await wait_until_async(
                lambda: event_state(stub, event.event_id),
                lambda e: e.status == pb.INJECTED,
                timeout=10,
                what=f"chaos event {event.event_id} is INJECTED by risk-stopping",
            )
        # Leaving the block closed the member's link, as a draining service does.

        stopped = await event_state(stub, event.event_id)

        assert stopped.status == pb.RECOVERED, "no instance holds the fault any more"


async def test_an_end_missed_while_the_link_reconnected_still_ends_the_fault(
    redis_url: str, aredis: redis.asyncio.Redis
) -> None:
    servicer = TestCoordinatorServicer()
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(coordinator_host(redis_url, servicer))
        stub = await coordinator_stub(aredis, stack)
        risk = await stack.enter_async_context(member(aredis, RISK_MONITOR, "risk-cut"))
        request = pb.InjectChaosRequest(
            event_type=pb.NETWORK_LATENCY, target_service=RISK_MONITOR, parameters={"delay_ms": "50"},
            duration_ms=600_000,
        )
        event = await stub.InjectChaos(request, timeout=2)
        await wait_until_async(
            lambda: event_state(stub, event.event_id), lambda e: e.status == pb.INJECTED, timeout=10,
            what=f"chaos event {event.event_id} is INJECTED by risk-cut",
        )

        await servicer.end_streams()  # the link's stream is cut; it reconnects after its back-off
        await stub.EndChaosEvent(pb.EndChaosEventRequest(event_id=event.event_id), timeout=2)

        await wait_until_async(
            lambda: event_state(stub, event.event_id), lambda e: e.status == pb.RECOVERED, timeout=10,
            what=f"chaos event {event.event_id}, ended while risk-cut was reconnecting, is RECOVERED",
        )
        assert risk.faults.active_event_ids() == []


async def test_a_fault_on_the_coordinator_fails_its_business_calls_until_it_ends(
    redis_url: str, aredis: redis.asyncio.Redis
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        host = await stack.enter_async_context(coordinator_host(redis_url))
        stub = await coordinator_stub(aredis, stack)
        request = pb.InjectChaosRequest(
            event_type=pb.ERROR_INJECTION, target_service=TEST_COORDINATOR,
            parameters={"code": "ABORTED", "percentage": "100"}, duration_ms=1_000,
        )
        # Injected before the coordinator's own link connects, the event is replayed to it as PENDING.
        event = await stub.InjectChaos(request, timeout=2)

        async def applied() -> list[str]:
            return host.faults.active_event_ids()

        await wait_until_async(
            applied, lambda ids: ids == [event.event_id], timeout=10,
            what="the coordinator applies the fault aimed at itself",
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.StartScenario(pb.StartScenarioRequest(name="during the fault"), timeout=2)
        assert caught.value.code() == grpc.StatusCode.ABORTED
        assert f"fault injected by chaos event {event.event_id}" in caught.value.details()

        # GetChaosEvent fails too while the fault lasts: a failing probe counts as "not yet".
        recovered = await wait_until_async(
            lambda: event_state(stub, event.event_id),
            lambda e: e.status == pb.RECOVERED,
            timeout=10,
            what=f"chaos event {event.event_id} on {TEST_COORDINATOR} is RECOVERED",
        )
        assert recovered.recovery_time_ms >= 0
        assert list(recovered.acknowledged_by) == [host.instance_id]
        after = await stub.StartScenario(pb.StartScenarioRequest(name="after the fault"), timeout=2)
        assert after.status == pb.SCENARIO_STATUS_ACTIVE


async def test_the_link_follows_a_restarted_coordinator(redis_url: str, aredis: redis.asyncio.Redis) -> None:
    async with contextlib.AsyncExitStack() as stack:
        risk = await stack.enter_async_context(member(aredis, RISK_MONITOR, "risk-a"))

        async def followed_scenarios() -> list[str]:
            return risk.link.active_scenarios()

        for generation in ("first", "second"):
            async with contextlib.AsyncExitStack() as coordinator:
                await coordinator.enter_async_context(coordinator_host(redis_url))
                stub = await coordinator_stub(aredis, coordinator)
                scenario = await stub.StartScenario(pb.StartScenarioRequest(name=generation), timeout=2)
                await wait_until_async(
                    followed_scenarios, lambda ids, wanted=scenario.scenario_id: ids == [wanted], timeout=10,
                    what=f"risk-a's link follows the {generation} coordinator and sees only its scenario",
                )
