"""PerformanceMonitor and LatencyWindow on a fake clock: counts, latency figures, rate, health."""

from __future__ import annotations

import pytest
from fakes import FakeClock

from ecosystem.api.common.v1 import stats_pb2
from ecosystem.performance import LatencyWindow, OperationStats, PerformanceMonitor, to_proto

OP = "/ecosystem.risk.v1.RiskMonitorService/CheckOrder"



@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def monitor(clock: FakeClock) -> PerformanceMonitor:
    return PerformanceMonitor(clock=clock)


def record_many(monitor: PerformanceMonitor, ok: int, failed: int, latency_s: float = 0.001) -> None:
    for _ in range(ok):
        monitor.record(OP, latency_s, ok=True)
    for _ in range(failed):
        monitor.record(OP, latency_s, ok=False)


def test_counts_latency_figures_and_error_rate(monitor: PerformanceMonitor) -> None:
    monitor.record(OP, 0.002, ok=True)
    monitor.record(OP, 0.004, ok=True)
    monitor.record(OP, 0.009, ok=False)
    monitor.record(OP, 0.001, ok=True)

    stats = monitor.stats(OP)

    assert (stats.operation, stats.total_requests, stats.successful_requests, stats.failed_requests) == (OP, 4, 3, 1)
    assert stats.min_latency_ms == pytest.approx(1.0)
    assert stats.average_latency_ms == pytest.approx(4.0)
    assert stats.max_latency_ms == pytest.approx(9.0)
    assert stats.error_rate == pytest.approx(0.25)


def test_p95_and_p99_by_nearest_rank(monitor: PerformanceMonitor) -> None:
    for ms in range(1000, 0, -1):  # 1..1000 ms, recorded out of order
        monitor.record(OP, ms / 1000, ok=True)

    stats = monitor.stats(OP)

    assert stats.p95_latency_ms == pytest.approx(950.0)
    assert stats.p99_latency_ms == pytest.approx(990.0)


def test_latency_window_percentiles_on_small_samples() -> None:
    window = LatencyWindow()
    assert window.percentile(99) == 0.0
    assert window.last_ms == 0.0

    for seconds in (0.030, 0.010, 0.020):
        window.add(seconds)

    assert window.percentile(50) == pytest.approx(20.0)
    assert window.percentile(95) == pytest.approx(30.0)
    assert window.percentile(100) == pytest.approx(30.0)
    assert window.last_ms == pytest.approx(20.0)


def test_latency_window_keeps_only_the_most_recent_samples() -> None:
    window = LatencyWindow(size=10)

    for ms in range(1, 101):
        window.add(ms / 1000)

    assert len(window) == 10
    assert window.percentile(1) == pytest.approx(91.0)  # 1..90 are gone
    assert window.percentile(100) == pytest.approx(100.0)


@pytest.mark.parametrize("q", [0, -5, 100.5])
def test_latency_window_rejects_percentiles_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match="percentile q must be in"):
        LatencyWindow().percentile(q)


@pytest.mark.parametrize(
    ("ok", "failed", "health"),
    [
        (100, 0, "healthy"),
        (95, 5, "healthy"),
        (94, 6, "degraded"),
        (90, 10, "degraded"),
        (89, 11, "unhealthy"),
        (0, 3, "unhealthy"),
    ],
)
def test_health_thresholds(monitor: PerformanceMonitor, ok: int, failed: int, health: str) -> None:
    record_many(monitor, ok, failed)

    assert monitor.stats(OP).health == health
    assert monitor.health() == health


def test_failures_leave_the_health_window(monitor: PerformanceMonitor, clock: FakeClock) -> None:
    record_many(monitor, ok=0, failed=20)
    clock.advance(59.0)
    assert monitor.stats(OP).health == "unhealthy"

    clock.advance(2.0)
    record_many(monitor, ok=20, failed=0)
    assert monitor.stats(OP).health == "healthy"  # the failures are 61 s old, outside the window

    stats = monitor.stats(OP)
    assert (stats.total_requests, stats.failed_requests, stats.error_rate) == (40, 20, 0.5)  # lifetime figures


def test_healthy_when_the_window_is_empty(monitor: PerformanceMonitor, clock: FakeClock) -> None:
    record_many(monitor, ok=0, failed=10)
    clock.advance(61.0)

    stats = monitor.stats(OP)

    assert stats.health == "healthy"
    assert stats.requests_per_second == 0.0


