"""The floor: plain grpc.aio, one hop (client -> B) and two hops (client -> A -> B), servers in their own processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator

import grpc

from acceptance.processes import dying_with_parent, proc_stat
from acceptance.targets.local import REPO_ROOT
from benchmarks.load import Call, LoadSettings, measure_path
from ecosystem.api.risk.v1 import risk_pb2, risk_pb2_grpc
from ecosystem.api.trading.v1 import trading_pb2, trading_pb2_grpc
from ecosystem.names import TRADING_SYSTEM_ENGINE
from ecosystem.security import TlsFiles, expect_identity

READY_TIMEOUT_S = 30.0
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
STOP_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 5.0


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


async def measure_submit_order(
    endpoint: str, settings: LoadSettings, tls: TlsFiles | None = None, *, servers: dict[str, int] | None = None,
    traced: bool = False,
) -> dict[str, object]:
    """SubmitOrder against `endpoint` (the floor's A or the real trading-system-engine) on one channel; with `tls`,
    over mTLS as that identity to a server that must prove to be the trading engine.

    `servers` (name -> pid) are the processes whose CPU time per order is reported: on 2 shared cores it varies far
    less between runs than throughput does. `traced`: every order in a new trace with the sampled flag set."""
    if tls is None:
        channel = grpc.aio.insecure_channel(endpoint)
    else:
        channel = grpc.aio.secure_channel(endpoint, tls.channel_credentials(),
                                          options=expect_identity(TRADING_SYSTEM_ENGINE))
    async with channel:
        stub = trading_pb2_grpc.TradingEngineServiceStub(channel)
        request = order_request()
        first = await stub.SubmitOrder(request, timeout=CALL_TIMEOUT_S)
        if first.status != trading_pb2.ACCEPTED:
            raise RuntimeError(f"SubmitOrder at {endpoint}: expected ACCEPTED, got {first}")
        if traced:
            return await _measured_cpu(
                lambda: stub.SubmitOrder(request, timeout=CALL_TIMEOUT_S, metadata=sampled_traceparent()),
                settings, servers or {},
            )
        return await _measured_cpu(lambda: stub.SubmitOrder(request, timeout=CALL_TIMEOUT_S), settings, servers or {})


async def _measured_cpu(call: Call, settings: LoadSettings, servers: dict[str, int]) -> dict[str, object]:
    """`measure_path` of `call`, with the CPU µs each of `servers` spent per call made meanwhile."""
    calls = 0

    async def counted() -> object:
        nonlocal calls
        calls += 1
        return await call()

    before = {name: cpu_seconds(pid) for name, pid in servers.items()}
    result = await measure_path(counted, settings)
    result["cpu_us_per_order"] = {
        name: (cpu_seconds(pid) - before[name]) * 1e6 / calls for name, pid in servers.items()
    }
    return result


async def _measure_check_order(endpoint: str, settings: LoadSettings) -> dict[str, object]:
    async with grpc.aio.insecure_channel(endpoint) as channel:
        stub = risk_pb2_grpc.RiskMonitorServiceStub(channel)
        request = check_request()
        return await measure_path(lambda: stub.CheckOrder(request, timeout=CALL_TIMEOUT_S), settings)


def measure_one_hop(settings: LoadSettings) -> dict[str, object]:
    """CheckOrder on the floor's B alone; the two hops are measured in turns with the stack (stack.py)."""
    with running("risk") as risk:
        return asyncio.run(_measure_check_order(risk.endpoint, settings))
