"""OpenTelemetry tracing for the grpc.aio services: thin server and client interceptors, OTLP/gRPC export.

The opentelemetry grpc instrumentation costs about 1 ms per hop in Python, so the interceptors here do only
what a trace across services needs: one SERVER span per handled RPC whose parent comes from the W3C
`traceparent` in the request metadata, one CLIENT span per outgoing call with `traceparent` injected.

Each service keeps its own TracerProvider on its `Tracing` object instead of the global one, so several
services running in one process (as in the tests) each report their own `service.name`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# Spans reach the receiver within this delay: the suite waits for them, so keep it short.
_SCHEDULE_DELAY_MS = 200
# Bounds every export attempt, including retries, and so how long `Tracing.shutdown` can take.
_EXPORT_TIMEOUT_S = 5.0

_PROPAGATOR = TraceContextTextMapPropagator()
_PROPAGATION_KEYS = frozenset(_PROPAGATOR.fields)

# Server-side codes that mean the service failed; the others are the caller's problem (OpenTelemetry
# semantic conventions for gRPC). On the client every non-OK code is an error.
_SERVER_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def setup_tracing(service_name: str, instance_id: str, otlp_endpoint: str) -> Tracing | None:
    """Tracing that exports to `otlp_endpoint` ("host:port", plaintext), or None when it is empty.

    None means the service installs no interceptors at all, so tracing switched off costs nothing.
    """
    if not otlp_endpoint:
        return None
    resource = Resource.create({"service.name": service_name, "service.instance.id": instance_id})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True, timeout=_EXPORT_TIMEOUT_S)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=_SCHEDULE_DELAY_MS))
    return Tracing(provider)


class Tracing:
    """One service's tracer provider and the interceptors that trace its RPCs."""

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider
        self.tracer = provider.get_tracer(__name__)
        self.server_interceptor: grpc.aio.ServerInterceptor = _ServerInterceptor(self.tracer)
        self.client_interceptors: list[grpc.aio.ClientInterceptor] = [
            _UnaryUnaryTracer(self.tracer),
            _UnaryStreamTracer(self.tracer),
        ]

    async def shutdown(self) -> None:
        """Export the spans still buffered, then stop the exporter.

        Runs in a worker thread: the export is a blocking gRPC call, and on the event loop thread it would
        stall the loop and lose the spans. The exporter's timeout bounds how long this takes.
        """
        await asyncio.to_thread(self._flush_and_shut_down)

    def _flush_and_shut_down(self) -> None:
        self._provider.force_flush()
        self._provider.shutdown()


def _split_method(full_method: str) -> tuple[str, str, str]:
    """Split "/pkg.Service/Method" into ("pkg.Service/Method", "pkg.Service", "Method")."""
    name = full_method.lstrip("/")
    service, _, method = name.rpartition("/")
    return name, service, method


