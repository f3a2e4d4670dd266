"""Bounded load loops and the statistics the benchmark reports.

Latency is measured with one call in flight at a time; throughput with `concurrency` coroutines calling
back to back on one channel for a fixed time. Every repetition is summarised on its own and the report
takes the median of each figure over the repetitions, so one noisy repetition does not decide it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc

Call = Callable[[], Awaitable[object]]

CONCURRENCY_LEVELS = (1, 16, 64)
GOAL_LEVEL = 64  # the concurrency the throughput goals are set at (benchmarks/report.py)


@dataclass(frozen=True)
class LoadSettings:
    repetitions: int = 3
    latency_calls: int = 1000
    warmup_calls: int = 200
    throughput_s: float = 1.5
    micro_calls: int = 20_000  # for the in-process figures measured in µs


def percentiles(samples_s: Sequence[float], unit: float = 1e6) -> dict[str, float]:
    """p50/p95/p99/mean of `samples_s` (seconds), in `unit`s (µs by default)."""
    ordered = sorted(samples_s)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * unit

    return {
        "p50": rank(50),
        "p95": rank(95),
        "p99": rank(99),
        "mean": statistics.fmean(ordered) * unit,
        "samples": len(ordered),
    }


def median_of(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """The median of each figure over the repetitions."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


async def sequential_latencies(call: Call, count: int) -> list[float]:
    """`count` calls one after another; the duration of each, in seconds."""
    samples = []
    clock = time.perf_counter
    for _ in range(count):
        started = clock()
        await call()
        samples.append(clock() - started)
    return samples


async def throughput(call: Call, concurrency: int, duration_s: float) -> dict[str, float]:
    """Completed calls per second with `concurrency` callers for `duration_s`, how many failed, and the counts."""
    completed = failed = 0
    deadline = time.perf_counter() + duration_s

    async def caller() -> None:
        nonlocal completed, failed
        while time.perf_counter() < deadline:
            try:
                await call()
            except grpc.aio.AioRpcError:
                failed += 1
            else:
                completed += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"rps": completed / elapsed, "failed": failed, "completed": completed, "elapsed_s": elapsed}


async def measure_path(call: Call, settings: LoadSettings) -> dict[str, object]:
    """Latency (µs percentiles) and throughput at each concurrency level: medians over the repetitions."""
    await sequential_latencies(call, settings.warmup_calls)
    latency_runs, throughput_runs = [], {c: [] for c in CONCURRENCY_LEVELS}
    for _ in range(settings.repetitions):
        latency_runs.append(percentiles(await sequential_latencies(call, settings.latency_calls)))
        for concurrency in CONCURRENCY_LEVELS:
            throughput_runs[concurrency].append(await throughput(call, concurrency, settings.throughput_s))
    return {
        "latency_us": median_of(latency_runs),
        "throughput": {str(c): median_of(runs) for c, runs in throughput_runs.items()},
        "repetitions": settings.repetitions,
    }


async def measure_micro(call: Call, settings: LoadSettings) -> dict[str, float]:
    """An in-process call timed one by one (µs): medians of the percentiles over the repetitions."""
    await sequential_latencies(call, settings.warmup_calls)
    runs = [percentiles(await sequential_latencies(call, settings.micro_calls)) for _ in range(settings.repetitions)]
    return median_of(runs)
