"""The chaos control plane inside every service: faults applied in-process, scenario tracking.

`ControlPlaneLink` keeps a `WatchControlEvents` stream open to the test-coordinator. A chaos event
aimed at this service is handed to the `FaultInjector`, which the server middleware consults before
every business RPC (latency, then an abort at a percentage, like Envoy's fault filter). The link
acknowledges the event as INJECTED, removes the fault when its duration ends (or when the coordinator
ends the event early) and reports RECOVERED.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass

import grpc

from ecosystem.api.coordinator.v1 import coordinator_pb2
from ecosystem.backoff import Backoff
from ecosystem.client_manager import InterServiceClientManager, ServiceCommunicationError
from ecosystem.discovery import RegistryError
from ecosystem.logs import log_decision, log_event
from ecosystem.names import GRPC_SERVICES, TEST_COORDINATOR

Clock = Callable[[], float]

# The coordinator's own chaos control plane stays fault-free: a fault injected into the coordinator
# must not stop services from acknowledging events or receiving the next one, nor stop anyone from
# reading or ending the event that caused it. Its scenario methods are faulted like any other.
EXEMPT_METHODS = frozenset(
    f"/{GRPC_SERVICES[TEST_COORDINATOR]}/{name}"
    for name in (
        "WatchControlEvents", "ReportChaosEvent", "InjectChaos", "GetChaosEvent", "ListChaosEvents", "EndChaosEvent",
    )
)
RECONNECT = Backoff(initial_s=0.2, max_s=2.0, jitter=0.5)  # every instance reconnects at once after a restart
REPORT_ATTEMPTS = 5
REPORT_TIMEOUT_S = 2.0
# A report rejected for one of these reasons will be rejected again: do not retry it.
FINAL_REPORT_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


@dataclass(frozen=True)
class _Fault:
    event_id: str
    until: float
    delay_s: float = 0.0
    abort_code: grpc.StatusCode | None = None
    abort_percentage: float = 0.0


def _percentage(event: coordinator_pb2.ChaosEvent) -> float:
    raw = event.parameters.get("percentage", "")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"chaos event {event.event_id}: percentage {raw!r} is not a number") from None
    if not (0 < value <= 100):
        raise ValueError(f"chaos event {event.event_id}: percentage {raw!r} is not in (0, 100]")
    return value


def _fault_from_event(event: coordinator_pb2.ChaosEvent, until: float) -> _Fault:
    """The fault an event describes; ValueError names what this process cannot apply."""
    kind = event.event_type
    if kind == coordinator_pb2.NETWORK_LATENCY:
        raw = event.parameters.get("delay_ms", "")
        try:
            delay_ms = int(raw)
        except ValueError:
            raise ValueError(f"chaos event {event.event_id}: delay_ms {raw!r} is not an integer") from None
        if delay_ms <= 0:
            raise ValueError(f"chaos event {event.event_id}: delay_ms {delay_ms} is not positive")
        return _Fault(event.event_id, until, delay_s=delay_ms / 1000)
    if kind == coordinator_pb2.ERROR_INJECTION:
        name = event.parameters.get("code", "").upper()
        code = grpc.StatusCode.__members__.get(name)
        if code is None or code == grpc.StatusCode.OK:
            raise ValueError(f"chaos event {event.event_id}: code {name!r} is not a gRPC error status name")
        return _Fault(event.event_id, until, abort_code=code, abort_percentage=_percentage(event))
    if kind == coordinator_pb2.NETWORK_PACKET_LOSS:
        unavailable = grpc.StatusCode.UNAVAILABLE
        return _Fault(event.event_id, until, abort_code=unavailable, abort_percentage=_percentage(event))
    raise ValueError(f"chaos event {event.event_id}: event type {kind} cannot be applied inside a service process")


def _remaining_s(event: coordinator_pb2.ChaosEvent) -> float:
    """Seconds left of the event's schedule: from its first acknowledgement if any instance applied it."""
    remaining_s = event.duration_ms / 1000
    if event.HasField("injected_at"):
        remaining_s += event.injected_at.ToNanoseconds() / 1e9 - time.time()
    return remaining_s


