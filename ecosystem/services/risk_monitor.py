"""risk-monitor: pre-trade checks against limits read from configuration-service.

    python -m ecosystem.services.risk_monitor

Limits are read through the caching configuration client on every check, so a limit changed in
configuration-service applies as soon as the client's watch delivers it, without a restart.
Exposure and alerts are this instance's own view, bounded: exposures of at most `strategies_kept` strategies
(the least recently active one is forgotten first), `ALERT_QUEUE_SIZE` alerts queued per stream, at most
`MAX_ALERT_STREAMS` streams.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from ecosystem.api.risk.v1 import risk_pb2, risk_pb2_grpc
from ecosystem.config_client import ConfigurationError, ConfigurationServiceClient, ConfigurationUnusable, ConfigValue
from ecosystem.logs import decisions_logged, log_decision
from ecosystem.names import GRPC_SERVICES, RISK_MONITOR
from ecosystem.orders import order_problems
from ecosystem.server import ServiceHost
from ecosystem.settings import Settings

MAX_QUANTITY = "risk.max_order_quantity"
MAX_NOTIONAL = "risk.position_limits.max_notional"
ALLOWED_SYMBOLS = "risk.allowed_symbols"
LIMITS = (MAX_QUANTITY, MAX_NOTIONAL, ALLOWED_SYMBOLS)
ALERT_QUEUE_SIZE = 1000
MAX_ALERT_STREAMS = 64


@dataclass
class _Exposure:
    gross: float = 0.0
    net: float = 0.0
    approved: int = 0
    rejected: int = 0
    last_status: str = ""


class RiskMonitorServicer(risk_pb2_grpc.RiskMonitorServiceServicer):
    def __init__(self, config: ConfigurationServiceClient, instance_id: str, *, strategies_kept: int) -> None:
        self._config = config
        self._instance_id = instance_id
        self._strategies_kept = strategies_kept
        self._exposures: OrderedDict[str, _Exposure] = OrderedDict()
        self._subscribers: set[tuple[str, asyncio.Queue[risk_pb2.RiskAlert | None]]] = set()
        # The allowed symbols as last parsed, with the value they were parsed from: parsed again only when it changes.
        self._symbols: tuple[ConfigValue | None, frozenset[str] | None] = (None, None)

    async def CheckOrder(
        self, request: risk_pb2.CheckOrderRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.CheckOrderResponse:
        order = request.order
        problems = order_problems(order)
        if problems:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid order: " + "; ".join(problems))
        try:
            quantity_limit, notional_limit, symbols = self._config.cached(LIMITS) or await self._config.get_many(
                LIMITS, timeout=context.time_remaining()
            )
            max_quantity, max_notional = quantity_limit.as_number(), notional_limit.as_number()
            allowed = self._allowed(symbols)
        except ConfigurationUnusable as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"risk-monitor cannot use its limits: {exc}")
        except ConfigurationError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"risk-monitor cannot read its limits: {exc}")
        if allowed is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"risk-monitor cannot check orders: {ALLOWED_SYMBOLS} is {symbols.value[:80]}, expected a JSON list "
                'of symbols such as ["BTC-USD"]',
            )
        quantity, symbol = order.quantity, order.symbol  # each read of a message field converts it anew
        notional = quantity * order.price
        breaches = []
        if quantity > max_quantity:
            breaches.append((MAX_QUANTITY, max_quantity, quantity, "quantity"))
        if notional > max_notional:
            breaches.append((MAX_NOTIONAL, max_notional, notional, "notional"))
        reasons = [f"{what} {observed:.12g} exceeds {limit} {value:.12g}" for limit, value, observed, what in breaches]
        if symbol not in allowed:
            reasons.append(f"symbol {symbol} is not in {ALLOWED_SYMBOLS}")
        if decisions_logged():
            log_decision(
                "order_checked", order_id=order.order_id, decision="REJECTED" if reasons else "APPROVED",
                reasons=reasons, max_quantity=max_quantity, max_notional=max_notional,
            )
        exposure = self._exposure(order.strategy_id)
        if reasons:
            exposure.rejected += 1
            for limit, value, observed, _ in breaches:
                self._publish(order, limit, value, observed)
        else:
            exposure.approved += 1
            exposure.gross += notional
            exposure.net += notional if order.side == risk_pb2.SIDE_BUY else -notional
        response = risk_pb2.CheckOrderResponse(
            decision=risk_pb2.DECISION_REJECTED if reasons else risk_pb2.DECISION_APPROVED,
            limit_utilization=max(_utilization(quantity, max_quantity), _utilization(notional, max_notional)),
            instance_id=self._instance_id,
        )
        if reasons:  # an approval has none, and an empty repeated field passed to the constructor costs a copy
            response.reasons.extend(reasons)
        return response

    async def ReportStrategyStatus(
        self, request: risk_pb2.StrategyStatus, context: grpc.aio.ServicerContext
    ) -> risk_pb2.ReportStrategyStatusResponse:
        if not request.strategy_id or not request.status:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "strategy_id and status are required")
        self._exposure(request.strategy_id).last_status = request.status
        return risk_pb2.ReportStrategyStatusResponse(accepted=True)

    async def GetRiskMetrics(
        self, request: risk_pb2.GetRiskMetricsRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.RiskMetrics:
        exposure = self._exposures.get(request.strategy_id)
        if exposure is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no risk metrics for strategy {request.strategy_id!r}")
        return risk_pb2.RiskMetrics(
            strategy_id=request.strategy_id,
            gross_exposure=exposure.gross,
            net_exposure=exposure.net,
            approved_orders=exposure.approved,
            rejected_orders=exposure.rejected,
            last_status=exposure.last_status,
        )

    async def StreamRiskAlerts(
        self, request: risk_pb2.StreamRiskAlertsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[risk_pb2.RiskAlert]:
        if len(self._subscribers) >= MAX_ALERT_STREAMS:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"risk-monitor serves at most {MAX_ALERT_STREAMS} StreamRiskAlerts streams; retry when one ends",
            )
        subscriber = (request.strategy_id, asyncio.Queue[risk_pb2.RiskAlert | None](ALERT_QUEUE_SIZE))
        self._subscribers.add(subscriber)
        try:
            while (alert := await subscriber[1].get()) is not None:
                yield alert
        finally:
            self._subscribers.discard(subscriber)

    def _allowed(self, symbols: ConfigValue) -> frozenset[str] | None:
        """The symbols the JSON list `symbols` allows; None when it is not a list of symbols."""
        if self._symbols[0] is not symbols:
            value = symbols.as_json()
            listed = isinstance(value, list) and all(isinstance(symbol, str) for symbol in value)
            self._symbols = (symbols, frozenset(value) if listed else None)
        return self._symbols[1]

    def _exposure(self, strategy_id: str) -> _Exposure:
        exposure = self._exposures.get(strategy_id)
        if exposure is None:
            exposure = self._exposures[strategy_id] = _Exposure()
            if len(self._exposures) > self._strategies_kept:
                self._exposures.popitem(last=False)
        else:
            self._exposures.move_to_end(strategy_id)
        return exposure

    async def end_streams(self) -> None:
        for _, queue in list(self._subscribers):
            _offer(queue, None)

    def _publish(self, order: risk_pb2.Order, limit: str, value: float, observed: float) -> None:
        alert = risk_pb2.RiskAlert(
            alert_id=uuid.uuid4().hex,
            strategy_id=order.strategy_id,
            order_id=order.order_id,
            limit=limit,
            limit_value=value,
            observed=observed,
            message=f"order {order.order_id or '(unnamed)'} of {order.strategy_id} breaches {limit}: "
            f"{observed:.12g} > {value:.12g}",
        )
        alert.raised_at.GetCurrentTime()
        for strategy_id, queue in list(self._subscribers):
            if strategy_id in ("", order.strategy_id):
                _offer(queue, alert)


def _utilization(observed: float, limit: float) -> float:
    return observed / limit if limit > 0 else math.inf


def _offer(queue: asyncio.Queue[risk_pb2.RiskAlert | None], item: risk_pb2.RiskAlert | None) -> None:
    """Queue without blocking; a subscriber too slow to keep up loses its oldest alert."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


async def serve(settings: Settings) -> None:
    async with ServiceHost(RISK_MONITOR, settings) as host:
        servicer = RiskMonitorServicer(
            await host.configuration_client(), host.instance_id, strategies_kept=settings.strategies_kept
        )
        host.add_service(risk_pb2_grpc.add_RiskMonitorServiceServicer_to_server, servicer, GRPC_SERVICES[RISK_MONITOR])
        host.on_shutdown(servicer.end_streams)
        await host.serve()


def main() -> None:
    asyncio.run(serve(Settings.from_env()))


if __name__ == "__main__":
    main()
