"""OpenTelemetry tracing for the grpc.aio services: server and client spans, OTLP/gRPC export.

The opentelemetry grpc instrumentation costs about 1 ms per hop in Python, so this module does only what
a trace across services needs: one SERVER span per handled RPC whose parent comes from the W3C
`traceparent` in the request metadata, one CLIENT span per outgoing call with `traceparent` injected.

No grpc.aio interceptors: a client interceptor turns every call into an intercepted call run by an extra
task, and each server interceptor is one more coroutine per call. The server middleware opens the SERVER
span itself (`Tracing.server_span`, `Tracing.traced_handler`), and stubs built on `Tracing.traced_channel`
open the CLIENT span and pass `traceparent` in the call's own metadata.

Sampling is parent-based: a request whose `traceparent` says sampled is traced, one whose `traceparent` says
not sampled is not, and only requests that start a trace are kept at the service's ratio
(`Settings.trace_sample_ratio`). So a trace is whole or absent, never a fragment, and a caller that wants a
request traced (the acceptance suite, on every call) gets it traced end to end. A request outside the sample
costs no SDK span: its not-sampled trace context is kept in a context variable, and the calls it makes pass it
on unchanged. New traces are decided here, by TraceIdRatioBased's rule, before any SDK call; the SDK's own
sampler only follows parents (so `Tracing.tracer`, used directly, opens every new trace it is asked to).

Between our own services a new trace left out travels as no trace context at all: the channels of a service that
traces say so in the user-agent (`TRACING_CHANNEL_OPTIONS`), and a call from one of them without a `traceparent` is
read as not sampled, so the callee does not start a trace of its own. Sending a fresh not-sampled `traceparent`
instead cost about 60 µs of CPU per order at c=64 on two shared cores, most of tracing's cost at load: gRPC's
metadata work on both ends of every call (benchmarks/README.md, fourth round). A not-sampled `traceparent` a
caller sent is passed on as it came.

Each service keeps its own TracerProvider on its `Tracing` object instead of the global one, so several
services running in one process (as in the tests) each report their own `service.name`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ecosystem.settings import DEFAULT_TRACE_SAMPLE_RATIO

# Spans reach the receiver within this delay: the suite waits for them, so keep it short.
_SCHEDULE_DELAY_MS = 200
# Bounds every export attempt, including retries, and so how long `Tracing.shutdown` can take.
_EXPORT_TIMEOUT_S = 5.0

_PROPAGATOR = TraceContextTextMapPropagator()
_PROPAGATION_KEYS = frozenset(_PROPAGATOR.fields)
# The parent of a request that arrives without a trace context: none, whatever is current in the server's task.
_NO_PARENT = otel_context.Context()
Metadata = Sequence[tuple[str, str | bytes]]

# A well-formed version-00 `traceparent` whose sampled flag is clear (W3C Trace Context).
_NOT_SAMPLED_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f][02468ace]")

# The user-agent, ahead of gRPC's own, of the channels of a service that traces: it decides the sampling of every
# call it makes and sends a `traceparent` with each one it keeps, so a call of its without one is in a trace it left
# out. A service that does not trace sends gRPC's user-agent alone, and its callees decide for themselves.
TRACING_USER_AGENT = "ecosystem-tracing/1"
TRACING_CHANNEL_OPTIONS = (("grpc.primary_user_agent", TRACING_USER_AGENT),)
_TRACING_USER_AGENT_PREFIX = TRACING_USER_AGENT + " "  # gRPC appends its own after a space
# What a call in a trace left out carries when none came from a caller to pass on: nothing.
_NO_TRACE_CONTEXT: Metadata = ()

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

# While a request outside the sample is served: the trace context the calls made meanwhile pass on (its caller's
# `traceparent`, and `tracestate` if it came with one; or _NO_TRACE_CONTEXT). None while a sampled request is
# served, or none is.
_NOT_SAMPLED: contextvars.ContextVar[Metadata | None] = contextvars.ContextVar("ecosystem_not_sampled", default=None)


def setup_tracing(
    service_name: str, instance_id: str, otlp_endpoint: str, sample_ratio: float = DEFAULT_TRACE_SAMPLE_RATIO
) -> Tracing | None:
    """Tracing that exports to `otlp_endpoint` ("host:port", plaintext), or None when it is empty.

    None means the service opens no spans at all, so tracing switched off costs nothing. `sample_ratio` is the
    share of new traces (requests without a caller's trace context) kept; callers' decisions are followed.
    """
    if not otlp_endpoint:
        return None
    resource = _HashedOnce(Resource.create({"service.name": service_name, "service.instance.id": instance_id}))
    # The SDK follows the parent; new traces are decided by Tracing first (`_keeps_new_trace`), at the ratio, so
    # a dropped one costs no SDK call, and the SDK opens every new trace it is asked to.
    provider = TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_ON))
    exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True, timeout=_EXPORT_TIMEOUT_S)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=_SCHEDULE_DELAY_MS))
    return Tracing(provider, sample_ratio)


class _HashedOnce(Resource):
    """A Resource whose hash is computed once: the OTLP encoder hashes the resource of every span it exports, and
    Resource.__hash__ JSON-encodes the attributes each time (a few µs a span, on the export thread)."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.attributes, resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


class Tracing:
    """One service's tracer provider and the spans around its RPCs."""

    def __init__(self, provider: TracerProvider, sample_ratio: float = 1.0) -> None:
        self._provider = provider
        # TraceIdRatioBased's rule: a new trace is kept when 64 random bits are below this bound.
        self._keep_below = TraceIdRatioBased.get_bound_for_rate(sample_ratio)
        self.tracer = provider.get_tracer(__name__)
        # Strong references to the tasks that end the spans of streams, so they are not collected before they run.
        self._pending: set[asyncio.Task[None]] = set()

    def server_span(self, method: str, context: grpc.aio.ServicerContext) -> contextlib.AbstractContextManager[None]:
        """A SERVER span for `method` ("/pkg.Service/Method"), current while the block runs, if its trace is sampled.

        Its parent is the `traceparent` in the request's metadata; it ends with the status code the
        caller sees, and is marked failed only when that code means the service failed. A request outside the
        sample gets no span: its not-sampled trace context is kept instead, for the calls it makes to pass on.
        """
        carrier, tracing_caller = _caller_trace_context(context.invocation_metadata() or ())
        if not carrier and tracing_caller:  # a service that traces left this trace out
            return _PassingOn(_NO_TRACE_CONTEXT)
        if carrier:
            traceparent = carrier[0][1]
            if isinstance(traceparent, str) and _NOT_SAMPLED_TRACEPARENT.fullmatch(traceparent):
                # The caller left this trace out: no span, no sampler, only its context to pass on.
                return _PassingOn(carrier)
            parent = _PROPAGATOR.extract(dict(carrier))
            if trace.get_current_span(parent).get_span_context().is_valid:
                return self._sampled_server_span(method, parent, context)
        # A new trace, or one whose context cannot be read.
        if self._keeps_new_trace():
            return self._sampled_server_span(method, _NO_PARENT, context)
        return _PassingOn(_NO_TRACE_CONTEXT)

    @contextlib.contextmanager
    def _sampled_server_span(
        self, method: str, parent: otel_context.Context, context: grpc.aio.ServicerContext
    ) -> Iterator[None]:
        name, attributes = _rpc_attributes(method)
        span = self.tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        if not span.is_recording():  # a caller's not-sampled trace in a form the fast path does not read
            with _PassingOn(_trace_context(span)):
                yield
            return
        token = otel_context.attach(trace.set_span_in_context(span))
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
        finally:
            otel_context.detach(token)
            span.end()

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
                with self.server_span(method, context):
                    return await behaviour(request, context)

            return traced

        if inspect.isasyncgenfunction(behaviour):

            async def traced_responses(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                with self.server_span(method, context):
                    async for response in behaviour(request, context):
                        yield response

            return traced_responses

        return None

    def _client_span(
        self, name: str, attributes: dict[str, str], metadata: Metadata | None
    ) -> tuple[trace.Span | None, Metadata]:
        """A CLIENT span, child of the current span, and the call's metadata with its `traceparent`.

        No span (None) when the trace is not sampled; the metadata then carries the not-sampled context on (none at
        all for a trace our service left out), so the next service does not start a trace of its own that would be
        a fragment of this one.
        """
        passed_on = _NOT_SAMPLED.get()
        starts_a_trace = passed_on is None and not trace.get_current_span().get_span_context().is_valid
        if starts_a_trace and not self._keeps_new_trace():
            passed_on = _NO_TRACE_CONTEXT
        if passed_on is None:
            span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
            if span.is_recording():
                return span, _with_trace_context(metadata, _trace_context(span))
            passed_on = _trace_context(span)  # a child of a not-sampled span someone made current
        return None, _with_trace_context(metadata, passed_on)

    def _keeps_new_trace(self) -> bool:
        """Whether a new trace is in the sample, by TraceIdRatioBased's rule (64 random bits below the bound)."""
        return random.getrandbits(64) < self._keep_below

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


class _TracedMulticallable:
    """A multicallable whose calls open their CLIENT span and carry `traceparent`; subclasses say when the span ends.

    The call is made in the caller's own task: no intercepted call, no extra task."""

    def __init__(self, tracing: Tracing, method: str, multicallable: Callable[..., Any]) -> None:
        self._tracing = tracing
        self._name, self._attributes = _rpc_attributes(method)
        self._multicallable = multicallable

    def _start(self, request: Any, metadata: Metadata | None, kwargs: dict[str, Any]) -> tuple[trace.Span | None, Any]:
        """The call's span (None when its trace is not sampled) and gRPC's call object."""
        span, metadata = self._tracing._client_span(self._name, self._attributes, metadata)
        try:
            call = self._multicallable(request, metadata=metadata, **kwargs)
        except BaseException as exc:
            if span is not None:
                _record_code(span, _code_of(exc), None)
                span.end()
            raise
        return span, call


class _TracedUnaryUnary(_TracedMulticallable):
    """Without a span, gRPC's own call object is returned: no coroutine around it."""

    def __call__(self, request: Any, *, metadata: Metadata | None = None, **kwargs: Any) -> Awaitable[Any]:
        span, call = self._start(request, metadata, kwargs)
        return call if span is None else _ending_span(span, call)


class _TracedUnaryStream(_TracedMulticallable):
    """Returns the call itself; the caller reads the stream after that, so its span ends whenever the call ends."""

    def __call__(self, request: Any, *, metadata: Metadata | None = None, **kwargs: Any) -> grpc.aio.UnaryStreamCall:
        span, call = self._start(request, metadata, kwargs)
        if span is not None:
            self._tracing._end_when_done(span, call)
        return call


class _PassingOn:
    """While the block runs, calls made pass on `trace_context`, the context of a trace outside the sample.

    A class rather than a generator context manager: it is entered on every request outside the sample."""

    __slots__ = ("_token", "_trace_context")

    def __init__(self, trace_context: Metadata) -> None:
        self._trace_context = trace_context

    def __enter__(self) -> None:
        self._token = _NOT_SAMPLED.set(self._trace_context)

    def __exit__(self, *exc_info: object) -> None:
        _NOT_SAMPLED.reset(self._token)


def _caller_trace_context(metadata: Iterable[tuple[str, str | bytes]]) -> tuple[Metadata, bool]:
    """The request's `traceparent` and, if it came with one, its `tracestate` (empty without a `traceparent`); and
    whether the caller is a service that traces (`TRACING_USER_AGENT`)."""
    traceparent = tracestate = None
    tracing_caller = False
    for key, value in metadata:
        if key == "traceparent":
            traceparent = value
        elif key == "tracestate":
            tracestate = value
        elif key == "user-agent":
            tracing_caller = isinstance(value, str) and value.startswith(_TRACING_USER_AGENT_PREFIX)
    if traceparent is None:
        return _NO_TRACE_CONTEXT, tracing_caller
    if tracestate is None:
        return (("traceparent", traceparent),), tracing_caller
    return (("traceparent", traceparent), ("tracestate", tracestate)), tracing_caller


def _trace_context(span: trace.Span) -> Metadata:
    """The metadata that makes `span` the parent of a call: its `traceparent` (and `tracestate`, if any)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return tuple(carrier.items())


def _with_trace_context(metadata: Metadata | None, trace_context: Metadata) -> Metadata:
    """A fresh tuple (the caller's metadata object may be reused for other calls): `metadata` with `trace_context`
    instead of any trace context it had."""
    if not metadata:
        return trace_context
    return (*(pair for pair in metadata if pair[0] not in _PROPAGATION_KEYS), *trace_context)


def _split_method(full_method: str) -> tuple[str, str, str]:
    """Split "/pkg.Service/Method" into ("pkg.Service/Method", "pkg.Service", "Method")."""
    name = full_method.lstrip("/")
    service, _, method = name.rpartition("/")
    return name, service, method


@functools.cache
def _rpc_attributes(full_method: str) -> tuple[str, dict[str, str]]:
    """The span name and attributes of a method: the same objects on every call (the SDK copies the attributes)."""
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


async def _ending_span(span: trace.Span, call: grpc.aio.UnaryUnaryCall) -> Any:
    """The response of `call`, with `span` ended by its outcome."""
    try:
        response = await call
    except BaseException as exc:
        _record_code(span, _code_of(exc), None)
        raise
    else:
        _record_code(span, grpc.StatusCode.OK, None)
    finally:
        span.end()
    return response


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
