"""Service discovery on Redis: each process's own entry, kept alive by a Lua heartbeat, and a cached resolver.

Keys (docs/ARCHITECTURE.md):
    reg:v1:svc:{service}:inst:{instance_id}  HASH    the entry, PEXPIRE = TTL
    reg:v1:svc:{service}:idx                 ZSET    instance_id -> expiry ms (Redis TIME + TTL)
    reg:v1:services                          SET     service names
    reg:v1:events                            STREAM  type (up|update|down), service, instance_id, incarnation

Every timestamp comes from Redis `TIME`, so instances on machines with skewed clocks agree on expiry.
The Redis clients handed in may use `decode_responses=True` or not: every reply goes through `_text`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import redis
import redis.asyncio
from redis.exceptions import RedisError

from ecosystem.backoff import Backoff
from ecosystem.errors import EcosystemError
from ecosystem.logs import log_event

SERVING = "SERVING"
DRAINING = "DRAINING"
STATUSES = (SERVING, DRAINING)

SERVICES_KEY = "reg:v1:services"
EVENTS_KEY = "reg:v1:events"
EVENTS_MAXLEN = 10_000
# Read per service at most: a registry flooded with bogus entries costs callers this much memory, no more.
MAX_INSTANCES = 256
# The resolver's watch after a Redis error: soon after a restart, at most once a second while Redis stays down
# (never later than the resolver's refresh interval).
WATCH_RETRY = Backoff(initial_s=0.1, max_s=1.0)
_SCAN_COUNT = 1000
UNROUTABLE_HOSTS = frozenset({"0.0.0.0", "::", ""})


def instance_key(service: str, instance_id: str) -> str:
    return f"reg:v1:svc:{service}:inst:{instance_id}"


def index_key(service: str) -> str:
    return f"reg:v1:svc:{service}:idx"


# Incarnations are compared as decimal strings: Lua numbers are doubles and would round a time_ns value.
_HEARTBEAT_LUA = """
local function older(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local instance_id, service, incarnation, status = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ttl_ms = tonumber(ARGV[5])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local started_at = ARGV[10]
if started_at == '' then started_at = string.format('%d', now_ms) end

local owner = redis.call('HMGET', KEYS[1], 'incarnation', 'status')
local event = ''
if not owner[1] or older(owner[1], incarnation) then
  event = 'up'
elseif older(incarnation, owner[1]) then
  return {0, now_ms, owner[1]}
elseif owner[2] ~= status then
  event = 'update'
end

local expires_at = string.format('%d', now_ms + ttl_ms)
redis.call('HSET', KEYS[1], 'instance_id', instance_id, 'service', service, 'host', ARGV[6], 'port', ARGV[7],
  'version', ARGV[8], 'api_version', ARGV[9], 'status', status, 'started_at', started_at,
  'heartbeat_at', string.format('%d', now_ms), 'incarnation', incarnation, 'meta', ARGV[11])
redis.call('PEXPIRE', KEYS[1], ttl_ms)
redis.call('ZADD', KEYS[2], expires_at, instance_id)
-- members of instances killed without deregistering would otherwise stay in the index forever
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. string.format('%d', now_ms))
redis.call('SADD', KEYS[3], service)
if event ~= '' then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[12], '*',
    'type', event, 'service', service, 'instance_id', instance_id, 'incarnation', incarnation)
end
return {1, now_ms, event}
"""

_DEREGISTER_LUA = """
if redis.call('HGET', KEYS[1], 'incarnation') ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*',
  'type', 'down', 'service', ARGV[2], 'instance_id', ARGV[1], 'incarnation', ARGV[3])
return 1
"""


class RegistryError(EcosystemError):
    """A registry operation failed; the message names the service, the instance and the Redis operation."""


class Superseded(RegistryError):
    """A newer incarnation owns this instance's entry: this process must not serve under it."""

    def __init__(self, message: str, owner_incarnation: str) -> None:
        super().__init__(message)
        self.owner_incarnation = owner_incarnation


