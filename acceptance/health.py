"""grpc.health.v1 from the suite's side: readiness is what Check answers, never an open port or a log line."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from acceptance.transport import PLAINTEXT, Transport
from acceptance.waits import wait_until

SERVING = "SERVING"


class HealthCheckError(RuntimeError):
    """Check did not get an answer: names the endpoint, the service and the gRPC status."""

    def __init__(self, endpoint: str, service_name: str, code: grpc.StatusCode, details: str) -> None:
        self.endpoint = endpoint
        self.service_name = service_name
        self.code = code
        super().__init__(f"health Check of {service_name!r} at {endpoint} failed: {code.name} {details}")


def _check(channel: grpc.Channel, endpoint: str, service_name: str, timeout: float) -> str:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        response = stub.Check(health_pb2.HealthCheckRequest(service=service_name), timeout=timeout)
    except grpc.RpcError as exc:
        # The health servicer answers NOT_FOUND for a service it does not know.
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return health_pb2.HealthCheckResponse.ServingStatus.Name(health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
        raise HealthCheckError(endpoint, service_name, exc.code(), exc.details() or "") from None
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def check(
    endpoint: str, service_name: str, timeout: float = 1.0, *, transport: Transport = PLAINTEXT, server: str = ""
) -> str:
    """The status `endpoint` reports for `service_name`: SERVING, NOT_SERVING, SERVICE_UNKNOWN, ...

    `server` is the identity the endpoint must prove in secure mode (the registry name of its service).
    Raises HealthCheckError when no answer arrives (unreachable, paused, deadline exceeded, handshake refused).
    """
    with transport.channel(endpoint, server) as channel:
        return _check(channel, endpoint, service_name, timeout)


def wait_serving(
    endpoint: str, services: Iterable[str], timeout: float, *, transport: Transport = PLAINTEXT, server: str = ""
) -> None:
    """Wait until `endpoint` answers SERVING for every one of `services`; WaitTimeout names the one that did not."""
    deadline = time.monotonic() + timeout
    with transport.channel(endpoint, server) as channel:
        for service_name in services:
            wait_until(
                lambda name=service_name: _check(channel, endpoint, name, timeout=min(1.0, timeout)),
                lambda status: status == SERVING,
                timeout=max(0.0, deadline - time.monotonic()),
                what=f"{endpoint} answers health Check SERVING for {service_name!r}",
                interval=0.05,
            )


class HealthWatch:
    """A grpc.health.v1 `Watch` stream read in a background thread: every status the server sent, in order.

    Catches what a poll of `Check` can miss, such as the short NOT_SERVING window of a draining server.
    """

    def __init__(
        self, endpoint: str, service_name: str, *, transport: Transport = PLAINTEXT, server: str = ""
    ) -> None:
        self.endpoint = endpoint
        self.service_name = service_name
        self._channel = transport.channel(endpoint, server)
        self._call = health_pb2_grpc.HealthStub(self._channel).Watch(
            health_pb2.HealthCheckRequest(service=service_name)
        )
        self._lock = threading.Lock()
        self._statuses: list[str] = []
        self.ended = ""  # how the stream ended, once it has
        self._reader = threading.Thread(target=self._read, name=f"health-watch-{endpoint}", daemon=True)
        self._reader.start()

    def statuses(self) -> list[str]:
        with self._lock:
            return list(self._statuses)

    def close(self) -> None:
        self._call.cancel()
        self._channel.close()
        self._reader.join(timeout=2.0)

    def _read(self) -> None:
        try:
            for response in self._call:
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
                with self._lock:
                    self._statuses.append(status)
            self.ended = "the server ended the stream"
        except grpc.RpcError as exc:
            self.ended = f"{exc.code().name}: {exc.details() or ''}"
