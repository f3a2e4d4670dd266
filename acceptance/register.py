"""`python -m acceptance.register`: keep a registry entry alive for a service that cannot register itself.

    python -m acceptance.register --redis-url redis://127.0.0.1:6379/0 --service route-guide \\
        --host 127.0.0.1 --port 50052 --version 2.3.0 --health-service routeguide.RouteGuide

Any gRPC server, in any language, on any host the suite can reach: this process writes its entry
(docs/REGISTRY.md) and renews it every TTL/3 while the server answers grpc.health.v1 SERVING for
`--health-service`. When the server stops answering SERVING the entry goes DRAINING within a heartbeat
(callers stop routing to it), and is deregistered once the server has not answered SERVING for a TTL;
it registers again when the server does. If this process dies the entry expires after one TTL;
SIGTERM or Ctrl-C deregisters it at once.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import grpc
import redis.asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ecosystem.discovery import DRAINING, SERVING, UNROUTABLE_HOSTS, RegistryError, ServiceRegistration

HEALTH_TIMEOUT_S = 1.0
# Health is checked once a heartbeat (TTL/3): this many failed checks in a row are a TTL without SERVING.
CHECKS_PER_TTL = 3


async def health_status(channel: grpc.aio.Channel, health_service: str) -> str:
    """The server's answer for `health_service`, or the gRPC code it failed with."""
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=health_service), timeout=HEALTH_TIMEOUT_S
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def keep_registered(args: argparse.Namespace, stop: asyncio.Event) -> None:
    client = redis.asyncio.Redis.from_url(args.redis_url, socket_timeout=2, socket_connect_timeout=2)
    registration = ServiceRegistration(
        client, service=args.service, host=args.host, port=args.port, version=args.version,
        api_version=args.api_version, ttl_ms=args.ttl_ms, meta={"registered_by": "acceptance.register"},
    )
    endpoint = f"{args.host}:{args.port}"
    interval_s = args.ttl_ms / 3000
    registered = False
    unhealthy_checks = 0
    async with grpc.aio.insecure_channel(endpoint) as channel:
        try:
            while not stop.is_set():
                status = await health_status(channel, args.health_service)
                unhealthy_checks = 0 if status == SERVING else unhealthy_checks + 1
                try:
                    if status == SERVING and not registered:
                        await registration.start()
                        registered = True
                        print(f"registered {args.service} at {endpoint} ({registration.instance_id})", flush=True)
                    elif status == SERVING and registration.status != SERVING:
                        await registration.set_status(SERVING)
                    elif registered and unhealthy_checks >= CHECKS_PER_TTL:
                        await registration.stop()
                        registered = False
                        registration.status = SERVING  # what it registers with when the server is back
                        print(f"{endpoint} not SERVING for a TTL: deregistered", flush=True)
                    elif status != SERVING and registered and registration.status == SERVING:
                        await registration.set_status(DRAINING)
                        print(f"{endpoint} answers {status} for {args.health_service}: entry DRAINING", flush=True)
                except RegistryError as exc:
                    print(f"registry: {exc}", file=sys.stderr, flush=True)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=interval_s)
                except TimeoutError:
                    pass
        finally:
            if registered:
                try:
                    await registration.stop()
                    print(f"deregistered {args.service} at {endpoint}", flush=True)
                except RegistryError as exc:  # Redis is gone: the entry expires after its TTL instead
                    print(f"registry: {exc}; the entry expires after its TTL", file=sys.stderr, flush=True)
            await client.aclose()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m acceptance.register", description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True, help="the registry's Redis, e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--service", required=True, help="the service name callers resolve, e.g. route-guide")
    parser.add_argument("--host", required=True, help="the address callers dial (not 0.0.0.0)")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--version", required=True, help="the release version the entry carries")
    parser.add_argument("--api-version", default="v1")
    parser.add_argument("--health-service", default="", help="the grpc.health.v1 name to check (default: the server)")
    parser.add_argument("--ttl-ms", type=int, default=15_000, help="entry TTL in ms; renewed every TTL/3")
    args = parser.parse_args(argv)
    if args.host in UNROUTABLE_HOSTS:
        parser.error(f"--host {args.host!r} is not an address callers can dial: give the loopback address, "
                     "the host's name or its IP")
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port} is not a port (1-65535)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await keep_registered(args, stop)

    try:
        asyncio.run(run())
    except ValueError as exc:  # a port or TTL that cannot work, named by ServiceRegistration
        print(f"acceptance.register: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
