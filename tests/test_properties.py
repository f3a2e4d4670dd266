"""Property-based tests (hypothesis) of every RPC of the four services, on their own stack of real processes
(LocalTarget, mTLS, loopback): whatever a caller sends, the answer is never UNKNOWN or INTERNAL and its details
never show the server's internals (a traceback, a Python class, an exception name).

Every method of every business gRPC service is enumerated from the generated descriptors (a new method is covered
without touching this file), plus StatsService.GetPerformanceStats and grpc.health.v1.Health/Check on each
service. Each gets two properties:

* a well-formed request message built from its descriptor: unicode, empty and long strings, domain words (service
  names, configuration keys, ids of live scenarios, chaos events and orders) so that validation is passed as
  well as failed, numbers incl. nan/inf/negative/huge, enum numbers without a name, repeated and map fields, nested
  messages;
* a raw request body: arbitrary bytes, invalid UTF-8 in (nested) string fields, truncated, bit-flipped and
  over-long encodings, wire types that do not exist, deep groups.

Calls use an identity the method's policy admits (so authorization does not hide the handler) and a short
deadline; a server stream that stays open ends DEADLINE_EXCEEDED or CANCELLED, which is fine. Examples are
derandomized, so a failure reproduces run after run; hypothesis prints the minimal falsifying example.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from acceptance.targets.local import LocalTarget
from acceptance.waits import wait_until
from ecosystem.api.common.v1 import stats_pb2
from ecosystem.api.config.v1 import config_pb2
from ecosystem.api.coordinator.v1 import coordinator_pb2
from ecosystem.api.risk.v1 import risk_pb2
from ecosystem.api.trading.v1 import trading_pb2
from ecosystem.names import (
    ALL_SERVICES,
    CONFIGURATION_SERVICE,
    ENVIRONMENTS,
    GRPC_SERVICES,
    RISK_MONITOR,
    STATS_SERVICE,
    TEST_COORDINATOR,
    TRADING_SYSTEM_ENGINE,
)
from ecosystem.security import ADMIN, METHOD_POLICY, SUITE

UNARY_DEADLINE_S = 2.0
STREAM_DEADLINE_S = 0.25
STREAM_MESSAGES_READ = 20
WAIT_S = 10.0
UNARY_EXAMPLES = 40
STREAM_EXAMPLES = 12
CONFIG_EXAMPLES = 6
CONFIG_APPLIED_S = 5.0  # a change reaches the reading service's configuration client through its watch
MAX_DEPTH = 3
MAX_ITEMS = 4
LEAKS = ("Traceback", "<class", "Exception")
# An ERROR_INJECTION event this module injected on purpose aborts calls with the code it names (INTERNAL too).
INJECTED_FAULT = "fault injected by chaos event"

BUSINESS_MODULES = (config_pb2, risk_pb2, coordinator_pb2, trading_pb2)
HOSTS = {grpc_service: service for service, grpc_service in GRPC_SERVICES.items()}
UNREAD_KEY = "trading.venue"  # in the seed, read by no service
CONFIG_KEYS = (
    "risk.max_order_quantity",
    "risk.position_limits.max_notional",
    "risk.allowed_symbols",
    "trading.risk_check_timeout_ms",
    UNREAD_KEY,
    "trading.enabled",
)
DOMAIN_WORDS = (
    "", " ", *ALL_SERVICES, *GRPC_SERVICES.values(), STATS_SERVICE, *ENVIRONMENTS, *CONFIG_KEYS, "risk",
    "risk.position_limits", "keys", "BTC-USD", "ETH-USD", "DOGE-USD", "s1", "RUNNING", "ACCEPTED", "REJECTED",
    "FAILED", "delay_ms", "code", "percentage", "UNAVAILABLE", "INTERNAL", "UNKNOWN", "OK", "0", "1", "-1", "50",
    "100", "1000", "1e309", "-1e309", "nan", "inf", "1_000", "true", "false", "null", "{}", "[]", "[1]", "1.5",
    '{"a": 1}', '["BTC-USD"]', "/ecosystem.risk.v1.RiskMonitorService/CheckOrder",
)
INTERESTING_DOUBLES = (0.0, -0.0, 1.0, -1.0, 1000.0, 1000.0000001, 5e-324, 1e308, -1e308, 2.0**53 + 1,
                       math.nan, math.inf, -math.inf)
INVALID_UTF8 = (b"\xff", b"\xfe", b"\x80", b"\xc0\xaf", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                b"\xf8\x88\x80\x80\x80")

STRING, BYTES, MESSAGE, ENUM, BOOL = (
    FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_ENUM,
    FieldDescriptor.TYPE_BOOL,
)
INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
M = TypeVar("M", bound=Message)
WIRE_LEN, WIRE_SGROUP, WIRE_EGROUP = 2, 3, 4  # protobuf wire types


# --- what is called ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rpc:
    """One method as served by one service process."""

    host: str  # the service process (configuration-service, ...)
    method: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def streams(self) -> bool:
        return self.method.server_streaming

    @property
    def request(self) -> Descriptor:
        return self.method.input_type

    @property
    def identity(self) -> str:
        """SUITE unless the method's policy admits only others (SetConfiguration: ADMIN)."""
        allowed = METHOD_POLICY.get(self.path)
        return SUITE if allowed is None or SUITE in allowed else min(allowed)

    def __str__(self) -> str:
        return f"{self.host}:{self.method.containing_service.name}.{self.method.name}"


