"""Measurements on a running LocalTarget: start-up, SubmitOrder, discovery, configuration, failure detection."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import statistics
import time
from pathlib import Path
from typing import Any

import grpc
import redis
import redis.asyncio as aioredis

from acceptance.targets import default_target_name, make_target
from acceptance.targets.base import SUITE_TIMINGS
from acceptance.targets.local import LocalTarget
from acceptance.waits import wait_until
from benchmarks.floor import (
    CALL_TIMEOUT_S,
    PathUnderTest,
    measure_in_turns,
    order_request,
    running,
)
from benchmarks.load import LoadSettings, measure_micro, percentiles, sequential_latencies
from ecosystem.api.common.v1 import stats_pb2, stats_pb2_grpc
from ecosystem.api.coordinator.v1 import coordinator_pb2, coordinator_pb2_grpc
from ecosystem.api.trading.v1 import trading_pb2, trading_pb2_grpc
from ecosystem.client_manager import InterServiceClientManager
from ecosystem.config_client import ConfigurationServiceClient
from ecosystem.discovery import ServiceResolver, lookup, lookup_sync
from ecosystem.names import ALL_SERVICES, CONFIGURATION_SERVICE, RISK_MONITOR, TEST_COORDINATOR, TRADING_SYSTEM_ENGINE
from ecosystem.security import INSECURE, SECURE, SUITE
from ecosystem.settings import DEFAULT_TRACE_SAMPLE_RATIO, BreakerSettings

ENVIRONMENT = "testing"  # what LocalTarget runs the services with
# Plaintext, as in every earlier run of these benchmarks; measure_real_path_secure gives the cost of mTLS.
SECURITY = INSECURE
# The suite's timings, but the services log at info as in production: no line per order decision.
TIMINGS = dataclasses.replace(SUITE_TIMINGS, log_level="info")
CACHED_KEY = "risk.max_order_quantity"
SINGLE_FLIGHT_KEY = "trading.venue"  # read by no service, so every GetConfiguration of it is ours
SINGLE_FLIGHT_READERS = 100
GET_CONFIGURATION = "/ecosystem.config.v1.ConfigurationService/GetConfiguration"
FAILOVER_TIMEOUT_S = 15.0
STATUS_POLL_S = 0.01
# How many scenarios are active while SubmitOrder is timed: the engine records each order with every one (one call
# to test-coordinator from the first scenario on, so the cost is compared from one scenario up).
ACTIVE_SCENARIOS = (0, 1, 10, 30)


def engine_endpoint(target: LocalTarget) -> str:
    return target.instances(TRADING_SYSTEM_ENGINE)[0].endpoint


def measure_startup(log_dir: Path, repetitions: int) -> tuple[dict[str, object], LocalTarget]:
    """Launch to every service SERVING, `repetitions` times; the last stack is left running for what follows."""
    times = []
    for repetition in range(repetitions):
        target = LocalTarget(log_dir=log_dir / f"startup-{repetition}", timings=TIMINGS, security=SECURITY)
        started = time.perf_counter()
        target.start()
        times.append(time.perf_counter() - started)
        if repetition < repetitions - 1:
            target.stop_all()
    return {"median_s": statistics.median(times), "runs_s": times}, target


def measure_docker_startup(repetitions: int) -> dict[str, object]:
    """The docker target's start-up when it exists and an engine answers; otherwise why it was not measured."""
    if importlib.util.find_spec("acceptance.targets.docker") is None:
        return {"measured": False, "reason": "there is no docker target (acceptance/targets/docker.py)"}
    name, why = default_target_name()
    if name != "docker":
        return {"measured": False, "reason": why}
    times = []
    for _ in range(repetitions):
        target = make_target("docker", timings=TIMINGS, security=SECURITY)
        started = time.perf_counter()
        try:
            target.start()
            times.append(time.perf_counter() - started)
        finally:
            target.stop_all()
    return {"measured": True, "median_s": statistics.median(times), "runs_s": times}


