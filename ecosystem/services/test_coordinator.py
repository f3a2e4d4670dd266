"""test-coordinator: test scenarios and the chaos control plane.

State lives in this one process's memory. Every handler runs on the event loop and does not await
between reading and writing state, so no lock is needed.

Chaos events the fault middleware of a service can apply (latency, error injection, packet loss as
UNAVAILABLE aborts) are created here and pushed to the target's `WatchControlEvents` streams; the
target's instances acknowledge them. Faults on processes, hosts and networks are applied by the
test harness, not by the coordinator.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ecosystem.api.coordinator.v1 import coordinator_pb2, coordinator_pb2_grpc
from ecosystem.errors import EcosystemError
from ecosystem.names import ALL_SERVICES, GRPC_SERVICES, TEST_COORDINATOR
from ecosystem.security import impersonation
from ecosystem.server import ServiceHost
from ecosystem.settings import Settings

MAX_DURATION_MS = 600_000
MAX_DELAY_MS = 60_000
# Memory stays bounded whoever calls: a scenario keeps its most recent outcomes only (outcome_counts counts them
# all); at most MAX_ACTIVE_SCENARIOS run at once, and completed ones are kept for COMPLETED_KEPT_S, at most
# COMPLETED_KEPT of them. Likewise chaos events: MAX_ACTIVE_EVENTS pending or injected, ENDED_EVENTS_KEPT over.
MAX_KEPT_OUTCOMES = 256
MAX_ACTIVE_SCENARIOS = 32
COMPLETED_KEPT = 64
COMPLETED_KEPT_S = 600.0
MAX_ACTIVE_EVENTS = 64
ENDED_EVENTS_KEPT = 256
# A control stream this far behind is ended: its instance reconnects and gets the current state replayed.
CONTROL_QUEUE_SIZE = 1_000
# An instance that applied a fault and has not reported it removed this long after the event's end
# is taken for dead (killed, partitioned): the event is FAILED, naming it, instead of INJECTED forever.
RECOVERY_GRACE_MS = 30_000
OUTCOMES = ("ACCEPTED", "REJECTED", "FAILED")

PARAMETERS = {
    coordinator_pb2.NETWORK_LATENCY: ("delay_ms",),
    coordinator_pb2.ERROR_INJECTION: ("code", "percentage"),
    coordinator_pb2.NETWORK_PACKET_LOSS: ("percentage",),
}
HARNESS_TYPES = frozenset(
    {
        coordinator_pb2.SERVICE_RESTART,
        coordinator_pb2.SERVICE_KILL,
        coordinator_pb2.NETWORK_PARTITION,
        coordinator_pb2.CPU_STRESS,
        coordinator_pb2.MEMORY_STRESS,
        coordinator_pb2.DISK_IO_STRESS,
        coordinator_pb2.CLOCK_SKEW,
    }
)
_END_OF_STREAM = None

M = TypeVar("M", bound=Message)


async def _act_for(context: grpc.aio.ServicerContext, service: str, what: str) -> None:
    refused = impersonation(context, service, what)
    if refused is not None:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, refused)


class InvalidRequest(EcosystemError):
    """A request the coordinator refuses; `code` is the gRPC status to answer with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _Results:
    outcomes: deque[coordinator_pb2.ScenarioOutcome] = field(default_factory=lambda: deque(maxlen=MAX_KEPT_OUTCOMES))
    counts: Counter[str] = field(default_factory=Counter)


@dataclass
class _EventState:
    event: coordinator_pb2.ChaosEvent
    recovered_by: set[str] = field(default_factory=set)


def _type_name(event_type: int) -> str:
    return coordinator_pb2.ChaosEventType.Name(event_type)


def _status_name(status: int) -> str:
    known = status in coordinator_pb2.ChaosEventStatus.values()
    return coordinator_pb2.ChaosEventStatus.Name(status) if known else str(status)


