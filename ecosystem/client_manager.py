"""Calls between services: one channel per instance, breaker per service, retries, deadlines.

Callers name the service and operation and hand over a function of the generated stub and the
remaining timeout; the manager picks an instance round robin from the resolver's cache, so no call
costs a registry lookup.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ecosystem.api.config.v1 import config_pb2_grpc
from ecosystem.api.coordinator.v1 import coordinator_pb2_grpc
from ecosystem.api.risk.v1 import risk_pb2_grpc
from ecosystem.api.trading.v1 import trading_pb2_grpc
from ecosystem.backoff import Backoff
from ecosystem.breaker import BreakerSnapshot, CircuitBreaker, CircuitOpenError
from ecosystem.discovery import RegistryError, ServiceInstance, ServiceResolver
from ecosystem.errors import EcosystemError
from ecosystem.logs import log_decision, log_event
from ecosystem.names import CONFIGURATION_SERVICE, GRPC_SERVICES, RISK_MONITOR, TEST_COORDINATOR, TRADING_SYSTEM_ENGINE
from ecosystem.performance import LatencyWindow
from ecosystem.security import expect_identity
from ecosystem.settings import BreakerSettings
from ecosystem.telemetry import TRACING_CHANNEL_OPTIONS, Tracing

T = TypeVar("T")
V = TypeVar("V")

# An instance that failed the identity check, or serves another service, is skipped this long (it may be replaced
# meanwhile); one that refused the connection is called only when no other is left, for a short while. At most
# MAX_REJECTED of each are remembered per service.
REJECTED_FOR_S = 30.0
UNREACHABLE_FOR_S = 2.0
MAX_REJECTED = 100
TRIAL_EVERY = 10
# Codes a call ends with without the instance having answered it.
_NO_ANSWER = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED})
# What gRPC itself answers for a method the server does not have: a registry entry pointing at another service, or
# an instance of the right service without that method (an older version). Its health check tells them apart.
METHOD_NOT_FOUND = "Method not found!"
HEALTH_PROBE_S = 0.5
# What gRPC's own connection errors say (never an application's abort, which may quote another error) when the
# peer's certificate is not the expected identity's or not the stack CA's.
TRANSPORT_FAILURE = "failed to connect to all addresses"
HANDSHAKE_FAILURES = (
    "Hostname Verification Check failed", "Peer name", "CERTIFICATE_VERIFY_FAILED", "Ssl handshake failed",
    "Handshake failed", "Tls handshake failed",
)

SERVICE_STUBS: dict[str, type] = {
    CONFIGURATION_SERVICE: config_pb2_grpc.ConfigurationServiceStub,
    RISK_MONITOR: risk_pb2_grpc.RiskMonitorServiceStub,
    TEST_COORDINATOR: coordinator_pb2_grpc.TestCoordinatorServiceStub,
    TRADING_SYSTEM_ENGINE: trading_pb2_grpc.TradingEngineServiceStub,
}

CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    # Reconnect quickly to an instance that came back on the same address.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
)
# UNAVAILABLE retries: short, since the next attempt usually goes to another instance.
CALL_RETRY = Backoff(initial_s=0.02, max_s=0.1)


class ServiceCommunicationError(EcosystemError):
    """A call to another service failed; names the service, operation and endpoint."""

    def __init__(self, service: str, operation: str, endpoint: str | None, code: grpc.StatusCode, details: str) -> None:
        self.service = service
        self.operation = operation
        self.endpoint = endpoint
        self.code = code
        self.details = details
        where = f"at {endpoint}" if endpoint else "(no endpoint)"
        super().__init__(f"{service}.{operation} {where} failed with {code.name}: {details}")


class _NoCall(EcosystemError):
    """No call could be made: there is no instance to call, or no time left."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


@dataclass(frozen=True)
class DependencyStatus:
    service: str
    endpoints: list[str]
    source: str
    breaker: BreakerSnapshot
    requests: int
    failures: int
    retries: int
    last_latency_ms: float
    p50_latency_ms: float
    p95_latency_ms: float
    p99_latency_ms: float
    last_error: str
    rejected: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True)
class Rejection:
    """A registered instance that failed the TLS identity check: not called again until `until` (monotonic)."""

    instance_id: str
    endpoint: str
    reason: str
    until: float


@dataclass
class _Connection:
    instance: ServiceInstance
    channel: grpc.aio.Channel
    stub: Any


