"""The four services as real processes (LocalTarget) over real gRPC channels: orders, validation, limits
from configuration-service, dependency status, deadline propagation, graceful shutdown, stats, reflection."""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from acceptance.rpc import RpcClient
from acceptance.targets.local import LocalTarget
from acceptance.waits import wait_until
from ecosystem.api.common.v1 import stats_pb2, stats_pb2_grpc
from ecosystem.api.config.v1 import config_pb2, config_pb2_grpc
from ecosystem.api.coordinator.v1 import coordinator_pb2, coordinator_pb2_grpc
from ecosystem.api.risk.v1 import risk_pb2, risk_pb2_grpc
from ecosystem.api.trading.v1 import trading_pb2, trading_pb2_grpc
from ecosystem.discovery import lookup_sync
from ecosystem.limits import MAX_REQUEST_BYTES, MAX_TEXT
from ecosystem.names import (
    CONFIGURATION_SERVICE,
    GRPC_SERVICES,
    RISK_MONITOR,
    STATS_SERVICE,
    TEST_COORDINATOR,
    TRADING_SYSTEM_ENGINE,
)
from ecosystem.security import ADMIN, SUITE
from ecosystem.services.trading_system_engine import ORDER_IDS_PER_READ, _random_ids

TIMEOUT_S = 5.0
WAIT_S = 10.0
MAX_QUANTITY = "risk.max_order_quantity"
CHECK_ORDER = f"/{GRPC_SERVICES[RISK_MONITOR]}/CheckOrder"


class Channels:
    """One channel per endpoint for a test, all closed after it."""

    def __init__(self, target: LocalTarget) -> None:
        self.target = target
        self._open: dict[tuple[str, str], grpc.Channel] = {}

    def channel(self, service: str, identity: str = SUITE) -> grpc.Channel:
        """mTLS as `identity` (the stack is secure), to the service's first instance."""
        endpoint = self.target.endpoint(service)
        if (endpoint, identity) not in self._open:
            self._open[(endpoint, identity)] = self.target.transport.channel(endpoint, service, identity=identity)
        return self._open[(endpoint, identity)]

    def engine(self) -> trading_pb2_grpc.TradingEngineServiceStub:
        return trading_pb2_grpc.TradingEngineServiceStub(self.channel(TRADING_SYSTEM_ENGINE))

    def risk(self) -> risk_pb2_grpc.RiskMonitorServiceStub:
        return risk_pb2_grpc.RiskMonitorServiceStub(self.channel(RISK_MONITOR))

    def config(self, identity: str = SUITE) -> config_pb2_grpc.ConfigurationServiceStub:
        return config_pb2_grpc.ConfigurationServiceStub(self.channel(CONFIGURATION_SERVICE, identity))

    def coordinator(self) -> coordinator_pb2_grpc.TestCoordinatorServiceStub:
        return coordinator_pb2_grpc.TestCoordinatorServiceStub(self.channel(TEST_COORDINATOR))

    def close(self) -> None:
        for channel in self._open.values():
            channel.close()


@pytest.fixture
def channels(stack: LocalTarget) -> Iterator[Channels]:
    channels = Channels(stack)
    yield channels
    channels.close()
    stack.restore()


def submit(
    channels: Channels, *, quantity: float = 10, price: float = 100, symbol: str = "BTC-USD", timeout: float = TIMEOUT_S
) -> trading_pb2.SubmitOrderResponse:
    request = trading_pb2.SubmitOrderRequest(
        strategy_id="s1", symbol=symbol, side=risk_pb2.SIDE_BUY, quantity=quantity, price=price
    )
    return channels.engine().SubmitOrder(request, timeout=timeout)


def set_limit(channels: Channels, key: str, value: str) -> None:
    request = config_pb2.SetConfigurationRequest(
        key=key, value=value, type=config_pb2.VALUE_TYPE_NUMBER, environment="testing"
    )
    channels.config(ADMIN).SetConfiguration(request, timeout=TIMEOUT_S)


def engine_dependency(channels: Channels, service: str) -> trading_pb2.DependencyStatus:
    status = channels.engine().GetStatus(trading_pb2.GetStatusRequest(), timeout=TIMEOUT_S)
    return next(d for d in status.dependencies if d.service == service)


def test_an_order_within_limits_is_accepted_and_can_be_read_back(channels: Channels) -> None:
    [risk] = channels.target.instances(RISK_MONITOR)

    accepted = submit(channels)

    assert accepted.status == trading_pb2.ACCEPTED and list(accepted.reasons) == []
    assert accepted.risk_instance_id == risk.instance_id
    record = channels.engine().GetOrder(trading_pb2.GetOrderRequest(order_id=accepted.order_id), timeout=TIMEOUT_S)
    assert (record.order_id, record.status, record.order.symbol, record.order.quantity) == (
        accepted.order_id,
        trading_pb2.ACCEPTED,
        "BTC-USD",
        10,
    )