def test_requests_per_second_over_the_window(monitor: PerformanceMonitor, clock: FakeClock) -> None:
    for _ in range(120):  # 2 per second for 60 s
        monitor.record(OP, 0.001, ok=True)
        clock.advance(0.5)

    assert monitor.stats(OP).requests_per_second == pytest.approx(2.0, rel=0.05)


def test_requests_per_second_since_the_first_request(monitor: PerformanceMonitor, clock: FakeClock) -> None:
    for _ in range(10):  # 10 per second for 2 s
        monitor.record(OP, 0.001, ok=True)
        clock.advance(0.1)
    clock.advance(1.0)
    for _ in range(10):
        monitor.record(OP, 0.001, ok=True)
        clock.advance(0.1)

    # 20 requests in the 3 s since the first one: a young operation is not averaged over 60 s
    assert monitor.stats(OP).requests_per_second == pytest.approx(20 / 3)


def test_a_first_burst_is_averaged_over_one_second(monitor: PerformanceMonitor) -> None:
    record_many(monitor, ok=50, failed=0)

    assert monitor.stats(OP).requests_per_second == pytest.approx(50.0)


def test_memory_stays_bounded(clock: FakeClock) -> None:
    monitor = PerformanceMonitor(clock=clock, health_window_s=60.0, sample_size=100)

    for _ in range(10_000):  # 1000 s at 10 requests per second
        monitor.record(OP, 0.001, ok=True)
        clock.advance(0.1)

    operation = monitor._operations[OP]
    assert len(operation.latencies) == 100
    assert len(operation.buckets) <= 61
    assert monitor.stats(OP).total_requests == 10_000


def test_unknown_operation_reads_as_zeros(monitor: PerformanceMonitor) -> None:
    assert monitor.stats("/nope.v1.Nope/Nothing") == OperationStats(
        "/nope.v1.Nope/Nothing", 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, "healthy"
    )
    assert monitor.all_stats() == []
    assert monitor.health() == "healthy"


def test_all_stats_sorted_and_filtered_by_prefix(monitor: PerformanceMonitor) -> None:
    names = [
        "/ecosystem.risk.v1.RiskMonitorService/CheckOrder",
        "/ecosystem.config.v1.ConfigurationService/GetConfiguration",
        "/ecosystem.risk.v1.RiskMonitorService/AssessPortfolio",
    ]
    for name in names:
        monitor.record(name, 0.001, ok=True)

    assert [s.operation for s in monitor.all_stats()] == sorted(names)
    assert [s.operation for s in monitor.all_stats("/ecosystem.risk.v1.")] == [
        "/ecosystem.risk.v1.RiskMonitorService/AssessPortfolio",
        "/ecosystem.risk.v1.RiskMonitorService/CheckOrder",
    ]


def test_overall_health_is_the_worst_operation(monitor: PerformanceMonitor) -> None:
    for _ in range(10):
        monitor.record("/a.v1.A/Fine", 0.001, ok=True)
    for ok in [True] * 92 + [False] * 8:
        monitor.record("/b.v1.B/Shaky", 0.001, ok=ok)
    assert monitor.health() == "degraded"

    monitor.record("/c.v1.C/Broken", 0.001, ok=False)
    assert monitor.health() == "unhealthy"


def test_calls_in_flight_are_counted_until_they_end(monitor: PerformanceMonitor) -> None:
    monitor.begin("/svc/Slow")
    monitor.begin("/svc/Slow")
    assert monitor.stats("/svc/Slow").in_flight == 2
    assert [stats.operation for stats in monitor.all_stats()] == ["/svc/Slow"], "listed before its first end"

    monitor.end("/svc/Slow", 0.010, ok=True)

    stats = monitor.stats("/svc/Slow")
    assert (stats.in_flight, stats.total_requests, stats.successful_requests) == (1, 1, 1)


def test_to_proto_carries_every_field(monitor: PerformanceMonitor) -> None:
    record_many(monitor, ok=9, failed=1, latency_s=0.005)
    stats = monitor.stats(OP)

    message = to_proto(stats)

    assert isinstance(message, stats_pb2.OperationStats)
    assert message.operation == OP
    assert (message.total_requests, message.successful_requests, message.failed_requests) == (10, 9, 1)
    assert message.average_latency_ms == pytest.approx(5.0)
    assert message.p99_latency_ms == pytest.approx(5.0)
    assert message.error_rate == pytest.approx(0.1)
    assert message.requests_per_second == pytest.approx(stats.requests_per_second)
    assert message.health == "degraded"
