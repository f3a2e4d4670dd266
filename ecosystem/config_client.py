"""ConfigurationServiceClient: typed, cached reads of configuration-service for one environment.

The cache holds each key for `cache_ttl_s`; a WatchConfiguration stream replaces cached values as
they change, and every cached key is read again whenever that stream (re)connects, since changes
may have been missed meanwhile. Concurrent first reads of a key share one RPC. While the service is unreachable a
cached value past its TTL is served and flagged stale.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import grpc

from ecosystem import logs
from ecosystem.api.common.v1 import stats_pb2
from ecosystem.api.config.v1 import config_pb2
from ecosystem.backoff import Backoff
from ecosystem.client_manager import InterServiceClientManager, ServiceCommunicationError
from ecosystem.errors import EcosystemError
from ecosystem.names import CONFIGURATION_SERVICE

# Jittered: every service reconnects at once when configuration-service restarts.
RECONNECT = Backoff(initial_s=0.2, max_s=2.0, jitter=0.5)
_TYPE_NAMES = {
    config_pb2.VALUE_TYPE_STRING: "string",
    config_pb2.VALUE_TYPE_NUMBER: "number",
    config_pb2.VALUE_TYPE_BOOLEAN: "boolean",
    config_pb2.VALUE_TYPE_JSON: "json",
}
_TRANSPORT_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED)
# configuration-service's answers that only a change of the configuration itself can mend.
_UNUSABLE_CODES = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)


class ConfigurationError(EcosystemError):
    """A configuration value could not be had: configuration-service did not answer in time."""


class ConfigurationUnusable(ConfigurationError):
    """configuration-service answered, but not with a usable value: "Configuration not found: risk.foo", or a value
    of another type than the reader expects. Retrying does not help; the configuration must be fixed."""


@dataclass(frozen=True)
class ConfigValue:
    key: str
    value: str
    type: str
    environment: str
    version: int
    updated_at_ms: int = 0
    stale: bool = False

    def as_string(self) -> str:
        return self._expect("string").value

    def as_number(self) -> float:
        return float(self._expect("number").value)

    def as_bool(self) -> bool:
        return self._expect("boolean").value == "true"

    def as_json(self) -> Any:
        return json.loads(self._expect("json").value)

    def _expect(self, expected: str) -> ConfigValue:
        if self.type != expected:
            raise ConfigurationUnusable(
                f"Configuration {self.key} ({self.environment}) is of type {self.type}, expected {expected}"
            )
        return self


@dataclass(frozen=True)
class CacheStats:
    cache_size: int
    cache_hits: int
    cache_misses: int
    hit_rate: float
    total_requests: int
    stale_served: int
    fetches: int
    watching: bool
    watch_connects: int


@dataclass
class _Entry:
    value: ConfigValue
    expires_at: float


class ConfigurationServiceClient:
    def __init__(
        self,
        clients: InterServiceClientManager,
        *,
        environment: str,
        cache_ttl_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.environment = environment
        self._clients = clients
        self._ttl = cache_ttl_s
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[ConfigValue]] = {}
        self._hits = self._misses = self._stale = self._fetches = self._watch_connects = 0
        self._watch: asyncio.Task[None] | None = None
        # Set while the watch is live and the cache re-read after it (re)connected.
        self.watching = asyncio.Event()

    async def start(self) -> None:
        """Follow changes of this environment from now on, reconnecting whenever the stream ends."""
        self._watch = asyncio.create_task(self._follow_changes(), name="config-watch")

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)

    async def get(self, key: str, *, timeout: float | None = None) -> ConfigValue:
        cached = self._cached(key)
        if cached is not None:
            return cached
        self._misses += 1
        fetch = self._inflight.get(key)
        if fetch is None:
            fetch = asyncio.create_task(self._fetch(key, timeout))
            self._inflight[key] = fetch
            fetch.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(fetch)

    def cached(self, keys: Sequence[str]) -> list[ConfigValue] | None:
        """The values of `keys`, in order, when every one is cached within its TTL (counted as hits); None, with
        nothing counted, when one is not. The request path's `cached(keys) or await get_many(keys)` costs no
        coroutine in the usual case."""
        now = self._clock()
        values = []
        for key in keys:
            if (value := self._fresh_value(key, now)) is None:
                return None
            values.append(value)
        self._hits += len(values)
        return values

    async def get_many(self, keys: Sequence[str], *, timeout: float | None = None) -> list[ConfigValue]:
        """The values of `keys`, in order: cached ones at once, the others fetched concurrently.

        Cheaper than gathering `get`s, which costs a task per key even when every value is cached.
        """
        now = self._clock()
        cached = [self._cached(key, now) for key in keys]
        missing = [key for key, value in zip(keys, cached, strict=True) if value is None]
        fetched = iter(await asyncio.gather(*(self.get(key, timeout=timeout) for key in missing)) if missing else ())
        return [next(fetched) if value is None else value for value in cached]

    async def get_string(self, key: str, *, timeout: float | None = None) -> str:
        return (await self.get(key, timeout=timeout)).as_string()

    async def get_number(self, key: str, *, timeout: float | None = None) -> float:
        return (await self.get(key, timeout=timeout)).as_number()

    async def get_bool(self, key: str, *, timeout: float | None = None) -> bool:
        return (await self.get(key, timeout=timeout)).as_bool()

    async def get_json(self, key: str, *, timeout: float | None = None) -> Any:
        return (await self.get(key, timeout=timeout)).as_json()

    def stats(self) -> CacheStats:
        total = self._hits + self._misses
        return CacheStats(
            cache_size=len(self._cache),
            cache_hits=self._hits,
            cache_misses=self._misses,
            hit_rate=self._hits / total if total else 0.0,
            total_requests=total,
            stale_served=self._stale,
            fetches=self._fetches,
            watching=self.watching.is_set(),
            watch_connects=self._watch_connects,
        )

    def stats_proto(self) -> stats_pb2.ConfigCacheStats:
        return stats_pb2.ConfigCacheStats(**self.stats().__dict__)

    def _cached(self, key: str, now: float | None = None) -> ConfigValue | None:
        """The cached value of `key` within its TTL at `now` (default: the clock's), counted as a hit; None (and
        nothing counted) otherwise."""
        value = self._fresh_value(key, self._clock() if now is None else now)
        if value is not None:
            self._hits += 1
        return value

    def _fresh_value(self, key: str, now: float) -> ConfigValue | None:
        """The cached value of `key` if it is still within its TTL at `now`."""
        entry = self._cache.get(key)
        return entry.value if entry is not None and entry.expires_at > now else None

    async def _fetch(self, key: str, timeout: float | None) -> ConfigValue:
        self._fetches += 1
        request = config_pb2.GetConfigurationRequest(key=key, environment=self.environment)
        try:
            reply = await self._clients.call(
                CONFIGURATION_SERVICE, "GetConfiguration", lambda stub, t: stub.GetConfiguration(request, timeout=t),
                timeout=timeout,
            )
        except ServiceCommunicationError as exc:
            return self._fallback(key, exc)
        return self._store(_from_proto(reply))

    def _store(self, value: ConfigValue) -> ConfigValue:
        """Cache `value` unless a later write is cached (a read answered before a change may arrive after it); the
        value now cached. Writes are ordered by time, then version: a reseeded Redis starts versions at 1 again."""
        entry = self._cache.get(value.key)
        expires_at = self._clock() + self._ttl
        if entry is not None and _written(entry.value) > _written(value):
            entry.expires_at = expires_at  # as current as the answer that just came
            return entry.value
        self._cache[value.key] = _Entry(value, expires_at)
        return value

    def _fallback(self, key: str, exc: ServiceCommunicationError) -> ConfigValue:
        if exc.code in _UNUSABLE_CODES:
            raise ConfigurationUnusable(exc.details) from None
        if exc.code not in _TRANSPORT_CODES:
            raise ConfigurationError(exc.details) from None
        entry = self._cache.get(key)
        if entry is None:
            raise ConfigurationError(f"Configuration {key} ({self.environment}) is unavailable: {exc}") from None
        self._stale += 1
        logs.log_event("config_stale_served", level="warning", key=key, version=entry.value.version, error=str(exc))
        return replace(entry.value, stale=True)

    async def _resync(self) -> None:
        """Re-read every cached key: changes made while the watch was down were missed.

        Reads go on from the cache meanwhile, and keep doing so if configuration-service cannot
        answer: an outage never puts a wait in the request path before a value's TTL runs out.
        """
        keys = sorted(self._cache)
        if not keys:
            return
        request = config_pb2.GetConfigurationsRequest(keys=keys, environment=self.environment)
        try:
            reply = await self._clients.call(
                CONFIGURATION_SERVICE, "GetConfigurations", lambda stub, t: stub.GetConfigurations(request, timeout=t)
            )
        except ServiceCommunicationError as exc:
            logs.log_event("config_resync_failed", level="warning", keys=len(keys), error=str(exc))
            return
        for config in reply.configurations:
            self._store(_from_proto(config))

    async def _follow_changes(self) -> None:
        request = config_pb2.WatchConfigurationRequest(prefix="", environment=self.environment)
        failures = 0
        while True:
            try:
                instance, stream = await self._clients.open_stream(
                    CONFIGURATION_SERVICE, lambda stub: stub.WatchConfiguration(request)
                )
                # The server sends its headers once the watch is live: from then on no change is missed.
                await stream.initial_metadata()
                logs.log_event("config_watch_connected", endpoint=instance.endpoint)
                await self._resync()
                self.watching.set()
                self._watch_connects += 1
                async for change in stream:
                    value = _from_proto(change.configuration)
                    # Only keys this service reads: caching every change would grow with what others write.
                    cached = value.key in self._cache or value.key in self._inflight
                    if cached and self._store(value) is value:
                        logs.log_decision("config_changed", key=value.key, value=value.value, version=value.version)
                    failures = 0
                error: str | None = None  # the server ended the watch: reconnect without a warning
            except asyncio.CancelledError:
                # grpc also raises this when the client manager closes the channel of an instance that
                # left the registry: only our own close() ends the watch.
                if (task := asyncio.current_task()) is not None and task.cancelling():
                    raise
                error = "the instance left the registry"
            except (ServiceCommunicationError, grpc.aio.AioRpcError) as exc:
                error = str(exc).splitlines()[0]
            failures += 1
            backoff = RECONNECT.delay(failures)
            if error is not None:
                logs.log_event("config_watch_lost", level="warning", error=error, retry_in_s=backoff)
            self.watching.clear()
            await asyncio.sleep(backoff)


def _written(value: ConfigValue) -> tuple[int, int]:
    return value.updated_at_ms, value.version


def _from_proto(config: config_pb2.Configuration) -> ConfigValue:
    return ConfigValue(
        key=config.key,
        value=config.value,
        type=_TYPE_NAMES.get(config.type, "string"),
        environment=config.environment,
        version=config.version,
        updated_at_ms=config.updated_at.ToMilliseconds(),
    )
