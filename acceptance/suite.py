"""Suite: the one object the steps talk to. It owns the stack under test, the declared values the
assertions compare with, the state of the running scenario, and one driver per domain:

    suite.orders   orders through the trading engine, its view of its dependencies, test scenarios
    suite.registry the Redis registry as the services keep it
    suite.config   configuration-service and the seed
    suite.chaos    faults injected through the test coordinator
    suite.faults   faults the stack target applies: stop, kill, scale, restart, Redis, network
    suite.orchestrator  an orchestrator replacing a killed instance by itself, watched
    suite.calls    any RPC by name, health, reflection, per-method request counts
    suite.traces   the spans the services exported to the suite's OTLP receiver
    suite.security attacks a secure stack must withstand

Every scenario starts on a healthy stack and leaves one: a step that breaks something registers a
`Restore` that acts at once (restart, end, set back). After the scenario the restores run, newest
first, and the stack must be healthy again within a declared bound (`acceptance/stack_health.py`);
otherwise the target rebuilds it (fresh processes or containers, an empty registry) and the sign-off
says so. If even a fresh stack is unhealthy the release is broken there: the remaining scenarios fail
at once, naming why, instead of waiting out their bounds one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis

from acceptance import evidence
from acceptance.declared import REACTION_MARGIN_S, Declared
from acceptance.drivers.calls import Calls
from acceptance.drivers.chaos import Chaos
from acceptance.drivers.configuration import Configuration
from acceptance.drivers.faults import StackFaults
from acceptance.drivers.orchestrator import Orchestrator
from acceptance.drivers.orders import Orders
from acceptance.drivers.registry import Registry
from acceptance.drivers.security import Security
from acceptance.drivers.traces import Traces
from acceptance.manifest import Manifest
from acceptance.otlp_receiver import OtlpReceiver
from acceptance.rpc import RpcClient, RpcResult
from acceptance.scenario import Restore, ScenarioState, WaitRecord
from acceptance.stack_health import stack_problems
from acceptance.targets.base import StackTarget, TargetError
from acceptance.waits import Polled, WaitTimeout, holds_for, poll
from ecosystem.discovery import RegistryError, registry_snapshot
from ecosystem.names import STATS_SERVICE

T = TypeVar("T")

# A run that needs more rebuilds than this has a stack that does not stay healthy: stop rebuilding.
MAX_REBUILDS = 3
# How long after the last span of a failed scenario the services' batch exporters may still be sending.
TRACE_SETTLE_S = 1.5
TRACE_POLL_S = 0.3


@dataclass
class ScenarioEnd:
    """What the suite did after a scenario: the restores that ran, and a rebuild if one was needed."""

    restored: list[str] = field(default_factory=list)
    rebuilt: str = ""


class Suite:
    def __init__(self, stack: StackTarget, manifest: Manifest, otlp: OtlpReceiver | None = None) -> None:
        self.stack = stack
        self.manifest = manifest
        self.otlp = otlp
        self.declared = Declared.of(stack.timings)
        self.scenario = ScenarioState()
        self.rpc = RpcClient(
            observer=self._observe, traceparent=lambda: self.scenario.traceparent(), transport=stack.transport
        )
        # The suite's own checks between scenarios: neither recorded nor traced as the scenario's.
        self._probe_rpc = RpcClient(transport=stack.transport)
        self._redis: redis.Redis | None = None
        self._shape = dict.fromkeys(manifest.service_names, 1)
        self.rebuilds: list[str] = []
        self.broken = ""  # why the stack cannot be made healthy any more, once that is so

        self.orders = Orders(self)
        self.registry = Registry(self)
        self.config = Configuration(self)
        self.chaos = Chaos(self)
        self.faults = StackFaults(self)
        self.orchestrator = Orchestrator(self)
        self.calls = Calls(self)
        self.traces = Traces(self)
        self.security = Security(self)

    # --- what drivers share ----------------------------------------------------------------

    @property
    def redis(self) -> redis.Redis:
        """A client of the stack's Redis (a rebuilt local stack has a new one)."""
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.stack.redis_url, decode_responses=True, socket_timeout=2)
        return self._redis

    def endpoint(self, service: str) -> str:
        """The first SERVING instance of a declared service; AssertionError saying why there is none."""
        self.manifest.service(service)
        try:
            return self.stack.endpoint(service)
        except TargetError as exc:
            raise AssertionError(exc.awaited) from None

    def call(self, service: str, method: str, body: Any = None, **options: Any) -> RpcResult:
        """Call `method` ("Method" of the service's own API, or "pkg.Service/Method") on its first instance."""
        if "/" not in method:
            method = f"{self.manifest.service(service).grpc_services[0]}/{method}"
        return self.rpc.call(self.endpoint(service), method, body, server=service, **options)

    def performance_stats(self, service: str) -> dict[str, dict[str, Any]]:
        """What each instance of `service` says of itself in StatsService.GetPerformanceStats, by instance id."""
        return {
            handle.instance_id: self.ok(
                self.rpc.call(handle.endpoint, f"{STATS_SERVICE}/GetPerformanceStats", server=service)
            )
            for handle in self.stack.instances(service)
        }

    @staticmethod
    def ok(result: RpcResult) -> dict[str, Any]:
        """The response body of a call that must have succeeded; AssertionError naming the call otherwise."""
        if not result.ok:
            raise AssertionError(f"expected {result.describe()} to succeed")
        return result.body

    def wait(
        self, probe: Callable[[], T], condition: Callable[[T], bool] = bool, *, timeout: float, what: str,
        interval: float = 0.05,
    ) -> T:
        """Poll until `condition(probe())`; the report gets one summary of the wait, not each poll's calls."""
        return self._recorded(lambda: poll(probe, condition, timeout=timeout, what=what, interval=interval), what)

    def holds(
        self, probe: Callable[[], T], condition: Callable[[T], bool], *, duration: float, what: str
    ) -> T:
        """Check that `condition(probe())` holds for `duration`; recorded like a wait."""
        return self._recorded(lambda: holds_for(probe, condition, duration=duration, what=what), what)

    def on_restore(self, description: str, action: Callable[[], None]) -> None:
        """Register what undoes a step's damage; restores run newest first after the scenario."""
        self.scenario.restores.append(Restore(description, action))

    # --- the scenario lifecycle (environment.py) -------------------------------------------

    def begin(self, name: str) -> None:
        """A scenario starts: fresh state; AssertionError if the stack is known to be broken."""
        self.scenario = ScenarioState(name=name)
        if self.broken:
            raise AssertionError(f"not run: {self.broken}")

    def end(self, *, failed: bool) -> ScenarioEnd:
        """The scenario ended: evidence of a failure first (the broken state is the evidence), then restores,
        then a healthy stack again, rebuilt if need be."""
        state = self.scenario
        if failed:
            self._attach_failure_evidence(state)
        outcome = ScenarioEnd()
        problems = []
        for restore in reversed(state.restores):
            try:
                restore.action()
            except Exception as exc:
                # The rebuild below replaces whatever the remaining restores would have undone.
                problems.append(f"restore '{restore.description}' failed: {type(exc).__name__}: {exc}")
                break
            outcome.restored.append(restore.description)
        if state.in_flight is not None:
            state.in_flight.cancel()
        if not self.broken:
            problems = problems or self._settled_problems()
            if problems:
                outcome.rebuilt = "; ".join(problems)
                self._rebuild(state.name, outcome.rebuilt)
        return outcome

    def close(self) -> None:
        self.rpc.close()
        self._probe_rpc.close()
        if self._redis is not None:
            self._redis.close()

    def verify_healthy(self) -> None:
        """The stack just started: AssertionError naming every problem unless it is healthy within the bound.

        How many instances of each service it runs now is the shape every later scenario starts with.
        """
        self._shape = {service: len(self.stack.instances(service)) for service in self.manifest.service_names}
        problems = self._settled_problems()
        if problems:
            raise AssertionError("the stack is not healthy after it started: " + "; ".join(problems))

    # --- internals --------------------------------------------------------------------------

    def _observe(self, result: RpcResult) -> None:
        self.scenario.last = result
        self.scenario.calls.record_call(result)

    def _recorded(self, run: Callable[[], Polled[T]], what: str) -> T:
        calls = self.scenario.calls
        calls.begin_wait()
        try:
            polled = run()
        except WaitTimeout as exc:
            calls.end_wait(WaitRecord(what, exc.polls, exc.elapsed_s, "timed out", exc.last, 0))
            raise
        except AssertionError as exc:
            calls.end_wait(WaitRecord(what, 0, 0.0, "failed", str(exc), 0))
            raise
        calls.end_wait(WaitRecord(what, polled.polls, polled.elapsed_s, "met", _short(polled.value), 0))
        return polled.value

    def _settled_problems(self) -> list[str]:
        """Poll the stack's health for up to one registry TTL (plus a margin): what is still wrong then."""
        bound = self.declared.registry_ttl_s + REACTION_MARGIN_S
        last: list[str] = []

        def problems() -> list[str]:
            last[:] = stack_problems(self.stack, self.manifest, self._probe_rpc, self.redis, self.declared, self._shape)
            return last

        try:
            poll(problems, lambda found: not found, timeout=bound, what="the stack is healthy", interval=0.1)
        except WaitTimeout as exc:
            return [f"still unhealthy after {bound:g}s: {'; '.join(last) or exc.last}"]
        return []

    def _rebuild(self, after: str, why: str) -> None:
        note = f'stack rebuilt after scenario "{after}": {why}'
        if len(self.rebuilds) >= MAX_REBUILDS:
            self.broken = (
                f'the stack needed more than {MAX_REBUILDS} rebuilds; the last need, after scenario "{after}": {why}'
            )
            return
        self.rebuilds.append(note)
        print(f"\n{note}", flush=True)
        self._reset_connections()
        try:
            self.stack.rebuild()
            problems = self._settled_problems()
        except Exception as exc:
            problems = [f"{type(exc).__name__}: {exc}"]
        if problems:
            self.broken = f'the stack rebuilt after scenario "{after}" is not healthy either: ' + "; ".join(problems)

    def _reset_connections(self) -> None:
        self.rpc.close()
        self._probe_rpc.close()
        if self._redis is not None:
            self._redis.close()
            self._redis = None

    def _attach_failure_evidence(self, state: ScenarioState) -> None:
        evidence.attach_logs(self.stack.logs(lines=evidence.MAX_LOG_LINES, since=state.started_at))
        try:
            evidence.attach_registry(registry_snapshot(self.redis))
        except RegistryError as exc:
            evidence.attach_registry({"error": str(exc)})
        if self.otlp is not None:
            for trace_id in filter(None, (state.trace_id, state.traced_id)):
                evidence.attach_trace(trace_id, self._settled_trace(trace_id))

    def _settled_trace(self, trace_id: str) -> list:
        """The trace's spans once no new one arrived for one poll (exporters send in batches), within a bound."""
        assert self.otlp is not None
        counts: list[int] = []
        try:
            poll(
                lambda: counts.append(len(self.otlp.trace(trace_id))) or counts,
                lambda seen: len(seen) >= 2 and seen[-1] == seen[-2] > 0,
                timeout=TRACE_SETTLE_S,
                what=f"the spans of trace {trace_id} stop arriving",
                interval=TRACE_POLL_S,
            )
        except WaitTimeout:
            pass  # whatever arrived is the evidence there is
        return self.otlp.trace(trace_id)


def _short(value: object) -> str:
    own = getattr(value, "describe", None)
    text = own() if callable(own) else repr(value)
    return text if len(text) <= 300 else text[:300] + "..."
