"""OpenTelemetry tracing for the grpc.aio services: server and client spans, OTLP/gRPC export.

The opentelemetry grpc instrumentation costs about 1 ms per hop in Python, so this module does only what
a trace across services needs: one SERVER span per handled RPC whose parent comes from the W3C
`traceparent` in the request metadata, one CLIENT span per outgoing call with `traceparent` injected.

No grpc.aio interceptors: a client interceptor turns every call into an intercepted call run by an extra
task, and each server interceptor is one more coroutine per call. The server middleware opens the SERVER
span itself (`Tracing.server_span`, `Tracing.traced_handler`), and stubs built on `Tracing.traced_channel`
open the CLIENT span and pass `traceparent` in the call's own metadata.

Each service keeps its own TracerProvider on its `Tracing` object instead of the global one, so several
services running in one process (as in the tests) each report their own `service.name`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
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
_HANDLER_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")

Metadata = Sequence[tuple[str, str | bytes]]


def setup_tracing(service_name: str, instance_id: str, otlp_endpoint: str) -> Tracing | None:
    """Tracing that exports to `otlp_endpoint` ("host:port", plaintext), or None when it is empty.

    None means the service opens no spans at all, so tracing switched off costs nothing.
    """
    if not otlp_endpoint:
        return None
    resource = Resource.create({"service.name": service_name, "service.instance.id": instance_id})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True, timeout=_EXPORT_TIMEOUT_S)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=_SCHEDULE_DELAY_MS))
    return Tracing(provider)


class Tracing:
    """One service's tracer provider and the spans around its RPCs."""

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider
        self.tracer = provider.get_tracer(__name__)
        # Strong references to the tasks that end the spans of streams, so they are not collected before they run.
        self._pending: set[asyncio.Task[None]] = set()

    @contextlib.contextmanager
    def server_span(
        self, method: str, metadata: Iterable[tuple[str, str | bytes]] | None, context: grpc.aio.ServicerContext
    ) -> Iterator[None]:
        """A SERVER span for `method` ("/pkg.Service/Method"), current while the block runs.

        Its parent is the `traceparent` in the request `metadata`; it ends with the status code the
        caller sees, and is marked failed only when that code means the service failed.
        """
        carrier = {key: value for key, value in metadata or () if key in _PROPAGATION_KEYS}
        name, attributes = _rpc_attributes(method)
        with self.tracer.start_as_current_span(
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

    def traced_handler(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        """`handler` with its behaviour inside `server_span`; unchanged if that behaviour is sync (none is)."""
        for kind in _HANDLER_KINDS:
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                traced = self._traced(behaviour, method)
                # grpc's handlers are namedtuples; its stubs declare only the abstract RpcMethodHandler.
                return handler if traced is None else handler._replace(**{kind: traced})  # type: ignore[attr-defined]
        return handler

    def traced_channel(self, channel: grpc.aio.Channel) -> TracedChannel:
        """What to build generated stubs on so that each of their unary calls and server streams is traced."""
        return TracedChannel(channel, self)

    async def shutdown(self) -> None:
        """Export the spans still buffered, then stop the exporter.

        Runs in a worker thread: the export is a blocking gRPC call, and on the event loop thread it would
        stall the loop and lose the spans. The exporter's timeout bounds how long this takes.
        """
        await asyncio.to_thread(self._flush_and_shut_down)

    def _flush_and_shut_down(self) -> None:
        self._provider.force_flush()
        self._provider.shutdown()

    def _traced(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any] | None:
        if inspect.iscoroutinefunction(behaviour):
            # Unary responses, and streaming handlers that write with `context.write` and return None.
            async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with self.server_span(method, context.invocation_metadata(), context):
                    return await behaviour(request, context)

            return traced

        if inspect.isasyncgenfunction(behaviour):

            async def traced_responses(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                with self.server_span(method, context.invocation_metadata(), context):
                    async for response in behaviour(request, context):
                        yield response

            return traced_responses

        return None

    def _client_span(
        self, name: str, attributes: dict[str, str], metadata: Metadata | None
    ) -> tuple[trace.Span, Metadata]:
        """A CLIENT span, child of the current span, and the call's metadata with its `traceparent`."""
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        # A fresh tuple: the caller's metadata object may be reused for other calls.
        kept = [(key, value) for key, value in metadata or () if key not in carrier]
        return span, (*kept, *carrier.items())

    def _end_when_done(self, span: trace.Span, call: grpc.aio.Call) -> None:
        task = asyncio.get_running_loop().create_task(_end_when_done(span, call))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


class TracedChannel:
    """Stands for a grpc.aio channel when generated stubs are built: their multicallables open CLIENT spans.

    The stubs build their multicallables once, so the per-call work is the span and one metadata tuple.
    Client-streaming methods are passed through untraced (no service has one).
    """

    def __init__(self, channel: grpc.aio.Channel, tracing: Tracing) -> None:
        self._channel = channel
        self._tracing = tracing

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _TracedUnaryUnary:
        return _TracedUnaryUnary(self._tracing, method, self._channel.unary_unary(method, *args, **kwargs))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> _TracedUnaryStream:
        return _TracedUnaryStream(self._tracing, method, self._channel.unary_stream(method, *args, **kwargs))

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> grpc.aio.StreamUnaryMultiCallable:
        return self._channel.stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> grpc.aio.StreamStreamMultiCallable:
        return self._channel.stream_stream(method, *args, **kwargs)


class _TracedUnaryUnary:
    """Awaits the call in the caller's own task: no intercepted call, no extra task."""

    def __init__(self, tracing: Tracing, method: str, multicallable: grpc.aio.UnaryUnaryMultiCallable) -> None:
        self._tracing = tracing
        self._name, self._attributes = _rpc_attributes(method)
        self._multicallable = multicallable

    async def __call__(self, request: Any, *, metadata: Metadata | None = None, **kwargs: Any) -> Any:
        span, metadata = self._tracing._client_span(self._name, self._attributes, metadata)
        try:
            response = await self._multicallable(request, metadata=metadata, **kwargs)
        except BaseException as exc:
            _record_code(span, _code_of(exc), None)
            raise
        else:
            _record_code(span, grpc.StatusCode.OK, None)
        finally:
            span.end()
        return response


class _TracedUnaryStream:
    """Returns the call itself; the caller reads the stream after that, so its span ends whenever the call ends."""

    def __init__(self, tracing: Tracing, method: str, multicallable: grpc.aio.UnaryStreamMultiCallable) -> None:
        self._tracing = tracing
        self._name, self._attributes = _rpc_attributes(method)
        self._multicallable = multicallable

    def __call__(self, request: Any, *, metadata: Metadata | None = None, **kwargs: Any) -> grpc.aio.UnaryStreamCall:
        span, metadata = self._tracing._client_span(self._name, self._attributes, metadata)
        try:
            call = self._multicallable(request, metadata=metadata, **kwargs)
        except BaseException as exc:
            _record_code(span, _code_of(exc), None)
            span.end()
            raise
        self._tracing._end_when_done(span, call)
        return call


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


def _code_of(exc: BaseException) -> grpc.StatusCode:
    """The status a client sees for a call that raised `exc`."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code()
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


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