def every_rpc() -> list[Rpc]:
    """Every method of every business service (from the descriptors), then Stats and Health.Check on each service."""
    rpcs = []
    for module in BUSINESS_MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            assert service.full_name in HOSTS, f"{service.full_name} is served by no service of ecosystem.names"
            rpcs += [Rpc(HOSTS[service.full_name], method) for method in service.methods]
    assert {rpc.host for rpc in rpcs} == set(ALL_SERVICES)
    stats = stats_pb2.DESCRIPTOR.services_by_name["StatsService"]
    check = cast(MethodDescriptor, health_pb2.DESCRIPTOR.services_by_name["Health"].methods_by_name["Check"])
    for host in ALL_SERVICES:
        rpcs += [Rpc(host, method) for method in stats.methods] + [Rpc(host, check)]
    return rpcs


RPCS = every_rpc()
MUTATING = {f"/{GRPC_SERVICES[CONFIGURATION_SERVICE]}/SetConfiguration"}


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    details: str
    response: bytes = b""


class Caller:
    """Raw-bytes calls to the stack, one channel per (service, identity), and the live ids requests may name."""

    def __init__(self, stack: LocalTarget) -> None:
        self.stack = stack
        self._channels: dict[tuple[str, str], grpc.Channel] = {}
        self.ids: list[str] = []

    def channel(self, service: str, identity: str) -> grpc.Channel:
        if (service, identity) not in self._channels:
            self._channels[(service, identity)] = self.stack.transport.channel(
                self.stack.endpoint(service), service, identity=identity
            )
        return self._channels[(service, identity)]

    def call(self, rpc: Rpc, body: bytes, identity: str | None = None) -> Outcome:
        """Send `body` as the request as is; a stream is read until it ends, STREAM_MESSAGES_READ or its deadline."""
        channel = self.channel(rpc.host, identity or rpc.identity)
        try:
            if not rpc.streams:
                unary: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                    rpc.path, request_serializer=None, response_deserializer=None
                )
                return Outcome(grpc.StatusCode.OK, "", unary(body, timeout=UNARY_DEADLINE_S))
            streaming: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
                rpc.path, request_serializer=None, response_deserializer=None
            )
            stream = streaming(body, timeout=STREAM_DEADLINE_S)
            for count, _ in enumerate(stream, 1):
                if count >= STREAM_MESSAGES_READ:
                    stream.cancel()
                    return Outcome(grpc.StatusCode.CANCELLED, "read enough")
            return Outcome(grpc.StatusCode.OK, "")
        except grpc.RpcError as exc:
            return Outcome(exc.code(), exc.details() or "")

    def unary(self, service: str, method: str, request: Message, response_type: type[M], identity: str = SUITE) -> M:
        """A typed unary call that must succeed (set-up and clean-up)."""
        path = f"/{GRPC_SERVICES[service]}/{method}"
        call = self.channel(service, identity).unary_unary(
            path, request_serializer=type(request).SerializeToString, response_deserializer=response_type.FromString
        )
        return call(request, timeout=WAIT_S)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()


