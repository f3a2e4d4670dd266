"""The test-coordinator servicer on a real grpc.aio server: scenarios, chaos events, the control stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from acceptance.waits import wait_until_async
from ecosystem.api.coordinator.v1 import coordinator_pb2 as pb
from ecosystem.api.coordinator.v1 import coordinator_pb2_grpc
from ecosystem.names import RISK_MONITOR, TRADING_SYSTEM_ENGINE
from ecosystem.services.test_coordinator import (
    COMPLETED_KEPT_S,
    MAX_ACTIVE_EVENTS,
    MAX_ACTIVE_SCENARIOS,
    MAX_KEPT_OUTCOMES,
    RECOVERY_GRACE_MS,
    TestCoordinatorServicer,
)

T0 = 1_700_000_000.0


class FakeWallClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance_ms(self, ms: int) -> None:
        self.now += ms / 1000


@dataclass
class Coordinator:
    stub: coordinator_pb2_grpc.TestCoordinatorServiceStub
    clock: FakeWallClock
    servicer: TestCoordinatorServicer


@pytest.fixture
async def coordinator() -> AsyncIterator[Coordinator]:
    clock = FakeWallClock()
    servicer = TestCoordinatorServicer(wall_clock=clock)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    coordinator_pb2_grpc.add_TestCoordinatorServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Coordinator(coordinator_pb2_grpc.TestCoordinatorServiceStub(channel), clock, servicer)
    finally:
        await channel.close()
        await server.stop(None)


async def expect_error(call: object, code: grpc.StatusCode, *fragments: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    for fragment in fragments:
        assert fragment in caught.value.details()
    return caught.value.details()


def latency(target: str = RISK_MONITOR, delay_ms: str = "200", duration_ms: int = 1_000) -> pb.InjectChaosRequest:
    return pb.InjectChaosRequest(
        event_type=pb.NETWORK_LATENCY, target_service=target, parameters={"delay_ms": delay_ms}, duration_ms=duration_ms
    )


def report(event_id: str, status: int, instance: str = "inst-a", detail: str = "") -> pb.ReportChaosEventRequest:
    return pb.ReportChaosEventRequest(event_id=event_id, status=status, instance_id=instance, detail=detail)


# Scenarios


async def test_scenario_lifecycle(coordinator: Coordinator) -> None:
    stub = coordinator.stub
    started = await stub.StartScenario(pb.StartScenarioRequest(name="peak load", parameters={"orders": "100"}))
    assert started.status == pb.SCENARIO_STATUS_ACTIVE
    assert started.started_at.ToSeconds() == int(T0)
    assert dict(started.parameters) == {"orders": "100"}

    fetched = await stub.GetScenario(pb.GetScenarioRequest(scenario_id=started.scenario_id))
    assert fetched == started
    active = await stub.ListActiveScenarios(pb.ListActiveScenariosRequest())
    assert [s.scenario_id for s in active.scenarios] == [started.scenario_id]

    coordinator.clock.advance_ms(5_000)
    completed = await stub.CompleteScenario(pb.CompleteScenarioRequest(scenario_id=started.scenario_id))
    assert completed.status == pb.SCENARIO_STATUS_COMPLETED
    assert completed.completed_at.ToSeconds() == int(T0) + 5
    assert not (await stub.ListActiveScenarios(pb.ListActiveScenariosRequest())).scenarios


async def test_scenario_errors(coordinator: Coordinator) -> None:
    stub = coordinator.stub
    await expect_error(
        stub.StartScenario(pb.StartScenarioRequest(name="  ")), grpc.StatusCode.INVALID_ARGUMENT,
        "scenario name is required",
    )
    await expect_error(
        stub.GetScenario(pb.GetScenarioRequest(scenario_id="nope")), grpc.StatusCode.NOT_FOUND,
        "scenario not found: nope",
    )
    scenario = await stub.StartScenario(pb.StartScenarioRequest(name="once"))
    await stub.CompleteScenario(pb.CompleteScenarioRequest(scenario_id=scenario.scenario_id))
    await expect_error(
        stub.CompleteScenario(pb.CompleteScenarioRequest(scenario_id=scenario.scenario_id)),
        grpc.StatusCode.FAILED_PRECONDITION, scenario.scenario_id, "already completed",
    )


def outcome(result: str, order_id: str = "o-1", service: str = TRADING_SYSTEM_ENGINE) -> pb.ScenarioOutcome:
    return pb.ScenarioOutcome(service=service, order_id=order_id, outcome=result)


async def test_outcomes_are_counted_while_the_scenario_is_active(coordinator: Coordinator) -> None:
    stub = coordinator.stub
    scenario = await stub.StartScenario(pb.StartScenarioRequest(name="orders"))
    other = await stub.StartScenario(pb.StartScenarioRequest(name="other"))
    both = [scenario.scenario_id, other.scenario_id]
    for result in ["ACCEPTED", "ACCEPTED", "REJECTED", "FAILED", "ACCEPTED"]:
        answer = await stub.RecordOutcome(pb.RecordOutcomeRequest(scenario_ids=both, outcome=outcome(result)))
        assert list(answer.recorded) == both and not answer.not_recorded
    updated = await stub.GetScenario(pb.GetScenarioRequest(scenario_id=scenario.scenario_id))
    assert len(updated.outcomes) == 5
    assert dict(updated.outcome_counts) == {"ACCEPTED": 3, "REJECTED": 1, "FAILED": 1}
    assert updated.outcomes[0].recorded_at.ToSeconds() == int(T0)

    await expect_error(
        stub.RecordOutcome(pb.RecordOutcomeRequest(scenario_ids=both, outcome=outcome("MAYBE"))),
        grpc.StatusCode.INVALID_ARGUMENT, "outcome.outcome", "MAYBE",
    )
    await expect_error(
        stub.RecordOutcome(pb.RecordOutcomeRequest(scenario_ids=both, outcome=outcome("FAILED", service="x"))),
        grpc.StatusCode.INVALID_ARGUMENT, "outcome.service",
    )
    await expect_error(
        stub.RecordOutcome(pb.RecordOutcomeRequest(outcome=outcome("ACCEPTED"))),
        grpc.StatusCode.INVALID_ARGUMENT, "scenario_ids",
    )
    await stub.CompleteScenario(pb.CompleteScenarioRequest(scenario_id=scenario.scenario_id))
    request = pb.RecordOutcomeRequest(scenario_ids=[*both, "missing"], outcome=outcome("ACCEPTED"))
    answer = await stub.RecordOutcome(request)
    assert list(answer.recorded) == [other.scenario_id]
    assert list(answer.not_recorded) == [
        f"{scenario.scenario_id}: scenario 'orders' is completed", "missing: scenario not found"
    ]


# Chaos events

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def errors(**parameters: str) -> dict:
    return {"event_type": pb.ERROR_INJECTION, "parameters": parameters}


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"event_type": pb.CHAOS_EVENT_TYPE_UNSPECIFIED}, "event_type"),
        ({"target_service": "billing"}, "target_service"),
        ({"target_service": ""}, "target_service"),
        ({"duration_ms": 0}, "duration_ms"),
        ({"duration_ms": -5}, "duration_ms"),
        ({"duration_ms": 600_001}, "duration_ms"),
        ({"parameters": {}}, "parameters.delay_ms"),
        ({"parameters": {"delay_ms": "fast"}}, "parameters.delay_ms"),
        ({"parameters": {"delay_ms": "0"}}, "parameters.delay_ms"),
        ({"parameters": {"delay_ms": "60001"}}, "parameters.delay_ms"),
        ({"parameters": {"delay_ms": "1.5"}}, "parameters.delay_ms"),
        ({"parameters": {"delay_ms": "10", "jitter": "1"}}, "parameters.jitter"),
        (errors(percentage="50"), "parameters.code"),
        (errors(code="OK", percentage="50"), "parameters.code"),
        (errors(code="BROKEN", percentage="5"), "parameters.code"),
        (errors(code="UNAVAILABLE"), "parameters.percentage"),
        (errors(code="INTERNAL", percentage="0"), "parameters.percentage"),
        (errors(code="INTERNAL", percentage="100.1"), "parameters.percentage"),
        (errors(code="INTERNAL", percentage="nan"), "parameters.percentage"),
        ({"event_type": pb.NETWORK_PACKET_LOSS, "parameters": {"percentage": "half"}}, "percentage"),
    ],
)
async def test_inject_chaos_names_the_invalid_field(coordinator: Coordinator, request_fields: dict, field: str) -> None:
    request = latency()
    for name, value in request_fields.items():
        if name == "parameters":
            request.ClearField("parameters")
            request.parameters.update(value)
        else:
            setattr(request, name, value)
    await expect_error(coordinator.stub.InjectChaos(request), INVALID, field)
    assert not (await coordinator.stub.ListChaosEvents(pb.ListChaosEventsRequest())).events


@pytest.mark.parametrize(
    "event_type",
    [
        pb.SERVICE_RESTART, pb.SERVICE_KILL, pb.NETWORK_PARTITION, pb.CPU_STRESS,
        pb.MEMORY_STRESS, pb.DISK_IO_STRESS, pb.CLOCK_SKEW,
    ],
)
async def test_faults_outside_the_process_are_left_to_the_harness(coordinator: Coordinator, event_type: int) -> None:
    request = pb.InjectChaosRequest(event_type=event_type, target_service=RISK_MONITOR, duration_ms=1_000)
    await expect_error(
        coordinator.stub.InjectChaos(request), grpc.StatusCode.UNIMPLEMENTED,
        pb.ChaosEventType.Name(event_type), "test harness", "not by the test-coordinator",
    )


async def test_inject_chaos_creates_a_pending_event(coordinator: Coordinator) -> None:
    stub = coordinator.stub
    error = await stub.InjectChaos(
        pb.InjectChaosRequest(
            event_type=pb.ERROR_INJECTION, target_service=TRADING_SYSTEM_ENGINE,
            parameters={"code": "unavailable", "percentage": "12.5"}, duration_ms=2_000,
        )
    )
    assert error.status == pb.PENDING
    assert error.created_at.ToSeconds() == int(T0)
    assert not error.HasField("injected_at")
    assert dict(error.parameters) == {"code": "UNAVAILABLE", "percentage": "12.5"}
    loss = await stub.InjectChaos(
        pb.InjectChaosRequest(
            event_type=pb.NETWORK_PACKET_LOSS, target_service=RISK_MONITOR, parameters={"percentage": "100"},
            duration_ms=600_000,
        )
    )
    assert await stub.GetChaosEvent(pb.GetChaosEventRequest(event_id=error.event_id)) == error
    everything = await stub.ListChaosEvents(pb.ListChaosEventsRequest())
    assert [e.event_id for e in everything.events] == [error.event_id, loss.event_id]
    only_risk = await stub.ListChaosEvents(pb.ListChaosEventsRequest(target_service=RISK_MONITOR))
    assert [e.event_id for e in only_risk.events] == [loss.event_id]
    await expect_error(
        stub.ListChaosEvents(pb.ListChaosEventsRequest(target_service="billing")), INVALID, "target_service"
    )
    await expect_error(
        stub.GetChaosEvent(pb.GetChaosEventRequest(event_id="nope")), grpc.StatusCode.NOT_FOUND,
        "chaos event not found: nope",
    )


async def test_recovery_time_counts_from_the_scheduled_end(coordinator: Coordinator) -> None:
    stub, clock = coordinator.stub, coordinator.clock
    event = await stub.InjectChaos(latency(duration_ms=1_000))
    clock.advance_ms(30)
    injected = await stub.ReportChaosEvent(report(event.event_id, pb.INJECTED))
    assert injected.status == pb.INJECTED
    assert injected.injected_at.ToMilliseconds() == int(T0 * 1000) + 30
    assert list(injected.acknowledged_by) == ["inst-a"]

    clock.advance_ms(1_000 + 45)
    recovered = await stub.ReportChaosEvent(report(event.event_id, pb.RECOVERED))
    assert recovered.status == pb.RECOVERED
    assert recovered.recovered_at.ToMilliseconds() == int(T0 * 1000) + 1_075
    assert recovered.recovery_time_ms == 45


async def test_an_event_an_instance_never_recovers_fails_naming_it(coordinator: Coordinator) -> None:
    stub, clock = coordinator.stub, coordinator.clock
    event = await stub.InjectChaos(latency(duration_ms=1_000))
    await stub.ReportChaosEvent(report(event.event_id, pb.INJECTED, "inst-a"))
    await stub.ReportChaosEvent(report(event.event_id, pb.INJECTED, "inst-b"))
    clock.advance_ms(1_000)
    await stub.ReportChaosEvent(report(event.event_id, pb.RECOVERED, "inst-a"))

    clock.advance_ms(RECOVERY_GRACE_MS)
    assert (await stub.GetChaosEvent(pb.GetChaosEventRequest(event_id=event.event_id))).status == pb.INJECTED
    clock.advance_ms(1)
    failed = await stub.GetChaosEvent(pb.GetChaosEventRequest(event_id=event.event_id))

    assert failed.status == pb.FAILED
    assert failed.detail == f"no RECOVERED report from inst-b within {RECOVERY_GRACE_MS} ms of the end"
    listed = await stub.ListChaosEvents(pb.ListChaosEventsRequest())
    assert [e.status for e in listed.events] == [pb.FAILED]


async def test_recovery_reported_early_counts_as_zero(coordinator: Coordinator) -> None:
    stub, clock = coordinator.stub, coordinator.clock
    event = await stub.InjectChaos(latency(duration_ms=1_000))
    await stub.ReportChaosEvent(report(event.event_id, pb.INJECTED))
    clock.advance_ms(990)
    recovered = await stub.ReportChaosEvent(report(event.event_id, pb.RECOVERED))
    assert (recovered.status, recovered.recovery_time_ms) == (pb.RECOVERED, 0)


async def test_event_recovers_when_every_acknowledging_instance_has(coordinator: Coordinator) -> None:
    stub, clock = coordinator.stub, coordinator.clock
    event = await stub.InjectChaos(latency(duration_ms=500))
    await stub.ReportChaosEvent(report(event.event_id, pb.INJECTED, "inst-a"))
    clock.advance_ms(100)
    both = await stub.ReportChaosEvent(report(event.event_id, pb.INJECTED, "inst-b"))
    assert list(both.acknowledged_by) == ["inst-a", "inst-b"]
    assert both.injected_at.ToMilliseconds() == int(T0 * 1000), "the first acknowledgement sets injected_at"
    # A retried report changes nothing.
    assert await stub.ReportChaosEvent(report(event.event_id, pb.INJECTED, "inst-b")) == both

    clock.advance_ms(410)
    one = await stub.ReportChaosEvent(report(event.event_id, pb.RECOVERED, "inst-a"))
    assert one.status == pb.INJECTED
    clock.advance_ms(20)
    done = await stub.ReportChaosEvent(report(event.event_id, pb.RECOVERED, "inst-b"))
    assert (done.status, done.recovery_time_ms) == (pb.RECOVERED, 30)
    assert await stub.ReportChaosEvent(report(event.event_id, pb.RECOVERED, "inst-b")) == done


async def test_report_transitions_are_validated(coordinator: Coordinator) -> None:
    stub = coordinator.stub
    event = await stub.InjectChaos(latency())
    precondition = grpc.StatusCode.FAILED_PRECONDITION
    await expect_error(
        stub.ReportChaosEvent(report(event.event_id, pb.RECOVERED)),
        precondition, event.event_id, "before it reported INJECTED",
    )
    await expect_error(stub.ReportChaosEvent(report(event.event_id, pb.IN_PROGRESS)), INVALID, "status", "IN_PROGRESS")
    await expect_error(stub.ReportChaosEvent(report(event.event_id, pb.INJECTED, instance="")), INVALID, "instance_id")
    await expect_error(stub.ReportChaosEvent(report("nope", pb.INJECTED)), grpc.StatusCode.NOT_FOUND, "nope")

    await stub.ReportChaosEvent(report(event.event_id, pb.INJECTED, "inst-a"))
    await expect_error(
        stub.ReportChaosEvent(report(event.event_id, pb.RECOVERED, "inst-b")), precondition, "inst-b"
    )
    failed = await stub.ReportChaosEvent(report(event.event_id, pb.FAILED, "inst-b", detail="bad delay"))
    assert failed.status == pb.FAILED
    assert "bad delay" in failed.detail and "inst-b" in failed.detail
    await expect_error(stub.ReportChaosEvent(report(event.event_id, pb.INJECTED, "inst-c")), precondition, "FAILED")
    await expect_error(stub.ReportChaosEvent(report(event.event_id, pb.RECOVERED, "inst-a")), precondition, "FAILED")


async def test_ending_an_injected_event_cuts_its_schedule_and_tells_its_targets(coordinator: Coordinator) -> None:
    stub, clock = coordinator.stub, coordinator.clock
    event = await stub.InjectChaos(latency(duration_ms=30_000))
    await stub.ReportChaosEvent(report(event.event_id, pb.INJECTED))
    call = stub.WatchControlEvents(pb.WatchControlEventsRequest(service=RISK_MONITOR, instance_id="inst-a"))
    replayed = await asyncio.wait_for(call.read(), 5)
    assert replayed.chaos.duration_ms == 30_000

    clock.advance_ms(1_200)
    ended = await stub.EndChaosEvent(pb.EndChaosEventRequest(event_id=event.event_id))
    assert (ended.status, ended.duration_ms) == (pb.INJECTED, 1_200)
    assert "ended by EndChaosEvent after 1200 of 30000 ms" in ended.detail
    told = await asyncio.wait_for(call.read(), 5)
    call.cancel()
    assert (told.chaos.event_id, told.chaos.duration_ms) == (event.event_id, 1_200)

    clock.advance_ms(15)
    recovered = await stub.ReportChaosEvent(report(event.event_id, pb.RECOVERED))
    assert (recovered.status, recovered.recovery_time_ms) == (pb.RECOVERED, 15)
    again = await stub.EndChaosEvent(pb.EndChaosEventRequest(event_id=event.event_id))
    assert again == recovered, "ending an event that is over changes nothing"


async def test_ending_a_pending_event_recovers_it_at_once(coordinator: Coordinator) -> None:
    stub = coordinator.stub
    event = await stub.InjectChaos(latency())
    ended = await stub.EndChaosEvent(pb.EndChaosEventRequest(event_id=event.event_id))
    assert (ended.status, ended.recovery_time_ms, ended.duration_ms) == (pb.RECOVERED, 0, 0)
    assert not ended.acknowledged_by
    await expect_error(
        stub.EndChaosEvent(pb.EndChaosEventRequest(event_id="nope")), grpc.StatusCode.NOT_FOUND,
        "chaos event not found: nope",
    )


# The control stream


async def test_watch_delivers_new_events_and_scenarios(coordinator: Coordinator) -> None:
    stub = coordinator.stub
    call = stub.WatchControlEvents(pb.WatchControlEventsRequest(service=RISK_MONITOR, instance_id="inst-a"))
    await call.initial_metadata()  # the coordinator has subscribed this stream
    other = await stub.InjectChaos(latency(target=TRADING_SYSTEM_ENGINE))
    mine = await stub.InjectChaos(latency(target=RISK_MONITOR))
    scenario = await stub.StartScenario(pb.StartScenarioRequest(name="s"))
    await stub.CompleteScenario(pb.CompleteScenarioRequest(scenario_id=scenario.scenario_id))

    received = [await asyncio.wait_for(call.read(), 5) for _ in range(3)]
    assert coordinator.servicer.subscriber_count(RISK_MONITOR) == 1
    call.cancel()
    assert received[0].chaos.event_id == mine.event_id, f"only events aimed at {RISK_MONITOR}, not {other.event_id}"
    assert (received[1].scenario.scenario_id, received[1].scenario.status) == (
        scenario.scenario_id, pb.SCENARIO_STATUS_ACTIVE,
    )
    assert received[2].scenario.status == pb.SCENARIO_STATUS_COMPLETED
    async def subscribers() -> int:
        return coordinator.servicer.subscriber_count(RISK_MONITOR)

    await wait_until_async(
        subscribers,
        lambda count: count == 0,
        timeout=5,
        what="the coordinator drops the cancelled WatchControlEvents subscriber",
    )


async def test_a_late_subscriber_gets_what_is_still_active(coordinator: Coordinator) -> None:
    stub, clock = coordinator.stub, coordinator.clock
    pending = await stub.InjectChaos(latency(duration_ms=1_000))
    running = await stub.InjectChaos(latency(duration_ms=1_000))
    over = await stub.InjectChaos(latency(duration_ms=1_000))
    await stub.InjectChaos(latency(target=TRADING_SYSTEM_ENGINE))
    await stub.ReportChaosEvent(report(over.event_id, pb.INJECTED))
    clock.advance_ms(600)
    await stub.ReportChaosEvent(report(running.event_id, pb.INJECTED))
    clock.advance_ms(600)  # `over` ended 200 ms ago; `running` has 400 ms left
    done = await stub.StartScenario(pb.StartScenarioRequest(name="done"))
    await stub.CompleteScenario(pb.CompleteScenarioRequest(scenario_id=done.scenario_id))
    active = await stub.StartScenario(pb.StartScenarioRequest(name="active"))
    await stub.RecordOutcome(pb.RecordOutcomeRequest(scenario_ids=[active.scenario_id], outcome=outcome("ACCEPTED")))

    call = stub.WatchControlEvents(pb.WatchControlEventsRequest(service=RISK_MONITOR, instance_id="late"))
    replayed = [await asyncio.wait_for(call.read(), 5) for _ in range(4)]
    call.cancel()
    # `over` too: an instance that held it and reconnects may have missed its end (one that never held it
    # does not apply an event whose schedule is over).
    assert [m.chaos.event_id for m in replayed[:3]] == [pending.event_id, running.event_id, over.event_id]
    assert replayed[1].chaos.injected_at.ToMilliseconds() == int(T0 * 1000) + 600, "the original schedule is kept"
    assert replayed[3].scenario.scenario_id == active.scenario_id
    assert not replayed[3].scenario.outcomes, "the stream carries scenario states, not their outcomes"


async def test_watch_rejects_unknown_services_and_ends_on_request(coordinator: Coordinator) -> None:
    stub = coordinator.stub
    bad = stub.WatchControlEvents(pb.WatchControlEventsRequest(service="billing", instance_id="x"))
    await expect_error(bad.read(), INVALID, "service", "billing")

    call = stub.WatchControlEvents(pb.WatchControlEventsRequest(service=RISK_MONITOR, instance_id="x"))
    await call.initial_metadata()  # the coordinator has subscribed this stream
    await coordinator.servicer.end_streams()
    assert await asyncio.wait_for(call.read(), 5) is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK


async def test_active_scenarios_are_bounded_and_completed_ones_expire(coordinator: Coordinator) -> None:
    stub = coordinator.stub
    started = [await stub.StartScenario(pb.StartScenarioRequest(name=f"s{i}")) for i in range(MAX_ACTIVE_SCENARIOS)]

    await expect_error(
        stub.StartScenario(pb.StartScenarioRequest(name="one too many")),
        grpc.StatusCode.RESOURCE_EXHAUSTED, f"{MAX_ACTIVE_SCENARIOS} scenarios are active",
    )
    first = started[0].scenario_id
    await stub.CompleteScenario(pb.CompleteScenarioRequest(scenario_id=first))
    await stub.StartScenario(pb.StartScenarioRequest(name="now there is room"))
    assert (await stub.GetScenario(pb.GetScenarioRequest(scenario_id=first))).name == "s0", "kept a while"

    coordinator.clock.advance_ms(int(COMPLETED_KEPT_S * 1000) + 1)
    await stub.CompleteScenario(pb.CompleteScenarioRequest(scenario_id=started[1].scenario_id))
    await expect_error(
        stub.GetScenario(pb.GetScenarioRequest(scenario_id=first)), grpc.StatusCode.NOT_FOUND, first
    )


async def test_a_scenario_keeps_its_latest_outcomes_and_counts_them_all(coordinator: Coordinator) -> None:
    stub = coordinator.stub
    scenario = await stub.StartScenario(pb.StartScenarioRequest(name="long"))
    for index in range(MAX_KEPT_OUTCOMES + 5):
        record = outcome("ACCEPTED", f"o-{index}")
        await stub.RecordOutcome(pb.RecordOutcomeRequest(scenario_ids=[scenario.scenario_id], outcome=record))

    kept = await stub.GetScenario(pb.GetScenarioRequest(scenario_id=scenario.scenario_id))
    assert len(kept.outcomes) == MAX_KEPT_OUTCOMES and kept.outcomes[0].order_id == "o-5"
    assert kept.outcome_counts["ACCEPTED"] == MAX_KEPT_OUTCOMES + 5


async def test_pending_chaos_events_are_bounded(coordinator: Coordinator) -> None:
    stub = coordinator.stub
    events = [await stub.InjectChaos(latency()) for _ in range(MAX_ACTIVE_EVENTS)]

    await expect_error(stub.InjectChaos(latency()), grpc.StatusCode.RESOURCE_EXHAUSTED, "EndChaosEvent")
    await stub.EndChaosEvent(pb.EndChaosEventRequest(event_id=events[0].event_id))
    assert (await stub.InjectChaos(latency())).status == pb.PENDING
