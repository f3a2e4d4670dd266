"""Per-operation request statistics: counts, latency, rate, error rate and health.

Definitions (every figure of `OperationStats`):
- total / successful / failed requests, error rate (failed / total), average, min and max latency:
  since the monitor started.
- p95 / p99 latency: nearest-rank percentiles over the most recent `sample_size` latencies.
- the window: the last `health_window_s` seconds, counted in whole seconds, so a request leaves it
  less than one second late. Memory stays bounded: one bucket per second of the window.
- requests_per_second: requests in the window / min(health_window_s, seconds since the operation's
  first request), that elapsed time floored at 1 s so a first burst does not read as an infinite rate.
- health: success rate in the window >= 0.95 "healthy", >= 0.90 "degraded", else "unhealthy";
  "healthy" when the window holds no request.
- in_flight: calls `begin` counted that have not yet `end`ed, now.

Built for one asyncio event loop (no locks); `record` is the hot path and does O(1) amortised work.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

from ecosystem.api.common.v1 import stats_pb2

HEALTHY = "healthy"
DEGRADED = "degraded"
UNHEALTHY = "unhealthy"
_SEVERITY = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}


class LatencyWindow:
    """The most recent `size` latencies, for percentiles by nearest rank."""

    def __init__(self, size: int = 2048) -> None:
        if size < 1:
            raise ValueError(f"LatencyWindow size must be >= 1, got {size}")
        self._samples: deque[float] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0 < q <= 100) in milliseconds: the smallest sample with at least q % of
        the samples at or below it. 0.0 when empty."""
        if not 0 < q <= 100:
            raise ValueError(f"percentile q must be in (0, 100], got {q}")
        if not self._samples:
            return 0.0
        ordered = sorted(self._samples)
        # q * n first, so that integral ranks (95 of 100) stay exact.
        rank = math.ceil(q * len(ordered) / 100)
        return ordered[rank - 1] * 1000.0

    @property
    def last_ms(self) -> float:
        return self._samples[-1] * 1000.0 if self._samples else 0.0


@dataclass(frozen=True)
class OperationStats:
    operation: str
    total_requests: int
    successful_requests: int
    failed_requests: int
    average_latency_ms: float
    min_latency_ms: float
    max_latency_ms: float
    p95_latency_ms: float
    p99_latency_ms: float
    requests_per_second: float
    error_rate: float
    health: str
    in_flight: int = 0


def to_proto(stats: OperationStats) -> stats_pb2.OperationStats:
    return stats_pb2.OperationStats(**asdict(stats))


def _health(successful: int, total: int) -> str:
    if total == 0:
        return HEALTHY
    success_rate = successful / total
    if success_rate >= 0.95:
        return HEALTHY
    if success_rate >= 0.90:
        return DEGRADED
    return UNHEALTHY


class _Operation:
    __slots__ = ("buckets", "failed", "first_at", "latencies", "max_s", "min_s", "successful", "sum_s")

    def __init__(self, first_at: float, sample_size: int) -> None:
        self.first_at = first_at
        self.successful = 0
        self.failed = 0
        self.sum_s = 0.0
        self.min_s = math.inf
        self.max_s = 0.0
        self.latencies = LatencyWindow(sample_size)
        # [second, requests, successes] per second that saw a request, oldest first.
        self.buckets: deque[list[int]] = deque()


class PerformanceMonitor:
    """Statistics per operation (a full gRPC method name); see the module docstring for definitions."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, health_window_s: float = 60.0, sample_size: int = 2048
    ) -> None:
        if health_window_s <= 0:
            raise ValueError(f"health_window_s must be > 0, got {health_window_s}")
        self._clock = clock
        self._window_s = health_window_s
        self._sample_size = sample_size
        self._operations: dict[str, _Operation] = {}
        self._in_flight: dict[str, int] = {}

    def begin(self, operation: str) -> None:
        """A call of `operation` started; `end` it when it finishes."""
        self._in_flight[operation] = self._in_flight.get(operation, 0) + 1

    def end(self, operation: str, latency_s: float, ok: bool) -> None:
        """A call `begin` counted finished: no longer in flight, and recorded."""
        self._in_flight[operation] -= 1
        self.record(operation, latency_s, ok)

    def record(self, operation: str, latency_s: float, ok: bool) -> None:
        now = self._clock()
        op = self._operations.get(operation)
        if op is None:
            op = self._operations[operation] = _Operation(now, self._sample_size)
        if ok:
            op.successful += 1
        else:
            op.failed += 1
        op.sum_s += latency_s
        if latency_s < op.min_s:
            op.min_s = latency_s
        if latency_s > op.max_s:
            op.max_s = latency_s
        op.latencies.add(latency_s)

        second = math.floor(now)
        if op.buckets and op.buckets[-1][0] == second:
            bucket = op.buckets[-1]
        else:
            bucket = [second, 0, 0]
            op.buckets.append(bucket)
            self._expire(op, now)
        bucket[1] += 1
        bucket[2] += ok

    def stats(self, operation: str) -> OperationStats:
        """The statistics of `operation`; all zeros and "healthy" for one never recorded."""
        op = self._operations.get(operation)
        in_flight = self._in_flight.get(operation, 0)
        if op is None:
            return OperationStats(operation, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, HEALTHY, in_flight)
        now = self._clock()
        window_total, window_ok = self._window(op, now)
        total = op.successful + op.failed
        elapsed_s = min(self._window_s, max(now - op.first_at, 1.0))
        return OperationStats(
            operation=operation,
            total_requests=total,
            successful_requests=op.successful,
            failed_requests=op.failed,
            average_latency_ms=op.sum_s / total * 1000.0,
            min_latency_ms=op.min_s * 1000.0,
            max_latency_ms=op.max_s * 1000.0,
            p95_latency_ms=op.latencies.percentile(95),
            p99_latency_ms=op.latencies.percentile(99),
            requests_per_second=window_total / elapsed_s,
            error_rate=op.failed / total,
            health=_health(window_ok, window_total),
            in_flight=in_flight,
        )

    def all_stats(self, prefix: str = "") -> list[OperationStats]:
        """Statistics of every operation whose name starts with `prefix`, sorted by name."""
        names = self._operations.keys() | self._in_flight.keys()
        return [self.stats(name) for name in sorted(names) if name.startswith(prefix)]

    def health(self) -> str:
        """The worst health of any operation; "healthy" when nothing was recorded."""
        worst = HEALTHY
        for op in self._operations.values():
            window_total, window_ok = self._window(op, self._clock())
            health = _health(window_ok, window_total)
            if _SEVERITY[health] > _SEVERITY[worst]:
                worst = health
        return worst

    def _window(self, op: _Operation, now: float) -> tuple[int, int]:
        """(requests, successes) in the window ending at `now`."""
        self._expire(op, now)
        return sum(b[1] for b in op.buckets), sum(b[2] for b in op.buckets)

    def _expire(self, op: _Operation, now: float) -> None:
        # A bucket covers [second, second + 1); it leaves once all of it is older than the window.
        while op.buckets and op.buckets[0][0] + 1 <= now - self._window_s:
            op.buckets.popleft()
