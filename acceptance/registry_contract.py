"""The registry contract (docs/REGISTRY.md), checked entry by entry against what is in Redis.

    reading = read_service(client, "greeter")
    reading.serving     # the usable entries: valid, SERVING, unexpired, indexed
    reading.problems    # one line per broken key: which key, which field, what was expected

The suite reads every service through this module, independently of the services' own discovery
code, so a step that finds no instance can say why ("reg:v1:svc:greeter:inst:a1: missing field
version; port '80.5' is not an integer 1-65535") instead of "none is running".
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from acceptance.redis_acl import redact

SERVICES_KEY = "reg:v1:services"
EVENTS_KEY = "reg:v1:events"  # up | update | down, each naming service, instance_id and incarnation
STATUSES = ("SERVING", "DRAINING")
REQUIRED_FIELDS = (
    "instance_id", "service", "host", "port", "version", "api_version", "status", "started_at", "heartbeat_at",
    "incarnation",
)
# An entry whose hash lives this much longer than its index score says was written with a wrong score.
LATE_SCORE_MS = 1000
# How many instance keys of one service the check looks at for entries missing from the index.
MAX_SCANNED_KEYS = 1000


def instance_key(service: str, instance_id: str) -> str:
    return f"reg:v1:svc:{service}:inst:{instance_id}"


def index_key(service: str) -> str:
    return f"reg:v1:svc:{service}:idx"


@dataclass(frozen=True)
class Entry:
    """One valid registry entry."""

    instance_id: str
    service: str
    host: str
    port: int
    version: str
    api_version: str
    status: str
    heartbeat_at_ms: int
    expires_at_ms: int

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass
class Reading:
    """A service's registry entries as the contract sees them at one moment."""

    service: str
    redis_url: str
    serving: list[Entry] = field(default_factory=list)
    draining: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def explain_none(self) -> str:
        """Why no SERVING instance of the service is usable, for a step that needed one."""
        where = f"no SERVING instance of {self.service!r} is registered in {self.redis_url}"
        reasons = list(self.problems)
        reasons += [f"{instance_key(self.service, e.instance_id)} is DRAINING (shutting down)" for e in self.draining]
        if not reasons:
            reasons = [f"{index_key(self.service)} lists no unexpired instance (docs/REGISTRY.md)"]
        return f"{where}: " + "; ".join(reasons)


def read_service(client: redis.Redis, service: str, redis_url: str = "") -> Reading:
    """Check every key of `service` against the contract; RedisError if Redis cannot be read."""
    reading = Reading(service, redact(redis_url))
    now_ms = _now_ms(client.time())
    indexed = [(_text(member), score) for member, score in client.zrange(index_key(service), 0, -1, withscores=True)]
    with client.pipeline(transaction=False) as pipe:
        for instance_id, _ in indexed:
            pipe.hgetall(instance_key(service, instance_id))
            pipe.pttl(instance_key(service, instance_id))
        replies = pipe.execute()
    for (instance_id, score), fields, ttl in zip(indexed, replies[0::2], replies[1::2], strict=True):
        key = instance_key(service, instance_id)
        if score < now_ms:
            # The entry outlives its index score by more than a heartbeat's jitter: callers no longer see it.
            if fields and ttl is not None and int(ttl) > LATE_SCORE_MS:
                unit = " (seconds instead of milliseconds?)" if score < 10**12 else ""
                reading.problems.append(f"{index_key(service)} scores {instance_id!r} {int(score)}, before Redis TIME "
                                        f"{now_ms} ms{unit}: callers skip it while {key} still lives")
            continue  # an expired member: callers skip it, the next heartbeat of any instance prunes it
        if not fields:
            reading.problems.append(
                f"{index_key(service)} lists {instance_id!r} until {int(score)} ms, but {key} does not exist"
            )
            continue
        entry, errors = check_entry(key, service, instance_id, {_text(k): _text(v) for k, v in fields.items()})
        if ttl is not None and int(ttl) == -1:  # -2: expired since HGETALL, nothing wrong
            errors.append("it has no expiry: set PEXPIRE to the TTL at every heartbeat")
        if entry is None or errors:
            reading.problems.append(f"{key}: " + "; ".join(errors))
            continue
        entry = dataclasses.replace(entry, expires_at_ms=int(score))
        (reading.serving if entry.status == "SERVING" else reading.draining).append(entry)
    reading.problems += _unindexed(client, service, {instance_id for instance_id, _ in indexed})
    if (reading.serving or reading.draining) and not client.sismember(SERVICES_KEY, service):
        reading.problems.append(f"{SERVICES_KEY} does not list {service!r}: add it with SADD at every heartbeat")
    return reading


