"""trading-system-engine: accepts an order once risk-monitor approves it.

    python -m ecosystem.services.trading_system_engine

risk-monitor is found through discovery and called through the client manager with the caller's
remaining deadline; outcomes are recorded with test-coordinator for every active scenario.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from typing import NamedTuple

import grpc

from ecosystem import logs
from ecosystem.api.coordinator.v1 import coordinator_pb2
from ecosystem.api.risk.v1 import risk_pb2
from ecosystem.api.trading.v1 import trading_pb2, trading_pb2_grpc
from ecosystem.client_manager import DependencyStatus, InterServiceClientManager, ServiceCommunicationError
from ecosystem.clients import RiskMonitorClient, TestCoordinatorClient
from ecosystem.config_client import ConfigurationError, ConfigurationServiceClient, ConfigurationUnusable
from ecosystem.control_plane import ControlPlaneLink
from ecosystem.limits import declared_limit
from ecosystem.names import CONFIGURATION_SERVICE, GRPC_SERVICES, RISK_MONITOR, TEST_COORDINATOR, TRADING_SYSTEM_ENGINE
from ecosystem.orders import order_problems
from ecosystem.server import ServiceHost
from ecosystem.settings import Settings

TRADING_ENABLED = "trading.enabled"
RISK_CHECK_TIMEOUT_MS = "trading.risk_check_timeout_ms"
SETTINGS = (TRADING_ENABLED, RISK_CHECK_TIMEOUT_MS)
OUTCOME_REPORT_TIMEOUT_S = 1.0
OUTCOME_DETAIL_CHARS = declared_limit("ecosystem.coordinator.v1.ScenarioOutcome.detail")
# 50 ms was too thin: on a loaded host the engine's answer arrived after the caller's own deadline (seen on docker,
# four stacks on two cores), and the caller saw a bare DEADLINE_EXCEEDED.
DEADLINE_MARGIN_S = 0.1
DEPENDENCIES = (RISK_MONITOR, TEST_COORDINATOR, CONFIGURATION_SERVICE)
ORDER_IDS_PER_READ = 256


class _Decided(NamedTuple):
    """An order and its risk decision as kept for GetOrder, which builds its OrderRecord: few orders are asked
    for, so the copy of the order into a record is made for those only."""

    order: risk_pb2.Order
    status: trading_pb2.OrderStatus
    decision: risk_pb2.CheckOrderResponse
    submitted_ns: int

    def record(self) -> trading_pb2.OrderRecord:
        record = trading_pb2.OrderRecord(
            order_id=self.order.order_id,
            order=self.order,
            status=self.status,
            reasons=self.decision.reasons,
            risk_instance_id=self.decision.instance_id,
        )
        record.submitted_at.FromNanoseconds(self.submitted_ns)  # GetCurrentTime goes through a datetime: 3x the cost
        return record


class TradingEngineServicer(trading_pb2_grpc.TradingEngineServiceServicer):
    def __init__(
        self,
        instance_id: str,
        clients: InterServiceClientManager,
        config: ConfigurationServiceClient,
        control_plane: ControlPlaneLink,
        *,
        orders_kept: int,
    ) -> None:
        self._instance_id = instance_id
        self._orders_kept = orders_kept  # about 1.8 KB each with every field at its limit
        self._clients = clients
        self._config = config
        self._control_plane = control_plane
        self._risk = RiskMonitorClient(clients)
        self._coordinator = TestCoordinatorClient(clients)
        self._orders: OrderedDict[str, _Decided] = OrderedDict()
        self._order_ids = _random_ids()
        self._counts: Counter[int] = Counter()

    async def SubmitOrder(
        self, request: trading_pb2.SubmitOrderRequest, context: grpc.aio.ServicerContext
    ) -> trading_pb2.SubmitOrderResponse:
        check = risk_pb2.CheckOrderRequest()
        order = check.order  # filled in place: CheckOrderRequest(order=order) would copy it
        order.order_id = next(self._order_ids)
        order.strategy_id = request.strategy_id
        order.symbol = request.symbol
        order.side = request.side
        order.quantity = request.quantity
        order.price = request.price
        problems = order_problems(order)
        if problems:
            logs.log_decision("order_refused", order_id=order.order_id, problems=problems)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid order: " + "; ".join(problems))
        try:
            trading, risk_timeout = self._config.cached(SETTINGS) or await self._config.get_many(
                SETTINGS, timeout=context.time_remaining()
            )
            enabled, risk_timeout_s = trading.as_bool(), risk_timeout.as_number() / 1000
        except ConfigurationUnusable as exc:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, f"trading-system-engine cannot use its settings: {exc}"
            )
        except ConfigurationError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"trading-system-engine cannot read its settings: {exc}")
        if not risk_timeout_s > 0:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"trading is blocked: {RISK_CHECK_TIMEOUT_MS} is {risk_timeout_s * 1000:g}, expected a positive number",
            )
        if not enabled:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"trading is disabled ({TRADING_ENABLED} = false)")
        remaining = context.time_remaining()
        timeout = risk_timeout_s if remaining is None else min(remaining - _margin(remaining), risk_timeout_s)
        try:
            decision = await self._risk.check_order(check, timeout=timeout)
        except ServiceCommunicationError as exc:
            logs.log_event("order_failed", level="warning", order_id=order.order_id, code=exc.code.name, error=str(exc))
            await self._report_outcome(order.order_id, "FAILED", str(exc))
            await context.abort(exc.code, f"no risk decision for order {order.order_id}: {exc}")
        status = trading_pb2.ACCEPTED if decision.decision == risk_pb2.DECISION_APPROVED else trading_pb2.REJECTED
        self._remember(_Decided(order, status, decision, time.time_ns()))
        if logs.decisions_logged():
            logs.log_decision(
                "order_decided", order_id=order.order_id, symbol=order.symbol, quantity=order.quantity,
                price=order.price, status=trading_pb2.OrderStatus.Name(status), reasons=list(decision.reasons),
                risk_instance_id=decision.instance_id,
            )
        if self._control_plane.scenarios_active():
            await self._report_outcome(
                order.order_id, trading_pb2.OrderStatus.Name(status), "; ".join(decision.reasons)
            )
        response = trading_pb2.SubmitOrderResponse(
            order_id=order.order_id,
            status=status,
            limit_utilization=decision.limit_utilization,
            risk_instance_id=decision.instance_id,
        )
        if reasons := decision.reasons:  # as in risk-monitor: an empty one passed to the constructor costs a copy
            response.reasons.extend(reasons)
        return response

    async def GetOrder(
        self, request: trading_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> trading_pb2.OrderRecord:
        decided = self._orders.get(request.order_id)
        if decided is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"order not found: {request.order_id!r}")
        return decided.record()

    async def GetStatus(
        self, request: trading_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> trading_pb2.EngineStatus:
        return trading_pb2.EngineStatus(
            instance_id=self._instance_id,
            dependencies=[_dependency_proto(await self._clients.status(s)) for s in DEPENDENCIES],
            config_cache=self._config.stats_proto(),
            active_scenarios=self._control_plane.active_scenarios(),
            orders_accepted=self._counts[trading_pb2.ACCEPTED],
            orders_rejected=self._counts[trading_pb2.REJECTED],
        )

    def _remember(self, decided: _Decided) -> None:
        self._counts[decided.status] += 1
        self._orders[decided.order.order_id] = decided
        if len(self._orders) > self._orders_kept:
            self._orders.popitem(last=False)

    async def _report_outcome(self, order_id: str, outcome: str, detail: str) -> None:
        """Record the outcome with every active scenario before answering, so it is never lost: one call, however
        many scenarios are active."""
        scenario_ids = self._control_plane.active_scenarios()
        if not scenario_ids:
            return
        report = coordinator_pb2.ScenarioOutcome(
            service=TRADING_SYSTEM_ENGINE, order_id=order_id, outcome=outcome, detail=detail[:OUTCOME_DETAIL_CHARS]
        )
        try:
            answer = await self._coordinator.record_outcome(scenario_ids, report, timeout=OUTCOME_REPORT_TIMEOUT_S)
        except ServiceCommunicationError as exc:
            logs.log_event(
                "scenario_outcome_not_recorded", level="warning", scenario_ids=scenario_ids, order_id=order_id,
                error=str(exc),
            )
            return
        if answer.not_recorded:
            logs.log_event("scenario_outcome_not_recorded", level="warning", order_id=order_id,
                           reasons=list(answer.not_recorded))


def _random_ids() -> Iterator[str]:
    """Random 128-bit ids in hex, read from the OS ORDER_IDS_PER_READ at a time rather than a system call each."""
    while True:
        block = os.urandom(16 * ORDER_IDS_PER_READ).hex()
        for start in range(0, len(block), 32):
            yield block[start:start + 32]


def _margin(remaining_s: float) -> float:
    """Time kept back from the caller's deadline, so a late risk-monitor fails here first and the
    caller learns which dependency was slow instead of a bare DEADLINE_EXCEEDED."""
    return min(DEADLINE_MARGIN_S, remaining_s / 5)


def _dependency_proto(status: DependencyStatus) -> trading_pb2.DependencyStatus:
    breaker = status.breaker
    proto = trading_pb2.DependencyStatus(
        service=status.service,
        endpoints=status.endpoints,
        source=status.source,
        breaker=trading_pb2.BreakerStatus(
            state=breaker.state,
            consecutive_failures=breaker.consecutive_failures,
            opened_count=breaker.opened_count,
            half_opened_count=breaker.half_opened_count,
            closed_count=breaker.closed_count,
        ),
        last_latency_ms=status.last_latency_ms,
        requests=status.requests,
        failures=status.failures,
        retries=status.retries,
        p50_latency_ms=status.p50_latency_ms,
        p95_latency_ms=status.p95_latency_ms,
        p99_latency_ms=status.p99_latency_ms,
        last_error=status.last_error,
        rejected=[
            trading_pb2.RejectedInstance(instance_id=r.instance_id, endpoint=r.endpoint, reason=r.reason)
            for r in status.rejected
        ],
    )
    if breaker.last_transition_at is not None:
        proto.breaker.last_transition_at.FromNanoseconds(int(breaker.last_transition_at * 1e9))
    return proto


async def serve(settings: Settings) -> None:
    async with ServiceHost(TRADING_SYSTEM_ENGINE, settings) as host:
        config = await host.configuration_client()
        for dependency in DEPENDENCIES:
            await host.clients.watch(dependency)
        servicer = TradingEngineServicer(
            host.instance_id, host.clients, config, host.control_plane, orders_kept=settings.orders_kept
        )
        host.add_service(
            trading_pb2_grpc.add_TradingEngineServiceServicer_to_server,
            servicer,
            GRPC_SERVICES[TRADING_SYSTEM_ENGINE],
        )
        await host.serve()


def main() -> None:
    asyncio.run(serve(Settings.from_env()))


if __name__ == "__main__":
    main()