@dataclass
class _Target:
    breaker: CircuitBreaker
    connections: dict[str, _Connection] = field(default_factory=dict)
    turn: itertools.count = field(default_factory=itertools.count)
    latencies: LatencyWindow = field(default_factory=LatencyWindow)
    requests: int = 0
    failures: int = 0
    retries: int = 0
    last_error: str = ""
    rejected: dict[str, Rejection] = field(default_factory=dict)
    unreachable: dict[str, float] = field(default_factory=dict)  # instance id -> monotonic time it may be tried
    # Instances that answered a call, and those called at all: while some have answered, a first attempt goes to a
    # new instance once, and to one that has not answered yet every TRIAL_EVERY-th call; other attempts, to those
    # that answered. So registry entries that never answer (bogus, dead) cost an attempt now and then, never a call.
    answered: set[str] = field(default_factory=set)
    tried: set[str] = field(default_factory=set)


class InterServiceClientManager:
    def __init__(
        self,
        resolver: ServiceResolver,
        *,
        breaker: BreakerSettings,
        retry_attempts: int = 3,
        default_timeout_s: float = 5.0,
        tracing: Tracing | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        """With `credentials` every channel is mTLS and the server must present the resolved service's identity:
        an instance that does not is skipped (a registry entry alone cannot redirect calls)."""
        self._credentials = credentials
        self._resolver = resolver
        self._breaker_settings = breaker
        self._retry_attempts = max(1, retry_attempts)
        self._default_timeout_s = default_timeout_s
        self._tracing = tracing
        # A manager that traces says so to the services it calls (ecosystem.telemetry.TRACING_USER_AGENT).
        self._channel_options = CHANNEL_OPTIONS if tracing is None else CHANNEL_OPTIONS + TRACING_CHANNEL_OPTIONS
        self._targets: dict[str, _Target] = {}
        self._closing: set[asyncio.Task[None]] = set()
        resolver.subscribe(self._on_instances_changed)

    async def call(
        self,
        service: str,
        operation: str,
        invoke: Callable[[Any, float], Awaitable[T]],
        *,
        timeout: float | None = None,
    ) -> T:
        """Run `invoke(stub, remaining_timeout)` on an instance of `service`.

        `timeout` is the caller's remaining deadline (pass `context.time_remaining()`); without one
        the default applies. Retries UNAVAILABLE on the next instance while time remains, at once when the
        instance itself was at fault (refused the connection, proved another identity, serves another service).
        """
        target = self._target(service)
        budget = self._default_timeout_s if timeout is None else timeout
        started = time.monotonic()
        deadline = started + budget
        try:
            target.breaker.acquire()
        except CircuitOpenError as exc:
            target.last_error = str(exc)
            raise ServiceCommunicationError(service, operation, None, grpc.StatusCode.UNAVAILABLE, str(exc)) from None
        target.requests += 1
        for attempt in range(1, self._retry_attempts + 1):
            endpoint, set_aside = None, False
            try:
                instances = self._resolver.fresh_instances(service) or await self._instances(service)
                connection = self._pick(service, target, instances, first_attempt=attempt == 1)
                endpoint = connection.instance.endpoint
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _NoCall(grpc.StatusCode.DEADLINE_EXCEEDED, f"deadline of {budget:.3f}s spent before the call")
                result = await invoke(connection.stub, remaining)
            except _NoCall as exc:
                code, details = exc.code, exc.details
            except grpc.aio.AioRpcError as exc:
                code, details = exc.code(), exc.details() or ""
                set_aside = await self._set_aside(service, target, connection, code, details, deadline)
                if not set_aside and code not in _NO_ANSWER:  # the instance itself answered, if not with a result
                    target.answered.add(connection.instance.instance_id)
            except asyncio.CancelledError:
                if (task := asyncio.current_task()) is not None and task.cancelling():
                    target.breaker.record_cancelled()
                    raise
                # grpc cancels a call whose channel was closed under it (its instance left the registry past
                # the channel's grace): the instance is gone, which another instance may make up for.
                code, details = grpc.StatusCode.UNAVAILABLE, f"the channel to {endpoint} was closed during the call"
            else:
                target.answered.add(connection.instance.instance_id)
                target.breaker.record_success()
                target.latencies.add(time.monotonic() - started)
                return result
            retryable = (code == grpc.StatusCode.UNAVAILABLE or set_aside) and attempt < self._retry_attempts
            if retryable and deadline - time.monotonic() > CALL_RETRY.initial_s:
                log_decision(
                    "call_retried", target=service, operation=operation, attempt=attempt, endpoint=endpoint,
                    code=code.name, details=details,
                )
                target.retries += 1
                if not (set_aside and await self._another_instance(service, target)):  # the same one again: wait
                    await asyncio.sleep(CALL_RETRY.delay(attempt))
                continue
            target.breaker.record_failure(code)
            target.latencies.add(time.monotonic() - started)
            target.failures += 1
            error = ServiceCommunicationError(service, operation, endpoint, code, details)
            target.last_error = str(error)
            raise error
        raise AssertionError("unreachable: the last attempt either returns or raises")

    async def open_stream(self, service: str, invoke: Callable[[Any], T]) -> tuple[ServiceInstance, T]:
        """Open a long-lived stream (`invoke(stub)`, returning the call) on one instance; no breaker, no retry."""
        try:
            connection = self._pick(service, self._target(service), await self._instances(service))
        except _NoCall as exc:
            raise ServiceCommunicationError(service, "open stream", None, exc.code, exc.details) from None
        return connection.instance, invoke(connection.stub)

    async def watch(self, service: str) -> list[ServiceInstance]:
        """Start following `service` in the registry now, before the first call needs it."""
        self._target(service)
        return await self._resolver.instances(service)

    async def status(self, service: str) -> DependencyStatus:
        target = self._target(service)
        instances = await self._resolver.instances(service)
        return DependencyStatus(
            service=service,
            endpoints=sorted(i.endpoint for i in instances),
            source=self._resolver.source(service),
            breaker=target.breaker.snapshot(),
            requests=target.requests,
            failures=target.failures,
            retries=target.retries,
            last_latency_ms=target.latencies.last_ms,
            p50_latency_ms=target.latencies.percentile(50),
            p95_latency_ms=target.latencies.percentile(95),
            p99_latency_ms=target.latencies.percentile(99),
            last_error=target.last_error,
            rejected=list(self._live_rejections(target).values()),
        )

    def services(self) -> list[str]:
        return sorted(self._targets)

    async def close(self) -> None:
        channels = [c.channel for t in self._targets.values() for c in t.connections.values()]
        for target in self._targets.values():
            target.connections.clear()
        await asyncio.gather(*(ch.close() for ch in channels), *self._closing, return_exceptions=True)

    def _target(self, service: str) -> _Target:
        target = self._targets.get(service)
        if target is None:
            if service not in SERVICE_STUBS:
                raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICE_STUBS)}")
            target = self._targets[service] = _Target(CircuitBreaker(service, self._breaker_settings))
        return target

    async def _instances(self, service: str) -> Sequence[ServiceInstance]:
        try:
            return await self._resolver.instances(service)
        except RegistryError as exc:
            raise _NoCall(grpc.StatusCode.UNAVAILABLE, f"the registry is unreachable: {exc}") from None

    def _pick(
        self, service: str, target: _Target, instances: Sequence[ServiceInstance], *, first_attempt: bool = True
    ) -> _Connection:
        if not instances:
            raise _NoCall(grpc.StatusCode.UNAVAILABLE, f"no instance of {service} is registered")
        rejected = self._live_rejections(target)
        trusted = [i for i in instances if i.instance_id not in rejected] if rejected else instances
        if not trusted:
            reasons = "; ".join(f"{r.endpoint}: {r.reason}" for r in rejected.values())
            raise _NoCall(grpc.StatusCode.UNAVAILABLE,
                          f"no registered instance of {service} can be called as {service!r} ({reasons})")
        if target.unreachable:
            now = time.monotonic()
            target.unreachable = {i: until for i, until in target.unreachable.items() if until > now}
            trusted = [i for i in trusted if i.instance_id not in target.unreachable] or trusted
        instance = _choose(trusted, target, first_attempt)
        target.tried.add(instance.instance_id)
        connection = target.connections.get(instance.instance_id)
        if connection is None or connection.instance.endpoint != instance.endpoint:
            if self._credentials is None:
                channel = grpc.aio.insecure_channel(instance.endpoint, options=self._channel_options)
            else:
                channel = grpc.aio.secure_channel(
                    instance.endpoint, self._credentials, options=self._channel_options + expect_identity(service)
                )
            # With tracing on, the stub's calls open their CLIENT spans and carry `traceparent` themselves.
            stub_channel = channel if self._tracing is None else self._tracing.traced_channel(channel)
            connection = _Connection(instance, channel, SERVICE_STUBS[service](stub_channel))
            stale = target.connections.get(instance.instance_id)
            target.connections[instance.instance_id] = connection
            if stale is not None:
                self._close_later(stale.channel)
        return connection

    async def _set_aside(
        self, service: str, target: _Target, connection: _Connection, code: grpc.StatusCode, details: str,
        deadline: float,
    ) -> bool:
        """Whether the call failed for the instance rather than the request, which then is skipped for a while."""
        instance = connection.instance
        if code == grpc.StatusCode.UNIMPLEMENTED and details == METHOD_NOT_FOUND:
            if not await _serves_nothing_of(service, connection.channel, deadline):
                return False
            self._reject(service, target, instance, "instance_serves_another_service",
                         f"the server at {instance.endpoint} does not serve {GRPC_SERVICES[service]}")
        elif self._credentials is not None and _failed_identity(code, details):
            self._reject(service, target, instance, "instance_identity_rejected", details)
        elif code == grpc.StatusCode.UNAVAILABLE and details.startswith(TRANSPORT_FAILURE):
            _bounded_put(target.unreachable, instance.instance_id, time.monotonic() + UNREACHABLE_FOR_S)
        else:
            return False
        return True

    async def _another_instance(self, service: str, target: _Target) -> bool:
        """Whether an instance not set aside is left to call."""
        try:
            instances = await self._resolver.instances(service)
        except RegistryError:
            return False
        now, rejected = time.monotonic(), self._live_rejections(target)
        return any(i.instance_id not in rejected and target.unreachable.get(i.instance_id, 0.0) <= now
                   for i in instances)

    def _reject(self, service: str, target: _Target, instance: ServiceInstance, event: str, details: str) -> None:
        _bounded_put(target.rejected, instance.instance_id, Rejection(
            instance.instance_id, instance.endpoint, details[:300], time.monotonic() + REJECTED_FOR_S
        ))
        log_event(event, level="warning", target=service, instance_id=instance.instance_id,
                  endpoint=instance.endpoint, expected_identity=service, details=details[:300])
        stale = target.connections.pop(instance.instance_id, None)
        if stale is not None:
            self._close_later(stale.channel)

    @staticmethod
    def _live_rejections(target: _Target) -> dict[str, Rejection]:
        if not target.rejected:  # the usual case, on every call
            return target.rejected
        now = time.monotonic()
        for instance_id in [i for i, r in target.rejected.items() if r.until <= now]:
            del target.rejected[instance_id]
        return target.rejected

    def _on_instances_changed(self, service: str, instances: list[ServiceInstance]) -> None:
        target = self._targets.get(service)
        if target is None:
            return
        alive = {i.instance_id for i in instances}
        for instance_id in [i for i in target.connections if i not in alive]:
            self._close_later(target.connections.pop(instance_id).channel)
        target.answered &= alive
        target.tried &= alive

    def _close_later(self, channel: grpc.aio.Channel) -> None:
        """Close a channel whose instance left, once its calls in flight are done (a draining instance
        finishes them) or their default deadline has passed."""
        task = asyncio.get_running_loop().create_task(channel.close(grace=self._default_timeout_s))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


