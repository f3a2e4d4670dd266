"""ServiceHost: what every service process shares around its servicers.

    async with ServiceHost(RISK_MONITOR, settings) as host:
        host.add_service(add_RiskMonitorServiceServicer_to_server, servicer, GRPC_SERVICES[RISK_MONITOR])
        await host.serve()

`serve()` binds, marks every gRPC service SERVING in grpc.health.v1, registers in discovery and
runs until SIGTERM or SIGINT; then it goes NOT_SERVING, deregisters, ends long-lived streams,
drains in-flight calls within the grace period and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import grpc
import redis.asyncio as aioredis
import redis.exceptions
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from ecosystem import logs
from ecosystem.api.common.v1 import stats_pb2, stats_pb2_grpc
from ecosystem.backoff import Backoff
from ecosystem.client_manager import InterServiceClientManager
from ecosystem.config_client import ConfigurationServiceClient
from ecosystem.control_plane import ControlPlaneLink, FaultInjector
from ecosystem.discovery import RegistryError, ServiceRegistration, ServiceResolver, Superseded
from ecosystem.limits import MAX_REQUEST_BYTES, request_problem
from ecosystem.performance import PerformanceMonitor, to_proto
from ecosystem.security import denial, peer_identity
from ecosystem.settings import Settings
from ecosystem.telemetry import Tracing, setup_tracing

SERVER_OPTIONS = (
    # With the default, a second server binds the same port and silently takes half the traffic.
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    # A larger request is RESOURCE_EXHAUSTED before it is parsed; smaller ones meet ecosystem.limits.
    ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
)
# Infrastructure methods are neither counted in the statistics nor subject to injected faults.
INFRASTRUCTURE_PREFIXES = ("/grpc.health.", "/grpc.reflection.", "/ecosystem.common.v1.StatsService/")
# Constant: a service that cannot register yet should notice Redis back within half a second.
REGISTRATION_RETRY = Backoff(initial_s=0.5, max_s=0.5)
# A stopping instance serves on after deregistering until no call has come for DRAIN_QUIET_S: its callers have
# heard of the `down` event and call other instances, so no call meets a closed port. At most half the grace.
DRAIN_QUIET_S = 0.3
DRAIN_POLL_S = 0.05


class _Middleware:
    """Around every RPC: its server span when tracing is on; around business RPCs also injected faults,
    per-operation statistics, and precise status codes.

    A handler that fails unexpectedly would reach the caller as UNKNOWN with a stack trace; it
    gets UNAVAILABLE when Redis is unreachable and INTERNAL naming the service otherwise.
    Handlers are wrapped once, when they are registered (`_WrappingRegistrar`), not by an aio ServerInterceptor,
    which costs a coroutine and a lookup on every call; the span is opened here for the same reason.
    """

    def __init__(
        self, service: str, performance: PerformanceMonitor, faults: FaultInjector, tracing: Tracing | None,
        *, authorize: bool,
    ) -> None:
        self._service = service
        self._performance = performance
        self._faults = faults
        self._tracing = tracing
        self._authorize = authorize
        self.calls_started = 0  # business calls, which a drain waits to see stop

    async def _admit(self, method: str, context: grpc.aio.ServicerContext) -> None:
        """Abort with UNAUTHENTICATED / PERMISSION_DENIED unless the caller's identity may call `method`."""
        identity = peer_identity(context)
        refused = denial(method, identity)
        if refused is not None:
            logs.log_event("call_refused", level="warning", method=method, identity=identity, code=refused[0].name)
            await context.abort(*refused)

    def wrapped(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """`handler` of `method` ("/pkg.Service/Method") with everything the middleware does around it."""
        if handler.request_deserializer is not None:
            handler = _replaced(handler, request_deserializer=_decoding(handler.request_deserializer))
        if method.startswith(INFRASTRUCTURE_PREFIXES):
            handler = _validated(handler)
            return handler if self._tracing is None else self._tracing.traced_handler(handler, method)
        if handler.unary_unary is not None:
            return _replaced(handler, unary_unary=self._unary(method, handler.unary_unary))
        if handler.unary_stream is not None:
            handler = _replaced(handler, unary_stream=self._stream(method, handler.unary_stream))
        elif handler.stream_unary is not None or handler.stream_stream is not None:
            # No business method streams requests today; one that does is refused until it is wrapped here.
            handler = _replaced(
                handler,
                stream_unary=handler.stream_unary and self._refused(method),
                stream_stream=handler.stream_stream and self._refused(method),
            )
        return handler if self._tracing is None else self._tracing.traced_handler(handler, method)

    def _refused(self, method: str) -> Callable[..., Any]:
        async def refuse(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{self._service} serves no request stream {method}")

        return refuse

    def _unary(self, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        # On every business call: one coroutine, and each step that usually has nothing to do is skipped without one.
        authorize, faults, performance = self._authorize, self._faults, self._performance
        span = _untraced if self._tracing is None else self._tracing.server_span

        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with span(method, context):
                started = time.perf_counter()
                ok = False
                self.calls_started += 1
                performance.begin(method)
                try:
                    if authorize:
                        await self._admit(method, context)
                    if faults.armed:
                        await faults.before_call(method, context)
                    if (problem := _request_problem(request)) is not None:
                        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
                    response = await behaviour(request, context)
                    ok = context.code() in _ANSWERED_OK
                    return response
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await self._abort_unexpected(method, context, exc)
                finally:
                    performance.end(method, time.perf_counter() - started, ok)

        return run

    def _stream(self, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behaviour):

            async def generate(request: Any, context: grpc.aio.ServicerContext) -> Any:
                self.calls_started += 1
                if self._authorize:
                    await self._admit(method, context)
                await self._faults.before_call(method, context)
                await _refuse_invalid(request, context)
                try:
                    async for item in behaviour(request, context):
                        yield item
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await self._abort_unexpected(method, context, exc)

            return generate

        async def write(request: Any, context: grpc.aio.ServicerContext) -> Any:
            self.calls_started += 1
            if self._authorize:
                await self._admit(method, context)
            await self._faults.before_call(method, context)
            await _refuse_invalid(request, context)
            try:
                return await behaviour(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await self._abort_unexpected(method, context, exc)

        return write

    async def _abort_unexpected(self, method: str, context: grpc.aio.ServicerContext, exc: Exception) -> None:
        if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{self._service} cannot reach its Redis: {exc}")
        logs.log_event("handler_failed", level="error", method=method, error=f"{type(exc).__name__}: {exc}")
        await context.abort(
            grpc.StatusCode.INTERNAL, f"{self._service} failed in {method}: {type(exc).__name__}: {exc}"
        )


class _WrappingRegistrar:
    """What generated `add_*Servicer_to_server` functions register with in place of the server: every handler
    reaches the server wrapped (`wrap(method, handler)`), whichever way gRPC looks it up."""

    def __init__(
        self, server: grpc.aio.Server, wrap: Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]
    ) -> None:
        self._server = server
        self._wrap = wrap

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers([_WrappedGenericHandler(handler, self._wrap) for handler in handlers])

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._server.add_registered_method_handlers(
            service, {name: self._wrap(f"/{service}/{name}", handler) for name, handler in handlers.items()}
        )


class _WrappedGenericHandler(grpc.GenericRpcHandler):
    def __init__(
        self, handler: grpc.GenericRpcHandler,
        wrap: Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler],
    ) -> None:
        self._handler = handler
        self._wrap = wrap
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}  # a method's handler, wrapped on its first call

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = self._handler.service(details)
            if handler is None:  # not a method of this service: the server asks the next one, or answers UNIMPLEMENTED
                return None
            wrapped = self._wrapped[method] = self._wrap(method, handler)
        return wrapped


class _Undecodable:
    """A request body that does not parse: the handler answers INVALID_ARGUMENT instead of gRPC's UNKNOWN
    with the parser's exception in its details."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


def _decoding(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    owner = getattr(deserialize, "__self__", None)  # the generated message class of `Type.FromString`
    descriptor = getattr(owner, "DESCRIPTOR", None)
    type_name = descriptor.full_name if descriptor is not None else "the request type"

    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # DecodeError, and UnicodeDecodeError from a string field that is not UTF-8
            return _Undecodable(type_name)

    return decode


# A handler that returned normally answered OK unless it set another code (context.set_code).
_ANSWERED_OK = (None, grpc.StatusCode.OK)
_NO_SPAN = contextlib.nullcontext()  # holds no state, so one serves every call


def _untraced(method: str, context: grpc.aio.ServicerContext) -> contextlib.AbstractContextManager[None]:
    """The server span of a service without tracing: none."""
    return _NO_SPAN


def _request_problem(request: Any) -> str | None:
    """Why `request` is refused: it did not decode, or a field is over its limit (ecosystem.limits); None if not."""
    if isinstance(request, _Undecodable):
        return f"the request body is not a valid {request.type_name}: corrupt wire data or a string that is not UTF-8"
    problem = request_problem(request)
    return None if problem is None else f"invalid {request.DESCRIPTOR.name}: {problem}"


async def _refuse_invalid(request: Any, context: grpc.aio.ServicerContext) -> None:
    problem = _request_problem(request)
    if problem is not None:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)


def _replaced(handler: grpc.RpcMethodHandler, **fields: Any) -> grpc.RpcMethodHandler:
    """`handler` with `fields` (its behaviours, its deserializer) replaced."""
    # grpc's handlers are namedtuples; its stubs declare only the abstract RpcMethodHandler.
    return handler._replace(**fields)  # type: ignore[attr-defined]


def _validated(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """`handler` (of an infrastructure method, which the middleware does not wrap otherwise) answering
    INVALID_ARGUMENT, before its behaviour uses it, for a request `_request_problem` refuses."""
    if handler.request_deserializer is None:
        return handler
    before = _checked_stream if handler.request_streaming else _checked_request
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            return _replaced(handler, **{kind: _around(behaviour, before)})
    return handler


async def _checked_request(request: Any, context: grpc.aio.ServicerContext) -> Any:
    await _refuse_invalid(request, context)
    return request


async def _checked_stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
    async def checked() -> Any:
        async for request in requests:
            await _refuse_invalid(request, context)
            yield request

    return checked()


def _around(behaviour: Callable[..., Any], before: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """`behaviour` given what `before` makes of its request (or request stream), keeping its kind: gRPC tells
    handlers that yield responses from handlers that write them by that kind."""
    if inspect.isasyncgenfunction(behaviour):

        async def generate(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async for item in behaviour(await before(request, context), context):
                yield item

        return generate

    async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await behaviour(await before(request, context), context)

    return run


class _StatsServicer(stats_pb2_grpc.StatsServiceServicer):
    def __init__(self, host: ServiceHost) -> None:
        self._host = host

    async def GetPerformanceStats(
        self, request: stats_pb2.GetPerformanceStatsRequest, context: grpc.aio.ServicerContext
    ) -> stats_pb2.PerformanceStats:
        performance = self._host.performance
        stats = stats_pb2.PerformanceStats(
            service=self._host.service_name,
            instance_id=self._host.instance_id,
            operations=[to_proto(s) for s in performance.all_stats(request.method_prefix)],
            health=performance.health(),
        )
        stats.collected_at.GetCurrentTime()
        if self._host.config is not None:
            stats.config_cache.CopyFrom(self._host.config.stats_proto())
        return stats


class ServiceHost:
    def __init__(self, service_name: str, settings: Settings) -> None:
        self.service_name = service_name
        self.settings = settings
        self.instance_id = settings.instance_id or uuid.uuid4().hex
        self.performance = PerformanceMonitor()
        self.faults = FaultInjector()
        self.config: ConfigurationServiceClient | None = None
        self._grpc_services: list[str] = []
        self._shutdown_callbacks: list[Callable[[], Awaitable[None]]] = []
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> ServiceHost:
        settings = self.settings
        logs.configure(settings.log_level)
        logs.bind(service=self.service_name, instance_id=self.instance_id)
        self.redis = aioredis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_connect_timeout=1.0,
            socket_timeout=5.0,
            # One quick retry on a fresh connection covers a Redis restart; more would stall callers
            # for seconds while Redis is down, when failing fast lets them serve what they cached.
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 1),
        )
        self.tracing = setup_tracing(
            self.service_name, self.instance_id, settings.otlp_endpoint, settings.trace_sample_ratio
        )
        self.resolver = ServiceResolver(self.redis, refresh_interval_s=settings.registry_ttl_ms / 3000)
        await self.resolver.start()
        self.clients = InterServiceClientManager(
            self.resolver,
            credentials=settings.tls.channel_credentials() if settings.tls else None,
            breaker=settings.breaker,
            retry_attempts=settings.retry_attempts,
            default_timeout_s=settings.call_timeout_s,
            tracing=self.tracing,
        )
        self.control_plane = ControlPlaneLink(self.service_name, self.instance_id, self.clients, self.faults)
        self._middleware = _Middleware(
            self.service_name, self.performance, self.faults, self.tracing, authorize=settings.secure
        )
        self.server = grpc.aio.server(options=SERVER_OPTIONS)
        # Stands for the server in the generated registration functions, which call only its two add methods.
        self._registrar = cast(grpc.aio.Server, _WrappingRegistrar(self.server, self._middleware.wrapped))
        self.health = health_aio.HealthServicer()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.config is not None:
            await self.config.close()
        await self.control_plane.close()
        await self.clients.close()
        await self.resolver.close()
        if self.tracing:
            await self.tracing.shutdown()
        await self.redis.aclose()

    async def configuration_client(self) -> ConfigurationServiceClient:
        """This service's configuration client, following changes from now on; StatsService shows its cache."""
        self.config = ConfigurationServiceClient(
            self.clients, environment=self.settings.environment, cache_ttl_s=self.settings.config_cache_ttl_s
        )
        await self.config.start()
        return self.config

    def add_service(self, register: Callable[[Any, grpc.aio.Server], None], servicer: Any, grpc_service: str) -> None:
        register(servicer, self._registrar)
        self._grpc_services.append(grpc_service)

    def on_shutdown(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` before draining: end the long-lived streams this service serves."""
        self._shutdown_callbacks.append(callback)

    def stop(self) -> None:
        self._stopping.set()

    async def serve(self) -> None:
        settings = self.settings
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._registrar)
        stats_pb2_grpc.add_StatsServiceServicer_to_server(_StatsServicer(self), self._registrar)
        if settings.reflection:
            served = [
                *self._grpc_services,
                stats_pb2.DESCRIPTOR.services_by_name["StatsService"].full_name,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ]
            reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
                reflection.aio.ReflectionServicer(served), self._registrar
            )
        address = f"{settings.listen_host}:{settings.port}"
        if settings.tls is not None:
            port = self.server.add_secure_port(address, settings.tls.server_credentials())
        else:
            port = self.server.add_insecure_port(address)
        if port == 0:
            raise OSError(f"{self.service_name} could not bind {address}")
        await self.server.start()
        # Everything made so far (modules, descriptors, clients) lives as long as the process: keep it out of the
        # collector's scans, which every full collection under load would otherwise repeat (measured: about 8 %
        # less CPU per order in the engine and risk-monitor).
        gc.freeze()
        logs.log_event("listening", address=f"{settings.listen_host}:{port}", security=settings.security,
                       reflection=settings.reflection)
        for name in self._grpc_services:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        registration = ServiceRegistration(
            self.redis,
            service=self.service_name,
            host=settings.advertise_host,
            port=port,
            version=settings.version,
            ttl_ms=settings.registry_ttl_ms,
            instance_id=self.instance_id,
            meta={"environment": settings.environment, "security": settings.security},
            on_superseded=self._superseded,
        )
        if await self._register(registration):
            await self.control_plane.start()
            await self._stopping.wait()
        await self._shutdown(registration)

    def _superseded(self, owner_incarnation: str) -> None:
        """Another process took this instance's registry entry: stop serving rather than serve unregistered."""
        logs.log_event("superseded", level="warning", owner_incarnation=owner_incarnation,
                       action="NOT_SERVING, then stopping: an instance must not serve while another owns its entry")
        self.stop()

    async def _register(self, registration: ServiceRegistration) -> bool:
        """Register, retrying while Redis is unreachable; False when asked to stop first."""
        failures = 0
        while not self._stopping.is_set():
            try:
                await registration.start()
                return True
            except Superseded as exc:
                self._superseded(exc.owner_incarnation)
                return False
            except RegistryError as exc:
                failures += 1
                retry_in_s = REGISTRATION_RETRY.delay(failures)
                logs.log_event("registration_failed", level="warning", error=str(exc), retry_in_s=retry_in_s)
            try:
                await asyncio.wait_for(self._stopping.wait(), retry_in_s)
            except TimeoutError:
                pass
        return False

    async def _shutdown(self, registration: ServiceRegistration) -> None:
        grace = self.settings.shutdown_grace_s
        logs.log_event("stopping", grace_s=grace)
        await self.health.enter_graceful_shutdown()
        try:
            await registration.set_status("DRAINING")
            await registration.stop()
        except (RegistryError, OSError) as exc:
            logs.log_event("deregistration_failed", level="warning", error=str(exc))
        waited_s = await self._await_callers_gone(grace / 2)
        for callback in self._shutdown_callbacks:
            await callback()
        # In-flight calls finish within what is left of the grace; new ones are refused (UNAVAILABLE), which
        # callers retry on another instance.
        await self.server.stop(grace - waited_s)
        logs.log_event("stopped")

    async def _await_callers_gone(self, limit_s: float) -> float:
        """Serve on until no call has arrived for DRAIN_QUIET_S, or for `limit_s`; the seconds waited."""
        loop = asyncio.get_running_loop()
        started = quiet_since = loop.time()
        first = seen = self._middleware.calls_started
        while (now := loop.time()) - started < limit_s and now - quiet_since < DRAIN_QUIET_S:
            await asyncio.sleep(DRAIN_POLL_S)
            if self._middleware.calls_started != seen:
                seen, quiet_since = self._middleware.calls_started, loop.time()
        waited_s = loop.time() - started
        logs.log_event("callers_gone" if now - quiet_since >= DRAIN_QUIET_S else "drain_wait_ended",
                       waited_s=round(waited_s, 3), calls_while_draining=seen - first)
        return waited_s
