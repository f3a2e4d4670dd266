"""The floor: plain grpc.aio, one hop (client -> B) and two hops (client -> A -> B), servers in their own processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import grpc

from acceptance.processes import dying_with_parent, proc_stat
from acceptance.targets.local import REPO_ROOT
from benchmarks.load import (
    CONCURRENCY_LEVELS,
    GOAL_LEVEL,
    Call,
    LoadSettings,
    measure_path,
    median_of,
    percentiles,
    sequential_latencies,
    throughput,
)
from ecosystem.api.risk.v1 import risk_pb2, risk_pb2_grpc
from ecosystem.api.trading.v1 import trading_pb2, trading_pb2_grpc
from ecosystem.names import TRADING_SYSTEM_ENGINE
from ecosystem.security import TlsFiles, expect_identity

READY_TIMEOUT_S = 30.0
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
STOP_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 5.0
# Throughput windows measured in turns: short, so that a slowdown of the host for a second or two hits every path.
TURN_S = 0.5
# GOAL_LEVEL is measured in this many times the windows of the other levels: a window's throughput varies by about
# 10 % (more through the stack than the floor), and with nine windows the ratio to the floor moved by up to 0.1
# between runs of the same tree.
GOAL_LEVEL_WINDOWS = 3
T = TypeVar("T")


class ServerProcess:
    """`python -m benchmarks.servers ARGS`: started by `start()`, which returns the endpoint it printed."""

    def __init__(self, *args: str) -> None:
        self._args = args
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.endpoint = ""
        self.count: int | None = None  # what it printed as DONE: RPCs answered or spans received

    def start(self) -> str:
        self._process = subprocess.Popen(
            dying_with_parent([sys.executable, "-m", "benchmarks.servers", *self._args]),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True, name=f"bench-{self._args[0]}").start()
        try:
            line = self._lines.get(timeout=READY_TIMEOUT_S)
        except queue.Empty:
            line = None
        if not line or not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"benchmarks.servers {' '.join(self._args)}: expected READY <endpoint>, got {line!r}")
        self.endpoint = line.split()[1]
        return self.endpoint

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server is not running"
        return self._process.pid

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        with contextlib.suppress(queue.Empty):
            while (line := self._lines.get(timeout=1.0)) is not None:
                if line.startswith("DONE "):
                    self.count = int(line.split()[1])
        self._process = None

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line.strip())
        self._lines.put(None)


@contextlib.contextmanager
def running(*args: str) -> Iterator[ServerProcess]:
    server = ServerProcess(*args)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def order_request() -> trading_pb2.SubmitOrderRequest:
    """An order the seeded limits approve (config/seed.toml)."""
    return trading_pb2.SubmitOrderRequest(
        strategy_id="bench", symbol="BTC-USD", side=risk_pb2.SIDE_BUY, quantity=1.0, price=100.0
    )


def check_request() -> risk_pb2.CheckOrderRequest:
    request = order_request()
    order = risk_pb2.Order(
        order_id="bench", strategy_id=request.strategy_id, symbol=request.symbol, side=request.side,
        quantity=request.quantity, price=request.price,
    )
    return risk_pb2.CheckOrderRequest(order=order)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process `pid` has used so far."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def sampled_traceparent() -> tuple[tuple[str, str], ...]:
    """Metadata that puts a call in a new trace its caller wants traced, as the acceptance suite sends."""
    return (("traceparent", f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"),)


@dataclass(frozen=True)
class PathUnderTest:
    """One way to send a SubmitOrder: to `endpoint`, whose `servers` (name -> pid) report CPU per order (on 2 shared
    cores it varies far less between runs than throughput does). With `tls`, over mTLS as that identity to a server
    that must prove to be the trading engine; `every_order_traced`: each order in a new trace with the sampled flag."""

    endpoint: str
    servers: dict[str, int]
    every_order_traced: bool = False
    tls: TlsFiles | None = None

    def channel(self) -> grpc.aio.Channel:
        if self.tls is None:
            return grpc.aio.insecure_channel(self.endpoint)
        return grpc.aio.secure_channel(
            self.endpoint, self.tls.channel_credentials(), options=expect_identity(TRADING_SYSTEM_ENGINE)
        )


async def measure_in_turns(paths: dict[str, PathUnderTest], settings: LoadSettings) -> dict[str, dict[str, object]]:
    """SubmitOrder latency, throughput and CPU per order on every path, measured in turns: each latency repetition,
    and each throughput level in windows of TURN_S, goes round the paths (`_rotated`) before the next one starts. A host
    that slows down for a while slows every path alike, so ratios between paths stay true. Throughput is the calls
    completed over the time spent in a path's windows; CPU per order, its servers' CPU time over the calls it made."""
    channels = [path.channel() for path in paths.values()]
    try:
        calls, spent, made = {}, {name: dict.fromkeys(path.servers, 0.0) for name, path in paths.items()}, {}
        for (name, path), channel in zip(paths.items(), channels, strict=True):
            calls[name] = await _checked_submit(trading_pb2_grpc.TradingEngineServiceStub(channel), path)
            made[name] = 0
            await sequential_latencies(calls[name], settings.warmup_calls)

        async def turn(name: str, measure: Callable[[Call], Awaitable[T]]) -> T:
            count = 0

            async def counted() -> object:
                nonlocal count
                count += 1
                return await calls[name]()

            servers = paths[name].servers
            before = {server: cpu_seconds(pid) for server, pid in servers.items()}
            result = await measure(counted)
            for server, pid in servers.items():
                spent[name][server] += cpu_seconds(pid) - before[server]
            made[name] += count
            return result

        latencies: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
        for repetition in range(settings.repetitions):
            for name in _rotated(list(paths), repetition):
                samples = await turn(name, lambda call: sequential_latencies(call, settings.latency_calls))
                latencies[name].append(percentiles(samples))
        base = max(1, round(settings.repetitions * settings.throughput_s / TURN_S))
        windows = {level: base * GOAL_LEVEL_WINDOWS if level == GOAL_LEVEL else base for level in CONCURRENCY_LEVELS}
        totals = {name: {level: [0, 0.0, 0] for level in CONCURRENCY_LEVELS} for name in paths}  # done, s, failed
        for level in CONCURRENCY_LEVELS:
            for number in range(windows[level]):
                for name in _rotated(list(paths), number):
                    window = await turn(name, lambda call, level=level: throughput(call, level, TURN_S))
                    total = totals[name][level]
                    total[0] += window["completed"]
                    total[1] += window["elapsed_s"]
                    total[2] += window["failed"]
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))
    return {
        name: {
            "latency_us": median_of(latencies[name]),
            "throughput": {
                str(level): {"rps": done / seconds, "failed": failed}
                for level, (done, seconds, failed) in totals[name].items()
            },
            "cpu_us_per_order": {server: cpu * 1e6 / made[name] for server, cpu in spent[name].items()},
            "repetitions": settings.repetitions,
            "windows": {str(level): count for level, count in windows.items()},
        }
        for name in paths
    }


def _rotated(names: list[str], turn: int) -> list[str]:
    """`names` starting at the turn-th: each path goes first in some turns and after every other path in others.
    In a fixed order a path pays for the work the path before it leaves behind (spans exported, connections
    drained): measured, up to 4 % of throughput for the last of three."""
    start = turn % len(names)
    return names[start:] + names[:start]


async def _checked_submit(stub: trading_pb2_grpc.TradingEngineServiceStub, path: PathUnderTest) -> Call:
    """The SubmitOrder call of `path`, once it answered ACCEPTED."""
    request = order_request()
    first = await stub.SubmitOrder(request, timeout=CALL_TIMEOUT_S)
    if first.status != trading_pb2.ACCEPTED:
        raise RuntimeError(f"SubmitOrder at {path.endpoint}: expected ACCEPTED, got {first}")
    if path.every_order_traced:
        return lambda: stub.SubmitOrder(request, timeout=CALL_TIMEOUT_S, metadata=sampled_traceparent())
    return lambda: stub.SubmitOrder(request, timeout=CALL_TIMEOUT_S)


async def _measure_check_order(endpoint: str, settings: LoadSettings) -> dict[str, object]:
    async with grpc.aio.insecure_channel(endpoint) as channel:
        stub = risk_pb2_grpc.RiskMonitorServiceStub(channel)
        request = check_request()
        return await measure_path(lambda: stub.CheckOrder(request, timeout=CALL_TIMEOUT_S), settings)


def measure_one_hop(settings: LoadSettings) -> dict[str, object]:
    """CheckOrder on the floor's B alone; the two hops are measured in turns with the stack (stack.py)."""
    with running("risk") as risk:
        return asyncio.run(_measure_check_order(risk.endpoint, settings))
