"""configuration-service, called directly, checked against the configuration seed.

A scenario that writes a value registers a restore that writes the seeded value back and restarts the
services that cache configuration, so the next scenario starts with the seed everywhere.
"""

from __future__ import annotations

from hamcrest import assert_that, equal_to

from acceptance.declared import REACTION_MARGIN_S
from acceptance.drivers import Driver
from acceptance.rpc import RpcResult
from acceptance.stack_health import RISK_LIMITS
from ecosystem.config_client import RECONNECT
from ecosystem.names import CONFIGURATION_SERVICE, RISK_MONITOR, TRADING_SYSTEM_ENGINE
from ecosystem.security import ADMIN

# The services that read configuration through a cache, restarted after a scenario changed a value.
CACHING_SERVICES = (RISK_MONITOR, TRADING_SYSTEM_ENGINE)
TYPES = ("STRING", "NUMBER", "BOOLEAN", "JSON")
# A watch an earlier scenario cut off (its service restarted, configuration-service or its Redis down) is back within
# a few of its longest back-offs (ecosystem.config_client.RECONNECT): one more attempt may fail on the way.
WATCH_LIVE_TIMEOUT_S = 3 * RECONNECT.max_s + REACTION_MARGIN_S



class Configuration(Driver):
    def get(self, key: str, environment: str) -> RpcResult:
        return self._suite.call(CONFIGURATION_SERVICE, "GetConfiguration", {"key": key, "environment": environment})

    def try_set(self, key: str, environment: str, value: str, value_type: str) -> RpcResult:
        """SetConfiguration, whatever it answers; the seeded value is restored after the scenario."""
        if value_type not in TYPES:
            raise AssertionError(f"configuration type {value_type!r} is not one of {', '.join(TYPES)}")
        self._suite.on_restore(
            f"set {key} ({environment}) back to its seeded value", lambda: self._restore_seeded(key, environment)
        )
        request = {"key": key, "environment": environment, "value": value, "type": f"VALUE_TYPE_{value_type}"}
        return self._suite.call(CONFIGURATION_SERVICE, "SetConfiguration", request, identity=ADMIN)

    def set(self, key: str, environment: str, value: str, value_type: str) -> None:
        self._suite.ok(self.try_set(key, environment, value, value_type))

    def await_watch_live(self, service: str) -> None:
        """Wait until every instance of `service` follows configuration changes (its watch live and its cache re-read
        since it connected); note how often each has connected, for `expect_watch_not_reconnected`."""
        watches = self._suite.wait(
            lambda: self._watches(service),
            lambda watches: all(watching for watching, _ in watches.values()),
            timeout=WATCH_LIVE_TIMEOUT_S,
            what=f"every {service} instance's configuration watch is live",
        )
        for instance, (_, connects) in watches.items():
            self.state.noted[f"{service} {instance} watch connects"] = connects

    # --- expecting -----------------------------------------------------------------------------

    def expect_watch_not_reconnected(self, service: str) -> None:
        """No instance of `service` reconnected its watch since `await_watch_live`: a reconnection re-reads every
        cached key, which would deliver a change whether the watch delivers it or not."""
        now = {instance: connects for instance, (_, connects) in self._watches(service).items()}
        assert_that(
            now,
            equal_to({instance: self.state.noted.get(f"{service} {instance} watch connects") for instance in now}),
            f"times each {service} instance's configuration watch connected (a reconnection re-reads the cache)",
        )

    def _watches(self, service: str) -> dict[str, tuple[bool, int]]:
        """Each instance of `service`: whether its configuration watch is live, and how often it has connected."""
        caches = {instance: stats.get("config_cache") or {}
                  for instance, stats in self._suite.performance_stats(service).items()}
        return {instance: (bool(cache.get("watching")), int(cache.get("watch_connects", 0)))
                for instance, cache in caches.items()}

    def expect_limits(self, rows: list[tuple[str, str]]) -> None:
        """The limits a feature states are the seed's for the stack's environment."""
        declared = self._suite.declared
        for key, value in rows:
            seeded = declared.seeded(key)
            assert seeded.matches(value), (
                f"the feature states {key} = {value}, but {declared.seed_file.name} seeds {seeded.value} "
                f"for environment {declared.environment!r}"
            )

    def expect_value(self, value: str, value_type: str) -> None:
        """The last GetConfiguration answer carries `value` of `value_type`, and that is what the seed declares."""
        request = self.state.last_call().request
        key, environment = request.get("key", ""), request.get("environment", "")
        seeded = self._suite.declared.seeded(key, environment)
        assert seeded.matches(value) and seeded.type.upper() == value_type, (
            f"the feature expects {key} ({environment}) = {value} of type {value_type}, "
            f"but the seed declares {seeded.value} of type {seeded.type.upper()}"
        )
        answer = self._suite.ok(self.state.last_call())
        assert_that(answer.get("type"), equal_to(f"VALUE_TYPE_{value_type}"), f"type of {key} ({environment})")
        served = answer.get("value", "")
        assert seeded.matches(served), f"{key} ({environment}) is {served!r}, seeded {value}"

    def expect_seeded(self, key: str, environment: str) -> None:
        seeded = self._suite.declared.seeded(key, environment)
        answer = self._suite.ok(self.get(key, environment))
        assert seeded.matches(answer.get("value", "")), (
            f"{key} ({environment}) is {answer.get('value')!r}, but the seed declares {seeded.value}"
        )

    def unseeded_limits(self) -> list[str]:
        """The risk limits configuration-service does not serve as seeded, now."""
        environment = self._suite.declared.environment
        unseeded = []
        for key in RISK_LIMITS:
            answer = self.get(key, environment)
            if not (answer.ok and self._suite.declared.seeded(key).matches(answer.body.get("value", ""))):
                unseeded.append(key)
        return unseeded

    def expect_limits_served_as_seeded(self) -> None:
        """After Redis lost its data, configuration-service serves the seeded risk limits again."""
        for key in RISK_LIMITS:
            self.expect_seeded(key, self._suite.declared.environment)

    def _restore_seeded(self, key: str, environment: str) -> None:
        seeded = self._suite.declared.seeded(key, environment)
        current = self.get(key, environment)
        if current.ok and seeded.matches(current.body.get("value", "")):
            return  # never changed: nothing cached it
        request = {"key": key, "environment": environment, "value": seeded.value,
                   "type": f"VALUE_TYPE_{seeded.type.upper()}"}
        self._suite.ok(self._suite.call(CONFIGURATION_SERVICE, "SetConfiguration", request, identity=ADMIN))
        for service in CACHING_SERVICES:
            self._suite.stack.stop_service(service)
            self._suite.stack.start_service(service)
