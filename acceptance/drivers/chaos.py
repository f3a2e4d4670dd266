"""Faults injected through the test coordinator, the chaos control plane.

An injected event registers a restore that ends it early (EndChaosEvent) and waits until every
instance that applied it reported it removed.
"""

from __future__ import annotations

from typing import Any

from hamcrest import assert_that, greater_than_or_equal_to

from acceptance.declared import REACTION_MARGIN_S
from acceptance.drivers import Driver
from acceptance.rpc import RpcResult
from ecosystem.api.coordinator.v1 import coordinator_pb2
from ecosystem.names import TEST_COORDINATOR

# An instance acknowledges an event within a control-plane round trip; the schedule ends the fault.
ACKNOWLEDGE_TIMEOUT_S = 5.0
FINAL_STATUSES = ("RECOVERED", "FAILED")
EVENT_TYPES = tuple(name for name in coordinator_pb2.ChaosEventType.keys() if not name.endswith("_UNSPECIFIED"))


class Chaos(Driver):
    def inject_latency(self, delay_ms: int, service: str, duration_ms: int) -> None:
        self.state.injected_latency_ms = delay_ms
        self._inject("NETWORK_LATENCY", service, {"delay_ms": str(delay_ms)}, duration_ms)

    def inject_errors(self, code: str, percentage: int, service: str, duration_ms: int) -> None:
        self.state.injected_failure_code = code
        self._inject("ERROR_INJECTION", service, {"code": code, "percentage": str(percentage)}, duration_ms)

    def ask(self, event_type: str, service: str) -> RpcResult:
        """Ask for an event the coordinator may refuse; one it accepts is ended after the scenario all the same."""
        if event_type not in EVENT_TYPES:
            raise AssertionError(f"chaos event type {event_type!r} is not one of {', '.join(EVENT_TYPES)}")
        parameters = {"delay_ms": "100"} if event_type == "NETWORK_LATENCY" else {}
        result = self._request(event_type, service, parameters, 1000)
        if result.ok:
            self._end_afterwards(result.body["event_id"])
        return result

    def end_early(self) -> None:
        """EndChaosEvent; the event as it answers, its schedule cut to now, is what later steps wait on."""
        request = {"event_id": self._event()["event_id"]}
        self.state.chaos_event = self._suite.ok(self._suite.call(TEST_COORDINATOR, "EndChaosEvent", request))

    def expect_status(self, status: str) -> None:
        event = self._event()
        timeout = ACKNOWLEDGE_TIMEOUT_S
        if status == "RECOVERED":
            timeout += int(event["duration_ms"]) / 1000 + REACTION_MARGIN_S
        self.state.chaos_event = self._suite.wait(
            lambda: self.get(event["event_id"]),
            lambda seen: seen["status"] == status,
            timeout=timeout,
            what=f"chaos event {event['event_id']} becomes {status}",
        )

    def expect_recovered_with_time(self) -> None:
        self.expect_status("RECOVERED")
        event = self._event()
        assert event.get("recovered_at"), f"a RECOVERED event without recovered_at: {event}"
        assert_that(int(event["recovery_time_ms"]), greater_than_or_equal_to(0), "recovery_time_ms")

    def get(self, event_id: str) -> dict[str, Any]:
        return self._suite.ok(self._suite.call(TEST_COORDINATOR, "GetChaosEvent", {"event_id": event_id}))

    def _inject(self, event_type: str, service: str, parameters: dict[str, str], duration_ms: int) -> None:
        event = self._suite.ok(self._request(event_type, service, parameters, duration_ms))
        self.state.chaos_event = event
        self._end_afterwards(event["event_id"])

    def _request(self, event_type: str, service: str, parameters: dict[str, str], duration_ms: int) -> RpcResult:
        request = {"event_type": event_type, "target_service": service, "parameters": parameters,
                   "duration_ms": duration_ms}
        return self._suite.call(TEST_COORDINATOR, "InjectChaos", request)

    def _end_afterwards(self, event_id: str) -> None:
        self._suite.on_restore(f"end chaos event {event_id}", lambda: self._end(event_id))

    def _end(self, event_id: str) -> None:
        self._suite.ok(self._suite.call(TEST_COORDINATOR, "EndChaosEvent", {"event_id": event_id}))
        self._suite.wait(
            lambda: self.get(event_id)["status"],
            lambda status: status in FINAL_STATUSES,
            timeout=ACKNOWLEDGE_TIMEOUT_S,
            what=f"chaos event {event_id} is RECOVERED after it was ended",
        )

    def _event(self) -> dict[str, Any]:
        if self.state.chaos_event is None:
            raise AssertionError("no chaos event was injected in this scenario before this step")
        return self.state.chaos_event