def _bounded_put(kept: dict[str, V], key: str, value: V) -> None:
    """`kept[key] = value`, forgetting the oldest entry first when a new key would take it past MAX_REJECTED."""
    if key not in kept and len(kept) >= MAX_REJECTED:
        kept.pop(next(iter(kept)))
    kept[key] = value


def _choose(candidates: Sequence[ServiceInstance], target: _Target, first_attempt: bool) -> ServiceInstance:
    """Round robin over the instances that answered before, with new and silent ones tried on first attempts."""
    turn = next(target.turn)
    answered = [i for i in candidates if i.instance_id in target.answered] if target.answered else []
    if not answered:
        return candidates[turn % len(candidates)]
    if first_attempt and len(answered) < len(candidates):
        untried = [i for i in candidates if i.instance_id not in target.tried]
        if untried:
            return untried[0]
        if turn % TRIAL_EVERY == TRIAL_EVERY - 1:
            silent = [i for i in candidates if i.instance_id not in target.answered]
            return silent[turn // TRIAL_EVERY % len(silent)]
    return answered[turn % len(answered)]


async def _serves_nothing_of(service: str, channel: grpc.aio.Channel, deadline: float) -> bool:
    """Whether the server says it has no `service` at all: its health check answers NOT_FOUND for it, or it serves
    no health checks either."""
    timeout = min(HEALTH_PROBE_S, deadline - time.monotonic())
    if timeout <= 0:
        return False
    request = health_pb2.HealthCheckRequest(service=GRPC_SERVICES[service])
    try:
        # The health stubs declare no methods, hence the ignore.
        await health_pb2_grpc.HealthStub(channel).Check(request, timeout=timeout)  # type: ignore[attr-defined]
    except grpc.aio.AioRpcError as exc:
        return exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNIMPLEMENTED)
    return False


def _failed_identity(code: grpc.StatusCode, details: str) -> bool:
    """Whether a call failed in the TLS handshake: the server's certificate is not the expected identity's, or
    not from the stack's CA (gRPC reports both as UNAVAILABLE with the handshake's error)."""
    return (
        code == grpc.StatusCode.UNAVAILABLE and details.startswith(TRANSPORT_FAILURE)
        and any(mark in details for mark in HANDSHAKE_FAILURES)
    )