@pytest.fixture(scope="module")
def caller(stack: LocalTarget) -> Iterator[Caller]:
    caller = Caller(stack)
    yield caller
    caller.close()


@pytest.fixture
def live(caller: Caller) -> Iterator[Caller]:
    """The caller, with ids of an active scenario, a pending chaos event, an order and the instances to draw on;
    afterwards every scenario and chaos event the test started is over and the stack serves orders again."""
    scenario = caller.unary(TEST_COORDINATOR, "StartScenario", coordinator_pb2.StartScenarioRequest(name="properties"),
                            coordinator_pb2.Scenario)
    event = caller.unary(
        TEST_COORDINATOR, "InjectChaos",
        coordinator_pb2.InjectChaosRequest(event_type=coordinator_pb2.NETWORK_LATENCY, target_service=RISK_MONITOR,
                                           parameters={"delay_ms": "1"}, duration_ms=60_000),
        coordinator_pb2.ChaosEvent,
    )
    order = caller.unary(TRADING_SYSTEM_ENGINE, "SubmitOrder", good_order(), trading_pb2.SubmitOrderResponse)
    instances = [i.instance_id for service in ALL_SERVICES for i in caller.stack.instances(service)]
    caller.ids = [scenario.scenario_id, event.event_id, order.order_id, *instances]
    yield caller
    end_everything(caller)


def good_order() -> trading_pb2.SubmitOrderRequest:
    return trading_pb2.SubmitOrderRequest(strategy_id="s1", symbol="BTC-USD", side=risk_pb2.SIDE_BUY, quantity=1,
                                          price=1)


def complete_scenario(caller: Caller, scenario_id: str) -> None:
    request = coordinator_pb2.CompleteScenarioRequest(scenario_id=scenario_id)
    caller.unary(TEST_COORDINATOR, "CompleteScenario", request, coordinator_pb2.Scenario)


def end_event(caller: Caller, event_id: str) -> None:
    request = coordinator_pb2.EndChaosEventRequest(event_id=event_id)
    caller.unary(TEST_COORDINATOR, "EndChaosEvent", request, coordinator_pb2.ChaosEvent)


def end_everything(caller: Caller) -> None:
    """Complete every active scenario and end every chaos event that is not over."""
    active = caller.unary(TEST_COORDINATOR, "ListActiveScenarios", coordinator_pb2.ListActiveScenariosRequest(),
                          coordinator_pb2.ListActiveScenariosResponse)
    for scenario in active.scenarios:
        complete_scenario(caller, scenario.scenario_id)
    events = caller.unary(TEST_COORDINATOR, "ListChaosEvents", coordinator_pb2.ListChaosEventsRequest(),
                          coordinator_pb2.ListChaosEventsResponse)
    for event in events.events:
        if event.status in (coordinator_pb2.PENDING, coordinator_pb2.INJECTED):
            end_event(caller, event.event_id)


def undo(caller: Caller, rpc: Rpc, outcome: Outcome) -> None:
    """Undo at once what a successful example started, so faults and scenarios do not pile up: a chaos event is
    ended, a scenario completed."""
    if outcome.code != grpc.StatusCode.OK or rpc.host != TEST_COORDINATOR:
        return
    if rpc.method.name == "InjectChaos":
        event = coordinator_pb2.ChaosEvent.FromString(outcome.response)
        end_event(caller, event.event_id)
    elif rpc.method.name == "StartScenario":
        scenario = coordinator_pb2.Scenario.FromString(outcome.response)
        complete_scenario(caller, scenario.scenario_id)