def _parse_percentage(raw: str) -> str:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (0 < value <= 100):
        raise InvalidRequest(
            grpc.StatusCode.INVALID_ARGUMENT, f"parameters.percentage must be a number in (0, 100], got {raw!r}"
        )
    return raw


def _parse_delay_ms(raw: str) -> str:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not (1 <= value <= MAX_DELAY_MS):
        raise InvalidRequest(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"parameters.delay_ms must be an integer from 1 to {MAX_DELAY_MS}, got {raw!r}",
        )
    return str(value)


def _parse_code(raw: str) -> str:
    name = raw.strip().upper()
    if name not in grpc.StatusCode.__members__ or name == "OK":
        raise InvalidRequest(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"parameters.code must be a gRPC status name other than OK (e.g. UNAVAILABLE), got {raw!r}",
        )
    return name


_PARSERS = {"delay_ms": _parse_delay_ms, "code": _parse_code, "percentage": _parse_percentage}


def validate_chaos_request(request: coordinator_pb2.InjectChaosRequest) -> dict[str, str]:
    """The event's normalised parameters; InvalidRequest names the field that is wrong."""
    event_type = request.event_type
    if event_type == coordinator_pb2.CHAOS_EVENT_TYPE_UNSPECIFIED:
        raise InvalidRequest(grpc.StatusCode.INVALID_ARGUMENT, "event_type is required")
    if event_type not in coordinator_pb2.ChaosEventType.values():
        raise InvalidRequest(grpc.StatusCode.INVALID_ARGUMENT, f"event_type {event_type} is not a ChaosEventType")
    if request.target_service not in ALL_SERVICES:
        raise InvalidRequest(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"target_service must be one of {', '.join(ALL_SERVICES)}, got {request.target_service!r}",
        )
    if event_type in HARNESS_TYPES:
        raise InvalidRequest(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{_type_name(event_type)} is applied by the test harness (the suite's target), not by the "
            f"test-coordinator; the coordinator injects {', '.join(_type_name(t) for t in PARAMETERS)} only",
        )
    if not (0 < request.duration_ms <= MAX_DURATION_MS):
        raise InvalidRequest(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"duration_ms must be from 1 to {MAX_DURATION_MS}, got {request.duration_ms}",
        )
    expected = PARAMETERS[event_type]
    unknown = sorted(set(request.parameters) - set(expected))
    if unknown:
        raise InvalidRequest(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"parameters.{unknown[0]} is not a parameter of {_type_name(event_type)} (expected: {', '.join(expected)})",
        )
    parameters = {}
    for name in expected:
        if name not in request.parameters:
            raise InvalidRequest(
                grpc.StatusCode.INVALID_ARGUMENT, f"parameters.{name} is required for {_type_name(event_type)}"
            )
        parameters[name] = _PARSERS[name](request.parameters[name])
    return parameters


class TestCoordinatorServicer(coordinator_pb2_grpc.TestCoordinatorServiceServicer):
    """Scenarios and chaos events of this coordinator; `wall_clock` (seconds since the epoch) stamps them."""

    __test__ = False  # a servicer, not a pytest test class, despite its generated name

    def __init__(self, *, wall_clock: Callable[[], float] = time.time) -> None:
        self._wall_clock = wall_clock
        # Outcomes and their counts are kept apart from the Scenario message: a long-lived message grows its arena
        # with every change, however many elements are deleted (measured: +30 MB per 200k outcomes appended to a
        # repeated field, +8 MB per 500k counter updates in a map); a deque and a Counter do not.
        self._scenarios: dict[str, coordinator_pb2.Scenario] = {}  # outcomes and outcome_counts left empty
        self._results: dict[str, _Results] = {}
        self._completed: dict[str, float] = {}  # scenario id -> wall-clock completion, oldest first
        self._events: dict[str, _EventState] = {}
        self._subscribers: dict[str, set[asyncio.Queue[coordinator_pb2.ControlEvent | None]]] = {
            service: set() for service in ALL_SERVICES
        }

    def subscriber_count(self, service: str) -> int:
        """Open WatchControlEvents streams of `service`."""
        return len(self._subscribers[service])

    async def end_streams(self) -> None:
        """End every WatchControlEvents stream, so a draining coordinator does not wait on them."""
        for queues in self._subscribers.values():
            for queue in queues:
                _end_stream(queue)

    # Scenarios

    async def StartScenario(
        self, request: coordinator_pb2.StartScenarioRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.Scenario:
        name = request.name.strip()
        if not name:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "scenario name is required")
        self._forget_completed()
        active = len(self._scenarios) - len(self._completed)
        if active >= MAX_ACTIVE_SCENARIOS:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{active} scenarios are active, the most the test-coordinator runs at once: complete one first",
            )
        scenario = coordinator_pb2.Scenario(
            scenario_id=str(uuid.uuid4()),
            name=name,
            status=coordinator_pb2.SCENARIO_STATUS_ACTIVE,
            parameters=request.parameters,
            started_at=self._now(),
        )
        self._scenarios[scenario.scenario_id] = scenario
        self._results[scenario.scenario_id] = _Results()
        self._publish_scenario(scenario)
        return self._full(scenario)

    async def GetScenario(
        self, request: coordinator_pb2.GetScenarioRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.Scenario:
        return self._full(await self._scenario(request.scenario_id, context))

    async def ListActiveScenarios(
        self, request: coordinator_pb2.ListActiveScenariosRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.ListActiveScenariosResponse:
        return coordinator_pb2.ListActiveScenariosResponse(scenarios=self._active_scenarios())

    async def CompleteScenario(
        self, request: coordinator_pb2.CompleteScenarioRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.Scenario:
        scenario = await self._scenario(request.scenario_id, context)
        if scenario.status != coordinator_pb2.SCENARIO_STATUS_ACTIVE:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"scenario {scenario.scenario_id} ({scenario.name}) is already completed",
            )
        scenario.status = coordinator_pb2.SCENARIO_STATUS_COMPLETED
        scenario.completed_at.CopyFrom(self._now())
        self._completed[scenario.scenario_id] = self._wall_clock()
        self._forget_completed()
        self._publish_scenario(scenario)
        return self._full(scenario)

    def _forget_completed(self) -> None:
        expired_before = self._wall_clock() - COMPLETED_KEPT_S
        for scenario_id, completed_at in list(self._completed.items()):
            if len(self._completed) <= COMPLETED_KEPT and completed_at > expired_before:
                break
            del self._completed[scenario_id]
            del self._scenarios[scenario_id]
            del self._results[scenario_id]

    async def RecordOutcome(
        self, request: coordinator_pb2.RecordOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.RecordOutcomeResponse:
        outcome = coordinator_pb2.ScenarioOutcome()
        outcome.CopyFrom(request.outcome)
        if not request.scenario_ids:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "scenario_ids: name at least one scenario")
        if outcome.outcome not in OUTCOMES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"outcome.outcome must be one of {', '.join(OUTCOMES)}, got {outcome.outcome!r}",
            )
        if outcome.service not in ALL_SERVICES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"outcome.service must be one of {', '.join(ALL_SERVICES)}, got {outcome.service!r}",
            )
        await _act_for(context, outcome.service, "record outcomes")
        if not outcome.HasField("recorded_at"):
            outcome.recorded_at.CopyFrom(self._now())
        response = coordinator_pb2.RecordOutcomeResponse()
        for scenario_id in dict.fromkeys(request.scenario_ids):
            scenario = self._scenarios.get(scenario_id)
            if scenario is None:
                response.not_recorded.append(f"{scenario_id}: scenario not found")
            elif scenario.status != coordinator_pb2.SCENARIO_STATUS_ACTIVE:
                response.not_recorded.append(f"{scenario_id}: scenario {scenario.name!r} is completed")
            else:
                results = self._results[scenario_id]
                results.outcomes.append(outcome)
                results.counts[outcome.outcome] += 1
                response.recorded.append(scenario_id)
        return response

    # Chaos events

    async def InjectChaos(
        self, request: coordinator_pb2.InjectChaosRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.ChaosEvent:
        try:
            parameters = validate_chaos_request(request)
        except InvalidRequest as exc:
            await context.abort(exc.code, str(exc))
        event = coordinator_pb2.ChaosEvent(
            event_id=str(uuid.uuid4()),
            event_type=request.event_type,
            target_service=request.target_service,
            parameters=parameters,
            duration_ms=request.duration_ms,
            status=coordinator_pb2.PENDING,
            created_at=self._now(),
        )
        active = self._forget_ended_events()
        if active >= MAX_ACTIVE_EVENTS:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{MAX_ACTIVE_EVENTS} chaos events are pending or injected, the most the test-coordinator holds: "
                "end one first (EndChaosEvent)",
            )
        self._events[event.event_id] = _EventState(event)
        self._publish_event(event)
        return _copy(event)

    def _forget_ended_events(self) -> int:
        """Drop the oldest events that are over beyond the ENDED_EVENTS_KEPT most recent; the number still active."""
        for state in self._events.values():
            self._settle_overdue(state)
        active = (coordinator_pb2.PENDING, coordinator_pb2.INJECTED)
        ended = [i for i, state in self._events.items() if state.event.status not in active]
        still_active = len(self._events) - len(ended)
        for event_id in ended[: max(0, len(ended) - ENDED_EVENTS_KEPT)]:
            del self._events[event_id]
        return still_active

    async def GetChaosEvent(
        self, request: coordinator_pb2.GetChaosEventRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.ChaosEvent:
        return _copy((await self._event(request.event_id, context)).event)

    async def ListChaosEvents(
        self, request: coordinator_pb2.ListChaosEventsRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.ListChaosEventsResponse:
        target = request.target_service
        if target and target not in ALL_SERVICES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"target_service must be empty or one of {', '.join(ALL_SERVICES)}, got {target!r}",
            )
        states = [s for s in self._events.values() if not target or s.event.target_service == target]
        for state in states:
            self._settle_overdue(state)
        return coordinator_pb2.ListChaosEventsResponse(events=[s.event for s in states])

    async def ReportChaosEvent(
        self, request: coordinator_pb2.ReportChaosEventRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.ChaosEvent:
        state = await self._event(request.event_id, context)
        if not request.instance_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "instance_id is required")
        await _act_for(context, state.event.target_service, "report chaos events")
        try:
            self._apply_report(state, request)
        except InvalidRequest as exc:
            await context.abort(exc.code, str(exc))
        return _copy(state.event)

    async def EndChaosEvent(
        self, request: coordinator_pb2.EndChaosEventRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.ChaosEvent:
        """End the event now: its schedule is cut to the time elapsed and its targets told to remove the fault.

        Ending an event that is over already changes nothing, so cleanups can always call it.
        """
        state = await self._event(request.event_id, context)
        event = state.event
        now = self._now()
        if event.status == coordinator_pb2.PENDING:
            # No instance applied it, so none will report it recovered.
            event.duration_ms = 0
            event.status = coordinator_pb2.RECOVERED
            event.recovered_at.CopyFrom(now)
            event.recovery_time_ms = 0
            event.detail = "ended by EndChaosEvent before any instance applied it"
        elif event.status == coordinator_pb2.INJECTED:
            elapsed_ms = max(0, now.ToMilliseconds() - event.injected_at.ToMilliseconds())
            if elapsed_ms < event.duration_ms:
                event.detail = f"ended by EndChaosEvent after {elapsed_ms} of {event.duration_ms} ms"
                event.duration_ms = elapsed_ms
        else:
            return _copy(event)
        self._publish_event(event)
        return _copy(event)

    def _apply_report(self, state: _EventState, request: coordinator_pb2.ReportChaosEventRequest) -> None:
        """Move the event along PENDING -> INJECTED -> RECOVERED (or FAILED); repeated reports change nothing."""
        event, instance, status = state.event, request.instance_id, request.status
        label = f"chaos event {event.event_id} is {_status_name(event.status)}"
        if status == coordinator_pb2.INJECTED:
            if instance in event.acknowledged_by:
                return
            if event.status not in (coordinator_pb2.PENDING, coordinator_pb2.INJECTED):
                raise InvalidRequest(grpc.StatusCode.FAILED_PRECONDITION, f"{label}: {instance} cannot inject it now")
            if event.status == coordinator_pb2.PENDING:
                event.status = coordinator_pb2.INJECTED
                event.injected_at.CopyFrom(self._now())
            event.acknowledged_by.append(instance)
        elif status == coordinator_pb2.RECOVERED:
            if instance in state.recovered_by:
                return
            if event.status != coordinator_pb2.INJECTED or instance not in event.acknowledged_by:
                raise InvalidRequest(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"{label}: {instance} cannot report RECOVERED before it reported INJECTED",
                )
            state.recovered_by.add(instance)
            # Recovered means every instance that applied the fault has removed it.
            if state.recovered_by.issuperset(event.acknowledged_by):
                now = self._now()
                event.status = coordinator_pb2.RECOVERED
                event.recovered_at.CopyFrom(now)
                scheduled_end_ms = event.injected_at.ToMilliseconds() + event.duration_ms
                event.recovery_time_ms = max(0, now.ToMilliseconds() - scheduled_end_ms)
        elif status == coordinator_pb2.FAILED:
            if event.status not in (coordinator_pb2.PENDING, coordinator_pb2.INJECTED):
                raise InvalidRequest(grpc.StatusCode.FAILED_PRECONDITION, f"{label}: {instance} cannot fail it now")
            event.status = coordinator_pb2.FAILED
            event.detail = f"{instance}: {request.detail}" if request.detail else instance
        else:
            raise InvalidRequest(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"status must be INJECTED, RECOVERED or FAILED, got {_status_name(status)}",
            )

    # Control stream

    async def WatchControlEvents(
        self, request: coordinator_pb2.WatchControlEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[coordinator_pb2.ControlEvent]:
        if request.service not in ALL_SERVICES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"service must be one of {', '.join(ALL_SERVICES)}, got {request.service!r}",
            )
        await _act_for(context, request.service, "watch control events")
        queue: asyncio.Queue[coordinator_pb2.ControlEvent | None] = asyncio.Queue(CONTROL_QUEUE_SIZE)
        # Subscribing and taking the snapshot without an await between them loses no event.
        subscribers = self._subscribers[request.service]
        subscribers.add(queue)
        snapshot = [coordinator_pb2.ControlEvent(chaos=e) for e in self._events_to_replay(request.service)]
        snapshot += [coordinator_pb2.ControlEvent(scenario=_summary(s)) for s in self._active_scenarios()]
        try:
            # Headers now, even with nothing to replay: a client awaiting initial_metadata() knows it is subscribed.
            await context.send_initial_metadata(())
            for replayed in snapshot:
                yield replayed
            while (message := await queue.get()) is not _END_OF_STREAM:
                yield message
        finally:
            subscribers.discard(queue)

    def _events_to_replay(self, service: str) -> list[coordinator_pb2.ChaosEvent]:
        """Events of `service` an instance connecting now must hear of: pending or injected ones.

        An injected event whose schedule is over is replayed too: an instance that held its fault and
        reconnects (a stream cut by a registry hiccup) may have missed its early end. An instance that
        never held it does not apply an event that is over.
        """
        active = (coordinator_pb2.PENDING, coordinator_pb2.INJECTED)
        return [
            state.event
            for state in self._events.values()
            if state.event.target_service == service and state.event.status in active
        ]

    def _publish_event(self, event: coordinator_pb2.ChaosEvent) -> None:
        message = coordinator_pb2.ControlEvent(chaos=event)
        for queue in self._subscribers[event.target_service]:
            _offer(queue, message)

    def _publish_scenario(self, scenario: coordinator_pb2.Scenario) -> None:
        # Subscribers only need to know which scenarios are active, not every outcome recorded so far.
        message = coordinator_pb2.ControlEvent(scenario=_summary(scenario))
        for queues in self._subscribers.values():
            for queue in queues:
                _offer(queue, message)

    def _active_scenarios(self) -> list[coordinator_pb2.Scenario]:
        return [self._full(s) for s in self._scenarios.values() if s.status == coordinator_pb2.SCENARIO_STATUS_ACTIVE]

    def _full(self, scenario: coordinator_pb2.Scenario) -> coordinator_pb2.Scenario:
        """A copy of `scenario` with the outcomes it keeps and their counts."""
        full = _copy(scenario)
        results = self._results[scenario.scenario_id]
        full.outcomes.extend(results.outcomes)
        full.outcome_counts.update(results.counts)
        return full

    async def _scenario(self, scenario_id: str, context: grpc.aio.ServicerContext) -> coordinator_pb2.Scenario:
        self._forget_completed()
        scenario = self._scenarios.get(scenario_id)
        if scenario is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"scenario not found: {scenario_id} (completed scenarios are kept {COMPLETED_KEPT_S:g} s, the "
                f"{COMPLETED_KEPT} most recent)",
            )
        return scenario

    async def _event(self, event_id: str, context: grpc.aio.ServicerContext) -> _EventState:
        state = self._events.get(event_id)
        if state is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"chaos event not found: {event_id}")
        self._settle_overdue(state)
        return state

    def _settle_overdue(self, state: _EventState) -> None:
        event = state.event
        if event.status != coordinator_pb2.INJECTED:
            return
        overdue_ms = self._now().ToMilliseconds() - (event.injected_at.ToMilliseconds() + event.duration_ms)
        if overdue_ms > RECOVERY_GRACE_MS:
            silent = sorted(set(event.acknowledged_by) - state.recovered_by)
            event.status = coordinator_pb2.FAILED
            event.detail = f"no RECOVERED report from {', '.join(silent)} within {RECOVERY_GRACE_MS} ms of the end"

    def _now(self) -> Timestamp:
        now = Timestamp()
        # Microseconds: a float of seconds since the epoch holds no finer digits.
        now.FromMicroseconds(round(self._wall_clock() * 1e6))
        return now


