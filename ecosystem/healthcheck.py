"""A container healthcheck that asks grpc.health.v1, not whether a port is open.

    python -m ecosystem.healthcheck risk-monitor          # 127.0.0.1:$ECOSYSTEM_PORT
    python -m ecosystem.healthcheck risk-monitor --endpoint 127.0.0.1:50051

Exit 0 when the service's gRPC name is SERVING, 1 otherwise (with the reason on stderr). In secure mode
(the ECOSYSTEM_SECURITY and ECOSYSTEM_TLS_* variables the service has) it calls as the service itself and
checks that the server presents the service's identity.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ecosystem.names import ALL_SERVICES, GRPC_SERVICES
from ecosystem.security import TlsFiles, expect_identity
from ecosystem.settings import Settings


def _channel(endpoint: str, service: str, tls: TlsFiles | None) -> grpc.Channel:
    if tls is None:
        return grpc.insecure_channel(endpoint)
    return grpc.secure_channel(endpoint, tls.channel_credentials(), options=expect_identity(service))


def check(endpoint: str, service: str, timeout: float, tls: TlsFiles | None = None) -> str | None:
    """None when `endpoint` answers SERVING for `service`'s gRPC name, else why not."""
    grpc_service = GRPC_SERVICES[service]
    with _channel(endpoint, service, tls) as channel:
        try:
            # types-grpcio-health-checking declares HealthStub without its methods.
            response = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
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
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    problem = check(args.endpoint, args.service, args.timeout, settings.tls)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
