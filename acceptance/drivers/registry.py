"""The Redis registry as the services keep it, checked against what the suite declared and started."""

from __future__ import annotations

from typing import Any

from hamcrest import assert_that, equal_to, less_than

from acceptance import health
from acceptance.declared import REACTION_MARGIN_S
from acceptance.drivers import Driver
from acceptance.registry_contract import read_service, routable
from acceptance.targets import ServiceHandle
from ecosystem.discovery import EVENTS_KEY, ServiceInstance, lookup_sync, registry_snapshot
from ecosystem.names import ALL_SERVICES

REGISTRY_READS = "registry reads"
# The newest registry events searched for an instance's `down`.
EVENTS_READ = 500


class Registry(Driver):
    def entries(self, service: str) -> list[ServiceInstance]:
        """The SERVING, unexpired instances of `service`, read from Redis now."""
        return lookup_sync(self._suite.redis, service)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return registry_snapshot(self._suite.redis)

    def expect_registered_by_contract(self, service: str) -> None:
        """Every entry of a declared service keeps the registry contract and the declared version, and each
        registered endpoint answers health SERVING for the declared name: the round trip a caller makes."""
        declared = self._suite.manifest.service(service)
        reading = read_service(self._suite.redis, service, self._suite.stack.redis_url)
        assert not reading.problems, f"{service}'s registry entries break the contract: " + "; ".join(reading.problems)
        assert reading.serving, reading.explain_none()
        # Where the suite reaches an instance: its registered endpoint, unless the target publishes it elsewhere
        # (a container name resolves only on the stack's own network).
        published = {handle.instance_id: handle.endpoint for handle in self._suite.stack.instances(service)}
        for entry in reading.serving:
            if declared.version:
                assert_that(entry.version, equal_to(declared.version), f"the version {service} instance "
                            f"{entry.instance_id} registered (manifest: {declared.version})")
            try:
                endpoint = published.get(entry.instance_id, entry.endpoint)
                status = health.check(endpoint, declared.health_service, timeout=REACTION_MARGIN_S,
                                      transport=self._suite.stack.transport, server=service)
            except health.HealthCheckError as exc:
                status = str(exc)
            assert_that(status, equal_to(health.SERVING),
                        f"health of {declared.health_service} at {endpoint}, registered by {service} instance "
                        f"{entry.instance_id} as {entry.endpoint}")

    def expect_every_service_registered(self) -> None:
        """Each running instance is listed under the id the target started it with, at a routable endpoint,
        with the release's version."""
        for service in self._suite.manifest.service_names:
            entries = {entry.instance_id: entry for entry in self.entries(service)}
            for handle in self._suite.stack.instances(service):
                entry = entries.get(handle.instance_id)
                assert entry is not None, (
                    f"{service}#{handle.index} (instance {handle.instance_id}) is not in the registry: "
                    f"{self.snapshot()}"
                )
                assert routable(entry.host), f"{service} registered the unroutable host {entry.host!r}"
                assert 0 < entry.port < 65536, f"{service} registered port {entry.port!r}"
                declared = self._suite.manifest.service(service).version or self._suite.declared.version
                assert_that(entry.version, equal_to(declared), f"the version {service} registered")

    def expect_registrations_kept(self) -> None:
        """For two registry TTLs, every instance stays listed and its heartbeat keeps moving on."""
        declared = self._suite.declared
        first = self._heartbeats()

        def renewed(seen: dict[str, int]) -> bool:
            return all(instance in seen for instance in first)

        last = self._suite.holds(
            self._heartbeats, renewed, duration=2 * declared.registry_ttl_s,
            what="every instance of every service stays in the registry",
        )
        stale = sorted(instance for instance, at in last.items() if at <= first.get(instance, 0))
        assert not stale, f"instances whose heartbeat_at did not move on in two registry TTLs: {stale}"

    def expect_removed_deregistered(self) -> None:
        """The removed instance deleted its entry and announced `down` (expiry announces nothing)."""
        removed = self.state.removed
        assert removed is not None, "no instance was removed in this scenario"

        def still_there() -> dict[str, bool]:
            listed = [entry["instance_id"] for entry in self.snapshot().get(removed.service, [])]
            return {"entry present": removed.instance_id in listed, "down announced": self._announced_down(removed)}

        self._suite.wait(
            still_there,
            lambda seen: not seen["entry present"] and seen["down announced"],
            timeout=REACTION_MARGIN_S,
            what=f"{removed.service} instance {removed.instance_id} deletes its entry and announces down",
        )

    def _announced_down(self, removed: ServiceHandle) -> bool:
        for _, event in self._suite.redis.xrevrange(EVENTS_KEY, count=EVENTS_READ):
            if event.get("instance_id") == removed.instance_id and event.get("type") == "down":
                return True
        return False

    def expect_removed_expires(self) -> None:
        """The removed instance leaves lookups within the declared registry TTL (it could not deregister)."""
        removed = self.state.removed
        assert removed is not None, "no instance was removed in this scenario"
        ttl_s = self._suite.declared.registry_ttl_s
        self._suite.wait(
            lambda: {entry.instance_id for entry in self.entries(removed.service)},
            lambda listed: removed.instance_id not in listed,
            timeout=ttl_s + REACTION_MARGIN_S,
            what=f"{removed.service} instance {removed.instance_id} leaves the registry (declared TTL {ttl_s:g}s)",
        )

    def expect_every_service_registered_again(self) -> None:
        """Every running instance is listed again within one heartbeat (plus the reaction margin)."""
        declared = self._suite.declared
        running = {service: {h.instance_id for h in self._suite.stack.instances(service)} for service in ALL_SERVICES}
        self._suite.wait(
            lambda: {service: {e.instance_id for e in self.entries(service)} for service in ALL_SERVICES},
            lambda listed: all(running[service] <= listed[service] for service in ALL_SERVICES),
            timeout=declared.heartbeat_s + REACTION_MARGIN_S,
            what=f"every running instance is registered again (one heartbeat is {declared.heartbeat_s:g}s)",
        )

    def note_reads(self) -> None:
        self.state.noted[REGISTRY_READS] = self._lookups()

    def expect_fewer_reads_than(self, count: int) -> None:
        reads = self._lookups() - self.state.noted[REGISTRY_READS]
        assert_that(reads, less_than(count), "registry lookups (ZRANGEBYSCORE) while the orders were decided")

    def _heartbeats(self) -> dict[str, int]:
        return {entry.instance_id: entry.heartbeat_at_ms for service in ALL_SERVICES for entry in self.entries(service)}

    def _lookups(self) -> int:
        """How many registry lookups Redis has served so far (its own command statistics)."""
        stats = self._suite.redis.info("commandstats")
        return int(stats.get("cmdstat_zrangebyscore", {}).get("calls", 0))
