"""A container healthcheck that asks grpc.health.v1, not whether a port is open.

    python -m ecosystem.healthcheck risk-monitor          # 127.0.0.1:$ECOSYSTEM_PORT
    python -m ecosystem.healthcheck risk-monitor --endpoint 127.0.0.1:50051

Exit 0 when the service's gRPC name is SERVING, 1 otherwise (with the reason on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ecosystem.names import ALL_SERVICES, GRPC_SERVICES


def check(endpoint: str, grpc_service: str, timeout: float) -> str | None:
    """None when `endpoint` answers SERVING for `grpc_service`, else why not."""
    with grpc.insecure_channel(endpoint) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=grpc_service), timeout=timeout
            )
        except grpc.RpcError as exc:
            return f"health Check of {grpc_service} at {endpoint} failed: {exc.code().name} {exc.details() or ''}"
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        return f"{endpoint} answers {status} for {grpc_service}, expected SERVING"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecosystem.healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=ALL_SERVICES)
    parser.add_argument("--endpoint", default=f"127.0.0.1:{os.environ.get('ECOSYSTEM_PORT', '50051')}")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer")
    args = parser.parse_args(argv)
    problem = check(args.endpoint, GRPC_SERVICES[args.service], args.timeout)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
