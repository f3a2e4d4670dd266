"""`make soak`: a bounded soak of the reference stack on one local target, under chaos, rolling restarts and a
Redis restart; exits non-zero when an order is lost, a service grows past its bound or something leaks.

    python -m benchmarks.soak [--duration 120] [--security secure|insecure] [--log-level info|debug]

Three threads share the run. The main thread owns the LocalTarget and plays the timeline (chaos, rolling
restarts, Redis restart): a LocalTarget must start processes from the thread that outlives them (PDEATHSIG).
A load thread runs the clients on their own asyncio loop, reaching the engines through discovery like a
service does. A sampler thread reads each service process's RSS and open fds from /proc every second.
See benchmarks/README.md ("Soak") for what is measured and why the bounds are what they are.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import re
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlparse

import grpc
import redis
import redis.asyncio as aioredis

from acceptance.processes import proc_stat
from acceptance.targets.base import run_log_dir
from acceptance.targets.local import REPO_ROOT, LocalTarget
from acceptance.waits import wait_until, wait_until_async
from benchmarks.load import percentiles
from benchmarks.report import Goal, _table, goal_table, write_json
from benchmarks.stack import TIMINGS
from ecosystem import logs
from ecosystem.api.coordinator.v1 import coordinator_pb2, coordinator_pb2_grpc
from ecosystem.api.risk.v1 import risk_pb2
from ecosystem.api.trading.v1 import trading_pb2
from ecosystem.client_manager import InterServiceClientManager, ServiceCommunicationError
from ecosystem.discovery import ServiceResolver, index_key, lookup_sync
from ecosystem.names import (
    ALL_SERVICES,
    CONFIGURATION_SERVICE,
    RISK_MONITOR,
    TEST_COORDINATOR,
    TRADING_SYSTEM_ENGINE,
)
from ecosystem.security import MODES, SECURE, SUITE
from ecosystem.settings import BreakerSettings

OUT = REPO_ROOT / "reports" / "soak.json"
DEFAULT_DURATION_S = 120.0
MIN_DURATION_S = 30.0  # below this the events overlap and no process has a window to measure a slope in
# The shape of the stack during the soak; the rolling restart replaces every one of these instances.
INSTANCES = {CONFIGURATION_SERVICE: 1, RISK_MONITOR: 2, TEST_COORDINATOR: 1, TRADING_SYSTEM_ENGINE: 2}
# (concurrent clients, start as a fraction of the run); each phase lasts until the next one starts.
PHASES = ((64, 0.0), (256, 0.5))
# Pause between a client's orders, per phase. The 64 clients send back to back (~480 orders/s on 2 CPUs, p99
# ~0.6 s). 256 clients back to back overload 2 CPUs: risk-monitor queues past the engine's 1 s risk timeout and
# the engine's breaker then fails every order for 2 s (1695 lost in a 120 s run, benchmarks/README.md). A soak
# is sustained load, not overload: 0.6 s keeps the 256 clients near 400 orders/s offered; --think-ms 0 gives the
# overload run.
THINK_S = (0.0, 0.6)
# Abuse alongside the orders, a few requests a second: a 1 MB strategy id (over the 256 KiB message limit) and a
# 200 KB one (over its field limit) to the engine and to risk-monitor. Each must be refused, INVALID_ARGUMENT or
# RESOURCE_EXHAUSTED, and nothing of it kept: the RSS bounds below hold with it.
ABUSE_PAUSE_S = 0.2
ABUSIVE_IDS = ("x" * 1_000_000, "y" * 200_000)
REFUSALS = ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED")
DEADLINE_S = 3.0  # a client's whole budget for one order, its retries on another engine included
# Orders cycled through by every client, with the answer config/seed.toml's limits give them
# (risk.max_order_quantity 1000, max_notional 1e6, symbols BTC/ETH/SOL-USD): half ACCEPTED, half REJECTED.
ORDERS = (
    ("BTC-USD", 1.0, 100.0, "ACCEPTED"),
    ("ETH-USD", 5000.0, 10.0, "REJECTED"),  # quantity over 1000
    ("SOL-USD", 10.0, 50.0, "ACCEPTED"),
    ("DOGE-USD", 1.0, 1.0, "REJECTED"),  # symbol not allowed
)
# Every order names a strategy of its own: risk-monitor keeps exposure per strategy, and the soak checks that this
# store stays within its bound (docs/LIMITS.md) rather than growing with the orders.
SCENARIOS = 10  # active during the second phase: the engine records every order with each of them
# What every injected failure says (ecosystem/control_plane.py), followed by the event id.
INJECTED_MARK = re.compile(r"fault injected by chaos event ([0-9a-f-]{36})")
ORDER_ID = re.compile(r"for order ([0-9a-f]{32})")
CHAOS_ACK_TIMEOUT_S = 5.0
REGISTERED_TIMEOUT_S = 15.0
CLIENT_READY_TIMEOUT_S = 15.0
SAMPLE_INTERVAL_S = 1.0
# Bounds, measured and explained in benchmarks/README.md ("Soak").
RSS_SLOPE_MAX_MB_PER_MIN = 3.0  # per process, after warm-up, with its stores full
# The services' stores fill before the slopes are measured, so the slopes measure what grows past the caps: the
# engine's order history and risk-monitor's exposures are made small (the defaults, 10 000 each, would take longer
# than a soak to fill; their memory at the cap is in docs/LIMITS.md).
STORE_CAPS = {"ECOSYSTEM_ORDERS_KEPT": "1000", "ECOSYSTEM_STRATEGIES_KEPT": "1000"}
# About 57 MB at start; every store full adds at most ~20 MB (docs/LIMITS.md). Measured at most 80 MB.
RSS_CAP_MB = 120.0
FD_SLOPE_MAX_PER_MIN = 10.0  # measured <= 1 fd/min over a steady window: ten times that is a leak
MIN_SLOPE_WINDOW_S = 30.0  # a shorter window mostly measures the warm-up and the noise
LOST_ORDERS_EXPLAINED = 40  # lost orders looked up in the service logs, the earliest first


@dataclass(frozen=True)
class SoakPlan:
    duration_s: float
    security: str
    log_level: str
    deadline_s: float = DEADLINE_S
    think_s: tuple[float, ...] = THINK_S

    def at(self, fraction: float) -> float:
        return fraction * self.duration_s

    @property
    def chaos_s(self) -> float:
        """How long each chaos event lasts: a few seconds, shorter on a short run so events never overlap."""
        return min(5.0, max(2.0, 0.04 * self.duration_s))

    @property
    def redis_down_s(self) -> float:
        return min(3.0, max(1.0, 0.02 * self.duration_s))

    @property
    def warmup_s(self) -> float:
        """Resource samples this long after a process started, or after the last phase started, are ignored."""
        return min(15.0, 0.1 * self.duration_s)

    def phase_bounds(self) -> list[tuple[int, float, float]]:
        """(clients, start, end) of each phase, in seconds from the start of the load."""
        starts = [self.at(fraction) for _, fraction in PHASES] + [self.duration_s]
        return [(clients, starts[i], starts[i + 1]) for i, (clients, _) in enumerate(PHASES)]


# --- the load --------------------------------------------------------------------------------------------


@dataclass
class Failure:
    """An order without an ACCEPTED/REJECTED answer."""

    phase: int
    sent_s: float
    ended_s: float
    code: str
    details: str
    endpoint: str
    attempts: list[str]  # the code of every failed attempt, in order (the client retries UNAVAILABLE)
    cause: str = ""
    injected: bool = False


@dataclass
class LoadLog:
    """What the clients saw; written by the load thread only, read once it has ended."""

    sent: Counter[int] = field(default_factory=Counter)
    answered: Counter[tuple[int, str]] = field(default_factory=Counter)
    retried: Counter[int] = field(default_factory=Counter)  # answered after a failed attempt
    latencies: dict[int, list[float]] = field(default_factory=dict)
    wrong: list[dict[str, Any]] = field(default_factory=list)  # answered, but not as the seeded limits say
    failures: list[Failure] = field(default_factory=list)
    abuse: Counter[str] = field(default_factory=Counter)  # the code each abusive request was answered with


class Load(threading.Thread):
    """The clients, on their own event loop: phase after phase, each client submitting orders back to back."""

    def __init__(self, target: LocalTarget, plan: SoakPlan) -> None:
        super().__init__(name="soak-load", daemon=True)
        self.plan = plan
        self.log = LoadLog()
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.t0 = 0.0  # monotonic start of the load, set when the clients are ready
        self.error: BaseException | None = None
        self._redis_url = target.redis_url
        self._ttl_ms = target.timings.registry_ttl_ms
        self._retry_attempts = target.timings.retry_attempts
        pki = target.transport.pki
        self._credentials = pki.files(SUITE).channel_credentials() if pki is not None else None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.ready.set()

    async def _main(self) -> None:
        logs.bind(service="soak-client")  # the resolver's and client manager's own lines say whose they are
        client = aioredis.Redis.from_url(
            self._redis_url, decode_responses=True, socket_connect_timeout=1.0, socket_timeout=5.0
        )
        resolver = ServiceResolver(client, refresh_interval_s=self._ttl_ms / 3000)
        await resolver.start()
        # The services' own client manager: round robin over the registered engines, UNAVAILABLE retried on the
        # next one. Its breaker is effectively off: a load generator that failed fast would send fewer orders
        # than it claims, and count its own refusals as the stack's losses.
        manager = InterServiceClientManager(
            resolver, breaker=BreakerSettings(failure_threshold=2**31), retry_attempts=self._retry_attempts,
            default_timeout_s=self.plan.deadline_s, credentials=self._credentials,
        )
        try:
            engines = INSTANCES[TRADING_SYSTEM_ENGINE]
            await wait_until_async(
                lambda: manager.watch(TRADING_SYSTEM_ENGINE), lambda found: len(found) >= engines,
                timeout=CLIENT_READY_TIMEOUT_S,
                what=f"the load client's resolver sees {engines} {TRADING_SYSTEM_ENGINE} instances",
            )
            self.t0 = time.monotonic()
            self.ready.set()
            tasks = [asyncio.create_task(self._abuser(manager, self.t0 + self.plan.duration_s))]
            for phase, (clients, start, end) in enumerate(self.plan.phase_bounds()):
                # Pacing by elapsed time: the phase starts when its time has come.
                await asyncio.sleep(max(0.0, self.t0 + start - time.monotonic()))
                self.log.latencies[phase] = []
                tasks += [asyncio.create_task(self._client(manager, phase, n, self.t0 + end)) for n in range(clients)]
            await asyncio.gather(*tasks)
        finally:
            await manager.close()
            await resolver.close()
            await client.aclose()

    async def _abuser(self, manager: InterServiceClientManager, until: float) -> None:
        turn = 0
        while time.monotonic() < until and not self.stopping.is_set():
            await asyncio.sleep(ABUSE_PAUSE_S)  # pacing, not synchronisation
            service, operation, invoke = _abusive_call(turn)
            turn += 1
            try:
                await manager.call(service, operation, invoke, timeout=self.plan.deadline_s)
                self.log.abuse["OK"] += 1
            except ServiceCommunicationError as exc:
                # A chaos event may answer before the limits are checked: that is the fault, not a missed limit.
                self.log.abuse["injected fault" if INJECTED_MARK.search(exc.details) else exc.code.name] += 1

    async def _client(self, manager: InterServiceClientManager, phase: int, number: int, until: float) -> None:
        turn = number
        think_s = self.plan.think_s[phase]
        while time.monotonic() < until and not self.stopping.is_set():
            if think_s and turn > number:
                await asyncio.sleep(think_s)  # a client's pause between orders: pacing, not synchronisation
            symbol, quantity, price, expected = ORDERS[turn % len(ORDERS)]
            turn += 1
            request = trading_pb2.SubmitOrderRequest(
                strategy_id=f"soak-{phase}-{number}-{turn}", symbol=symbol, side=risk_pb2.SIDE_BUY,
                quantity=quantity, price=price,
            )
            self.log.sent[phase] += 1
            sent = time.monotonic()
            attempts: list[str] = []
            try:
                reply = await manager.call(
                    TRADING_SYSTEM_ENGINE, "SubmitOrder", _attempt(request, attempts), timeout=self.plan.deadline_s
                )
            except ServiceCommunicationError as exc:
                self.log.failures.append(Failure(
                    phase, sent - self.t0, time.monotonic() - self.t0, exc.code.name, exc.details[:500],
                    exc.endpoint or "", attempts,
                ))
                continue
            latency = time.monotonic() - sent
            status = trading_pb2.OrderStatus.Name(reply.status)
            self.log.answered[(phase, status)] += 1
            self.log.latencies[phase].append(latency)
            if attempts:
                self.log.retried[phase] += 1
            if status != expected:
                self.log.wrong.append({"sent_s": sent - self.t0, "symbol": symbol, "quantity": quantity,
                                       "price": price, "expected": expected, "status": status,
                                       "reasons": list(reply.reasons), "order_id": reply.order_id})


def _abusive_call(turn: int) -> tuple[str, str, Callable[[Any, float], Any]]:
    """The `turn`-th abusive request: each oversized strategy id in turn, to the engine and then to risk-monitor."""
    strategy_id = ABUSIVE_IDS[turn % len(ABUSIVE_IDS)]
    if turn // len(ABUSIVE_IDS) % 2 == 0:
        order = trading_pb2.SubmitOrderRequest(strategy_id=strategy_id, symbol="BTC-USD", side=risk_pb2.SIDE_BUY,
                                               quantity=1, price=1)
        return TRADING_SYSTEM_ENGINE, "SubmitOrder", lambda stub, t: stub.SubmitOrder(order, timeout=t)
    check = risk_pb2.CheckOrderRequest(order=risk_pb2.Order(strategy_id=strategy_id, symbol="BTC-USD",
                                                            side=risk_pb2.SIDE_BUY, quantity=1, price=1))
    return RISK_MONITOR, "CheckOrder", lambda stub, t: stub.CheckOrder(check, timeout=t)


def _attempt(
    request: trading_pb2.SubmitOrderRequest, attempts: list[str]
) -> Callable[[Any, float], Any]:
    """One SubmitOrder attempt for the client manager, noting how each failed attempt ended."""

    async def invoke(stub: Any, timeout: float) -> trading_pb2.SubmitOrderResponse:
        try:
            return await stub.SubmitOrder(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            attempts.append(exc.code().name)
            raise
        except asyncio.CancelledError:
            attempts.append("CANCELLED")
            raise

    return invoke


# --- resources -------------------------------------------------------------------------------------------


@dataclass
class Series:
    label: str
    pid: int
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (s from t0, RSS MB, open fds)


class Sampler(threading.Thread):
    """VmRSS and the open fds of every live service process, once a second."""

    def __init__(self, target: LocalTarget, t0: float) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self._target = target
        self._t0 = t0
        self._halt = threading.Event()
        self.series: dict[tuple[str, int], Series] = {}

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def run(self) -> None:
        next_tick = time.monotonic()
        while not self._halt.is_set():
            self.sample()
            next_tick += SAMPLE_INTERVAL_S
            self._halt.wait(max(0.0, next_tick - time.monotonic()))

    def sample(self) -> None:
        now = time.monotonic() - self._t0
        for label, pid in self._target.pids().items():
            try:
                rss_mb = _vm_rss_kb(pid) / 1024
                fds = len(os.listdir(f"/proc/{pid}/fd"))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue  # it exited between pids() and the read
            self.series.setdefault((label, pid), Series(label, pid)).samples.append((now, rss_mb, fds))


def _vm_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ValueError(f"no VmRSS in /proc/{pid}/status")


def _slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per minute."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs)
    return 60 * sum((x - mean_x) * (y - mean_y) for x, y in points) / denominator if denominator else 0.0


def resource_summary(series: Series, window_from: float) -> dict[str, Any]:
    """First/max/last RSS and fds over the process's life; slopes over its samples from `window_from` on."""
    samples = series.samples
    window = [s for s in samples if s[0] >= window_from]
    summary: dict[str, Any] = {
        "label": series.label, "pid": series.pid, "first_s": samples[0][0], "last_s": samples[-1][0],
        "rss_mb": {"first": samples[0][1], "max": max(s[1] for s in samples), "last": samples[-1][1]},
        "fds": {"first": samples[0][2], "max": max(s[2] for s in samples), "last": samples[-1][2]},
        "window_s": (window[-1][0] - window[0][0]) if len(window) > 1 else 0.0,
        "rss_slope_mb_per_min": None, "fd_slope_per_min": None,
    }
    if summary["window_s"] >= MIN_SLOPE_WINDOW_S:
        summary["window_from_s"] = window[0][0]
        summary["rss_slope_mb_per_min"] = _slope_per_min([(s[0], s[1]) for s in window])
        summary["fd_slope_per_min"] = _slope_per_min([(s[0], float(s[2])) for s in window])
    return summary


