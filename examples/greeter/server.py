"""A greeter written the way a team outside this project would: grpcio, health, reflection, and its own
registry entry written with redis-py by following docs/REGISTRY.md alone (no `ecosystem` package).

    python -m examples.greeter.server --port 50051 --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
import uuid

import grpc
import redis.asyncio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from examples.api import helloworld_pb2, helloworld_pb2_grpc

SERVICE = "greeter"
VERSION = "1.4.2"
GRPC_SERVICE = helloworld_pb2.DESCRIPTOR.services_by_name["Greeter"].full_name
TTL_MS = 3000


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    async def SayHello(self, request: helloworld_pb2.HelloRequest, context: grpc.aio.ServicerContext):
        if not request.name:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name: give the name to greet")
        await context.send_initial_metadata((("x-greeter-version", VERSION),))
        request_id = dict(context.invocation_metadata()).get("x-request-id", "")
        context.set_trailing_metadata((("x-request-id", request_id),))
        return helloworld_pb2.HelloReply(message=f"Hello, {request.name}!")


class RegistryEntry:
    """This instance's entry: the hash, the index member, the services set and the up/down events."""

    def __init__(self, client: redis.asyncio.Redis, host: str, port: int) -> None:
        self.client = client
        self.instance_id = uuid.uuid4().hex
        self.incarnation = str(time.time_ns())
        self.host, self.port = host, port
        self.key = f"reg:v1:svc:{SERVICE}:inst:{self.instance_id}"
        self.index = f"reg:v1:svc:{SERVICE}:idx"
        self.started_at = ""

    async def heartbeat(self) -> None:
        seconds, microseconds = await self.client.time()
        now_ms = seconds * 1000 + microseconds // 1000
        self.started_at = self.started_at or str(now_ms)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, mapping={
                "instance_id": self.instance_id, "service": SERVICE, "host": self.host, "port": self.port,
                "version": VERSION, "api_version": "v1", "status": "SERVING", "started_at": self.started_at,
                "heartbeat_at": now_ms, "incarnation": self.incarnation,
            })
            pipe.pexpire(self.key, TTL_MS)
            pipe.zadd(self.index, {self.instance_id: now_ms + TTL_MS})
            pipe.sadd("reg:v1:services", SERVICE)
            await pipe.execute()

    async def announce(self, event: str) -> None:
        await self.client.xadd("reg:v1:events", {
            "type": event, "service": SERVICE, "instance_id": self.instance_id, "incarnation": self.incarnation,
        }, maxlen=10_000, approximate=True)

    async def remove(self) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.key)
            pipe.zrem(self.index, self.instance_id)
            await pipe.execute()
        await self.announce("down")


async def keep_alive(entry: RegistryEntry, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await entry.heartbeat()
        except redis.RedisError as exc:
            print(f"greeter: heartbeat failed, retrying: {exc}", flush=True)
        try:
            await asyncio.wait_for(stop.wait(), timeout=TTL_MS / 3000)
        except TimeoutError:
            pass


async def serve(host: str, port: int, redis_url: str) -> None:
    server = grpc.aio.server()
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((GRPC_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    await health_servicer.set(GRPC_SERVICE, health_pb2.HealthCheckResponse.SERVING)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=2)
    entry = RegistryEntry(client, host, port)
    await entry.heartbeat()
    await entry.announce("up")
    print(f"greeter {entry.instance_id} serving on {host}:{port}, registered in {redis_url}", flush=True)
    await keep_alive(entry, stop)

    await health_servicer.enter_graceful_shutdown()
    await entry.remove()
    await server.stop(grace=2)
    await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.redis_url))


if __name__ == "__main__":
    main()