def _rpc_attributes(full_method: str) -> tuple[str, dict[str, str]]:
    name, service, method = _split_method(full_method)
    return name, {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


def _record_code(span: trace.Span, code: grpc.StatusCode, error_codes: frozenset[grpc.StatusCode] | None) -> None:
    """Keep the status the client sees on the span; mark the span failed only for codes in `error_codes`."""
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK and (error_codes is None or code in error_codes):
        span.set_status(Status(StatusCode.ERROR, code.name))


class _ServerInterceptor(grpc.aio.ServerInterceptor):
    """Wraps each handler's behaviour in a SERVER span that is current while the handler runs."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: gRPC answers UNIMPLEMENTED without running any handler
            return handler
        method = handler_call_details.method
        metadata = handler_call_details.invocation_metadata
        for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                traced = self._traced(behaviour, method, metadata)
                return handler if traced is None else handler._replace(**{kind: traced})
        return handler

    def _traced(self, behaviour: Callable[..., Any], method: str, metadata: Any) -> Callable[..., Any] | None:
        """The behaviour inside a server span, or None for a sync handler (the services have none)."""
        if inspect.iscoroutinefunction(behaviour):
            # Unary responses, and streaming handlers that write with `context.write` and return None.
            async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with self._server_span(method, metadata, context):
                    return await behaviour(request, context)

            return traced

        if inspect.isasyncgenfunction(behaviour):

            async def traced_responses(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                with self._server_span(method, metadata, context):
                    async for response in behaviour(request, context):
                        yield response

            return traced_responses

        return None

    @contextlib.contextmanager
    def _server_span(self, method: str, metadata: Any, context: grpc.aio.ServicerContext) -> Iterator[None]:
        carrier = {key: value for key, value in metadata or () if key in _PROPAGATION_KEYS}
        name, attributes = _rpc_attributes(method)
        with self._tracer.start_as_current_span(
            name,
            context=_PROPAGATOR.extract(carrier),
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except grpc.aio.AbortError:
                # context.abort: the code it set is what the client sees; this is an answer, not a crash.
                _record_code(span, context.code() or grpc.StatusCode.UNKNOWN, _SERVER_ERROR_CODES)
                raise
            except asyncio.CancelledError:
                _record_code(span, grpc.StatusCode.CANCELLED, _SERVER_ERROR_CODES)
                raise
            except Exception as exc:
                span.record_exception(exc)
                _record_code(span, grpc.StatusCode.UNKNOWN, _SERVER_ERROR_CODES)
                raise
            else:
                # A handler may set a non-OK code with context.set_code and return normally.
                _record_code(span, context.code() or grpc.StatusCode.OK, _SERVER_ERROR_CODES)


class _ClientSpans:
    """Starts a CLIENT span per outgoing call, child of the current span, with `traceparent` in the metadata."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def _start(self, details: grpc.aio.ClientCallDetails) -> tuple[trace.Span, grpc.aio.ClientCallDetails]:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        name, attributes = _rpc_attributes(method)
        span = self._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        # A fresh Metadata: the caller's object may be reused for other calls.
        kept = [(key, value) for key, value in details.metadata or () if key not in carrier]
        metadata = grpc.aio.Metadata(*kept, *carrier.items())
        return span, details._replace(metadata=metadata)


# Two classes, not one inheriting both interfaces: a grpc.aio channel files each interceptor under the
# first interface it implements only.
class _UnaryUnaryTracer(_ClientSpans, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[grpc.aio.UnaryUnaryCall]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> grpc.aio.UnaryUnaryCall:
        span, details = self._start(client_call_details)
        try:
            call = await continuation(details, request)
        except BaseException as exc:
            _end_failed_start(span, exc)
            raise
        await _end_when_done(span, call)
        return call


class _UnaryStreamTracer(_ClientSpans, grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, tracer: trace.Tracer) -> None:
        super().__init__(tracer)
        # Strong references to the tasks that end the spans, so they are not collected before they run.
        self._pending: set[asyncio.Task[None]] = set()

    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[grpc.aio.UnaryStreamCall]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> grpc.aio.UnaryStreamCall:
        span, details = self._start(client_call_details)
        try:
            call = await continuation(details, request)
        except BaseException as exc:
            _end_failed_start(span, exc)
            raise
        # The caller reads the stream after we return: end the span whenever the call finishes.
        task = asyncio.get_running_loop().create_task(_end_when_done(span, call))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return call


async def _end_when_done(span: trace.Span, call: grpc.aio.Call) -> None:
    try:
        code = await call.code()
    except asyncio.CancelledError:
        _record_code(span, grpc.StatusCode.CANCELLED, None)
        raise
    else:
        _record_code(span, code, None)
    finally:
        span.end()


def _end_failed_start(span: trace.Span, exc: BaseException) -> None:
    """End the span of a call that failed before it existed (an interceptor further down raised)."""
    if isinstance(exc, grpc.aio.AioRpcError):
        code = exc.code()
    elif isinstance(exc, asyncio.CancelledError):
        code = grpc.StatusCode.CANCELLED
    else:
        code = grpc.StatusCode.UNKNOWN
    _record_code(span, code, None)
    span.end()
