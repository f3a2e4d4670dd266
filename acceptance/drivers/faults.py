"""Faults the stack target applies to processes, containers, Redis and the network, each with its restore.

Restores act: they start what was stopped, give back what was taken, and replace the trading engine
when its breaker toward a service it lost may be open, instead of waiting for the breaker to recover.
"""

from __future__ import annotations

import json

import redis
from hamcrest import assert_that, equal_to

from acceptance.declared import REACTION_MARGIN_S
from acceptance.drivers import Driver
from acceptance.targets import ServiceHandle
from ecosystem.names import ALL_SERVICES, CONFIGURATION_SERVICE, TRADING_SYSTEM_ENGINE


class StackFaults(Driver):
    def scale(self, count: int, service: str) -> None:
        """Exactly `count` instances, all registered, and the trading engine using every one of them."""
        self._suite.on_restore(f"scale {service} back to 1 instance", lambda: self._suite.stack.scale(service, 1))
        self._suite.stack.scale(service, count)
        self._suite.orders.expect_knows_running(service)

    def stop_instance(self, number: int, service: str) -> None:
        handle = self._remove(number, service)
        self._suite.stack.stop_service(service, handle.index)

    def kill_instance(self, number: int, service: str) -> None:
        handle = self._remove(number, service)
        self._suite.stack.kill_service(service, handle.index)

    def restart(self, service: str) -> None:
        self._suite.on_restore(f"run {service} again", lambda: self._suite.stack.scale(service, 1))
        self._suite.stack.stop_service(service)
        self.state.restarted = self._suite.stack.start_service(service)

    def stop_every_instance(self, service: str) -> None:
        """Graceful stops; afterwards the service runs again and callers that lost it are replaced."""
        self._suite.on_restore(f"run {service} again and replace its callers", lambda: self._bring_back(service))
        for handle in reversed(self._suite.stack.instances(service)):
            self._suite.stack.stop_service(service, handle.index)

    def start_again(self, service: str) -> None:
        self.state.restarted = self._suite.stack.start_service(service)

    def terminate(self, service: str) -> None:
        """SIGTERM to the first instance, without waiting: the scenario watches it drain."""
        self._remove(1, service)
        self._suite.stack.terminate_service(service, 0)

    def expect_exit_within_grace(self, service: str) -> None:
        timings = self._suite.declared.timings
        code = self._suite.stack.wait_exited(service, 0, timings.shutdown_grace_s + REACTION_MARGIN_S)
        assert_that(code, equal_to(0), f"exit status of {service} after SIGTERM")

    def expect_logged_in_order(self, service: str, events: list[str]) -> None:
        """The first instance's log of this scenario has `events` in that order (other lines between them)."""
        text = self._suite.stack.logs(lines=1000, since=self.state.started_at).get(f"{service}#0", "")
        logged = []
        for line in text.splitlines():
            try:
                logged.append(json.loads(line)["event"])
            except (ValueError, KeyError, TypeError):
                continue  # a line that is not one of the service's JSON lines
        remaining = iter(logged)
        missing = [event for event in events if event not in remaining]
        assert not missing, f"the log of {service} lacks {missing} after the events before them; it logged {logged}"

    def flush_redis(self) -> None:
        self._suite.on_restore("register every service again", self._registered_again)
        self._suite.stack.flush_redis()

    def redis_outage(self, heartbeats: int) -> None:
        """Redis down for `heartbeats` heartbeat periods, so every service's heartbeat fails, then back."""
        self._suite.on_restore("start Redis and register every service again", self._redis_back)
        self._suite.stack.stop_redis()
        self._suite.holds(
            self._redis_down, lambda down: down, duration=heartbeats * self._suite.declared.heartbeat_s,
            what=f"Redis stays down for {heartbeats} heartbeats",
        )
        self._suite.stack.start_redis()

    def stop_redis(self) -> None:
        self._suite.on_restore("start Redis and register every service again", self._redis_back)
        self._suite.stack.stop_redis()

    def partition(self, service: str) -> None:
        handle = self._remove(1, service, restore=False)
        self._suite.on_restore(
            f"connect {service} again and replace its callers", lambda: self._heal_and_bring_back(handle)
        )
        self._suite.stack.partition_service(service, handle.index)

    def heal(self, service: str) -> None:
        removed = self.state.removed
        assert removed is not None, f"no instance of {service} was cut off in this scenario"
        self._suite.stack.heal_partition(service, removed.index)

    # --- restores --------------------------------------------------------------------------------

    def _remove(self, number: int, service: str, *, restore: bool = True) -> ServiceHandle:
        """The `number`th (from 1) running instance, noted as the one this scenario takes away."""
        running = self._suite.stack.instances(service)
        if not 1 <= number <= len(running):
            raise AssertionError(f"{service} has {len(running)} running instances, so there is no instance {number}")
        handle = running[number - 1]
        entries = [e for e in self._suite.registry.entries(service) if e.instance_id == handle.instance_id]
        self.state.removed = handle
        self.state.removed_entry = entries[0] if entries else None
        if restore:
            self._suite.on_restore(f"run {service} as 1 instance again", lambda: self._suite.stack.scale(service, 1))
        return handle

    def _bring_back(self, service: str) -> None:
        self._suite.stack.scale(service, 1)
        if service != TRADING_SYSTEM_ENGINE:
            self._replace(TRADING_SYSTEM_ENGINE)

    def _heal_and_bring_back(self, handle: ServiceHandle) -> None:
        self._suite.stack.heal_partition(handle.service, handle.index)
        self._bring_back(handle.service)

    def _redis_back(self) -> None:
        self._suite.stack.start_redis()
        self._registered_again()

    def _redis_down(self) -> bool:
        try:
            self._suite.redis.ping()
        except redis.RedisError:
            return True
        return False

    def _registered_again(self) -> None:
        """Every service registered within one heartbeat; those that are not are restarted, which registers them."""
        declared = self._suite.declared
        try:
            self._suite.wait(
                lambda: {service: self._unregistered(service) for service in ALL_SERVICES},
                lambda missing: not any(missing.values()),
                timeout=declared.heartbeat_s + REACTION_MARGIN_S,
                what="every running instance is registered again",
            )
        except AssertionError:
            for service in ALL_SERVICES:
                if self._unregistered(service):
                    self._replace(service)
        # Redis lost the configuration too: configuration-service seeds it on the read that finds it gone,
        # and at start.
        if self._suite.config.unseeded_limits():
            self._replace(CONFIGURATION_SERVICE)

    def _replace(self, service: str) -> None:
        self._suite.stack.stop_service(service)
        self._suite.stack.start_service(service)

    def _unregistered(self, service: str) -> set[str]:
        running = {handle.instance_id for handle in self._suite.stack.instances(service)}
        return running - {entry.instance_id for entry in self._suite.registry.entries(service)}
