"""Call any gRPC method by its full name with JSON messages, and hand what happened to an observer.

Request and response types come from the descriptors this process has registered (the ecosystem's
generated modules) and otherwise from the server's reflection service, so the same steps work on
services the suite knows nothing about. All four kinds of method work: a client-streaming or bidi
method takes a list of request messages, and a server-streaming one returns every message it sent
(or the first N, or those up to one that matches, when the caller says so), with the response
headers and trailers. Every outcome the server gives, a missing method or an unreachable endpoint
included, is a result to assert on; only what the caller wrote wrong (JSON that does not fit the
request type) raises, as a RequestError naming the problem and what would be valid.

Every call can carry a W3C `traceparent` the caller chooses (the suite uses one trace per scenario),
so the services' spans of a failed scenario can be found.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from acceptance.transport import PLAINTEXT, Transport

# Registering the ecosystem's descriptors in the default pool.
from ecosystem.api.common.v1 import stats_pb2 as _stats_pb2  # noqa: F401
from ecosystem.api.config.v1 import config_pb2 as _config_pb2  # noqa: F401
from ecosystem.api.coordinator.v1 import coordinator_pb2 as _coordinator_pb2  # noqa: F401
from ecosystem.api.risk.v1 import risk_pb2 as _risk_pb2  # noqa: F401
from ecosystem.api.trading.v1 import trading_pb2 as _trading_pb2  # noqa: F401
from ecosystem.security import SUITE

CHANNEL_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 500))
# The deadline of a call that is given none (docs/STEPS.md); a streaming call must end within it too.
DEFAULT_TIMEOUT_S = 5.0
# The most response messages one call keeps: a stream that sends more ends the read with an error.
MAX_MESSAGES = 10_000
# Every request to a server's reflection service ends within this (a paused server must not hang a step).
REFLECTION_TIMEOUT_S = 5.0

UNARY = "unary"
SERVER_STREAMING = "server streaming"
CLIENT_STREAMING = "client streaming"
BIDI_STREAMING = "bidi streaming"


class BoundedReflection(ProtoReflectionDescriptorDatabase):
    """The server's reflection service with a deadline on every request. grpcio-reflection's database sends
    its requests without one, and asserts on any error answer but NOT_FOUND."""

    def _do_one_request(self, request: Any, key: Any) -> Any:
        response = next(self._stub.ServerReflectionInfo(iter([request]), timeout=REFLECTION_TIMEOUT_S))
        if response.WhichOneof("message_response") == "error_response":
            raise KeyError(key)
        return response


class RequestError(ValueError):
    """The request cannot be sent as written: names the method, the problem and what would be valid."""


@dataclass(frozen=True)
class Collect:
    """How much of a response stream to read: all of it (the default), the first `limit` messages, or up
    to the first message for which `until` holds; the call is cancelled once enough has arrived."""

    limit: int | None = None
    until: Callable[[dict[str, Any]], bool] | None = None
    description: str = "every message"


@dataclass
class RpcResult:
    """One call: what was sent where, and what came back."""

    method: str
    endpoint: str
    request: Any  # the JSON sent: an object, or a list of objects for a client-streaming method
    code: grpc.StatusCode
    details: str
    responses: list[Message] = field(default_factory=list)
    elapsed_s: float = 0.0
    started_at: float = 0.0  # epoch seconds
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    trailers: dict[str, str] = field(default_factory=dict)
    kind: str = UNARY
    # What the suite knows beyond the server's answer (the method is not listed, the read stopped early).
    note: str = ""
    # In secure mode: the identity the server had to prove, and the one the suite called as.
    server: str = ""
    identity: str = SUITE

    @property
    def ok(self) -> bool:
        return self.code == grpc.StatusCode.OK

    @property
    def response(self) -> Message | None:
        return self.responses[0] if self.responses else None

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """Every response message as JSON (proto3 JSON mapping, default values included)."""
        return [_as_json(message) for message in self.responses]

    @property
    def body(self) -> dict[str, Any]:
        """The one response message as JSON; {} when there is none."""
        return _as_json(self.responses[0]) if self.responses else {}

    def describe(self) -> str:
        outcome = "OK" if self.ok else f"{self.code.name}: {self.details}"
        if self.kind in (SERVER_STREAMING, BIDI_STREAMING):
            outcome += f", {len(self.responses)} message(s)"
        return f"{self.method} on {self.endpoint} -> {outcome}" + (f" ({self.note})" if self.note else "")

    def record(self) -> dict[str, Any]:
        """The call as the report shows it."""
        streamed = self.kind in (SERVER_STREAMING, BIDI_STREAMING)
        return {
            "method": self.method,
            "kind": self.kind,
            "endpoint": self.endpoint,
            "metadata": self.metadata,
            "request": self.request,
            "status": self.code.name,
            "details": self.details,
            **({"note": self.note} if self.note else {}),
            "response": self.bodies if streamed else self.body,
            "headers": self.headers,
            "trailers": self.trailers,
            "elapsed_ms": round(self.elapsed_s * 1000, 3),
        }


class RpcClient:
    """Synchronous client for the suite: one channel per endpoint, reused across calls.

    `observer` sees every finished call; `traceparent` gives the W3C trace context of the next call
    (a call whose metadata names its own `traceparent` keeps it); `transport` says how to reach servers.
    """

    def __init__(
        self,
        *,
        observer: Callable[[RpcResult], None] | None = None,
        traceparent: Callable[[], str] | None = None,
        transport: Transport = PLAINTEXT,
    ) -> None:
        self.transport = transport
        self._channels: dict[tuple[str, str, str], grpc.Channel] = {}
        self._pools: dict[tuple[str, str], descriptor_pool.DescriptorPool] = {}
        self.observer = observer
        self.traceparent = traceparent

    def call(
        self,
        endpoint: str,
        method: str,
        body: Any = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        metadata: dict[str, str] | None = None,
        collect: Collect | None = None,
        server: str = "",
        identity: str = SUITE,
    ) -> RpcResult:
        """Call `method` ("/pkg.Service/Method" or "pkg.Service/Method"); a status is a result, never raised.

        `body` is a JSON object (or a message) for methods that take one request, a list of them for
        client-streaming and bidi methods. RequestError if it does not fit the request type. In secure mode
        the call goes as `identity` to a server that must prove to be `server`.
        """
        method = "/" + method.lstrip("/")
        metadata = dict(metadata or {})
        if self.traceparent is not None and "traceparent" not in metadata:
            metadata["traceparent"] = self.traceparent()
        result = RpcResult(method, endpoint, body if body is not None else {}, grpc.StatusCode.OK, "",
                           started_at=time.time(), metadata=metadata, server=server, identity=identity)
        started = time.perf_counter()
        try:
            found = self._method(endpoint, method, server)
        except grpc.RpcError as exc:  # reflection itself failed: the endpoint is down, or serves none
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise RequestError(
                    f"{endpoint} serves no reflection (grpc.reflection.v1alpha.ServerReflection), so the suite "
                    f"cannot encode JSON for {method}: enable reflection on the server"
                ) from None
            result.code, result.details = exc.code(), exc.details() or ""
            result.note = "the call was not sent: reflection, asked for its types, failed first"
        else:
            if isinstance(found, str):
                self._send_unknown(result, found, timeout)
            else:
                self._send(result, found, body, timeout, collect or Collect())
        result.elapsed_s = time.perf_counter() - started
        if self.observer is not None:
            self.observer(result)
        return result

    def reflected_services(self, endpoint: str, server: str = "") -> list[str]:
        """The gRPC services `endpoint` (in secure mode: proving to be `server`) lists through reflection."""
        return sorted(BoundedReflection(self._channel(endpoint, server)).get_services())

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
        self._pools.clear()

    # --- internals ----------------------------------------------------------------------------

    def _channel(self, endpoint: str, server: str = "", identity: str = SUITE) -> grpc.Channel:
        key = (endpoint, server, identity)
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = self.transport.channel(
                endpoint, server, identity=identity, options=CHANNEL_OPTIONS
            )
        return channel

    def _method(self, endpoint: str, method: str, server: str) -> MethodDescriptor | str:
        """The method's descriptor, or why it is unknown ("... lists no service X; it lists: ...")."""
        service_name, _, method_name = method[1:].partition("/")
        if not service_name or not method_name:
            raise RequestError(f"{method!r} is not a full method name: write it as package.Service/Method")
        try:
            service = descriptor_pool.Default().FindServiceByName(service_name)
        except KeyError:
            try:
                service = self._reflected_pool(endpoint, server).FindServiceByName(service_name)
            except KeyError:
                listed = ", ".join(self.reflected_services(endpoint, server)) or "nothing"
                return f"reflection on {endpoint} lists no service {service_name}; it lists: {listed}"
        found = service.methods_by_name.get(method_name)
        if found is None:
            return f"{service_name} has no method {method_name}; its methods: {', '.join(service.methods_by_name)}"
        return found

    def _reflected_pool(self, endpoint: str, server: str) -> descriptor_pool.DescriptorPool:
        pool = self._pools.get((endpoint, server))
        if pool is None:
            database = BoundedReflection(self._channel(endpoint, server))
            pool = self._pools[(endpoint, server)] = descriptor_pool.DescriptorPool(database)
        return pool

    def _send_unknown(self, result: RpcResult, why: str, timeout: float) -> None:
        """A method no descriptor knows is still called (empty body): what the server answers is the outcome."""
        stub = self._channel(result.endpoint, result.server, result.identity).unary_unary(result.method)
        try:
            _, call = stub.with_call(b"", timeout=timeout, metadata=tuple(result.metadata.items()))
            result.headers, result.trailers = _texts(call.initial_metadata()), _texts(call.trailing_metadata())
        except grpc.RpcError as exc:
            _failed(result, exc)
        result.note = f"{why}; sent without a body"

    def _send(self, result: RpcResult, method: MethodDescriptor, body: Any, timeout: float, collect: Collect) -> None:
        request_type = message_factory.GetMessageClass(method.input_type)
        response_type = message_factory.GetMessageClass(method.output_type)
        result.kind = _kind(method)
        requests = _requests(result, method, request_type, body)
        result.request = [_as_json(r) for r in requests] if method.client_streaming else _as_json(requests[0])
        channel = self._channel(result.endpoint, result.server, result.identity)
        options: dict[str, Any] = {"timeout": timeout, "metadata": tuple(result.metadata.items())}
        serializer, deserializer = _serialize, response_type.FromString
        try:
            if not method.server_streaming:
                factory = channel.stream_unary if method.client_streaming else channel.unary_unary
                stub = factory(result.method, request_serializer=serializer, response_deserializer=deserializer)
                argument = iter(requests) if method.client_streaming else requests[0]
                response, call = stub.with_call(argument, **options)
                result.responses = [response]
                result.headers, result.trailers = _texts(call.initial_metadata()), _texts(call.trailing_metadata())
                return
            factory = channel.stream_stream if method.client_streaming else channel.unary_stream
            stub = factory(result.method, request_serializer=serializer, response_deserializer=deserializer)
            stream = stub(iter(requests) if method.client_streaming else requests[0], **options)
            self._read_stream(result, stream, collect)
        except grpc.RpcError as exc:
            _failed(result, exc)

    @staticmethod
    def _read_stream(result: RpcResult, stream: Any, collect: Collect) -> None:
        for message in _bounded(stream):
            result.responses.append(message)
            enough = collect.limit is not None and len(result.responses) >= collect.limit
            if enough or (collect.until is not None and collect.until(_as_json(message))):
                result.headers = _texts(stream.initial_metadata())
                stream.cancel()
                result.note = f"the suite stopped reading after {len(result.responses)} messages: {collect.description}"
                return
        result.headers, result.trailers = _texts(stream.initial_metadata()), _texts(stream.trailing_metadata())
        if collect.until is not None:
            result.note = f"the stream ended before {collect.description}"