@dataclass(frozen=True)
class ServiceInstance:
    instance_id: str
    service: str
    host: str
    port: int
    version: str
    api_version: str
    status: str
    started_at_ms: int
    heartbeat_at_ms: int
    incarnation: int
    expires_at_ms: int
    meta: dict[str, str] = field(default_factory=dict, hash=False)

    @functools.cached_property
    def endpoint(self) -> str:  # read several times per call by the client manager
        return f"{self.host}:{self.port}"

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "endpoint": self.endpoint}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


# Replies in the RESP2 shapes these clients get, str or bytes by their decode_responses: redis-py's types also
# allow the RESP3 shapes, so replies are cast to these where they are read.
_Scored = list[tuple[str | bytes, float]]
_Entries = list[tuple[str | bytes, dict[str | bytes, str | bytes]]]


def _parse_instance(fields: Mapping[Any, Any], expires_at_ms: int) -> ServiceInstance:
    """One HGETALL reply as an instance; ValueError/KeyError when a field is missing or malformed, or names an
    endpoint no caller can dial (what registration refuses, reading refuses too)."""
    entry = {_text(name): _text(value) for name, value in fields.items()}
    if "host" in entry and entry["host"] in UNROUTABLE_HOSTS:
        raise ValueError(f"host {entry['host']!r} is not an address a caller can dial")
    if "port" in entry and not 0 < int(entry["port"]) < 65536:
        raise ValueError(f"port {entry['port']!r} is not a port a caller can reach")
    return ServiceInstance(
        instance_id=entry["instance_id"],
        service=entry["service"],
        host=entry["host"],
        port=int(entry["port"]),  # int("50051.0") raises: a float port is a broken entry, not a port
        version=entry["version"],
        api_version=entry["api_version"],
        status=entry["status"],
        started_at_ms=int(entry["started_at"]),
        heartbeat_at_ms=int(entry["heartbeat_at"]),
        incarnation=int(entry["incarnation"]),
        expires_at_ms=expires_at_ms,
        meta=json.loads(entry.get("meta") or "{}"),
    )


def _parse_entries(
    service: str, indexed: Iterable[tuple[Any, float]], rows: Iterable[Mapping[Any, Any]], *, serving_only: bool
) -> list[ServiceInstance]:
    """Pair index members (instance_id, expiry score) with their HGETALL replies; drop missing entries."""
    found = []
    for (member, score), fields in zip(indexed, rows, strict=True):
        if not fields:  # expired or deleted between ZRANGEBYSCORE and HGETALL
            continue
        try:
            instance = _parse_instance(fields, int(score))
            if instance.service != service:
                raise ValueError(f"service {instance.service!r} is not the service of its key ({service!r})")
        except (KeyError, ValueError) as exc:
            _report_invalid(instance_key(service, _text(member)), exc)
            continue
        if not serving_only or instance.status == SERVING:
            found.append(instance)
    return found


# Invalid entries already logged: every lookup meets them again, and the log must say it once.
_REPORTED_INVALID: dict[tuple[str, str], None] = {}
MAX_REPORTED_INVALID = 1000


def _report_invalid(key: str, exc: Exception) -> None:
    error = f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
    if (key, error) in _REPORTED_INVALID:
        return
    if len(_REPORTED_INVALID) >= MAX_REPORTED_INVALID:
        _REPORTED_INVALID.pop(next(iter(_REPORTED_INVALID)))
    _REPORTED_INVALID[(key, error)] = None
    log_event("registry_entry_invalid", level="warning", key=key, error=error,
              contract="docs/REGISTRY.md", note="skipped by callers; logged once per key and error")


def _now_ms(redis_time: tuple[int, int]) -> int:
    seconds, microseconds = redis_time
    return int(seconds) * 1000 + int(microseconds) // 1000