# --- the timeline ----------------------------------------------------------------------------------------


class Timeline:
    """The events of the run, in the order they happened, with their times in seconds from the load's start."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.events: list[dict[str, Any]] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def note(self, event: str, **fields: Any) -> dict[str, Any]:
        entry = {"t_s": round(self.now(), 3), "event": event, **fields}
        self.events.append(entry)
        print(f"soak: {entry['t_s']:7.2f}s {event} {_fields(fields)}", flush=True)
        return entry


def _fields(fields: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in fields.items())


class Conductor:
    """Plays the faults on the target from the main thread: chaos, rolling restarts, the Redis restart."""

    def __init__(self, target: LocalTarget, plan: SoakPlan, timeline: Timeline, interrupted: threading.Event) -> None:
        self.target = target
        self.plan = plan
        self.timeline = timeline
        self.interrupted = interrupted
        self.chaos_events: dict[str, dict[str, Any]] = {}  # event id -> what was injected
        self.chaos_outcomes: dict[str, str] = {}  # event id -> RECOVERED, FAILED or why unknown
        self.restarts: list[dict[str, Any]] = []
        self.scenarios: list[str] = []
        self.outcomes_recorded = 0  # by the engines with the soak's scenarios, counted when they are completed
        self.labels: dict[str, str] = {}  # endpoint -> "service#index/instance id", for every instance seen
        self.remember_instances()

    def remember_instances(self) -> None:
        for service in ALL_SERVICES:
            for handle in self.target.instances(service):
                self.labels[handle.endpoint] = f"{service}#{handle.index}/{handle.instance_id[:8]}"

    def schedule(self) -> list[tuple[float, str, Callable[[], None]]]:
        plan, chaos_ms = self.plan, int(self.plan.chaos_s * 1000)
        phase_two = PHASES[1][1]
        return [
            (plan.at(0.10), "latency on risk-monitor",
             lambda: self.chaos("NETWORK_LATENCY", RISK_MONITOR, {"delay_ms": "150"}, chaos_ms)),
            (plan.at(0.18), "errors injected into risk-monitor",
             lambda: self.chaos("ERROR_INJECTION", RISK_MONITOR, {"code": "ABORTED", "percentage": "20"}, chaos_ms)),
            (plan.at(0.25), "rolling restart of every service", self.rolling_restarts),
            (plan.at(phase_two + 0.02), f"{SCENARIOS} scenarios started", self.start_scenarios),
            (plan.at(phase_two + 0.08), "latency on risk-monitor under the second phase",
             lambda: self.chaos("NETWORK_LATENCY", RISK_MONITOR, {"delay_ms": "150"}, chaos_ms)),
            (plan.at(phase_two + 0.15), "errors injected into trading-system-engine",
             lambda: self.chaos("ERROR_INJECTION", TRADING_SYSTEM_ENGINE, {"code": "INTERNAL", "percentage": "10"},
                                chaos_ms)),
            (plan.at(phase_two + 0.22), "Redis restart", self.redis_restart),
            (plan.at(phase_two + 0.35), "registry indexes deleted", self.delete_indexes),
            (plan.at(phase_two + 0.40), f"{SCENARIOS} scenarios completed", self.complete_scenarios),
        ]

    def play(self) -> None:
        for at_s, title, action in self.schedule():
            # Pacing by elapsed time: an event starts at its time, or at once when the one before ran late.
            if self.interrupted.wait(max(0.0, self.timeline.t0 + at_s - time.monotonic())):
                return
            late = self.timeline.now() - at_s
            self.timeline.note("begin", what=title, **({"late_s": round(late, 2)} if late > 0.5 else {}))
            action()

    def _coordinator(self) -> grpc.Channel:
        return self.target.transport.channel(self.target.endpoint(TEST_COORDINATOR), TEST_COORDINATOR)

    def chaos(self, kind: str, service: str, parameters: dict[str, str], duration_ms: int) -> None:
        expected = {handle.instance_id for handle in self.target.instances(service)}
        with self._coordinator() as channel:
            stub = coordinator_pb2_grpc.TestCoordinatorServiceStub(channel)
            event = stub.InjectChaos(coordinator_pb2.InjectChaosRequest(
                event_type=coordinator_pb2.ChaosEventType.Value(kind), target_service=service,
                parameters=parameters, duration_ms=duration_ms,
            ), timeout=5.0)
            injected = self.timeline.note("chaos injected", kind=kind, service=service, event_id=event.event_id,
                                          parameters=parameters, duration_ms=duration_ms)
            self.chaos_events[event.event_id] = injected
            wait_until(
                lambda: stub.GetChaosEvent(coordinator_pb2.GetChaosEventRequest(event_id=event.event_id), timeout=2.0),
                lambda seen: expected <= set(seen.acknowledged_by),
                timeout=CHAOS_ACK_TIMEOUT_S,
                what=f"every {service} instance ({len(expected)}) acknowledges chaos event {event.event_id}",
            )
        self.timeline.note("chaos acknowledged", event_id=event.event_id, instances=len(expected))

    def start_scenarios(self) -> None:
        with self._coordinator() as channel:
            stub = coordinator_pb2_grpc.TestCoordinatorServiceStub(channel)
            for number in range(SCENARIOS):
                request = coordinator_pb2.StartScenarioRequest(name=f"soak-{number}")
                self.scenarios.append(stub.StartScenario(request, timeout=5.0).scenario_id)
        self.timeline.note("scenarios started", count=len(self.scenarios))

    def complete_scenarios(self) -> None:
        with self._coordinator() as channel:
            stub = coordinator_pb2_grpc.TestCoordinatorServiceStub(channel)
            for scenario_id in self.scenarios:
                request = coordinator_pb2.CompleteScenarioRequest(scenario_id=scenario_id)
                self.outcomes_recorded += sum(stub.CompleteScenario(request, timeout=5.0).outcome_counts.values())
        self.timeline.note("scenarios completed", count=len(self.scenarios), outcomes=self.outcomes_recorded)

    def settle_chaos(self) -> None:
        """The final status of every injected event not settled yet: each has ended by its schedule by now.

        Called before the rolling restart too: the coordinator keeps events in memory, so the events injected
        before it are gone with the instance it replaces.
        """
        with self._coordinator() as channel:
            stub = coordinator_pb2_grpc.TestCoordinatorServiceStub(channel)
            for event_id in [e for e in self.chaos_events if e not in self.chaos_outcomes]:
                try:
                    final = wait_until(
                        lambda e=event_id: stub.GetChaosEvent(coordinator_pb2.GetChaosEventRequest(event_id=e),
                                                              timeout=2.0),
                        lambda seen: seen.status in (coordinator_pb2.RECOVERED, coordinator_pb2.FAILED),
                        timeout=CHAOS_ACK_TIMEOUT_S, what=f"chaos event {event_id} is RECOVERED or FAILED",
                    )
                    self.chaos_outcomes[event_id] = coordinator_pb2.ChaosEventStatus.Name(final.status)
                except (AssertionError, grpc.RpcError) as exc:
                    self.chaos_outcomes[event_id] = f"unknown: {str(exc).splitlines()[0][:160]}"

    def rolling_restarts(self) -> None:
        """Every instance replaced by a new one: the new ones start together and each is awaited until it is
        registered and SERVING, then the old ones get SIGTERM one after another, each awaited until it exits.

        Starting them together (a surge) keeps the restart short: under load on 2 CPUs one start takes 3-5 s.
        """
        self.settle_chaos()
        olds = [handle for service in ALL_SERVICES for handle in self.target.instances(service)]
        spawned_s = round(self.timeline.now(), 3)
        news = self.target.add_instances([old.service for old in olds])
        self.remember_instances()
        ready_s = round(self.timeline.now(), 3)
        self.timeline.note("new instances ready", instances=" ".join(self.labels[new.endpoint] for new in news))
        for old, new in zip(olds, news, strict=True):
            record: dict[str, Any] = {
                "service": old.service, "old": self.labels[old.endpoint], "old_endpoint": old.endpoint,
                "new": self.labels[new.endpoint], "new_endpoint": new.endpoint, "spawned_s": spawned_s,
                "ready_s": ready_s,
            }
            self.target.terminate_service(old.service, old.index)
            record["sigterm_s"] = round(self.timeline.now(), 3)
            self.timeline.note("SIGTERM", instance=record["old"], endpoint=old.endpoint, replaced_by=record["new"])
            record["exit_code"] = self.target.wait_exited(old.service, old.index, self.target.stop_timeout)
            record["exited_s"] = round(self.timeline.now(), 3)
            self.timeline.note("exited", instance=record["old"], code=record["exit_code"],
                               drain_s=round(record["exited_s"] - record["sigterm_s"], 2))
            self.restarts.append(record)

    def delete_indexes(self) -> None:
        """Registry damage: every service's index goes; callers must still find the live instances."""
        client = redis.Redis.from_url(self.target.redis_url, decode_responses=True, socket_timeout=1,
                                      socket_connect_timeout=1)
        try:
            deleted = client.delete(*(index_key(service) for service in ALL_SERVICES))
        finally:
            client.close()
        self.timeline.note("registry indexes deleted", keys=deleted)

    def redis_restart(self) -> None:
        self.target.stop_redis()
        self.timeline.note("redis stopped")
        # The outage's length is the fault itself, so it is paced by time.
        if self.interrupted.wait(self.plan.redis_down_s):
            return
        self.target.start_redis()
        self.timeline.note("redis started")
        expected = {handle.instance_id for service in ALL_SERVICES for handle in self.target.instances(service)}
        client = redis.Redis.from_url(self.target.redis_url, decode_responses=True, socket_timeout=1,
                                      socket_connect_timeout=1)
        try:
            wait_until(
                lambda: {i.instance_id for service in ALL_SERVICES for i in lookup_sync(client, service)},
                lambda registered: expected <= registered,
                timeout=REGISTERED_TIMEOUT_S, what=f"all {len(expected)} running instances are registered again",
                interval=0.05,
            )
        finally:
            client.close()
        self.timeline.note("every instance registered again", instances=len(expected))