@contextlib.contextmanager
def configuration_restored(caller: Caller) -> Iterator[None]:
    """Every configuration changed inside the block gets its value and type back (keys it created stay), and the
    block ends once the engine accepts a plain order again."""

    def snapshot() -> dict[tuple[str, str], config_pb2.Configuration]:
        found = {}
        for environment in ENVIRONMENTS:
            listed = caller.unary(CONFIGURATION_SERVICE, "ListConfigurations",
                                  config_pb2.ListConfigurationsRequest(environment=environment),
                                  config_pb2.ListConfigurationsResponse)
            found.update({(c.environment, c.key): c for c in listed.configurations})
        return found

    before = snapshot()
    try:
        yield
    finally:
        for place, now in snapshot().items():
            old = before.get(place)
            if old is not None and (old.value, old.type) != (now.value, now.type):
                caller.unary(
                    CONFIGURATION_SERVICE, "SetConfiguration",
                    config_pb2.SetConfigurationRequest(key=old.key, value=old.value, type=old.type,
                                                       environment=old.environment),
                    config_pb2.Configuration, identity=ADMIN,
                )
        wait_until(
            lambda: caller.unary(TRADING_SYSTEM_ENGINE, "SubmitOrder", good_order(), trading_pb2.SubmitOrderResponse),
            lambda reply: reply.status == trading_pb2.ACCEPTED,
            timeout=WAIT_S,
            what="the engine accepts a plain order once the configuration is restored",
        )


# --- the property --------------------------------------------------------------------------------------------


def assert_no_internals(rpc: Rpc, body: bytes, outcome: Outcome) -> None:
    """The property: not UNKNOWN, not INTERNAL, and no traceback, class or exception name in the details (unless the
    request itself carried that text, echoed back). Each failure kind raises from its own line, so hypothesis
    reports each kind separately with its own minimal example."""
    code, details = outcome.code, outcome.details
    note(f"{rpc.path} answered {code.name}: {details[:300]!r}")
    if details.startswith(INJECTED_FAULT):
        return
    if code == grpc.StatusCode.UNKNOWN:
        raise AssertionError(f"{rpc} answered UNKNOWN: {details[:300]!r}")
    if code == grpc.StatusCode.INTERNAL:
        raise AssertionError(f"{rpc} answered INTERNAL: {details[:300]!r}")
    echoed = body.decode("utf-8", "replace")
    leaked = [marker for marker in LEAKS if marker in details and marker not in echoed]
    if leaked:
        raise AssertionError(f"{rpc} answered {code.name} showing {leaked}: {details[:300]!r}")


def check(caller: Caller, rpc: Rpc, body: bytes) -> None:
    outcome = caller.call(rpc, body)
    try:
        assert_no_internals(rpc, body, outcome)
    finally:
        undo(caller, rpc, outcome)


# --- strategies ----------------------------------------------------------------------------------------------


def words(ids: Sequence[str]) -> st.SearchStrategy[str]:
    """Strings a request may carry: domain words and live ids (to pass validation), arbitrary unicode, domain words
    with unicode around them, and long strings."""
    domain = st.sampled_from(DOMAIN_WORDS + tuple(ids))
    return st.one_of(
        domain,
        st.text(max_size=30),
        st.tuples(domain, st.sampled_from(("\x00", " ", "\n", "é", "\u202e", "😀", "\ufeff")), st.booleans()).map(
            lambda parts: parts[0] + parts[1] if parts[2] else parts[1] + parts[0]
        ),
        st.tuples(st.text(min_size=1, max_size=3), st.integers(1_000, 30_000)).map(lambda parts: parts[0] * parts[1]),
    )