async def lookup(client: redis.asyncio.Redis, service: str) -> list[ServiceInstance]:
    """The SERVING, unexpired instances of `service`, read from Redis now (costs ~0.5 ms: cache it)."""
    entries, _ = await read_entries(client, service)
    return [i for i in entries if i.status == SERVING]


async def read_entries(
    client: redis.asyncio.Redis, service: str, *, known: Iterable[str] = (), scan: bool = True
) -> tuple[list[ServiceInstance], int]:
    """Every unexpired entry of `service` whatever its status, and the Redis time (ms) it was read at: the clock
    every expiry is in.

    The index is where entries are found, but the per-instance keys are the truth: when the index is empty (deleted,
    or Redis restarted and instances are re-registering) the keys are scanned (unless `scan` is False: a SCAN walks
    the whole keyspace), and `known` instance ids missing from the index are read directly. Either way no live
    instance is lost to a damaged index.
    """
    index = index_key(service)
    try:
        now_ms = _now_ms(await client.time())
        indexed = cast(
            _Scored,
            await client.zrangebyscore(index, f"({now_ms}", "+inf", start=0, num=MAX_INSTANCES, withscores=True),
        )
        listed = {_text(member) for member, _ in indexed}
        unlisted = [i for i in known if i not in listed]
        if not indexed and scan:
            unlisted = list(dict.fromkeys([*unlisted, *await _scan_instance_ids(client, service)]))
        async with client.pipeline(transaction=False) as pipe:
            for member, _ in indexed:
                pipe.hgetall(instance_key(service, _text(member)))
            for instance_id in unlisted:
                pipe.hgetall(instance_key(service, instance_id))
                pipe.pttl(instance_key(service, instance_id))
            replies = await pipe.execute()
    except RedisError as exc:
        raise RegistryError(f"lookup of service {service!r} failed: ZRANGEBYSCORE {index} + HGETALL: {exc}") from exc
    scored, rows = list(indexed), replies[: len(indexed)]
    unlisted_replies = replies[len(indexed):]
    for instance_id, fields, ttl_ms in zip(unlisted, unlisted_replies[0::2], unlisted_replies[1::2], strict=True):
        if ttl_ms > 0:  # the entry's own PEXPIRE is its expiry when the index has no score for it
            scored.append((instance_id, now_ms + ttl_ms))
            rows.append(fields)
    return _parse_entries(service, scored, rows, serving_only=False), now_ms


async def _scan_instance_ids(client: redis.asyncio.Redis, service: str) -> list[str]:
    prefix = instance_key(service, "")
    found: list[str] = []
    async for key in client.scan_iter(match=prefix + "*", count=_SCAN_COUNT):
        found.append(_text(key)[len(prefix):])
        if len(found) >= MAX_INSTANCES:
            break
    return found


def lookup_sync(client: redis.Redis, service: str) -> list[ServiceInstance]:
    """`lookup` for a synchronous redis-py client."""
    index = index_key(service)
    try:
        now_ms = _now_ms(client.time())
        indexed = cast(_Scored, client.zrangebyscore(index, f"({now_ms}", "+inf", withscores=True))
        with client.pipeline(transaction=False) as pipe:
            for member, _ in indexed:
                pipe.hgetall(instance_key(service, _text(member)))
            rows = pipe.execute()
    except RedisError as exc:
        raise RegistryError(f"lookup of service {service!r} failed: ZRANGEBYSCORE {index} + HGETALL: {exc}") from exc
    return _parse_entries(service, indexed, rows, serving_only=True)


async def list_services(client: redis.asyncio.Redis) -> list[str]:
    try:
        return sorted(_text(name) for name in await client.smembers(SERVICES_KEY))
    except RedisError as exc:
        raise RegistryError(f"listing services failed: SMEMBERS {SERVICES_KEY}: {exc}") from exc


