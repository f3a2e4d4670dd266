"""The floor's servers and the OTLP receiver, each in its own process like the services they stand for.

    python -m benchmarks.servers risk                 # B: answers CheckOrder
    python -m benchmarks.servers engine HOST:PORT     # A: answers SubmitOrder by calling B's CheckOrder
    python -m benchmarks.servers otlp                 # an OTLP/gRPC trace receiver

Each prints `READY <endpoint>` once it listens, runs until SIGTERM, then prints `DONE <count>` (RPCs
answered, or spans received) and exits. The floor uses the services' own messages and stubs, so the
ratio of the real path to it is what discovery, breaker, configuration, statistics and tracing add.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading

import grpc

from ecosystem.api.risk.v1 import risk_pb2, risk_pb2_grpc
from ecosystem.api.trading.v1 import trading_pb2, trading_pb2_grpc

SERVER_OPTIONS = (("grpc.so_reuseport", 0),)
FLOOR_INSTANCE_ID = "floor-risk"


class FloorRisk(risk_pb2_grpc.RiskMonitorServiceServicer):
    def __init__(self) -> None:
        self.answered = 0

    async def CheckOrder(
        self, request: risk_pb2.CheckOrderRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.CheckOrderResponse:
        self.answered += 1
        return risk_pb2.CheckOrderResponse(
            decision=risk_pb2.DECISION_APPROVED, limit_utilization=0.001, instance_id=FLOOR_INSTANCE_ID
        )


class FloorEngine(trading_pb2_grpc.TradingEngineServiceServicer):
    def __init__(self, risk_endpoint: str) -> None:
        self.answered = 0
        self._channel = grpc.aio.insecure_channel(risk_endpoint)
        self._risk = risk_pb2_grpc.RiskMonitorServiceStub(self._channel)

    async def SubmitOrder(
        self, request: trading_pb2.SubmitOrderRequest, context: grpc.aio.ServicerContext
    ) -> trading_pb2.SubmitOrderResponse:
        self.answered += 1
        order = risk_pb2.Order(
            strategy_id=request.strategy_id,
            symbol=request.symbol,
            side=request.side,
            quantity=request.quantity,
            price=request.price,
        )
        decision = await self._risk.CheckOrder(
            risk_pb2.CheckOrderRequest(order=order), timeout=context.time_remaining()
        )
        return trading_pb2.SubmitOrderResponse(
            status=trading_pb2.ACCEPTED,
            limit_utilization=decision.limit_utilization,
            risk_instance_id=decision.instance_id,
        )


async def _serve_floor(role: str, risk_endpoint: str) -> int:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    servicer: FloorRisk | FloorEngine
    if role == "risk":
        servicer = FloorRisk()
        risk_pb2_grpc.add_RiskMonitorServiceServicer_to_server(servicer, server)
    else:
        servicer = FloorEngine(risk_endpoint)
        trading_pb2_grpc.add_TradingEngineServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    print(f"READY 127.0.0.1:{port}", flush=True)
    await stopping.wait()
    await server.stop(None)
    return servicer.answered


def _serve_otlp() -> int:
    from acceptance.otlp_receiver import OtlpReceiver

    receiver = OtlpReceiver().start()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    print(f"READY {receiver.endpoint}", flush=True)
    stopping.wait()
    receiver.stop()
    return len(receiver.spans())


def main(argv: list[str]) -> None:
    role = argv[0] if argv else ""
    if role == "otlp":
        count = _serve_otlp()
    elif role == "risk" or (role == "engine" and len(argv) == 2):
        count = asyncio.run(_serve_floor(role, argv[1] if role == "engine" else ""))
    else:
        sys.exit("usage: python -m benchmarks.servers risk | engine RISK_HOST:PORT | otlp")
    print(f"DONE {count}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
