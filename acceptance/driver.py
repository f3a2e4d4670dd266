"""EcosystemDriver: the domain operations steps perform on a running stack, over real gRPC calls."""

from __future__ import annotations

from typing import Any

import redis
from grpc_health.v1 import health_pb2

from acceptance.otlp_receiver import OtlpReceiver
from acceptance.rpc import RpcClient, RpcResult
from acceptance.targets.base import StackTarget
from acceptance.waits import wait_until
from ecosystem.discovery import ServiceInstance, lookup_sync, registry_snapshot
from ecosystem.names import (
    ALL_SERVICES,
    GRPC_SERVICES,
    RISK_MONITOR,
    STATS_SERVICE,
    TEST_COORDINATOR,
    TRADING_SYSTEM_ENGINE,
)

ENGINE = GRPC_SERVICES[TRADING_SYSTEM_ENGINE]
COORDINATOR = GRPC_SERVICES[TEST_COORDINATOR]
CONFIG = GRPC_SERVICES["configuration-service"]
STACK_RECOVERY_S = 30.0
# Registry expiry is judged by Redis TIME against the suite's clock: allow for both, and for polling.
EXPIRY_MARGIN_S = 1.0


class EcosystemDriver:
    def __init__(self, stack: StackTarget, rpc: RpcClient, otlp: OtlpReceiver | None) -> None:
        self.stack = stack
        self.rpc = rpc
        self.otlp = otlp
        self._redis = redis.Redis.from_url(stack.redis_url, decode_responses=True, socket_timeout=2)

    def close(self) -> None:
        self._redis.close()

    def call(self, service: str, method: str, body: Any = None, **options: Any) -> RpcResult:
        """`method` is "Method" on the service's own API or "pkg.Service/Method" on any other."""
        if "/" not in method:
            method = f"{GRPC_SERVICES[service]}/{method}"
        return self.rpc.call(self.stack.endpoint(service), method, body, **options)

    def call_instance(self, endpoint: str, method: str, body: Any = None, **options: Any) -> RpcResult:
        return self.rpc.call(endpoint, method, body, **options)

    # Orders
    def submit_order(self, quantity: float, symbol: str, price: float, **options: Any) -> RpcResult:
        order = {
            "strategy_id": "acceptance", "symbol": symbol, "side": "SIDE_BUY", "quantity": quantity, "price": price,
        }
        return self.call(TRADING_SYSTEM_ENGINE, "SubmitOrder", order, **options)

    def engine_status(self) -> dict[str, Any]:
        return self.ok_body(self.call(TRADING_SYSTEM_ENGINE, "GetStatus"))

    def dependency(self, service: str) -> dict[str, Any]:
        for dependency in self.engine_status()["dependencies"]:
            if dependency["service"] == service:
                return dependency
        raise AssertionError(f"trading-system-engine's GetStatus does not list {service}")

    # Registry and health
    def registered(self, service: str) -> list[ServiceInstance]:
        return lookup_sync(self._redis, service)

    def registry_ttl_s(self, *services: str) -> float:
        """The TTL the running instances of `services` registered with: expiry minus last heartbeat."""
        instances = [i for service in services for i in self.registered(service)]
        return max((i.expires_at_ms - i.heartbeat_at_ms) / 1000 for i in instances)

    def wait_expired(self, service: str, instance_id: str, ttl_s: float, why: str) -> None:
        """Wait until an instance that stopped heartbeating leaves lookups: at most its TTL."""
        wait_until(
            lambda: {i.instance_id for i in self.registered(service)},
            lambda registered: instance_id not in registered,
            timeout=ttl_s + EXPIRY_MARGIN_S,
            what=f"{why} {service} instance {instance_id} leaves the registry (TTL {ttl_s:g}s)",
        )

    def wait_all_registered(self, timeout_s: float) -> None:
        wait_until(
            lambda: {service: len(self.registered(service)) for service in ALL_SERVICES},
            lambda counts: all(counts.values()),
            timeout=timeout_s + EXPIRY_MARGIN_S,
            what="every service is registered",
        )

    def registry_snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return registry_snapshot(self._redis)

    def health(self, service: str, grpc_service: str, endpoint: str | None = None) -> RpcResult:
        return self.rpc.call(
            endpoint or self.stack.endpoint(service),
            "grpc.health.v1.Health/Check",
            health_pb2.HealthCheckRequest(service=grpc_service),
        )

    def operation_count(self, service: str, method: str) -> int:
        """Requests `service` (every instance) has counted for one of its own methods."""
        total = 0
        operation = f"/{GRPC_SERVICES[service]}/{method}"
        for instance in self.stack.instances(service):
            stats = self.ok_body(self.call_instance(instance.endpoint, f"{STATS_SERVICE}/GetPerformanceStats"))
            total += sum(int(op["total_requests"]) for op in stats["operations"] if op["operation"] == operation)
        return total

    def config_cache(self, service: str) -> dict[str, Any]:
        return self.ok_body(self.call(service, f"{STATS_SERVICE}/GetPerformanceStats"))["config_cache"]

    # Chaos and scenarios
    def inject_chaos(self, event_type: str, target: str, parameters: dict[str, str], duration_ms: int) -> RpcResult:
        request = {"event_type": event_type, "target_service": target, "parameters": parameters,
                   "duration_ms": duration_ms}
        return self.call(TEST_COORDINATOR, "InjectChaos", request)

    def chaos_event(self, event_id: str) -> dict[str, Any]:
        return self.ok_body(self.call(TEST_COORDINATOR, "GetChaosEvent", {"event_id": event_id}))

    def end_chaos(self, event_id: str) -> None:
        self.ok_body(self.call(TEST_COORDINATOR, "EndChaosEvent", {"event_id": event_id}))
        wait_until(
            lambda: self.chaos_event(event_id)["status"],
            lambda status: status in ("RECOVERED", "FAILED"),
            timeout=10,
            what=f"chaos event {event_id} is RECOVERED after it was ended",
        )

    # Recovery after a scenario broke something
    def recover(self) -> None:
        """Restore the stack's shape, then wait until orders flow again through a closed breaker."""
        self.stack.restore()

        def order_and_breaker() -> tuple[str, str]:
            result = self.submit_order(1, "BTC-USD", 100)
            outcome = result.body["status"] if result.ok else result.describe()
            return outcome, self.dependency(RISK_MONITOR)["breaker"]["state"]

        wait_until(
            order_and_breaker,
            lambda seen: seen == ("ACCEPTED", "CLOSED"),
            timeout=STACK_RECOVERY_S,
            what="the trading engine accepts an order again with its risk-monitor breaker CLOSED",
            interval=0.1,
        )

    @staticmethod
    def ok_body(result: RpcResult) -> dict[str, Any]:
        if not result.ok:
            raise AssertionError(f"expected {result.describe()} to succeed")
        return result.body
