"""The healthy stack every scenario starts on, as one list of problems (empty = healthy).

Healthy means: no instance failed, exited or was replaced behind the suite's back since the stack was
(re)built (an orchestrator's restart would hide it; `StackTarget.unexpected_exits`); each service the manifest
declares runs as many instances as when the stack started (one each on the targets the suite starts), which the
registry lists, with entries that keep the registry contract, under the ids the target started them with and
which answer grpc.health.v1 SERVING for their declared health name. A stack with the trading contracts also:
configuration-service serves the seeded risk limits; the test coordinator holds no active chaos event or test
scenario; an order of the probe shape gets a risk decision (accepted or rejected: a decision proves the path
works) through a closed breaker; and the trading engine uses no endpoint the registry no longer lists.
"""

from __future__ import annotations

import redis

from acceptance import health
from acceptance.declared import Declared
from acceptance.manifest import DeclaredService, Manifest
from acceptance.registry_contract import read_service
from acceptance.rpc import RpcClient, RpcResult
from acceptance.targets.base import StackTarget
from ecosystem.names import (
    CONFIGURATION_SERVICE,
    GRPC_SERVICES,
    RISK_MONITOR,
    TEST_COORDINATOR,
    TRADING_SYSTEM_ENGINE,
)

PROBE_ORDER = {
    "strategy_id": "stack-health", "symbol": "BTC-USD", "side": "SIDE_BUY", "quantity": 1, "price": 100,
}
PROBE_TIMEOUT_S = 2.0
# The contract of the features that drive orders, limits and chaos through the reference services' APIs.
TRADING_CONTRACT = "trading"
_ACTIVE_CHAOS = ("PENDING", "INJECTED")
# What risk-monitor reads for every decision: a scenario that changed one must have set it back.
RISK_LIMITS = ("risk.max_order_quantity", "risk.position_limits.max_notional", "risk.allowed_symbols")


def stack_problems(
    stack: StackTarget, manifest: Manifest, rpc: RpcClient, registry: redis.Redis, declared: Declared,
    shape: dict[str, int],
) -> list[str]:
    """Everything that keeps the stack from being healthy, each naming the service and what was expected;
    `shape` is how many instances each service runs when healthy."""
    problems = list(stack.unexpected_exits())
    for service in manifest.services:
        problems += _service_problems(stack, registry, service, shape[service.name])
    if problems or TRADING_CONTRACT not in manifest.contracts:
        return problems  # the calls below would only fail for the same reasons
    problems += _configuration_problems(stack, rpc, declared)
    coordinator = stack.endpoint(TEST_COORDINATOR)
    coordinator_api = GRPC_SERVICES[TEST_COORDINATOR]
    events = rpc.call(coordinator, f"{coordinator_api}/ListChaosEvents", timeout=PROBE_TIMEOUT_S,
                      server=TEST_COORDINATOR)
    if not events.ok:
        return [f"test-coordinator answers ListChaosEvents with {events.code.name}: {events.details}"]
    problems += [
        f"chaos event {e['event_id']} ({e['event_type']} on {e['target_service']}) is still {e['status']}"
        for e in events.body["events"]
        if e["status"] in _ACTIVE_CHAOS
    ]
    scenarios = rpc.call(coordinator, f"{coordinator_api}/ListActiveScenarios", timeout=PROBE_TIMEOUT_S,
                         server=TEST_COORDINATOR)
    if not scenarios.ok:
        return [*problems, f"test-coordinator answers ListActiveScenarios with {scenarios.code.name}"]
    problems += [f"test scenario {s['scenario_id']} ({s['name']}) is still active" for s in scenarios.body["scenarios"]]
    return problems + _order_path_problems(stack, rpc, registry)


def _service_problems(stack: StackTarget, registry: redis.Redis, declared: DeclaredService, expected: int) -> list[str]:
    service = declared.name
    running = stack.instances(service)
    problems = [] if len(running) == expected else [f"{service} runs {len(running)} instances, expected {expected}"]
    try:
        reading = read_service(registry, service)
    except redis.RedisError as exc:
        return [*problems, f"the registry of {service} cannot be read: {exc}"]
    problems += reading.problems
    registered = {entry.instance_id for entry in reading.serving}
    for handle in running:
        if handle.instance_id not in registered:
            problems.append(f"{service}#{handle.index} (instance {handle.instance_id or '?'}) is not in the registry")
        try:
            status = health.check(handle.endpoint, declared.health_service, timeout=PROBE_TIMEOUT_S,
                                  transport=stack.transport, server=service)
        except health.HealthCheckError as exc:
            status = str(exc)
        if status != health.SERVING:
            problems.append(f"{service}#{handle.index} at {handle.endpoint} answers {status}, expected SERVING")
    problems += [
        f"the registry lists {service} instance {instance_id}, which the target does not run"
        for instance_id in sorted(registered - {handle.instance_id for handle in running})
    ]
    return problems


def _configuration_problems(stack: StackTarget, rpc: RpcClient, declared: Declared) -> list[str]:
    endpoint = stack.endpoint(CONFIGURATION_SERVICE)
    method = f"{GRPC_SERVICES[CONFIGURATION_SERVICE]}/GetConfiguration"
    problems = []
    for key in RISK_LIMITS:
        answer = rpc.call(endpoint, method, {"key": key, "environment": declared.environment},
                          timeout=PROBE_TIMEOUT_S, server=CONFIGURATION_SERVICE)
        seeded = declared.seeded(key)
        if not answer.ok or not seeded.matches(answer.body.get("value", "")):
            served = answer.body.get("value") if answer.ok else _outcome(answer)
            problems.append(f"configuration-service serves {key} = {served}, but the seed declares {seeded.value}")
    return problems


def _order_path_problems(stack: StackTarget, rpc: RpcClient, registry: redis.Redis) -> list[str]:
    engine = stack.endpoint(TRADING_SYSTEM_ENGINE)
    engine_api = GRPC_SERVICES[TRADING_SYSTEM_ENGINE]
    order = rpc.call(engine, f"{engine_api}/SubmitOrder", PROBE_ORDER, timeout=PROBE_TIMEOUT_S,
                     server=TRADING_SYSTEM_ENGINE)
    if not order.ok:
        return [f"an order for 1 BTC-USD at 100 got no risk decision: {_outcome(order)}"]
    status = rpc.call(engine, f"{engine_api}/GetStatus", timeout=PROBE_TIMEOUT_S, server=TRADING_SYSTEM_ENGINE)
    if not status.ok:
        return [f"trading-system-engine answers GetStatus with {_outcome(status)}"]
    problems = []
    for dependency in status.body["dependencies"]:
        state = dependency["breaker"]["state"]
        if dependency["service"] == RISK_MONITOR and state != "CLOSED":
            problems.append(f"trading-system-engine's breaker for {RISK_MONITOR} is {state}, expected CLOSED")
        # An endpoint a scenario registered and removed without a `down` (an impostor, a killed instance) is
        # kept by callers until the expiry it claimed: the next scenario must not start while they hold it.
        registered = {entry.endpoint for entry in read_service(registry, dependency["service"]).serving}
        stale = sorted(set(dependency.get("endpoints", [])) - registered)
        if stale:
            problems.append(f"trading-system-engine still uses {dependency['service']} at {', '.join(stale)}, "
                            "which the registry no longer lists")
    return problems


def _outcome(result: RpcResult) -> str:
    return "OK" if result.ok else f"{result.code.name}: {result.details}"