def scalar_values(field: FieldDescriptor, text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == STRING:
        return text
    if kind == BYTES:
        return st.binary(max_size=64)
    if kind == BOOL:
        return st.booleans()
    if kind == ENUM:
        assert field.enum_type is not None
        named = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(named), st.integers(-(2**31), 2**31 - 1))
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.one_of(st.sampled_from(INTERESTING_DOUBLES), st.floats())
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32)
    low, high = INTEGER_RANGES[kind]
    return st.one_of(st.sampled_from((0, 1, -1 if low else 2, low, high)), st.integers(low, high))


def values(field: FieldDescriptor, text: st.SearchStrategy[str], depth: int) -> st.SearchStrategy[Any]:
    if field.type == MESSAGE:
        return messages(message_type(field), text, depth + 1)
    return scalar_values(field, text)


def message_type(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None, f"{field.full_name} is not a message field"
    return field.message_type


def is_map(field: FieldDescriptor) -> bool:
    return field.type == MESSAGE and message_type(field).GetOptions().map_entry


def field_values(field: FieldDescriptor, text: st.SearchStrategy[str], depth: int) -> st.SearchStrategy[Any]:
    if is_map(field):
        entry = message_type(field).fields_by_name
        return st.dictionaries(scalar_values(entry["key"], text), values(entry["value"], text, depth),
                               max_size=MAX_ITEMS)
    if field.is_repeated:
        return st.lists(values(field, text, depth), max_size=MAX_ITEMS)
    return values(field, text, depth)


def messages(descriptor: Descriptor, text: st.SearchStrategy[str], depth: int = 0) -> st.SearchStrategy[Message]:
    """Well-formed messages of `descriptor`: any subset of its fields set, nested messages down to MAX_DEPTH."""
    fields = [f for f in descriptor.fields if depth < MAX_DEPTH or f.type != MESSAGE]
    optional = {f.name: field_values(f, text, depth) for f in fields}
    return st.fixed_dictionaries({}, optional=optional).map(lambda chosen: build(descriptor, chosen))


def build(descriptor: Descriptor, chosen: dict[str, Any]) -> Message:
    message = message_factory.GetMessageClass(descriptor)()
    for name, value in chosen.items():
        field = descriptor.fields_by_name[name]
        if is_map(field):
            target = getattr(message, name)
            for key, item in value.items():
                if message_type(field).fields_by_name["value"].type == MESSAGE:
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif field.is_repeated:
            getattr(message, name).extend(value)
        elif field.type == MESSAGE:
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def varint(number: int) -> bytes:
    number &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, WIRE_LEN) + varint(len(payload)) + payload


def string_paths(descriptor: Descriptor, depth: int = 0) -> list[tuple[int, ...]]:
    """Field-number paths to every string field down to depth 2 (map keys and values included)."""
    paths: list[tuple[int, ...]] = []
    for field in descriptor.fields:
        if field.type == STRING:
            paths.append((field.number,))
        elif field.type == MESSAGE and depth < 2:
            paths += [(field.number, *inner) for inner in string_paths(message_type(field), depth + 1)]
    return paths


def invalid_utf8() -> st.SearchStrategy[bytes]:
    bad = st.one_of(st.sampled_from(INVALID_UTF8), st.binary(min_size=1, max_size=8).filter(_undecodable))
    return st.tuples(st.text(max_size=5), bad, st.text(max_size=5)).map(
        lambda parts: parts[0].encode() + parts[1] + parts[2].encode()
    )