def test_order_ids_stay_distinct_hex_past_one_read_of_random_bytes() -> None:
    ids = list(itertools.islice(_random_ids(), 2 * ORDER_IDS_PER_READ + 1))

    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", order_id) for order_id in ids), ids[:3]


@pytest.mark.parametrize(
    ("order", "limit"),
    [
        ({"quantity": 5_000, "price": 10}, "risk.max_order_quantity"),
        ({"quantity": 100, "price": 20_000}, "risk.position_limits.max_notional"),
        ({"symbol": "DOGE-USD"}, "risk.allowed_symbols"),
    ],
)
def test_an_order_breaching_a_limit_is_rejected_naming_the_limit(
    channels: Channels, order: dict[str, float | str], limit: str
) -> None:
    rejected = submit(channels, **order)

    assert rejected.status == trading_pb2.REJECTED
    assert len(rejected.reasons) == 1 and limit in rejected.reasons[0]


def test_a_malformed_order_is_invalid_argument_naming_each_field(channels: Channels) -> None:
    request = trading_pb2.SubmitOrderRequest(strategy_id="s1", symbol="", quantity=0, price=100)

    with pytest.raises(grpc.RpcError) as raised:
        channels.engine().SubmitOrder(request, timeout=TIMEOUT_S)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = raised.value.details()
    for field in ("symbol", "side", "quantity"):
        assert field in details, f"{field!r} missing from {details!r}"
    assert "price" not in details and "strategy_id" not in details


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # CheckOrderRequest.order = Order(strategy_id=b"\xff\xfe"): a string field that is not UTF-8
        (b"\x0a\x04\x12\x02\xff\xfe", "not a valid ecosystem.risk.v1.CheckOrderRequest"),
        # a length-delimited field whose length runs past the end of the body
        (b"\x0a\x7f\x12", "not a valid ecosystem.risk.v1.CheckOrderRequest"),
        # well formed, with a strategy id over its limit
        (
            risk_pb2.CheckOrderRequest(order=risk_pb2.Order(strategy_id="s" * 129)).SerializeToString(),
            f"order.strategy_id has 129 characters; the limit is {MAX_TEXT}",
        ),
    ],
    ids=["invalid-utf8", "truncated", "over-limit"],
)
def test_a_request_that_does_not_decode_or_exceeds_a_limit_is_invalid_argument_without_internals(
    channels: Channels, body: bytes, expected: str
) -> None:
    check_order = channels.channel(RISK_MONITOR).unary_unary(CHECK_ORDER)

    with pytest.raises(grpc.RpcError) as raised:
        check_order(body, timeout=TIMEOUT_S)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert expected in raised.value.details() and "<class" not in raised.value.details()


def test_a_request_over_the_message_limit_is_resource_exhausted(channels: Channels) -> None:
    request = config_pb2.SetConfigurationRequest(key="app.big", value="x" * MAX_REQUEST_BYTES, environment="testing")

    with pytest.raises(grpc.RpcError) as raised:
        channels.config(ADMIN).SetConfiguration(request, timeout=TIMEOUT_S)

    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_an_unknown_order_id_is_not_found(channels: Channels) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        channels.engine().GetOrder(trading_pb2.GetOrderRequest(order_id="no-such-order"), timeout=TIMEOUT_S)

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-order" in raised.value.details()


def test_check_order_on_risk_monitor_refuses_a_malformed_order(channels: Channels) -> None:
    order = risk_pb2.Order(strategy_id="s1", symbol="BTC-USD", side=risk_pb2.SIDE_SELL, quantity=-1, price=100)

    with pytest.raises(grpc.RpcError) as raised:
        channels.risk().CheckOrder(risk_pb2.CheckOrderRequest(order=order), timeout=TIMEOUT_S)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "quantity must be a positive number, got -1" in raised.value.details()


def test_a_limit_changed_in_configuration_service_changes_the_decision(channels: Channels) -> None:
    assert submit(channels, quantity=10).status == trading_pb2.ACCEPTED
    set_limit(channels, MAX_QUANTITY, "5")
    try:
        rejected = wait_until(
            lambda: submit(channels, quantity=10),
            lambda reply: reply.status == trading_pb2.REJECTED,
            timeout=WAIT_S,
            what=f"an order of 10 is rejected once {MAX_QUANTITY} = 5",
        )
        assert [reason for reason in rejected.reasons if MAX_QUANTITY in reason] == list(rejected.reasons)
    finally:
        set_limit(channels, MAX_QUANTITY, "1000")
    wait_until(
        lambda: submit(channels, quantity=10),
        lambda reply: reply.status == trading_pb2.ACCEPTED,
        timeout=WAIT_S,
        what=f"an order of 10 is accepted again once {MAX_QUANTITY} = 1000",
    )


