"""ExternalTarget: a stack someone else runs (`make stack`, a staging host), found through its Redis registry.

The suite only reads it: no capability, so scenarios that break the stack are skipped, and
stop_all leaves it running for its owner.
"""

from __future__ import annotations

import time

import redis

from acceptance.health import wait_serving
from acceptance.targets.base import ServiceHandle, StackTarget, TargetError
from acceptance.waits import WaitTimeout, wait_until
from ecosystem.discovery import lookup_sync
from ecosystem.names import ALL_SERVICES, GRPC_SERVICES

INSTANCES_FRESH_S = 0.5


class ExternalTarget(StackTarget):
    name = "external"
    capabilities = frozenset()

    def __init__(self, redis_url: str, *, start_timeout: float = 20.0) -> None:
        self._redis_url = redis_url
        self.start_timeout = start_timeout
        self._client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self._instances: dict[str, tuple[float, list[ServiceHandle]]] = {}

    @property
    def redis_url(self) -> str:
        return self._redis_url

    def start(self) -> None:
        """Attach: every service has a registered instance, and all of them are SERVING."""
        deadline = time.monotonic() + self.start_timeout
        for service in ALL_SERVICES:
            try:
                wait_until(
                    lambda service=service: self.instances(service),
                    timeout=max(0.0, deadline - time.monotonic()),
                    what=f"{service} has an instance registered in {self._redis_url}",
                    interval=0.1,
                )
            except WaitTimeout as exc:
                raise TargetError(service, str(exc)) from None
        self.wait_healthy(max(0.0, deadline - time.monotonic()))

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        for service in ALL_SERVICES:
            for handle in self.instances(service):
                try:
                    wait_serving(handle.endpoint, [GRPC_SERVICES[service]], max(0.0, deadline - time.monotonic()))
                except WaitTimeout as exc:
                    raise TargetError(f"{service}#{handle.index}", str(exc)) from None

    def instances(self, service: str) -> list[ServiceHandle]:
        """The registered instances, read from the registry at most every INSTANCES_FRESH_S: the suite's own
        reads must not swamp the registry reads it counts."""
        read_at, handles = self._instances.get(service, (0.0, []))
        if time.monotonic() - read_at > INSTANCES_FRESH_S:
            found = sorted(lookup_sync(self._client, service), key=lambda instance: instance.instance_id)
            handles = [ServiceHandle(service, index, i.instance_id, i.endpoint) for index, i in enumerate(found)]
            self._instances[service] = (time.monotonic(), handles)
        return list(handles)

    def restore(self) -> None:
        # Nothing here can break the stack, so there is nothing to bring back.
        self.wait_healthy()

    def stop_all(self) -> None:
        # The stack belongs to whoever started it; only the suite's connection goes.
        self._client.close()
