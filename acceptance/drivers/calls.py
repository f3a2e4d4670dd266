"""Any RPC by its full name with a JSON body, grpc.health.v1, reflection, and per-method request counts."""

from __future__ import annotations

import difflib
import json
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from hamcrest import assert_that, contains_string, equal_to, has_item, has_length

from acceptance.declared import REACTION_MARGIN_S
from acceptance.drivers import Driver
from acceptance.health import HealthWatch
from acceptance.rpc import Collect, RequestError
from ecosystem.names import GRPC_SERVICES, STATS_SERVICE

STATUS_NAMES = tuple(code.name for code in grpc.StatusCode)


def field(body: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a JSON message ("dependencies.0.service")."""
    value: Any = body
    for part in path.split("."):
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, ValueError, TypeError):
            fields = ", ".join(body) if isinstance(body, dict) else "none"
            raise AssertionError(
                f"the message has no field {path!r} (its fields: {fields}): {json.dumps(body)[:300]}"
            ) from None
    return value


def as_text(value: Any) -> str:
    """A JSON value as a feature writes it: true/false, numbers and strings bare, objects and lists as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def parse_json(method: str, text: str | None) -> Any:
    """A docstring's JSON; AssertionError with the line and column of the mistake."""
    try:
        return json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise AssertionError(
            f"the request of {method} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def table_messages(headings: list[str], rows: list[list[str]]) -> list[dict[str, Any]]:
    """One JSON message per table row: a heading is a field path ("point.latitude"), a cell is JSON when it
    parses as JSON (numbers, true, objects) and text otherwise; an empty cell leaves the field out."""
    messages = []
    for row in rows:
        message: dict[str, Any] = {}
        for path, cell in zip(headings, row, strict=True):
            if cell == "":
                continue
            try:
                value: Any = json.loads(cell)
            except json.JSONDecodeError:
                value = cell
            *parents, leaf = path.split(".")
            target = message
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = value
        messages.append(message)
    return messages


class Calls(Driver):
    # --- any RPC -------------------------------------------------------------------------------

    def set_deadline(self, milliseconds: int) -> None:
        self.state.deadline_s = milliseconds / 1000

    def add_metadata(self, key: str, value: str) -> None:
        if key != key.lower() or not key or key.startswith("grpc-") or key.startswith(":"):
            raise AssertionError(f"metadata key {key!r}: gRPC keys are lower case and not reserved (grpc-*, :*)")
        self.state.metadata[key] = value

    def read_first(self, count: int) -> None:
        if count < 1:
            raise AssertionError(f"read at least 1 message, not {count}")
        self.state.collect = Collect(limit=count, description=f"the first {count}")

    def read_until(self, path: str, value: str) -> None:
        def matches(body: dict[str, Any]) -> bool:
            try:
                return as_text(field(body, path)) == value
            except AssertionError:
                return False

        self.state.collect = Collect(until=matches, description=f"a message whose {path} is {value!r}")

    def call(self, method: str, service: str, body: Any) -> None:
        """Call `method` on the first SERVING instance of `service`; the outcome is the scenario's last call."""
        collect, self.state.collect = self.state.collect, None
        if "/" not in method.strip("/"):
            example = f"{self._suite.manifest.service(service).grpc_services[0]}/{method}"
            raise AssertionError(f"{method!r} is not a full method name: write it as package.Service/Method, "
                                 f"e.g. {example}")
        try:
            self._suite.call(
                service, method, body, timeout=self.state.deadline_s, metadata=self.state.metadata, collect=collect
            )
        except RequestError as exc:
            raise AssertionError(str(exc)) from None

    def expect_ok(self) -> None:
        result = self.state.last_call()
        assert_that(result.code, equal_to(grpc.StatusCode.OK), result.describe())

    def expect_code(self, code: str) -> None:
        if code not in STATUS_NAMES:
            close = difflib.get_close_matches(code.upper(), STATUS_NAMES, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise AssertionError(f"{code!r} is not a gRPC status code name: {hint}one of {', '.join(STATUS_NAMES)}")
        result = self.state.last_call()
        assert_that(result.code.name, equal_to(code), result.describe())

    def expect_details_contain(self, text: str) -> None:
        assert_that(self.state.last_call().details, contains_string(text), "the error message")

    def expect_field(self, path: str, value: str) -> None:
        result = self.state.last_call()
        if len(result.responses) != 1:
            raise AssertionError(
                f"{result.describe()}: {len(result.responses)} response messages, so no single response; "
                f'name one: \'message 1 field "{path}" is "{value}"\''
            )
        assert_that(as_text(field(result.body, path)), equal_to(value), f"response field {path}")

    def expect_field_count(self, path: str, count: int) -> None:
        assert_that(field(self.state.last_call().body, path), has_length(count), f"response field {path}")

    def expect_message_count(self, count: int) -> None:
        result = self.state.last_call()
        assert_that(len(result.responses), equal_to(count), f"response messages of {result.describe()}")

    def expect_message_field(self, number: int, path: str, value: str) -> None:
        """Message `number` (1 for the first) has `value` at `path`."""
        result = self.state.last_call()
        if not 1 <= number <= len(result.responses):
            raise AssertionError(f"there is no message {number}: {result.describe()}")
        assert_that(as_text(field(result.bodies[number - 1], path)), equal_to(value), f"message {number} field {path}")

    def expect_header(self, key: str, value: str) -> None:
        result = self.state.last_call()
        assert_that(result.headers.get(key), equal_to(value), f"response header {key!r} of {result.describe()} "
                                                             f"(headers: {result.headers})")

    def expect_trailer(self, key: str, value: str) -> None:
        result = self.state.last_call()
        assert_that(result.trailers.get(key), equal_to(value), f"response trailer {key!r} of {result.describe()} "
                                                              f"(trailers: {result.trailers})")

    # --- health and reflection -----------------------------------------------------------------

    def ask_health(self, service: str, grpc_service: str) -> None:
        self._suite.call(service, "grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest(service=grpc_service))

    def expect_serving(self, service: str, grpc_service: str) -> None:
        self.ask_health(service, grpc_service)
        result = self.state.last_call()
        assert result.ok, result.describe()
        assert_that(result.body.get("status"), equal_to("SERVING"), f"health of {grpc_service} on {service}")

    def expect_reflection_lists(self, service: str, grpc_service: str) -> None:
        endpoint = self._suite.endpoint(service)
        try:
            listed = self._suite.rpc.reflected_services(endpoint, server=service)
        except grpc.RpcError as exc:
            raise AssertionError(
                f"reflection on {service} at {endpoint} failed: {exc.code().name}: {exc.details()}"
            ) from None
        assert_that(listed, has_item(grpc_service), f"services listed by reflection on {service} at {endpoint}")

    def watch_health(self, service: str) -> None:
        """Keep a health Watch stream on the service's first instance open until the scenario ends."""
        watch = HealthWatch(self._suite.endpoint(service), self._suite.manifest.service(service).health_service,
                            transport=self._suite.stack.transport, server=service)
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
        return sum(
            int(op["total_requests"])
            for stats in self._suite.performance_stats(service).values()
            for op in stats["operations"]
            if op["operation"] == operation
        )

    def expect_in_flight(self, service: str, method: str) -> None:
        """Wait until `service` counts a call of `method` in flight."""
        operation = f"/{GRPC_SERVICES[service]}/{method}"

        def in_flight() -> int:
            stats = self._suite.ok(self._suite.call(service, f"{STATS_SERVICE}/GetPerformanceStats"))
            return sum(int(op.get("in_flight", 0)) for op in stats["operations"] if op["operation"] == operation)

        self._suite.wait(in_flight, lambda count: count > 0, timeout=REACTION_MARGIN_S,
                         what=f"{service} has a {method} call in flight")
