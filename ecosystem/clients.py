"""Typed clients over the InterServiceClientManager: one method per RPC a service needs of another."""

from __future__ import annotations

from collections.abc import Awaitable

from ecosystem.api.coordinator.v1 import coordinator_pb2
from ecosystem.api.risk.v1 import risk_pb2
from ecosystem.client_manager import InterServiceClientManager
from ecosystem.names import RISK_MONITOR, TEST_COORDINATOR


class RiskMonitorClient:
    def __init__(self, clients: InterServiceClientManager) -> None:
        self._clients = clients

    def check_order(
        self, request: risk_pb2.CheckOrderRequest, *, timeout: float | None
    ) -> Awaitable[risk_pb2.CheckOrderResponse]:
        """The call, to await: a coroutine of the client manager's, without one of its own around it."""
        return self._clients.call(
            RISK_MONITOR, "CheckOrder", lambda stub, t: stub.CheckOrder(request, timeout=t), timeout=timeout
        )


class TestCoordinatorClient:
    __test__ = False  # not a pytest test class despite its name

    def __init__(self, clients: InterServiceClientManager) -> None:
        self._clients = clients

    async def record_outcome(
        self, scenario_ids: list[str], outcome: coordinator_pb2.ScenarioOutcome, *, timeout: float | None
    ) -> coordinator_pb2.RecordOutcomeResponse:
        request = coordinator_pb2.RecordOutcomeRequest(scenario_ids=scenario_ids, outcome=outcome)
        return await self._clients.call(
            TEST_COORDINATOR,
            "RecordOutcome",
            lambda stub, t: stub.RecordOutcome(request, timeout=t),
            timeout=timeout,
        )
