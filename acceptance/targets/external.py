"""ExternalTarget: a stack someone else runs (`make stack`, a staging host), found through its Redis registry.

The suite only reads it: no capability, so scenarios that break the stack are skipped, and
stop_all leaves it running for its owner. It waits for the services the manifest declares, and for
nothing else; entries are read through the registry contract, so a service that is not found is
reported with what is wrong with its entries.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis

from acceptance.health import wait_serving
from acceptance.manifest import Manifest, load_manifest
from acceptance.pki import Pki
from acceptance.redis_acl import redact
from acceptance.registry_contract import Reading, read_service
from acceptance.targets.base import ServiceHandle, StackTarget, TargetError
from acceptance.transport import Transport
from acceptance.waits import WaitTimeout, wait_until

INSTANCES_FRESH_S = 0.5


class ExternalTarget(StackTarget):
    name = "external"
    capabilities = frozenset()

    def __init__(
        self, redis_url: str, *, manifest: Manifest | None = None, start_timeout: float = 20.0,
        pki_dir: Path | str | None = None,
    ) -> None:
        """`pki_dir` holds the stack's CA and the suite's (and admin's) certificates: the suite then calls over
        mTLS; without it, plaintext."""
        if pki_dir is not None:
            self.transport = Transport(Pki(Path(pki_dir)))
        self._redis_url = redis_url
        self.manifest = manifest or load_manifest()
        self.start_timeout = start_timeout
        self._readings: dict[str, tuple[float, Reading]] = {}
        self._client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)

    @property
    def redis_url(self) -> str:
        return self._redis_url

    def start(self) -> None:
        """Attach: every declared service has a registered instance, and all of them are SERVING."""
        deadline = time.monotonic() + self.start_timeout
        for service in self.manifest.service_names:
            try:
                wait_until(
                    lambda service=service: self.instances(service),
                    timeout=max(0.0, deadline - time.monotonic()),
                    what=f"{service} has a SERVING instance registered in {redact(self._redis_url)}",
                    interval=0.1,
                )
            except WaitTimeout as exc:
                raise TargetError(service, f"{exc}\n{self.reading(service).explain_none()}") from None
        self.wait_healthy(max(0.0, deadline - time.monotonic()))

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        for declared in self.manifest.services:
            for handle in self.instances(declared.name):
                try:
                    wait_serving(handle.endpoint, [declared.health_service], max(0.0, deadline - time.monotonic()),
                                 transport=self.transport, server=declared.name)
                except WaitTimeout as exc:
                    raise TargetError(f"{declared.name}#{handle.index}", str(exc)) from None

    def reading(self, service: str) -> Reading:
        """The service's registry entries checked against the contract, read at most every INSTANCES_FRESH_S:
        the suite's own reads must not swamp the registry reads it counts."""
        read_at, reading = self._readings.get(service, (0.0, None))
        if reading is None or time.monotonic() - read_at > INSTANCES_FRESH_S:
            try:
                reading = read_service(self._client, service, self._redis_url)
            except redis.RedisError as exc:
                reading = Reading(service, self._redis_url, problems=[f"Redis cannot be read: {exc}"])
            self._readings[service] = (time.monotonic(), reading)
        return reading

    def instances(self, service: str) -> list[ServiceHandle]:
        found = sorted(self.reading(service).serving, key=lambda entry: entry.instance_id)
        return [ServiceHandle(service, index, entry.instance_id, entry.endpoint) for index, entry in enumerate(found)]

    def endpoint(self, service: str) -> str:
        running = self.instances(service)
        if not running:
            raise TargetError(service, self.reading(service).explain_none())
        return running[0].endpoint

    def restore(self) -> None:
        # Nothing here can break the stack, so there is nothing to bring back.
        self.wait_healthy()

    def stop_all(self) -> None:
        # The stack belongs to whoever started it; only the suite's connection goes.
        self._client.close()
