"""An OTLP/gRPC trace receiver the suite runs in its own process, so it can assert traces across services.

The services export with their ordinary OTLP exporter to `OtlpReceiver.endpoint`; the suite reads what
arrived with `spans()` / `trace(trace_id)`. The behave process is synchronous, so this is a sync gRPC server
answering from a small thread pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root span
    name: str
    kind: str  # SERVER | CLIENT | INTERNAL | PRODUCER | CONSUMER | UNSPECIFIED
    service: str  # the exporting service's resource attribute service.name
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = "UNSET"  # UNSET | OK | ERROR: whether the service counted the span as failed
    start_ns: int = 0  # epoch nanoseconds
    end_ns: int = 0


class OtlpReceiver:
    """A real `opentelemetry.proto.collector.trace.v1.TraceService` on an ephemeral port of `bind_host`.

    `bind_host` is loopback unless the services run elsewhere (containers reach the host on their
    network's gateway address).
    """

    def __init__(self, bind_host: str = "127.0.0.1") -> None:
        self._bind_host = bind_host
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._server: grpc.Server | None = None
        self.endpoint = ""

    def start(self) -> OtlpReceiver:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self._add), server)
        port = server.add_insecure_port(f"{self._bind_host}:0")
        server.start()
        self._server = server
        self.endpoint = f"{self._bind_host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, in arrival order."""
        with self._lock:
            return list(self._spans)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        """The spans received so far of one trace (`trace_id` in hex)."""
        trace_id = trace_id.lower()
        return [span for span in self.spans() if span.trace_id == trace_id]

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def _add(self, spans: list[ReceivedSpan]) -> None:
        with self._lock:
            self._spans.extend(spans)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: Callable[[list[ReceivedSpan]], None]) -> None:
        self._sink = sink

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        received = []
        for resource_spans in request.resource_spans:
            service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                received.extend(_received(span, service) for span in scope_spans.spans)
        self._sink(received)
        return trace_service_pb2.ExportTraceServiceResponse()


def _received(span: Span, service: str) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        name=span.name,
        kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        service=service,
        attributes=_attributes(span.attributes),
        status=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
    )


def _attributes(key_values: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)