def _bounded(stream: Iterator[Message]) -> Iterator[Message]:
    for count, message in enumerate(stream, 1):
        if count > MAX_MESSAGES:
            raise RequestError(f"the stream sent more than {MAX_MESSAGES} messages; read the first N instead")
        yield message


def _kind(method: MethodDescriptor) -> str:
    if method.client_streaming:
        return BIDI_STREAMING if method.server_streaming else CLIENT_STREAMING
    return SERVER_STREAMING if method.server_streaming else UNARY


def _requests(result: RpcResult, method: MethodDescriptor, request_type: type[Message], body: Any) -> list[Message]:
    """The request messages `body` stands for; RequestError naming the method and what it takes."""
    if isinstance(body, Message):
        return [body]
    if body is None:
        body = [] if method.client_streaming else {}
    if method.client_streaming and not isinstance(body, list):
        raise RequestError(
            f"{result.method} is {_kind(method)}: give its request messages as a JSON list of "
            f"{method.input_type.full_name} objects (or a table, one row per message)"
        )
    if not method.client_streaming and not isinstance(body, dict):
        raise RequestError(
            f"{result.method} takes one request message: give a JSON object of {method.input_type.full_name}"
        )
    items = body if isinstance(body, list) else [body]
    messages = []
    for number, item in enumerate(items, 1):
        where = f"message {number} of " if method.client_streaming else ""
        if not isinstance(item, dict):
            raise RequestError(f"{where}the request of {result.method} is {item!r}, not a JSON object")
        try:
            messages.append(json_format.ParseDict(item, request_type()))
        except json_format.ParseError as exc:
            fields = ", ".join(f.name for f in method.input_type.fields) or "none"
            raise RequestError(
                f"{where}the request of {result.method} does not fit {method.input_type.full_name}: "
                f"{str(exc).splitlines()[0]} (its fields: {fields})"
            ) from None
    return messages


def _failed(result: RpcResult, error: grpc.RpcError) -> None:
    result.code, result.details = error.code(), error.details() or ""
    result.headers = _texts(error.initial_metadata())
    result.trailers = _texts(error.trailing_metadata())


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _texts(metadata: Any) -> dict[str, str]:
    """Metadata as text: binary (-bin) values shown as hex."""
    return {key: value if isinstance(value, str) else value.hex() for key, value in (metadata or ())}


def _as_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True,
                                     preserving_proto_field_name=True)
