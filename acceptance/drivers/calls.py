"""Any RPC by its full name with a JSON body, grpc.health.v1, reflection, and per-method request counts."""

from __future__ import annotations

import json
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from hamcrest import assert_that, contains_string, equal_to, has_item, has_length

from acceptance.declared import REACTION_MARGIN_S
from acceptance.drivers import Driver
from acceptance.health import HealthWatch
from ecosystem.names import GRPC_SERVICES, STATS_SERVICE

STATUS_NAMES = tuple(code.name for code in grpc.StatusCode)


def field(body: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a JSON response ("dependencies.0.service")."""
    value: Any = body
    for part in path.split("."):
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise AssertionError(f"the response has no field {path!r}: {json.dumps(body)[:500]}") from None
    return value


class Calls(Driver):
    # --- any RPC -------------------------------------------------------------------------------

    def set_deadline(self, milliseconds: int) -> None:
        self.state.deadline_s = milliseconds / 1000

    def add_metadata(self, key: str, value: str) -> None:
        self.state.metadata[key] = value

    def call(self, method: str, service: str, text: str | None) -> None:
        try:
            body = json.loads(text or "{}")
        except json.JSONDecodeError as exc:
            raise AssertionError(f"the request body of {method} is not JSON: {exc}") from None
        self._suite.call(service, method, body, timeout=self.state.deadline_s, metadata=self.state.metadata)

    def expect_ok(self) -> None:
        result = self.state.last_call()
        assert_that(result.code, equal_to(grpc.StatusCode.OK), result.describe())

    def expect_code(self, code: str) -> None:
        if code not in STATUS_NAMES:
            raise AssertionError(f"{code!r} is not a gRPC status code name: one of {', '.join(STATUS_NAMES)}")
        result = self.state.last_call()
        assert_that(result.code.name, equal_to(code), result.describe())

    def expect_details_contain(self, text: str) -> None:
        assert_that(self.state.last_call().details, contains_string(text), "the error message")

    def expect_field(self, path: str, value: str) -> None:
        assert_that(str(field(self.state.last_call().body, path)), equal_to(value), f"response field {path}")

    def expect_field_count(self, path: str, count: int) -> None:
        assert_that(field(self.state.last_call().body, path), has_length(count), f"response field {path}")

    # --- health and reflection -----------------------------------------------------------------

    def ask_health(self, service: str, grpc_service: str) -> None:
        self._suite.call(service, "grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest(service=grpc_service))

    def expect_serving(self, service: str, grpc_service: str) -> None:
        self.ask_health(service, grpc_service)
        result = self.state.last_call()
        assert result.ok, result.describe()
        assert_that(result.body.get("status"), equal_to("SERVING"), f"health of {grpc_service} on {service}")

    def expect_reflection_lists(self, service: str, grpc_service: str) -> None:
        listed = self._suite.rpc.reflected_services(self._suite.stack.endpoint(service))
        assert_that(listed, has_item(grpc_service), f"services listed by reflection on {service}")

    def watch_health(self, service: str) -> None:
        """Keep a health Watch stream on the service's first instance open until the scenario ends."""
        watch = HealthWatch(self._suite.stack.endpoint(service), GRPC_SERVICES[service])
        self.state.health_watches[service] = watch
        self._suite.on_restore(f"close the health watch on {service}", watch.close)
        self._suite.wait(watch.statuses, lambda seen: "SERVING" in seen, timeout=REACTION_MARGIN_S,
                         what=f"the health watch on {service} reports SERVING")

    def expect_watch_saw(self, service: str, status: str) -> None:
        watch = self.state.health_watches.get(service)
        assert watch is not None, f"no health watch on {service} was opened in this scenario"
        self._suite.wait(
            watch.statuses, lambda seen: status in seen, timeout=REACTION_MARGIN_S,
            what=f"the health watch on {service} reports {status} (stream: {watch.ended or 'open'})",
        )
        watch.close()  # an open Watch would hold a draining server for its whole grace period

    # --- request counts --------------------------------------------------------------------------

    def note_requests(self, service: str, method: str) -> None:
        self.state.noted[f"{service} {method}"] = self.requests(service, method)

    def expect_requests_since_noted(self, service: str, method: str, count: int) -> None:
        received = self.requests(service, method) - self.state.noted[f"{service} {method}"]
        assert_that(received, equal_to(count), f"{method} calls {service} received since they were counted")

    def requests(self, service: str, method: str) -> int:
        """Requests for one of `service`'s own methods, counted by the service (every instance) itself."""
        operation = f"/{GRPC_SERVICES[service]}/{method}"
        total = 0
        for handle in self._suite.stack.instances(service):
            stats = self._suite.ok(self._suite.rpc.call(handle.endpoint, f"{STATS_SERVICE}/GetPerformanceStats"))
            total += sum(int(op["total_requests"]) for op in stats["operations"] if op["operation"] == operation)
        return total

    def expect_in_flight(self, service: str, method: str) -> None:
        """Wait until `service` counts a call of `method` in flight."""
        operation = f"/{GRPC_SERVICES[service]}/{method}"

        def in_flight() -> int:
            stats = self._suite.ok(self._suite.call(service, f"{STATS_SERVICE}/GetPerformanceStats"))
            return sum(int(op.get("in_flight", 0)) for op in stats["operations"] if op["operation"] == operation)

        self._suite.wait(in_flight, lambda count: count > 0, timeout=REACTION_MARGIN_S,
                         what=f"{service} has a {method} call in flight")