def test_engine_status_lists_its_three_dependencies_from_the_registry(channels: Channels) -> None:
    submit(channels)

    status = channels.engine().GetStatus(trading_pb2.GetStatusRequest(), timeout=TIMEOUT_S)

    [engine] = channels.target.instances(TRADING_SYSTEM_ENGINE)
    assert status.instance_id == engine.instance_id
    assert {d.service: (d.source, list(d.endpoints)) for d in status.dependencies} == {
        service: ("registry", [channels.target.endpoint(service)])
        for service in (RISK_MONITOR, TEST_COORDINATOR, CONFIGURATION_SERVICE)
    }
    risk = next(d for d in status.dependencies if d.service == RISK_MONITOR)
    assert risk.breaker.state == "CLOSED" and risk.requests >= 1
    assert status.orders_accepted >= 1


def test_the_callers_deadline_reaches_risk_monitor_through_the_engine(channels: Channels) -> None:
    coordinator = channels.coordinator()
    event = coordinator.InjectChaos(
        coordinator_pb2.InjectChaosRequest(
            event_type=coordinator_pb2.NETWORK_LATENCY,
            target_service=RISK_MONITOR,
            parameters={"delay_ms": "2000"},
            duration_ms=5_000,
        ),
        timeout=TIMEOUT_S,
    )
    lookup_event = coordinator_pb2.GetChaosEventRequest(event_id=event.event_id)
    try:
        wait_until(
            lambda: coordinator.GetChaosEvent(lookup_event, timeout=TIMEOUT_S).status,
            lambda status: status == coordinator_pb2.INJECTED,
            timeout=WAIT_S,
            what=f"risk-monitor acknowledges latency event {event.event_id} as INJECTED",
        )

        with pytest.raises(grpc.RpcError) as raised:
            submit(channels, timeout=0.3)

        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        wait_until(
            lambda: engine_dependency(channels, RISK_MONITOR).last_error,
            lambda last_error: "DEADLINE_EXCEEDED" in last_error,
            timeout=WAIT_S,
            what="the engine's risk-monitor dependency reports DEADLINE_EXCEEDED as its last error",
        )
    finally:
        coordinator.EndChaosEvent(coordinator_pb2.EndChaosEventRequest(event_id=event.event_id), timeout=TIMEOUT_S)


def test_risk_monitor_counts_check_order_in_its_performance_stats(channels: Channels) -> None:
    stats = stats_pb2_grpc.StatsServiceStub(channels.channel(RISK_MONITOR))
    request = stats_pb2.GetPerformanceStatsRequest(method_prefix=CHECK_ORDER)

    def check_order_stats() -> tuple[int, int, int]:
        reply = stats.GetPerformanceStats(request, timeout=TIMEOUT_S)
        found = [op for op in reply.operations if op.operation == CHECK_ORDER]
        return (found[0].total_requests, found[0].successful_requests, found[0].failed_requests) if found else (0, 0, 0)

    before = check_order_stats()
    good = risk_pb2.Order(strategy_id="s1", symbol="BTC-USD", side=risk_pb2.SIDE_BUY, quantity=1, price=1)
    channels.risk().CheckOrder(risk_pb2.CheckOrderRequest(order=good), timeout=TIMEOUT_S)
    with pytest.raises(grpc.RpcError):
        channels.risk().CheckOrder(risk_pb2.CheckOrderRequest(order=risk_pb2.Order()), timeout=TIMEOUT_S)

    total, successful, failed = check_order_stats()

    assert (total - before[0], successful - before[1], failed - before[2]) == (2, 1, 1)
    reply = stats.GetPerformanceStats(request, timeout=TIMEOUT_S)
    [risk] = channels.target.instances(RISK_MONITOR)
    assert (reply.service, reply.instance_id) == (RISK_MONITOR, risk.instance_id)


def test_reflection_lists_the_service_stats_and_health(channels: Channels) -> None:
    client = RpcClient(transport=channels.target.transport)
    try:
        services = client.reflected_services(channels.target.endpoint(RISK_MONITOR), server=RISK_MONITOR)
    finally:
        client.close()

    assert {GRPC_SERVICES[RISK_MONITOR], STATS_SERVICE, "grpc.health.v1.Health"} <= set(services)