def _servers(target: LocalTarget) -> dict[str, int]:
    """The pids of the processes on the SubmitOrder path: "A" is the engine, "B" risk-monitor, as in the floor."""
    pids = target.pids()
    return {"A": pids[f"{TRADING_SYSTEM_ENGINE}#0"], "B": pids[f"{RISK_MONITOR}#0"]}


def measure_scenario_cost(target: LocalTarget, settings: LoadSettings) -> dict[str, object]:
    """SubmitOrder p50 (sequential calls) with ACTIVE_SCENARIOS scenarios active, which the engine reports orders to."""
    p50_us = {}
    with grpc.insecure_channel(target.endpoint(TEST_COORDINATOR)) as channel:
        coordinator = coordinator_pb2_grpc.TestCoordinatorServiceStub(channel)
        started: list[str] = []
        try:
            for count in ACTIVE_SCENARIOS:
                while len(started) < count:
                    request = coordinator_pb2.StartScenarioRequest(name=f"bench-{len(started)}")
                    started.append(coordinator.StartScenario(request, timeout=CALL_TIMEOUT_S).scenario_id)
                _await_engine_scenarios(target, count)
                samples = asyncio.run(_submit_latencies(engine_endpoint(target), settings.latency_calls))
                p50_us[str(count)] = percentiles(samples)["p50"]
        finally:
            for scenario_id in started:
                coordinator.CompleteScenario(coordinator_pb2.CompleteScenarioRequest(scenario_id=scenario_id),
                                             timeout=CALL_TIMEOUT_S)
    return {"p50_us_by_active_scenarios": p50_us}


def _await_engine_scenarios(target: LocalTarget, count: int) -> None:
    with grpc.insecure_channel(engine_endpoint(target)) as channel:
        engine = trading_pb2_grpc.TradingEngineServiceStub(channel)
        wait_until(
            lambda: len(engine.GetStatus(trading_pb2.GetStatusRequest(), timeout=CALL_TIMEOUT_S).active_scenarios),
            lambda active: active == count, timeout=FAILOVER_TIMEOUT_S, interval=STATUS_POLL_S,
            what=f"the engine knows of {count} active scenarios",
        )


async def _submit_latencies(endpoint: str, count: int) -> list[float]:
    async with grpc.aio.insecure_channel(endpoint) as channel:
        stub = trading_pb2_grpc.TradingEngineServiceStub(channel)
        return await sequential_latencies(lambda: stub.SubmitOrder(order_request(), timeout=CALL_TIMEOUT_S), count)


def measure_real_path_secure(log_dir: Path, settings: LoadSettings) -> dict[str, object]:
    """SubmitOrder on a second stack in secure mode (mTLS everywhere, authorization), the suite's identity calling."""
    target = LocalTarget(log_dir=log_dir / "secure", timings=TIMINGS, security=SECURE)
    target.start()
    try:
        assert target.transport.pki is not None
        path = PathUnderTest(engine_endpoint(target), _servers(target), tls=target.transport.pki.files(SUITE))
        return asyncio.run(measure_in_turns({"mtls": path}, settings))["mtls"]
    finally:
        target.stop_all()