# --- the verdict -----------------------------------------------------------------------------------------


def short_cause(details: str) -> str:
    """A failure's details with its ids, ports and numbers masked, so failures of one kind group together."""
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{16,}", "<id>", details)
    text = re.sub(r"127\.0\.0\.1:\d+", "<endpoint>", text)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    return text[:110]


def classify(log: LoadLog, injected_ids: set[str]) -> None:
    for failure in log.failures:
        found = INJECTED_MARK.search(failure.details)
        failure.injected = found is not None and found.group(1) in injected_ids
        failure.cause = "fault injected by a chaos event of the soak" if failure.injected else short_cause(
            failure.details)


def listening_ports(ports: set[int]) -> set[int]:
    """Which of `ports` some socket on this host listens on (TCP state 0A in /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            columns = line.split()
            port = int(columns[1].rsplit(":", 1)[1], 16)
            if columns[3] == "0A" and port in ports:
                found.add(port)
    return found


def live_service_pids(pids: set[int]) -> set[int]:
    """Which of `pids` still run a service of this project (a reused pid would run something else)."""
    alive = set()
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = proc_stat(pid)[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if b"ecosystem.services" in command and state != "Z":
            alive.add(pid)
    return alive


def read_logs(target: LocalTarget) -> dict[str, list[str]]:
    """Every instance's log lines, by its label."""
    return {label: path.read_text(errors="replace").splitlines() for label, path in target.log_paths().items()
            if path.exists()}