def test_a_stopped_risk_monitor_says_not_serving_deregisters_and_exits_zero(channels: Channels) -> None:
    [risk] = channels.target.instances(RISK_MONITOR)
    watch = health_pb2_grpc.HealthStub(channels.channel(RISK_MONITOR)).Watch(
        health_pb2.HealthCheckRequest(service=GRPC_SERVICES[RISK_MONITOR]), timeout=WAIT_S
    )
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    seen: list[int] = []
    ended: list[grpc.StatusCode] = []

    def follow() -> None:
        try:
            for reply in watch:
                seen.append(reply.status)
        except grpc.RpcError as exc:
            ended.append(exc.code())
        else:
            ended.append(grpc.StatusCode.OK)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()

    channels.target.stop_service(RISK_MONITOR)

    assert channels.target.exit_code(RISK_MONITOR) == 0
    with redis.Redis.from_url(channels.target.redis_url, socket_timeout=2) as client:
        assert risk.instance_id not in {i.instance_id for i in lookup_sync(client, RISK_MONITOR)}
    follower.join(timeout=WAIT_S)
    assert not follower.is_alive(), "the health Watch stream did not end when risk-monitor exited"
    assert seen and seen[0] == health_pb2.HealthCheckResponse.NOT_SERVING, f"statuses after stop: {seen}"
    assert ended != [grpc.StatusCode.DEADLINE_EXCEEDED]


def test_the_engine_started_before_its_dependencies_uses_them_once_they_appear(channels: Channels) -> None:
    stack = channels.target
    for service in (RISK_MONITOR, CONFIGURATION_SERVICE, TRADING_SYSTEM_ENGINE):
        stack.stop_service(service)
    stack.start_service(TRADING_SYSTEM_ENGINE)

    waiting = engine_dependency(channels, RISK_MONITOR)
    assert (list(waiting.endpoints), waiting.source) == ([], "registry"), "no risk-monitor yet, and it says so"
    with pytest.raises(grpc.RpcError) as refused:
        submit(channels)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

    stack.start_service(CONFIGURATION_SERVICE)
    risk = stack.start_service(RISK_MONITOR)
    accepted = wait_until(
        lambda: submit(channels),
        lambda response: response.status == trading_pb2.ACCEPTED,
        timeout=WAIT_S,
        what="the engine, started first, accepts an order once configuration-service and risk-monitor appear",
    )
    assert accepted.risk_instance_id == risk.instance_id


def test_risk_metrics_follow_approved_orders_and_reported_status(channels: Channels) -> None:
    risk = channels.risk()
    strategy = risk_pb2.StrategyStatus(strategy_id="metrics-strategy", status="RUNNING")
    with pytest.raises(grpc.RpcError) as unknown:
        risk.GetRiskMetrics(risk_pb2.GetRiskMetricsRequest(strategy_id=strategy.strategy_id), timeout=TIMEOUT_S)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

    assert risk.ReportStrategyStatus(strategy, timeout=TIMEOUT_S).accepted
    order = risk_pb2.Order(strategy_id=strategy.strategy_id, symbol="BTC-USD", side=risk_pb2.SIDE_SELL, quantity=2,
                           price=100)
    risk.CheckOrder(risk_pb2.CheckOrderRequest(order=order), timeout=TIMEOUT_S)
    metrics = risk.GetRiskMetrics(risk_pb2.GetRiskMetricsRequest(strategy_id=strategy.strategy_id), timeout=TIMEOUT_S)

    assert (metrics.gross_exposure, metrics.net_exposure, metrics.approved_orders, metrics.last_status) == (
        200, -200, 1, "RUNNING"
    )


def test_an_order_rejected_for_a_limit_raises_a_risk_alert(channels: Channels) -> None:
    alerts = channels.risk().StreamRiskAlerts(risk_pb2.StreamRiskAlertsRequest(strategy_id="s1"), timeout=WAIT_S)
    received: list[risk_pb2.RiskAlert] = []
    reader = threading.Thread(target=lambda: received.append(next(alerts)), daemon=True)
    reader.start()
    try:
        # The stream is live once the server has subscribed it: reject orders until an alert arrives.
        wait_until(
            lambda: (submit(channels, quantity=5_000, price=1), received)[1],
            timeout=WAIT_S,
            what="risk-monitor streams an alert for an order rejected for risk.max_order_quantity",
            interval=0.05,
        )
    finally:
        alerts.cancel()
        reader.join(timeout=WAIT_S)
    alert = received[0]
    assert (alert.strategy_id, alert.limit, alert.limit_value, alert.observed) == (
        "s1", MAX_QUANTITY, 1000, 5000
    )
    assert MAX_QUANTITY in alert.message