class FaultInjector:
    """Active faults of this process, consulted by the server middleware before each business RPC.

    Faults carry their end time, so one that outlives its `deactivate` (a lost task, a late
    report) is ignored anyway once it has expired.
    """

    def __init__(
        self,
        *,
        rng: random.Random | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self._faults: dict[str, _Fault] = {}

    def activate(self, event: coordinator_pb2.ChaosEvent, until: float) -> None:
        """Apply `event` until the monotonic time `until`; ValueError if its type or parameters cannot be applied."""
        self._faults[event.event_id] = _fault_from_event(event, until)

    def deactivate(self, event_id: str) -> None:
        self._faults.pop(event_id, None)

    @property
    def armed(self) -> bool:
        """False when no fault is held: `before_call` would have nothing to do."""
        return bool(self._faults)

    def active_event_ids(self) -> list[str]:
        return [fault.event_id for fault in self._active()]

    async def before_call(self, method: str, context: grpc.aio.ServicerContext) -> None:
        """Delay and/or abort the call `method` (its full gRPC name) as the active faults say."""
        if method in EXEMPT_METHODS:
            return
        faults = self._active()
        delay = sum(fault.delay_s for fault in faults)
        if delay > 0:
            log_decision("fault_delayed_call", method=method, delay_s=delay)
            # The whole delay, even past the caller's deadline: a slow service is slow, and gRPC
            # cancels this handler when the deadline passes.
            await self._sleep(delay)
        for fault in faults:
            if fault.abort_code is not None and self._rng.random() * 100 < fault.abort_percentage:
                log_decision("fault_aborted_call", method=method, event_id=fault.event_id, code=fault.abort_code.name)
                await context.abort(
                    fault.abort_code,
                    f"fault injected by chaos event {fault.event_id}: "
                    f"{fault.abort_code.name} at {fault.abort_percentage:g}%",
                )

    def _active(self) -> list[_Fault]:
        now = self._clock()
        for expired in [f.event_id for f in self._faults.values() if f.until <= now]:
            del self._faults[expired]
        return list(self._faults.values())


class ControlPlaneLink:
    """This service's stream of control events from the test-coordinator, kept open for the process's life."""

    def __init__(
        self, service: str, instance_id: str, clients: InterServiceClientManager, faults: FaultInjector
    ) -> None:
        self._service = service
        self._instance_id = instance_id
        self._clients = clients
        self._faults = faults
        self._scenarios: set[str] = set()
        # Event ids ever handled: a reconnect replays the events still active, which must not apply twice.
        self._seen_events: set[str] = set()
        # Faults this link holds, each with the signal that its event was ended early.
        self._ended: dict[str, asyncio.Event] = {}
        self._fault_tasks: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"control-plane-link-{self._service}")

    async def close(self) -> None:
        """Remove the faults this instance holds and report them RECOVERED, then stop following the coordinator.

        An instance that stops without reporting would keep its events INJECTED until the coordinator
        gives up on it; the reports get REPORT_TIMEOUT_S in all.
        """
        for ended in self._ended.values():
            ended.set()
        if self._fault_tasks:
            await asyncio.wait(list(self._fault_tasks), timeout=REPORT_TIMEOUT_S)
        tasks = [*self._fault_tasks, *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    def active_scenarios(self) -> list[str]:
        """Scenario ids ACTIVE as last seen on the stream."""
        return sorted(self._scenarios)

    def scenarios_active(self) -> bool:
        """Whether any scenario is ACTIVE: what the request path asks, without building the list."""
        return bool(self._scenarios)

    async def _run(self) -> None:
        request = coordinator_pb2.WatchControlEventsRequest(service=self._service, instance_id=self._instance_id)
        failures = 0
        connected = False
        while True:
            try:
                instance, call = await self._clients.open_stream(
                    TEST_COORDINATOR, lambda stub: stub.WatchControlEvents(request)
                )
                try:
                    await call.wait_for_connection()
                    connected = True
                    failures = 0
                    log_event("control_plane_connected", coordinator=instance.endpoint)
                    # The coordinator replays the active scenarios on every connect.
                    self._scenarios.clear()
                    async for message in call:
                        self._handle(message)
                finally:
                    call.cancel()
                reason = "stream ended"
            except asyncio.CancelledError:
                # grpc raises CancelledError also when the call's channel is closed under it (the client
                # manager closes channels of instances that left the registry): only our own close ends the link.
                if (task := asyncio.current_task()) is not None and task.cancelling():
                    raise
                reason = "the stream's channel was closed"
            except ServiceCommunicationError as exc:
                reason = str(exc)
            except grpc.aio.AioRpcError as exc:
                reason = f"{TEST_COORDINATOR}.WatchControlEvents failed with {exc.code().name}: {exc.details()}"
            except Exception as exc:  # the link must outlive any surprise and reconnect
                reason = f"{type(exc).__name__}: {exc}"
            failures += 1
            backoff = RECONNECT.delay(failures)
            if connected:
                connected = False
                log_event("control_plane_lost", level="warning", reason=reason, retry_in_s=backoff)
            await asyncio.sleep(backoff)

    def _handle(self, message: coordinator_pb2.ControlEvent) -> None:
        kind = message.WhichOneof("event")
        if kind == "scenario":
            scenario = message.scenario
            if scenario.status == coordinator_pb2.SCENARIO_STATUS_ACTIVE:
                self._scenarios.add(scenario.scenario_id)
            else:
                self._scenarios.discard(scenario.scenario_id)
        elif kind == "chaos":
            event = message.chaos
            if event.target_service != self._service:
                return
            if event.event_id not in self._seen_events:
                self._seen_events.add(event.event_id)
                self._apply(event)
            elif event.event_id in self._ended:
                # Sent again, possibly with an earlier end (EndChaosEvent): end the fault by then.
                self._spawn(self._end_after(event.event_id, _remaining_s(event)))

    def _apply(self, event: coordinator_pb2.ChaosEvent) -> None:
        remaining_s = _remaining_s(event)
        if remaining_s <= 0:
            return
        until = time.monotonic() + remaining_s
        try:
            self._faults.activate(event, until)
        except ValueError as exc:
            log_event("chaos_event_rejected", level="warning", event_id=event.event_id, error=str(exc))
            self._spawn(self._report(event.event_id, coordinator_pb2.FAILED, str(exc)))
            return
        log_event("chaos_fault_applied", event_id=event.event_id, remaining_s=round(remaining_s, 3))
        ended = self._ended[event.event_id] = asyncio.Event()
        self._spawn(self._hold(event.event_id, until, ended))

    async def _hold(self, event_id: str, until: float, ended: asyncio.Event) -> None:
        try:
            await self._report(event_id, coordinator_pb2.INJECTED)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), max(until - time.monotonic(), 0.0))
        finally:
            self._faults.deactivate(event_id)
            del self._ended[event_id]
        log_event("chaos_fault_removed", event_id=event_id)
        await self._report(event_id, coordinator_pb2.RECOVERED)

    async def _end_after(self, event_id: str, delay_s: float) -> None:
        await asyncio.sleep(max(delay_s, 0.0))
        ended = self._ended.get(event_id)
        if ended is not None:
            ended.set()

    async def _report(self, event_id: str, status: coordinator_pb2.ChaosEventStatus, detail: str = "") -> None:
        request = coordinator_pb2.ReportChaosEventRequest(
            event_id=event_id, status=status, instance_id=self._instance_id, detail=detail
        )
        status_name = coordinator_pb2.ChaosEventStatus.Name(status)
        for attempt in range(1, REPORT_ATTEMPTS + 1):
            try:
                await self._clients.call(
                    TEST_COORDINATOR,
                    "ReportChaosEvent",
                    lambda stub, timeout: stub.ReportChaosEvent(request, timeout=timeout),
                    timeout=REPORT_TIMEOUT_S,
                )
                return
            except (ServiceCommunicationError, RegistryError) as exc:
                rejected = isinstance(exc, ServiceCommunicationError) and exc.code in FINAL_REPORT_CODES
                final = rejected or attempt == REPORT_ATTEMPTS
                log_event(
                    "chaos_report_failed", level="warning", event_id=event_id, status=status_name, attempt=attempt,
                    error=str(exc), retrying=not final,
                )
                if final:
                    return
            await asyncio.sleep(RECONNECT.delay(attempt))

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(work)
        self._fault_tasks.add(task)
        task.add_done_callback(self._fault_tasks.discard)