def _undecodable(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def in_string_field(path: tuple[int, ...], payload: bytes) -> bytes:
    for number in reversed(path):
        payload = length_delimited(number, payload)
    return payload


def _truncated(parts: tuple[bytes, int]) -> bytes:
    data, cut = parts
    return data[: cut % len(data)] if data else b"\x0a"


def _flipped(parts: tuple[bytes, int, int]) -> bytes:
    data, where, bit = parts
    if not data:
        return b"\x80"
    where %= len(data)
    return data[:where] + bytes([data[where] ^ (1 << bit)]) + data[where + 1:]


def raw_bodies(descriptor: Descriptor, text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Request bodies as bytes: arbitrary, valid, valid-then-corrupted, invalid UTF-8 in a string field, wire types
    that do not exist, length prefixes past the end, unknown fields, deep groups."""
    valid = messages(descriptor, text).map(lambda message: message.SerializeToString())
    numbers = st.sampled_from([f.number for f in descriptor.fields] or [1]) | st.integers(1, 2**29 - 1)
    bodies = [
        st.binary(max_size=64),
        valid,
        st.tuples(valid, st.integers(0, 2**16)).map(_truncated),
        st.tuples(valid, st.integers(0, 2**16), st.integers(0, 7)).map(_flipped),
        st.tuples(valid, st.binary(min_size=1, max_size=16)).map(lambda parts: parts[0] + parts[1]),
        st.tuples(numbers, st.sampled_from((6, 7))).map(lambda parts: tag(*parts) + b"\x01"),
        st.tuples(numbers, st.integers(1, 2**64 - 1)).map(lambda parts: tag(parts[0], WIRE_LEN) + varint(parts[1])),
        st.tuples(numbers, st.binary(max_size=16)).map(lambda parts: length_delimited(parts[0] + 1000, parts[1])),
        st.integers(1, 200).map(lambda depth: tag(1000, WIRE_SGROUP) * depth + tag(1000, WIRE_EGROUP) * depth),
        st.just(b"\xff" * 11),  # a varint longer than ten bytes
    ]
    paths = string_paths(descriptor)
    if paths:
        bad = st.tuples(st.sampled_from(paths), invalid_utf8()).map(lambda parts: in_string_field(*parts))
        bodies.append(bad)
        bodies.append(st.tuples(valid, bad).map(lambda parts: parts[0] + parts[1]))
    return st.one_of(bodies)


def run(caller: Caller, rpc: Rpc, bodies: st.SearchStrategy[bytes], examples: int) -> None:
    """Check the property for every body hypothesis draws; derandomized, so the same examples every run."""

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=bodies)
    def property_holds(body: bytes) -> None:
        check(caller, rpc, body)

    property_holds()


def examples_for(rpc: Rpc) -> int:
    return STREAM_EXAMPLES if rpc.streams else UNARY_EXAMPLES


@contextlib.contextmanager
def guarded(caller: Caller, rpc: Rpc) -> Iterator[None]:
    """Around a mutating method: configuration back as it was afterwards."""
    if rpc.path in MUTATING:
        with configuration_restored(caller):
            yield
    else:
        yield


# --- the tests -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rpc", RPCS, ids=str)
def test_no_well_formed_request_gets_unknown_internal_or_internals(live: Caller, rpc: Rpc) -> None:
    """For any well-formed request message of the method (built from its descriptor), the status is neither
    UNKNOWN nor INTERNAL and the details show no traceback, class or exception name."""
    bodies = messages(rpc.request, words(live.ids)).map(lambda message: message.SerializeToString())
    with guarded(live, rpc):
        run(live, rpc, bodies, examples_for(rpc))


@pytest.mark.parametrize("rpc", RPCS, ids=str)
def test_no_request_body_gets_unknown_internal_or_internals(live: Caller, rpc: Rpc) -> None:
    """For any request body (arbitrary or corrupt bytes, invalid UTF-8 in a string field), the status is neither
    UNKNOWN nor INTERNAL and the details show no traceback, class or exception name: an undecodable body is the
    caller's mistake (INVALID_ARGUMENT), not the server's."""
    with guarded(live, rpc):
        run(live, rpc, raw_bodies(rpc.request, words(live.ids)), examples_for(rpc))


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
JSON_VALUES = st.one_of(
    JSON_SCALARS,
    st.recursive(
        JSON_SCALARS | st.text(max_size=8),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
        max_leaves=6,
    ),
).map(json.dumps)
VALUES_OF_TYPE: dict[config_pb2.ValueType, st.SearchStrategy[str]] = {
    config_pb2.VALUE_TYPE_STRING: words(()),
    config_pb2.VALUE_TYPE_NUMBER: st.one_of(
        st.sampled_from(("0", "-1", "1e-300", "1e300", "0.0001", "9007199254740993")),
        st.integers(-(10**20), 10**20).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
    ),
    config_pb2.VALUE_TYPE_BOOLEAN: st.sampled_from(("true", "false", " TRUE ")),
    config_pb2.VALUE_TYPE_JSON: JSON_VALUES,
}
WRITES = [(key, value_type) for key in CONFIG_KEYS for value_type in VALUES_OF_TYPE]


def await_applied(stack: LocalTarget, service: str, key: str, version: int) -> None:
    """Until every instance of `service` logged that its configuration client holds `key` at `version`."""

    logs = {label: path for label, path in stack.log_paths().items() if label.startswith(service)}

    def applied() -> list[str]:
        return [label for label, path in logs.items() if any(
            line.get("event") == "config_changed" and line.get("key") == key and line.get("version") == version
            for line in map(_json_or_empty, path.read_text(errors="replace").splitlines())
        )]

    wait_until(applied, lambda labels: len(labels) == len(logs), timeout=CONFIG_APPLIED_S,
               what=f"{service} applies {key} version {version} (its config_changed log line)")


def _json_or_empty(line: str) -> dict[str, Any]:
    try:
        parsed = json.loads(line)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


@pytest.mark.parametrize(("key", "value_type"), WRITES,
                         ids=[f"{key}={config_pb2.ValueType.Name(kind)}" for key, kind in WRITES])
def test_no_accepted_configuration_makes_an_order_fail_internally(
    caller: Caller, key: str, value_type: config_pb2.ValueType
) -> None:
    """For any value of `value_type` configuration-service accepts for `key`, one of the keys risk-monitor (risk.*)
    or the engine (trading.*) reads, a plain order to that service (CheckOrder, SubmitOrder) is answered neither
    UNKNOWN nor INTERNAL: a value the service cannot use is refused when written, or makes it answer with a status
    the caller can act on. Each example overwrites the same key, so the failing one alone is in force. (Orders for
    risk.* keys go to risk-monitor directly: failures through the engine would open its breaker to risk-monitor.)"""
    submit = Rpc(TRADING_SYSTEM_ENGINE, trading_pb2.DESCRIPTOR.services_by_name["TradingEngineService"]
                 .methods_by_name["SubmitOrder"])
    check_order = Rpc(RISK_MONITOR, risk_pb2.DESCRIPTOR.services_by_name["RiskMonitorService"]
                      .methods_by_name["CheckOrder"])
    order = good_order()
    check_body = risk_pb2.CheckOrderRequest(order=risk_pb2.Order(
        strategy_id=order.strategy_id, symbol=order.symbol, side=order.side, quantity=order.quantity,
        price=order.price)).SerializeToString()

    @settings(max_examples=CONFIG_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(value=VALUES_OF_TYPE[value_type])
    def orders_survive(value: str) -> None:
        write = config_pb2.SetConfigurationRequest(
            key=key, value=value, type=value_type, environment=caller.stack.timings.environment_name
        )
        try:
            written = caller.unary(
                CONFIGURATION_SERVICE, "SetConfiguration", write, config_pb2.Configuration, identity=ADMIN
            )
        except grpc.RpcError as exc:
            assert exc.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), exc.details()
            return
        reader = RISK_MONITOR if key.startswith("risk.") else TRADING_SYSTEM_ENGINE
        if key != UNREAD_KEY:
            await_applied(caller.stack, reader, key, written.version)
        rpc, body = (check_order, check_body) if reader == RISK_MONITOR else (submit, order.SerializeToString())
        assert_no_internals(rpc, body, caller.call(rpc, body))

    with configuration_restored(caller):
        orders_survive()