def measure_submit_order_paths(target: LocalTarget, log_dir: Path, settings: LoadSettings) -> dict[str, dict[str, Any]]:
    """SubmitOrder on the floor's two hops, through `target` (tracing off) and through a second stack exporting spans
    to an OTLP receiver in its own process: with the services' default sampling (orders sent without a trace
    context) and with every order traced (each sent in a new trace its caller wants traced, as the acceptance suite
    sends them). The first three are measured in turns (`floor.measure_in_turns`), every order traced after them."""
    with running("risk") as risk, running("engine", risk.endpoint) as engine, running("otlp") as receiver:
        traced = LocalTarget(log_dir=log_dir / "traced", timings=TIMINGS, security=SECURITY)
        traced.export_traces_to(receiver.endpoint)
        traced.start()
        try:
            results = asyncio.run(measure_in_turns({
                "floor_two_hop": PathUnderTest(engine.endpoint, {"A": engine.pid, "B": risk.pid}),
                "tracing_off": PathUnderTest(engine_endpoint(target), _servers(target)),
                "tracing_on": PathUnderTest(engine_endpoint(traced), _servers(traced)),
            }, settings))
            # After the others, alone: its services export its spans for a while after each window, which would
            # take CPU from the window after it (the floor's, in turns).
            results |= asyncio.run(measure_in_turns({
                "tracing_on_every_order": PathUnderTest(engine_endpoint(traced), _servers(traced), True),
            }, settings))
        finally:
            traced.stop_all()
    results["tracing_on"]["sample_ratio"] = DEFAULT_TRACE_SAMPLE_RATIO
    # Spans of both traced paths together: the receiver counts what it got until it stopped.
    results["tracing_on"]["spans_received"] = results["tracing_on_every_order"]["spans_received"] = receiver.count
    return results


async def measure_discovery(redis_url: str, settings: LoadSettings) -> dict[str, object]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    resolver = ServiceResolver(client, refresh_interval_s=0.5)
    await resolver.start()
    try:
        if not await resolver.instances(RISK_MONITOR):
            raise RuntimeError(f"discovery: no {RISK_MONITOR} instance registered at {redis_url}")
        cached = await measure_micro(lambda: resolver.instances(RISK_MONITOR), settings)
        from_redis = await measure_micro(
            lambda: lookup(client, RISK_MONITOR), LoadSettings(settings.repetitions, warmup_calls=50, micro_calls=1000)
        )
    finally:
        await resolver.close()
        await client.aclose()
    return {"cached_instances_us": cached, "redis_lookup_us": from_redis}


async def _served_fetches(endpoint: str) -> int:
    """GetConfiguration calls configuration-service has answered, from its own statistics."""
    async with grpc.aio.insecure_channel(endpoint) as channel:
        stats = await stats_pb2_grpc.StatsServiceStub(channel).GetPerformanceStats(
            stats_pb2.GetPerformanceStatsRequest(method_prefix=GET_CONFIGURATION), timeout=CALL_TIMEOUT_S
        )
    return sum(operation.total_requests for operation in stats.operations)


async def measure_configuration(redis_url: str, config_endpoint: str, settings: LoadSettings) -> dict[str, object]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    resolver = ServiceResolver(client, refresh_interval_s=0.5)
    await resolver.start()
    manager = InterServiceClientManager(resolver, breaker=BreakerSettings())
    try:
        cached = ConfigurationServiceClient(manager, environment=ENVIRONMENT)
        await cached.get(CACHED_KEY)
        from_cache = await measure_micro(lambda: cached.get(CACHED_KEY), settings)
        # A TTL of zero makes every get a miss: the full path through the client manager to the service.
        uncached = ConfigurationServiceClient(manager, environment=ENVIRONMENT, cache_ttl_s=0.0)
        from_service = await measure_micro(
            lambda: uncached.get(CACHED_KEY), LoadSettings(settings.repetitions, warmup_calls=50, micro_calls=1000)
        )
        fresh = ConfigurationServiceClient(manager, environment=ENVIRONMENT)
        served_before = await _served_fetches(config_endpoint)
        values = await asyncio.gather(*(fresh.get(SINGLE_FLIGHT_KEY) for _ in range(SINGLE_FLIGHT_READERS)))
        served = await _served_fetches(config_endpoint) - served_before
    finally:
        await manager.close()
        await resolver.close()
        await client.aclose()
    return {
        "cached_get_us": from_cache,
        "service_get_us": from_service,
        "single_flight": {
            "readers": SINGLE_FLIGHT_READERS,
            "distinct_values": len({value.value for value in values}),
            "client_fetches": fresh.stats().fetches,
            "server_get_configuration_calls": served,
        },
    }