def check_entry(
    key: str, service: str, instance_id: str, fields: Mapping[str, str]
) -> tuple[Entry | None, list[str]]:
    """One entry's fields against the contract: the entry, and every field that is wrong (not only the first)."""
    errors = []
    missing = [name for name in REQUIRED_FIELDS if name not in fields]
    if missing:
        errors.append(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if fields.get("instance_id", instance_id) != instance_id:
        errors.append(f"instance_id {fields['instance_id']!r} differs from the key's {instance_id!r}")
    if fields.get("service", service) != service:
        errors.append(f"service {fields['service']!r} differs from the key's {service!r}")
    host = fields.get("host", "")
    if "host" in fields and not routable(host):
        errors.append(f"host {host!r} is not an address a caller can dial (use the container name or a real IP)")
    port = _integer(fields.get("port"))
    if "port" in fields and (port is None or not 0 < port < 65536):
        errors.append(f"port {fields['port']!r} is not an integer 1-65535")
    if "status" in fields and fields["status"] not in STATUSES:
        errors.append(f"status {fields['status']!r} is not one of {', '.join(STATUSES)}")
    for name in ("started_at", "heartbeat_at"):
        value = _integer(fields.get(name))
        if name in fields and (value is None or value < 10**12):
            errors.append(f"{name} {fields[name]!r} is not a Unix time in milliseconds (13 digits)")
    incarnation = _integer(fields.get("incarnation"))
    if "incarnation" in fields and (incarnation is None or incarnation < 0):
        errors.append(f"incarnation {fields['incarnation']!r} is not a non-negative integer")
    if fields.get("meta"):
        try:
            meta: Any = json.loads(fields["meta"])
        except ValueError:
            meta = None
        if not isinstance(meta, dict):
            errors.append(f"meta {fields['meta'][:80]!r} is not a JSON object")
    for name in ("version", "api_version"):
        if name in fields and not fields[name]:
            errors.append(f"{name} is empty")
    if errors:
        return None, errors
    return Entry(
        instance_id=instance_id, service=service, host=host, port=port or 0, version=fields["version"],
        api_version=fields["api_version"], status=fields["status"],
        heartbeat_at_ms=_integer(fields["heartbeat_at"]) or 0, expires_at_ms=0,
    ), []


def _unindexed(client: redis.Redis, service: str, indexed: set[str]) -> list[str]:
    """Entries a registrant wrote without adding them to the index: invisible to every caller."""
    prefix = instance_key(service, "")
    problems = []
    # Service names (the manifest's, docs/REGISTRY.md) hold no glob characters.
    for number, key in enumerate(client.scan_iter(match=prefix + "*", count=200)):
        if number >= MAX_SCANNED_KEYS:
            break
        instance_id = _text(key)[len(prefix):]
        # ZSCORE again: an instance that registered since the ZRANGE above is indexed by now.
        if instance_id not in indexed and client.zscore(index_key(service), instance_id) is None:
            problems.append(
                f"{_text(key)} exists but {index_key(service)} does not list {instance_id!r}: "
                "ZADD it with its expiry (ms) at every heartbeat"
            )
    return problems


def routable(host: str) -> bool:
    """Whether callers can dial `host`: a name, or an IP address that is not the unspecified one."""
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return bool(host) and " " not in host


def _integer(text: str | None) -> int | None:
    try:
        return int(text) if text is not None and text.strip().lstrip("-").isascii() else None
    except ValueError:
        return None


def _now_ms(redis_time: tuple[int, int]) -> int:
    seconds, microseconds = redis_time
    return int(seconds) * 1000 + int(microseconds) // 1000


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