def explain_losses(lost: list[Failure], logs: dict[str, list[str]], timeline: Timeline,
                   labels: dict[str, str]) -> list[dict[str, Any]]:
    """For the earliest lost orders: the instance that failed them, the event they followed, and what the
    services logged about the order (the engine names the order id it gave the order in its error)."""
    explained = []
    for failure in sorted(lost, key=lambda f: f.sent_s)[:LOST_ORDERS_EXPLAINED]:
        before = [e for e in timeline.events if e["t_s"] <= failure.ended_s]
        order = ORDER_ID.search(failure.details)
        mentions = []
        if order:
            for label, lines in logs.items():
                mentions += [f"{label}: {line[:400]}" for line in lines if order.group(1) in line]
        explained.append({
            **dataclasses.asdict(failure),
            "instance": labels.get(failure.endpoint, failure.endpoint or "(none picked)"),
            "after_event": before[-1] if before else None,
            "log_lines": mentions[:5],
        })
    return explained


def warnings_by_instance(logs: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """How many warning and error lines of each event every instance logged: the services' side of the story."""
    counted: dict[str, dict[str, int]] = {}
    for label, lines in logs.items():
        events: Counter[str] = Counter()
        for line in lines:
            if '"level": "warning"' in line or '"level": "error"' in line:
                found = re.search(r'"event": "([^"]+)"', line)
                events[found.group(1) if found else "?"] += 1
            elif line and not line.startswith("{"):
                events["non-JSON line (traceback?)"] += 1
        if events:
            counted[label] = dict(events)
    return counted


def phase_rows(log: LoadLog, plan: SoakPlan) -> tuple[list[list[str]], list[dict[str, Any]]]:
    rows, figures = [], []
    for phase, (clients, start, end) in enumerate(plan.phase_bounds()):
        failures = [f for f in log.failures if f.phase == phase]
        injected = sum(1 for f in failures if f.injected)
        accepted, rejected = log.answered[(phase, "ACCEPTED")], log.answered[(phase, "REJECTED")]
        latency = percentiles(log.latencies.get(phase) or [0.0], unit=1e3)
        figure = {
            "clients": clients, "think_s": plan.think_s[phase], "start_s": start, "end_s": end, "sent": log.sent[phase],
            "accepted": accepted, "rejected": rejected, "answered": accepted + rejected,
            "retried_then_answered": log.retried[phase], "injected": injected, "lost": len(failures) - injected,
            "latency_ms": latency, "answered_per_s": (accepted + rejected) / max(end - start, 1e-9),
        }
        figures.append(figure)
        pause = f", {plan.think_s[phase] * 1000:g} ms apart" if plan.think_s[phase] else ", back to back"
        rows.append([f"{clients} clients{pause}", f"{start:.0f}-{end:.0f}", str(figure["sent"]), str(accepted),
                     str(rejected), str(figure["retried_then_answered"]), str(injected), str(figure["lost"]),
                     f"{latency['p50']:.1f}", f"{latency['p99']:.1f}", f"{figure['answered_per_s']:.0f}"])
    return rows, figures


def run_soak(plan: SoakPlan, out: Path) -> int:
    interrupted = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        interrupted.set()
        raise KeyboardInterrupt  # the finally below stops the load and every process

    signal.signal(signal.SIGTERM, on_sigterm)
    timings = dataclasses.replace(TIMINGS, log_level=plan.log_level)
    log_dir = run_log_dir("-soak")
    target = LocalTarget(log_dir=log_dir, timings=timings, security=plan.security, env=STORE_CAPS)
    load: Load | None = None
    sampler: Sampler | None = None
    fds_before = len(os.listdir("/proc/self/fd"))
    print(f"soak: {plan.duration_s:g} s on a local stack ({plan.security}), logs in {log_dir}", flush=True)
    try:
        target.start()
        for service, count in INSTANCES.items():
            target.scale(service, count)
        load = Load(target, plan)
        load.start()
        if not load.ready.wait(CLIENT_READY_TIMEOUT_S + 5) or load.error is not None:
            raise RuntimeError(f"the load client did not become ready: {load.error!r}")
        timeline = Timeline(load.t0)
        sampler = Sampler(target, load.t0)
        sampler.start()
        conductor = Conductor(target, plan, timeline, interrupted)
        timeline.note("load started", phases=[f"{c} clients from {s:.0f}s" for c, s, _ in plan.phase_bounds()])
        conductor.play()
        # The clients stop sending at the end of the run; the last calls get their deadline to finish.
        load.join(timeout=max(0.0, load.t0 + plan.duration_s - time.monotonic()) + plan.deadline_s + 5)
        if load.is_alive():
            raise RuntimeError("the load did not end within its deadline after the run's end")
        if load.error is not None:
            raise RuntimeError(f"the load failed: {load.error!r}") from load.error
        timeline.note("load ended")
        sampler.stop()
        conductor.settle_chaos()
        running = {service: len(target.instances(service)) for service in ALL_SERVICES}
        pids = {series.pid for series in sampler.series.values()}
        ports = {int(endpoint.rsplit(":", 1)[1]) for endpoint in conductor.labels}
        ports.add(urlparse(target.redis_url).port or 6379)
        classify(load.log, set(conductor.chaos_events))
        lost = [f for f in load.log.failures if not f.injected]
        logs = read_logs(target)
        explained = explain_losses(lost, logs, timeline, conductor.labels)
        warnings = warnings_by_instance(logs)
    except KeyboardInterrupt:
        print("soak: interrupted; stopping the load and the stack", file=sys.stderr, flush=True)
        return 130
    finally:
        interrupted.set()
        if load is not None:
            load.stopping.set()
            load.join(timeout=plan.deadline_s + 5)
        if sampler is not None:
            sampler.stop()
        target.stop_all()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    left_pids = live_service_pids(pids)
    left_ports = listening_ports(ports)
    fds_after = len(os.listdir("/proc/self/fd"))
    results, checks = report(plan, load.log, timeline, conductor, sampler, running, explained,
                             warnings, left_pids, left_ports, (fds_before, fds_after), log_dir)
    write_json(results, checks, out)
    print(f"\nsoak: wrote {out}; service logs in {log_dir}")
    return 0 if all(check.met is not False for check in checks) else 1


def report(plan: SoakPlan, log: LoadLog, timeline: Timeline, conductor: Conductor, sampler: Sampler,
           running: dict[str, int], explained: list[dict[str, Any]],
           warnings: dict[str, dict[str, int]], left_pids: set[int], left_ports: set[int],
           client_fds: tuple[int, int], log_dir: Path) -> tuple[dict[str, Any], list[Goal]]:
    """Print the tables; return the results and the checks that decide the exit status."""
    rows, phases = phase_rows(log, plan)
    lost = [f for f in log.failures if not f.injected]
    total_sent = sum(log.sent.values())
    answered = sum(log.answered.values())
    injected = len(log.failures) - len(lost)
    rows.append(["total", f"0-{plan.duration_s:.0f}", str(total_sent), str(sum(p["accepted"] for p in phases)),
                 str(sum(p["rejected"] for p in phases)), str(sum(log.retried.values())), str(injected),
                 str(len(lost)), "", "", ""])
    causes: Counter[tuple[str, str, bool]] = Counter((f.code, f.cause, f.injected) for f in log.failures)
    cause_rows = [[code, cause, "injected" if was_injected else "LOST", str(count)]
                  for (code, cause, was_injected), count in causes.most_common()]

    warmup_from = plan.phase_bounds()[-1][1] + plan.warmup_s
    resources = []
    for series in sampler.series.values():
        summary = resource_summary(series, max(warmup_from, series.samples[0][0] + plan.warmup_s))
        resources.append(summary)
    resources.sort(key=lambda s: (s["label"].split("#")[0], s["first_s"]))
    resource_rows = []
    for s in resources:
        rss, fds = s["rss_mb"], s["fds"]
        rss_slope, fd_slope = s["rss_slope_mb_per_min"], s["fd_slope_per_min"]
        resource_rows.append([
            s["label"], str(s["pid"]), f"{s['first_s']:.0f}-{s['last_s']:.0f}",
            f"{rss['first']:.1f} / {rss['max']:.1f} / {rss['last']:.1f}",
            "-" if rss_slope is None else f"{rss_slope:+.2f}",
            f"{fds['first']} / {fds['max']} / {fds['last']}",
            "-" if fd_slope is None else f"{fd_slope:+.1f}",
            f"{s['window_s']:.0f}",
        ])

    checks = [
        Goal("lost orders", len(lost), "== 0", not lost, note=f"{injected} injected failures not counted"),
        Goal("answers that contradict the seeded limits", len(log.wrong), "== 0", not log.wrong),
        Goal("orders answered", answered, "> 0", answered > 0, note=f"of {total_sent} sent"),
    ]
    slopes = [s for s in resources if s["rss_slope_mb_per_min"] is not None]
    for service in ALL_SERVICES:
        bound = RSS_SLOPE_MAX_MB_PER_MIN
        measured = [s for s in slopes if s["label"].startswith(service + "#")]
        worst = max(measured, key=lambda s: s["rss_slope_mb_per_min"], default=None)
        checks.append(Goal(
            f"{service}: RSS slope after warm-up, worst process", worst and round(worst["rss_slope_mb_per_min"], 2),
            f"<= {bound:g} MB/min", None if worst is None else worst["rss_slope_mb_per_min"] <= bound,
            note=worst["label"] if worst else f"no window of {MIN_SLOPE_WINDOW_S:g} s after warm-up (short run)",
        ))
    worst_fds = max(slopes, key=lambda s: s["fd_slope_per_min"], default=None)
    checks.append(Goal("open-fd slope after warm-up, worst process",
                       worst_fds and round(worst_fds["fd_slope_per_min"], 1),
                       f"<= {FD_SLOPE_MAX_PER_MIN:g} fds/min",
                       None if worst_fds is None else worst_fds["fd_slope_per_min"] <= FD_SLOPE_MAX_PER_MIN,
                       note=worst_fds["label"] if worst_fds else ""))
    biggest = max(resources, key=lambda s: s["rss_mb"]["max"], default=None)
    checks.append(Goal("RSS, largest process", biggest and round(biggest["rss_mb"]["max"], 1),
                       f"<= {RSS_CAP_MB:g} MB", None if biggest is None else biggest["rss_mb"]["max"] <= RSS_CAP_MB,
                       note=biggest["label"] if biggest else ""))
    unclean = [r for r in conductor.restarts if r["exit_code"] != 0]
    planned = sum(INSTANCES.values())
    checks.append(Goal("instances replaced by the rolling restart", len(conductor.restarts), f"== {planned}",
                       len(conductor.restarts) == planned,
                       note=f"{len(unclean)} exited other than 0 on SIGTERM" if unclean else "every one exited 0"))
    checks.append(Goal("old instances that exited other than 0 on SIGTERM", len(unclean), "== 0", not unclean))
    checks.append(Goal("running instances at the end, as planned", sum(running.values()), f"== {planned}",
                       running == INSTANCES, note=_fields(running)))
    abused = sum(count for code, count in log.abuse.items() if code != "injected fault")
    refused = sum(log.abuse[code] for code in REFUSALS)
    checks.append(Goal("oversized requests refused (INVALID_ARGUMENT, RESOURCE_EXHAUSTED)", refused, f"== {abused}",
                       abused > 0 and refused == abused, note=_fields(dict(log.abuse))))
    checks.append(Goal(f"order outcomes recorded with the {SCENARIOS} active scenarios", conductor.outcomes_recorded,
                       "> 0", conductor.outcomes_recorded > 0, note="summed over the scenarios"))
    chaos_outcomes = conductor.chaos_outcomes
    not_recovered = {e: s for e, s in chaos_outcomes.items() if s != "RECOVERED"}
    checks.append(Goal("chaos events RECOVERED at the end", len(chaos_outcomes) - len(not_recovered),
                       f"== {len(chaos_outcomes)}", not not_recovered, note=_fields(not_recovered)))
    checks.append(Goal("service processes left after stop", len(left_pids), "== 0", not left_pids,
                       note=" ".join(map(str, sorted(left_pids)))))
    checks.append(Goal("ports still listening after stop", len(left_ports), "== 0", not left_ports,
                       note=" ".join(map(str, sorted(left_ports)))))
    checks.append(Goal("soak client's own open fds, after - before", client_fds[1] - client_fds[0], "reported", None,
                       note=f"{client_fds[0]} -> {client_fds[1]}"))

    print()
    print(_table(["phase", "s", "sent", "accepted", "rejected", "retried", "injected", "lost", "p50 ms", "p99 ms",
                  "answers/s"], rows))
    if cause_rows:
        print()
        print(_table(["code", "cause (ids, endpoints and numbers masked)", "counted as", "orders"], cause_rows))
    print()
    print(_table(["process", "pid", "alive s", "RSS MB first / max / last", "MB/min", "fds first / max / last",
                  "fds/min", "window s"], resource_rows))
    if explained:
        print(f"\nlost orders, the earliest {len(explained)} (all in the JSON):")
        for item in explained[:10]:
            event = item["after_event"]
            print(f"  sent {item['sent_s']:.2f}s failed {item['ended_s']:.2f}s on {item['instance']}: {item['code']} "
                  f"attempts {item['attempts']}; after '{event['event'] if event else '-'}' at "
                  f"{event['t_s'] if event else '-'}s: {item['details'][:200]}")
    print()
    print(goal_table(checks, ["check", "measured", "bound", "verdict", "note"]))
    return {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "plan": {**dataclasses.asdict(plan), "instances": INSTANCES, "chaos_s": plan.chaos_s,
                 "redis_down_s": plan.redis_down_s, "warmup_s": plan.warmup_s, "cpus": os.cpu_count()},
        "bounds": {"rss_slope_mb_per_min": RSS_SLOPE_MAX_MB_PER_MIN, "store_caps": STORE_CAPS,
                   "rss_cap_mb": RSS_CAP_MB,
                   "fd_slope_per_min": FD_SLOPE_MAX_PER_MIN, "min_slope_window_s": MIN_SLOPE_WINDOW_S},
        "phases": phases,
        "failures_by_cause": [{"code": c, "cause": cause, "injected": i, "orders": n}
                              for (c, cause, i), n in causes.most_common()],
        "lost_orders": [dataclasses.asdict(f) for f in lost],
        "lost_explained": explained,
        "wrong_answers": log.wrong,
        "timeline": timeline.events,
        "rolling_restarts": conductor.restarts,
        "chaos_outcomes": chaos_outcomes,
        "instances": conductor.labels,
        "resources": resources,
        "resource_samples": {f"{s.label}/{s.pid}": s.samples for s in sampler.series.values()},
        "service_warnings": warnings,
        "log_dir": str(log_dir),
    }, checks


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION_S,
                        help=f"seconds of load in all (default {DEFAULT_DURATION_S:g}, at least {MIN_DURATION_S:g})")
    parser.add_argument("--security", choices=MODES, default=SECURE, help="the stack's mode (default secure)")
    parser.add_argument("--log-level", choices=("debug", "info"), default="info",
                        help="the services' log level; debug logs every order decision and retry")
    parser.add_argument("--think-ms", type=float, default=THINK_S[1] * 1000,
                        help=f"pause between a client's orders in the 256-client phase (default {THINK_S[1] * 1000:g};"
                             " 0 sends back to back, an overload on 2 CPUs)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"the JSON result (default {OUT})")
    args = parser.parse_args(argv)
    if args.duration < MIN_DURATION_S:
        parser.error(f"--duration must be at least {MIN_DURATION_S:g} s")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = SoakPlan(args.duration, args.security, args.log_level, think_s=(THINK_S[0], args.think_ms / 1000))
    return run_soak(plan, args.out)


if __name__ == "__main__":
    sys.exit(main())