def _offer(queue: asyncio.Queue[coordinator_pb2.ControlEvent | None], message: coordinator_pb2.ControlEvent) -> None:
    """Queue `message`; a subscriber too far behind has its stream ended instead, and reconnects to a replay of
    the current state, which loses nothing (events and scenarios are state, not a log)."""
    if queue.full():
        _end_stream(queue)
    else:
        queue.put_nowait(message)


def _end_stream(queue: asyncio.Queue[coordinator_pb2.ControlEvent | None]) -> None:
    while queue.full():
        queue.get_nowait()
    queue.put_nowait(_END_OF_STREAM)


def _copy(message: M) -> M:
    duplicate = type(message)()
    duplicate.CopyFrom(message)
    return duplicate


def _summary(scenario: coordinator_pb2.Scenario) -> coordinator_pb2.Scenario:
    summary = _copy(scenario)
    del summary.outcomes[:]
    return summary


async def serve(settings: Settings) -> None:
    async with ServiceHost(TEST_COORDINATOR, settings) as host:
        servicer = TestCoordinatorServicer()
        host.add_service(
            coordinator_pb2_grpc.add_TestCoordinatorServiceServicer_to_server, servicer, GRPC_SERVICES[TEST_COORDINATOR]
        )
        host.on_shutdown(servicer.end_streams)
        await host.serve()


def main() -> None:
    asyncio.run(serve(Settings.from_env()))


if __name__ == "__main__":
    main()
