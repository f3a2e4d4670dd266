"""Call any gRPC method by its full name with a JSON body, and hand what happened to an observer.

Request and response types come from the descriptors this process has registered (the ecosystem's
generated modules) and otherwise from the server's reflection service, so the same steps work on
services the suite knows nothing about. Every call can carry a W3C `traceparent` the caller chooses
(the suite uses one trace per scenario), so the services' spans of a failed scenario can be found.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

# Registering the ecosystem's descriptors in the default pool.
from ecosystem.api.common.v1 import stats_pb2 as _stats_pb2  # noqa: F401
from ecosystem.api.config.v1 import config_pb2 as _config_pb2  # noqa: F401
from ecosystem.api.coordinator.v1 import coordinator_pb2 as _coordinator_pb2  # noqa: F401
from ecosystem.api.risk.v1 import risk_pb2 as _risk_pb2  # noqa: F401
from ecosystem.api.trading.v1 import trading_pb2 as _trading_pb2  # noqa: F401

CHANNEL_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 500))
# The deadline of a call that is given none.
DEFAULT_TIMEOUT_S = 5.0


@dataclass
class RpcResult:
    """One call: what was sent where, and what came back."""

    method: str
    endpoint: str
    request: dict[str, Any]
    code: grpc.StatusCode
    details: str
    response: Message | None
    elapsed_s: float
    started_at: float = 0.0  # epoch seconds
    metadata: dict[str, str] = field(default_factory=dict)
    trailing_metadata: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.code == grpc.StatusCode.OK

    @property
    def body(self) -> dict[str, Any]:
        """The response as JSON (proto3 JSON mapping, default values included)."""
        if self.response is None:
            return {}
        return json_format.MessageToDict(
            self.response, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
        )

    def describe(self) -> str:
        outcome = "OK" if self.ok else f"{self.code.name}: {self.details}"
        return f"{self.method} on {self.endpoint} -> {outcome}"

    def record(self) -> dict[str, Any]:
        """The call as the report shows it."""
        return {
            "method": self.method,
            "endpoint": self.endpoint,
            "metadata": self.metadata,
            "request": self.request,
            "status": self.code.name,
            "details": self.details,
            "response": self.body,
            "elapsed_ms": round(self.elapsed_s * 1000, 3),
        }


class RpcClient:
    """Synchronous client for the suite: one channel per endpoint, reused across calls.

    `observer` sees every finished call; `traceparent` gives the W3C trace context of the next call
    (a call whose metadata names its own `traceparent` keeps it).
    """

    def __init__(
        self,
        *,
        observer: Callable[[RpcResult], None] | None = None,
        traceparent: Callable[[], str] | None = None,
    ) -> None:
        self._channels: dict[str, grpc.Channel] = {}
        self._pools: dict[str, descriptor_pool.DescriptorPool] = {}
        self.observer = observer
        self.traceparent = traceparent

    def call(
        self,
        endpoint: str,
        method: str,
        body: dict[str, Any] | Message | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        metadata: dict[str, str] | None = None,
    ) -> RpcResult:
        """Call `method` ("/pkg.Service/Method" or "pkg.Service/Method") and never raise on a status."""
        method = "/" + method.lstrip("/")
        request_type, response_type = self._types(endpoint, method)
        if isinstance(body, Message):
            request = body
        else:
            request = json_format.ParseDict(body or {}, request_type())
        callable_ = self._channel(endpoint).unary_unary(
            method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString,
        )
        metadata = dict(metadata or {})
        if self.traceparent is not None and "traceparent" not in metadata:
            metadata["traceparent"] = self.traceparent()
        started_at = time.time()
        started = time.perf_counter()
        try:
            response, call = callable_.with_call(request, timeout=timeout, metadata=tuple(metadata.items()))
            code, details = grpc.StatusCode.OK, ""
            trailing = call.trailing_metadata()
        except grpc.RpcError as exc:
            response, code, details, trailing = None, exc.code(), exc.details() or "", exc.trailing_metadata()
        result = RpcResult(
            method=method,
            endpoint=endpoint,
            request=json_format.MessageToDict(request, preserving_proto_field_name=True),
            code=code,
            details=details,
            response=response,
            elapsed_s=time.perf_counter() - started,
            started_at=started_at,
            metadata=metadata,
            trailing_metadata={k: v for k, v in (trailing or ()) if isinstance(v, str)},
        )
        if self.observer is not None:
            self.observer(result)
        return result

    def reflected_services(self, endpoint: str) -> list[str]:
        """The gRPC services `endpoint` lists through its reflection service."""
        return sorted(ProtoReflectionDescriptorDatabase(self._channel(endpoint)).get_services())

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def _channel(self, endpoint: str) -> grpc.Channel:
        channel = self._channels.get(endpoint)
        if channel is None:
            channel = self._channels[endpoint] = grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
        return channel

    def _types(self, endpoint: str, method: str) -> tuple[type[Message], type[Message]]:
        service_name, _, method_name = method[1:].partition("/")
        try:
            service = descriptor_pool.Default().FindServiceByName(service_name)
        except KeyError:
            service = self._reflected_pool(endpoint).FindServiceByName(service_name)
        found = service.methods_by_name.get(method_name)
        if found is None:
            raise LookupError(f"{service_name} on {endpoint} has no method {method_name!r}")
        return (
            message_factory.GetMessageClass(found.input_type),
            message_factory.GetMessageClass(found.output_type),
        )

    def _reflected_pool(self, endpoint: str) -> descriptor_pool.DescriptorPool:
        pool = self._pools.get(endpoint)
        if pool is None:
            database = ProtoReflectionDescriptorDatabase(self._channel(endpoint))
            pool = self._pools[endpoint] = descriptor_pool.DescriptorPool(database)
        return pool

