"""The route guide, a server with one method of each kind (unary, server, client and bidi streaming), health
and reflection. It knows nothing of the registry: `python -m acceptance.register` registers it.

    python -m examples.route_guide.server --port 50052
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import signal
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from examples.api import route_guide_pb2, route_guide_pb2_grpc

GRPC_SERVICE = route_guide_pb2.DESCRIPTOR.services_by_name["RouteGuide"].full_name
# Named places, latitude/longitude in degrees x 10^7 (from grpc/grpc's route_guide_db.json).
FEATURES = (
    ("Patriots Path, Mendham, NJ 07945, USA", 407838351, -746143763),
    ("101 New Jersey 10, Whippany, NJ 07981, USA", 408122808, -743999179),
    ("U.S. 6, Shohola, PA 18458, USA", 413628156, -749015468),
    ("5 Conners Road, Kingston, NY 12401, USA", 419999544, -740371136),
    ("Mid Hudson Bridge, Poughkeepsie, NY 12601, USA", 417007000, -739590000),
)
MAX_NOTES_PER_CALL = 1000
EARTH_RADIUS_M = 6_371_000


def _point(latitude: int, longitude: int) -> route_guide_pb2.Point:
    return route_guide_pb2.Point(latitude=latitude, longitude=longitude)


def _feature_at(point: route_guide_pb2.Point) -> route_guide_pb2.Feature:
    for name, latitude, longitude in FEATURES:
        if (latitude, longitude) == (point.latitude, point.longitude):
            return route_guide_pb2.Feature(name=name, location=point)
    return route_guide_pb2.Feature(name="", location=point)


def _distance_m(start: route_guide_pb2.Point, end: route_guide_pb2.Point) -> int:
    lat1, lat2 = math.radians(start.latitude / 1e7), math.radians(end.latitude / 1e7)
    delta_lon = math.radians((end.longitude - start.longitude) / 1e7)
    delta_lat = lat2 - lat1
    a = math.sin(delta_lat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(delta_lon / 2) ** 2
    return int(EARTH_RADIUS_M * 2 * math.atan2(math.sqrt(a), math.sqrt(1 - a)))


class RouteGuide(route_guide_pb2_grpc.RouteGuideServicer):
    async def GetFeature(self, request: route_guide_pb2.Point, context: grpc.aio.ServicerContext):
        return _feature_at(request)

    async def ListFeatures(
        self, request: route_guide_pb2.Rectangle, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[route_guide_pb2.Feature]:
        west, east = sorted((request.lo.longitude, request.hi.longitude))
        south, north = sorted((request.lo.latitude, request.hi.latitude))
        inside = sorted(
            (feature for feature in FEATURES if south <= feature[1] <= north and west <= feature[2] <= east),
            key=lambda feature: (feature[2], feature[1]),
        )
        context.set_trailing_metadata((("x-feature-count", str(len(inside))),))
        for name, latitude, longitude in inside:
            yield route_guide_pb2.Feature(name=name, location=_point(latitude, longitude))

    async def RecordRoute(
        self, request_iterator: AsyncIterator[route_guide_pb2.Point], context: grpc.aio.ServicerContext
    ) -> route_guide_pb2.RouteSummary:
        points = [point async for point in request_iterator]
        return route_guide_pb2.RouteSummary(
            point_count=len(points),
            feature_count=sum(1 for point in points if _feature_at(point).name),
            distance=sum(_distance_m(a, b) for a, b in itertools.pairwise(points)),
        )

    async def RouteChat(
        self, request_iterator: AsyncIterator[route_guide_pb2.RouteNote], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[route_guide_pb2.RouteNote]:
        # Notes are kept for one call only, so calls do not see each other's notes.
        notes: list[route_guide_pb2.RouteNote] = []
        async for note in request_iterator:
            if len(notes) >= MAX_NOTES_PER_CALL:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"at most {MAX_NOTES_PER_CALL} notes per call")
            for previous in notes:
                if previous.location == note.location:
                    yield previous
            notes.append(note)


async def serve(host: str, port: int) -> None:
    server = grpc.aio.server()
    route_guide_pb2_grpc.add_RouteGuideServicer_to_server(RouteGuide(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((GRPC_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    await health_servicer.set(GRPC_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    print(f"route guide serving on {host}:{port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