async def _failover(target: LocalTarget, victim_endpoint: str, victim_id: str) -> dict[str, object]:
    engine = engine_endpoint(target)
    async with grpc.aio.insecure_channel(engine) as channel:
        stub = trading_pb2_grpc.TradingEngineServiceStub(channel)
        request = order_request()
        # Both instances serve before the kill: the engine has seen the second one.
        seen: set[str] = set()
        deadline = time.monotonic() + FAILOVER_TIMEOUT_S
        while victim_id not in seen or len(seen) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{engine}: SubmitOrder never reached both {RISK_MONITOR} instances: saw {seen}")
            seen.add((await stub.SubmitOrder(request, timeout=CALL_TIMEOUT_S)).risk_instance_id)
        baseline = percentiles(await sequential_latencies(lambda: stub.SubmitOrder(request), 200))["p50"] / 1e6

        orders: list[tuple[float, float, str]] = []  # (sent, answered, risk_instance_id or error code)
        stop = asyncio.Event()

        async def submit() -> None:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    outcome = (await stub.SubmitOrder(request, timeout=CALL_TIMEOUT_S)).risk_instance_id
                except grpc.aio.AioRpcError as exc:
                    outcome = exc.code().name
                orders.append((sent, time.monotonic(), outcome))

        load = asyncio.create_task(submit())
        await asyncio.sleep(0.2)
        killed_at = time.monotonic()
        target.kill_service(RISK_MONITOR, 1)
        forgotten_at = None
        while time.monotonic() - killed_at < FAILOVER_TIMEOUT_S:
            status = await stub.GetStatus(trading_pb2.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
            risk = next(d for d in status.dependencies if d.service == RISK_MONITOR)
            if victim_endpoint not in risk.endpoints:
                forgotten_at = time.monotonic()
                break
            await asyncio.sleep(STATUS_POLL_S)
        await asyncio.sleep(0.3)
        stop.set()
        await load

    after = [order for order in orders if order[0] >= killed_at]
    # An order that tried the dead instance first took a failed attempt and a retry back-off longer.
    slow = [order for order in after if order[1] - order[0] > 5 * baseline]
    return {
        "engine_forgot_instance_s": None if forgotten_at is None else forgotten_at - killed_at,
        "last_slowed_order_s": max((order[1] - killed_at for order in slow), default=0.0),
        "orders_after_kill": len(after),
        "orders_slowed": len(slow),
        "orders_failed": sum(1 for order in after if order[2] not in seen),
        "answered_by_killed_instance_after_kill": sum(1 for order in after if order[2] == victim_id),
        "baseline_p50_ms": baseline * 1e3,
    }


def measure_failure_detection(target: LocalTarget) -> dict[str, object]:
    """SIGKILL one of two risk-monitors under load; then flush Redis and time until all are registered again."""
    victim = target.scale(RISK_MONITOR, 2)[1]
    failover = asyncio.run(_failover(target, victim.endpoint, victim.instance_id))

    expected = {(handle.service, handle.instance_id) for s in ALL_SERVICES for handle in target.instances(s)}
    client = redis.Redis.from_url(target.redis_url, decode_responses=True)
    try:
        flushed_at = time.monotonic()
        target.flush_redis()
        while True:
            registered = {(s, i.instance_id) for s in ALL_SERVICES for i in lookup_sync(client, s)}
            if expected <= registered:
                reregistered_s = time.monotonic() - flushed_at
                break
            if time.monotonic() - flushed_at > FAILOVER_TIMEOUT_S:
                missing = expected - registered
                raise RuntimeError(f"after FLUSHALL, still unregistered after {FAILOVER_TIMEOUT_S}s: {missing}")
            time.sleep(0.005)
    finally:
        client.close()
    return {"kill": failover, "redis_flush_reregistered_s": reregistered_s}


def config_endpoint(target: LocalTarget) -> str:
    return target.instances(CONFIGURATION_SERVICE)[0].endpoint
