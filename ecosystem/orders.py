"""Validation of orders, shared by trading-system-engine and risk-monitor."""

from __future__ import annotations

import math

from ecosystem.api.risk.v1 import risk_pb2


def order_problems(order: risk_pb2.Order) -> list[str]:
    """Every reason `order` is malformed, each naming its field; empty when it is well formed."""
    problems = []
    if not order.strategy_id:
        problems.append("strategy_id is required")
    if not order.symbol:
        problems.append("symbol is required")
    if order.side not in (risk_pb2.SIDE_BUY, risk_pb2.SIDE_SELL):
        problems.append("side must be SIDE_BUY or SIDE_SELL")
    if not (math.isfinite(order.quantity) and order.quantity > 0):
        problems.append(f"quantity must be a positive number, got {order.quantity:g}")
    if not (math.isfinite(order.price) and order.price > 0):
        problems.append(f"price must be a positive number, got {order.price:g}")
    return problems