def registry_snapshot(client: redis.Redis) -> dict[str, list[dict[str, Any]]]:
    """Every entry still in Redis, whatever its status or expiry, per service: for failure reports."""
    snapshot = {}
    try:
        for service in sorted(_text(name) for name in client.smembers(SERVICES_KEY)):
            indexed = cast(_Scored, client.zrange(index_key(service), 0, -1, withscores=True))
            with client.pipeline(transaction=False) as pipe:
                for member, _ in indexed:
                    pipe.hgetall(instance_key(service, _text(member)))
                rows = pipe.execute()
            snapshot[service] = [i.as_dict() for i in _parse_entries(service, indexed, rows, serving_only=False)]
    except RedisError as exc:
        raise RegistryError(f"registry snapshot failed: SMEMBERS {SERVICES_KEY} / ZRANGE / HGETALL: {exc}") from exc
    return snapshot


async def _cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait for it to end.

    On Python 3.11, asyncio.wait_for (which redis-py awaits on every command it sends) drops a cancellation
    that arrives as its inner future completes (CPython gh-86296, fixed in 3.12): one cancel() may be lost.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
    with contextlib.suppress(asyncio.CancelledError):
        await task


class ServiceRegistration:
    """This process's own registry entry: registered by `start`, kept alive every TTL/3, removed by `stop`.

    Identity is `instance_id` plus `incarnation` (larger wins), never host:port.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        *,
        service: str,
        host: str,
        port: int,
        version: str,
        api_version: str = "v1",
        ttl_ms: int = 15_000,
        meta: Mapping[str, str] | None = None,
        instance_id: str | None = None,
        incarnation: int | None = None,
        on_superseded: Callable[[str], None] | None = None,
    ) -> None:
        """`on_superseded(owner_incarnation)` runs when a heartbeat finds a newer incarnation owning the entry:
        the heartbeat stops, and the owner of the callback must stop serving."""
        if not 0 < port < 65536:
            raise ValueError(f"service {service!r}: port {port} is not a port a caller can reach")
        if ttl_ms < 30:
            raise ValueError(f"service {service!r}: ttl_ms={ttl_ms} is too short to heartbeat every ttl/3")
        if incarnation is not None and incarnation < 0:
            raise ValueError(f"service {service!r}: incarnation {incarnation} must not be negative")
        self._redis = redis
        self.service = service
        self.host = host
        self.port = port
        self.version = version
        self.api_version = api_version
        self.ttl_ms = ttl_ms
        self.meta = dict(meta or {})
        self.instance_id = instance_id or uuid.uuid4().hex
        self.incarnation = time.time_ns() if incarnation is None else incarnation
        self.status = SERVING
        self._started_at_ms: int | None = None  # Redis time of the first successful heartbeat
        self._key = instance_key(service, self.instance_id)
        self._heartbeat_script = redis.register_script(_HEARTBEAT_LUA)
        self._deregister_script = redis.register_script(_DEREGISTER_LUA)
        self._task: asyncio.Task[None] | None = None
        self._on_superseded = on_superseded
        self._owner_incarnation = ""

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def _describe(self) -> str:
        return f"service {self.service!r} instance {self.instance_id} ({self.endpoint}, incarnation {self.incarnation})"

    async def start(self) -> None:
        if self.host in UNROUTABLE_HOSTS:
            raise ValueError(
                f"{self._describe()}: host {self.host!r} is not routable; "
                "register the container name or the loopback address"
            )
        if self._task is not None:
            raise RuntimeError(f"{self._describe()} is already registered")
        if not await self.heartbeat():
            raise Superseded(f"{self._describe()}: a newer incarnation owns {self._key}", self._owner_incarnation)
        self._task = asyncio.create_task(self._heartbeat_loop(), name=f"registry-heartbeat-{self.service}")
        log_event(
            "registered", service=self.service, instance_id=self.instance_id, endpoint=self.endpoint,
            incarnation=self.incarnation, ttl_ms=self.ttl_ms,
        )

    async def heartbeat(self) -> bool:
        """Upsert the full entry now; False when a newer incarnation owns it (it is left untouched)."""
        args: list[str | int] = [
            self.instance_id, self.service, str(self.incarnation), self.status, self.ttl_ms, self.host, self.port,
            self.version, self.api_version, self._started_at_ms or "", json.dumps(self.meta), EVENTS_MAXLEN,
        ]
        try:
            written, now_ms, detail = await self._heartbeat_script(
                keys=[self._key, index_key(self.service), SERVICES_KEY, EVENTS_KEY], args=args
            )
        except RedisError as exc:
            raise RegistryError(f"heartbeat of {self._describe()} failed: EVALSHA upsert {self._key}: {exc}") from exc
        if written and self._started_at_ms is None:
            self._started_at_ms = int(now_ms)
        if not written:
            self._owner_incarnation = _text(detail)
        return bool(written)

    async def set_status(self, status: str) -> None:
        """Publish a new status at once (an `update` event); RegistryError if Redis cannot be reached."""
        if status not in STATUSES:
            raise ValueError(f"{self._describe()}: status {status!r} is not one of {STATUSES}")
        self.status = status  # the background heartbeat carries it even if this write fails
        await self.heartbeat()

    async def stop(self) -> None:
        """Stop heartbeating, then delete the entry and announce `down` if this incarnation still owns it."""
        if self._task is not None:
            await _cancel_and_wait(self._task)
            self._task = None
        try:
            removed = await self._deregister_script(
                keys=[self._key, index_key(self.service), EVENTS_KEY],
                args=[self.instance_id, self.service, str(self.incarnation), EVENTS_MAXLEN],
            )
        except RedisError as exc:
            raise RegistryError(f"deregistering {self._describe()} failed: DEL/ZREM {self._key}: {exc}") from exc
        log_event("deregistered", service=self.service, instance_id=self.instance_id, removed=bool(removed))

    async def _heartbeat_loop(self) -> None:
        interval_s = self.ttl_ms / 3000
        failing = False
        while True:
            await asyncio.sleep(interval_s)
            try:
                # a hung Redis must not hold the loop past the next tick
                async with asyncio.timeout(interval_s):
                    owned = await self.heartbeat()
            except (RegistryError, TimeoutError) as exc:
                failing = True
                log_event(
                    "heartbeat_failed", level="warning", service=self.service, instance_id=self.instance_id,
                    error=str(exc) or f"no reply within {interval_s:g}s",
                )
                continue
            if failing:
                failing = False
                log_event("heartbeat_recovered", service=self.service, instance_id=self.instance_id)
            if not owned:
                log_event(
                    "superseded", level="warning", service=self.service, instance_id=self.instance_id,
                    incarnation=self.incarnation, owner_incarnation=self._owner_incarnation,
                )
                if self._on_superseded is not None:
                    self._on_superseded(self._owner_incarnation)
                return


def _identity(instances: Iterable[ServiceInstance]) -> frozenset[tuple[str, int, str]]:
    return frozenset((i.instance_id, i.incarnation, i.endpoint) for i in instances)


class ServiceResolver:
    """The caller side of discovery: every watched service's instances in memory, kept current by a watch.

    A service is watched from its first `instances` call. The background task (`start`) re-reads a service
    when an event names it (XREAD BLOCK on the events stream) and also re-reads every watched service every
    `refresh_interval_s`, or every TTL/3 of its instances if shorter, so that instances killed without a
    `down` event leave and healthy ones never look expired. While Redis is unreachable the last known
    instances are served regardless of expiry (fail static) and `source()` says "cache"; once it is back,
    they are served for one TTL more while they register again on it.

    The client's socket_timeout must exceed `block_ms` (redis-py's default 5 s does).
    """

    def __init__(self, redis: redis.asyncio.Redis, *, refresh_interval_s: float = 5.0, block_ms: int = 1000) -> None:
        self._redis = redis
        self._refresh_interval_s = refresh_interval_s
        self._block_ms = block_ms
        self._cache: dict[str, list[ServiceInstance]] = {}
        self._sources: dict[str, str] = {}
        self._fresh_until_ms: dict[str, float] = {}  # service -> Redis time its first cached instance may be dead
        self._next_read: dict[str, float] = {}  # service -> loop time of its next full read
        self._scanned_at: dict[str, float] = {}  # service -> loop time its empty index was last made up by a SCAN
        self._callbacks: list[Callable[[str, list[ServiceInstance]], None]] = []
        self._unreachable = False
        # Redis time at which the registry was read again after an outage: no instance could heartbeat before it.
        self._reachable_again_ms = 0
        self._task: asyncio.Task[None] | None = None
        # Redis time minus this host's, measured at every read: expiries are in Redis time, and this host's
        # clock may run ahead or behind by more than a TTL.
        self._clock_offset_ms = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch_loop(), name="registry-watch")

    async def close(self) -> None:
        if self._task is not None:
            await _cancel_and_wait(self._task)
            self._task = None

    async def instances(self, service: str) -> list[ServiceInstance]:
        """SERVING instances of `service`; the first call for a service reads Redis, and so does a call that
        finds a cached instance past its expiry (Redis says whether it died or the last read is just late)."""
        fresh = self.fresh_instances(service)
        if fresh is not None:
            return list(fresh)
        cached = self._cache.get(service)
        if cached is None:
            return await self.refresh(service)
        # A watch loop that ran late on a busy machine would otherwise drop instances that are alive.
        try:
            return await self.refresh(service)
        except RegistryError:
            return list(cached)

    def fresh_instances(self, service: str) -> Sequence[ServiceInstance] | None:
        """What `instances` answers without reading Redis, where it would (None: a first call, or a cached instance
        past its expiry); not a copy, so cheaper on the request path, and not to be changed."""
        cached = self._cache.get(service)
        if cached is None:
            return None
        if self._sources[service] == "cache":
            return cached
        now_ms = time.time_ns() // 1_000_000 + self._clock_offset_ms  # Redis time, as of now
        return cached if now_ms < self._fresh_until_ms[service] else None

    def source(self, service: str) -> str:
        """"registry" (last read succeeded), "cache" (Redis unreachable, last known served) or "none" (never read)."""
        return self._sources.get(service, "none")

    def subscribe(self, callback: Callable[[str, list[ServiceInstance]], None]) -> None:
        """Call `callback(service, instances)` whenever a watched service's set of instances changes."""
        self._callbacks.append(callback)

    async def refresh(self, service: str) -> list[ServiceInstance]:
        """Read `service` from Redis now and watch it; RegistryError if Redis is unreachable."""
        self._next_read.setdefault(service, 0.0)
        known = [i.instance_id for i in self._cache.get(service, [])]
        # A service without instances is usual (not deployed, stopped): its empty index is scanned for entries at
        # most once per refresh interval; one that had instances, at once.
        now = asyncio.get_running_loop().time()
        scan = bool(known) or now - self._scanned_at.get(service, -math.inf) >= self._refresh_interval_s
        try:
            entries, redis_now_ms = await read_entries(self._redis, service, known=known, scan=scan)
        except RegistryError as exc:
            self._enter_outage(exc)
            raise
        if scan:
            self._scanned_at[service] = now
        self._clock_offset_ms = redis_now_ms - time.time_ns() // 1_000_000
        if self._unreachable:
            self._reachable_again_ms = redis_now_ms
        present = {i.instance_id for i in entries}
        # Gone from Redis without a `down` event: a restarted Redis, a deleted key. The instance heartbeats its entry
        # back within a third of its TTL; until its known expiry it is still called, and after an outage, for a whole
        # TTL from the registry's return (its heartbeats failed meanwhile, which is no sign of death). The cache is
        # taken after the read, so an instance whose `down` was heard meanwhile (_forget) stays gone.
        unconfirmed = [
            i for i in self._cache.get(service, [])
            if i.instance_id not in present and redis_now_ms < self._heartbeat_deadline_ms(i)
        ]
        found = [i for i in entries if i.status == SERVING] + unconfirmed
        self._store(service, found)
        return list(found)

    def _heartbeat_deadline_ms(self, instance: ServiceInstance) -> int:
        """The Redis time until which `instance` may still heartbeat: its expiry, and after an outage, no sooner than
        a whole TTL from the registry's return."""
        ttl_ms = instance.expires_at_ms - instance.heartbeat_at_ms
        return max(instance.expires_at_ms, self._reachable_again_ms + ttl_ms)

    def _forget(self, service: str, instance_id: str) -> None:
        """An instance deregistered (a `down` event): stop calling it before the next read confirms it."""
        cached = self._cache.get(service)
        if cached is not None:
            self._store(service, [i for i in cached if i.instance_id != instance_id])

    def _store(self, service: str, found: list[ServiceInstance]) -> None:
        if self._unreachable:
            self._unreachable = False
            log_event("registry_reachable", watched=service)
        previous = self._cache.get(service)
        self._cache[service] = found
        self._sources[service] = "registry"
        # Until then every instance found is within its deadline: `instances` serves the cache without a look at each.
        self._fresh_until_ms[service] = min((self._heartbeat_deadline_ms(i) for i in found), default=math.inf)
        ttls_s = [(i.expires_at_ms - i.heartbeat_at_ms) / 1000 for i in found]
        period_s = min([self._refresh_interval_s, *(ttl / 3 for ttl in ttls_s)])
        self._next_read[service] = asyncio.get_running_loop().time() + period_s
        if previous is not None and _identity(previous) != _identity(found):
            for callback in self._callbacks:
                try:
                    callback(service, list(found))
                except Exception as exc:  # a subscriber's bug must not stop the watch
                    log_event("registry_subscriber_failed", level="error", watched=service, error=repr(exc))

    def _enter_outage(self, exc: Exception) -> None:
        for service in self._cache:
            self._sources[service] = "cache"
        if not self._unreachable:
            self._unreachable = True
            log_event("registry_unreachable", level="warning", services=sorted(self._next_read), error=str(exc))

    async def _watch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_id: str | None = None
        failures = 0
        while True:
            try:
                if last_id is None:
                    # after (re)connecting: take the stream's tail, then re-read everything read before it
                    tail = cast(_Entries, await self._redis.xrevrange(EVENTS_KEY, count=1))
                    last_id = _text(tail[0][0]) if tail else "0-0"
                    self._next_read = dict.fromkeys(self._next_read, 0.0)
                now = loop.time()
                for service, due in list(self._next_read.items()):
                    if due <= now:
                        await self.refresh(service)
                wait_s = min(self._next_read.values(), default=now + self._block_ms / 1000) - loop.time()
                block_ms = max(1, min(self._block_ms, int(wait_s * 1000)))
                replies = cast(
                    list[tuple[str | bytes, _Entries]] | None,
                    await self._redis.xread({EVENTS_KEY: last_id}, count=500, block=block_ms),
                )
                named = set()
                for _stream, events in replies or []:
                    for event_id, raw in events:
                        last_id = _text(event_id)
                        fields = {_text(k): _text(v) for k, v in raw.items()}
                        named.add(fields.get("service", ""))
                        if fields.get("type") == "down":
                            self._forget(fields.get("service", ""), fields.get("instance_id", ""))
                for service in named & self._next_read.keys():
                    await self.refresh(service)
                failures = 0
            except (RedisError, RegistryError) as exc:
                if isinstance(exc, RedisError):  # refresh() raises RegistryError after noting the outage itself
                    self._enter_outage(exc)
                last_id = None
                failures += 1
                await asyncio.sleep(min(WATCH_RETRY.delay(failures), self._refresh_interval_s))
