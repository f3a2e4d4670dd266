"""The configuration-service's storage: typed, versioned configuration per environment in Redis.

Layout (docs/ARCHITECTURE.md):
    cfg:v1:{environment}:{key}   HASH    value type version updated_at_ms
    cfg:v1:{environment}:keys    SET     keys of that environment
    cfg:v1:changes               STREAM  environment key version (+ value type updated_at_ms), MAXLEN ~ 10000

The store expects a client created with decode_responses=True.
"""

from __future__ import annotations

import builtins
import json
import math
import re
import tomllib
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis.asyncio as aioredis

from ecosystem.errors import EcosystemError
from ecosystem.logs import log_event
from ecosystem.names import ENVIRONMENTS

KEY_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*(\.[a-zA-Z][a-zA-Z0-9_]*)*$")
TYPES = ("string", "number", "boolean", "json")
CHANGES_STREAM = "cfg:v1:changes"
CHANGES_MAXLEN = 10_000
# Present while the seed is in Redis; gone after a flush or a restart without persistence.
SEEDED_MARKER = "cfg:v1:seeded"
# The per-environment key index lives at cfg:v1:{env}:keys, where a configuration named "keys" would also live.
_RESERVED_KEYS = frozenset({"keys"})
# Shorter than any socket timeout a caller is likely to configure; the loop simply blocks again.
_BLOCK_MS = 1_000
# Decimal notation only: float() alone would also accept "inf", "nan" and "1_000".
_NUMBER_PATTERN = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_EXACT_INT_LIMIT = 2**53
# Stream entries as a client with decode_responses=True returns them: redis-py's own types allow bytes and RESP3
# shapes too, since they cannot follow that flag, so replies are cast to these where they are read.
_Entries = list[tuple[str, dict[str, str]]]


class ConfigValidationError(ValueError, EcosystemError):
    """A key, environment, type or value that the rules refuse; the message names it and what was expected."""


class ConfigNotFoundError(KeyError, EcosystemError):
    """No configuration under that key in that environment."""

    def __init__(self, key: str, environment: str) -> None:
        super().__init__(key, environment)
        self.key = key
        self.environment = environment

    def __str__(self) -> str:
        return f"Configuration not found: {self.key} (environment {self.environment})"


@dataclass(frozen=True)
class StoredConfig:
    key: str
    value: str  # canonical text for its type, see canonical_value
    type: str  # one of TYPES
    environment: str
    version: int
    updated_at_ms: int


def validate_key(key: str, *, what: str = "key") -> None:
    if not KEY_PATTERN.match(key):
        raise ConfigValidationError(
            f"{what} {key!r} is malformed: expected dotted names of letters, digits and underscores, "
            "each starting with a letter (e.g. risk.position_limits.max_notional)"
        )
    if key in _RESERVED_KEYS:
        raise ConfigValidationError(f"{what} {key!r} is reserved: choose a dotted name such as app.{key}")


def validate_environment(env: str) -> None:
    if env not in ENVIRONMENTS:
        raise ConfigValidationError(f"environment {env!r} is not one of {', '.join(ENVIRONMENTS)}")


def canonical_value(key: str, value: str, type_: str) -> str:
    """The one text form of `value` as a `type_`, or ConfigValidationError naming the key and the type."""
    if type_ == "string":
        return value
    if type_ == "number":
        return _canonical_number(key, value)
    if type_ == "boolean":
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise ConfigValidationError(f"value {value!r} of {key} is not a boolean: expected true or false")
        return lowered
    if type_ == "json":
        try:
            parsed = json.loads(value, parse_constant=_refuse_json_constant)
        except ValueError as exc:
            raise ConfigValidationError(f"value {value!r} of {key} is not JSON: {exc}") from None
        return json.dumps(parsed)
    raise ConfigValidationError(f"type {type_!r} of {key} is not one of {', '.join(TYPES)}")


def _canonical_number(key: str, value: str) -> str:
    text = value.strip()
    if not _NUMBER_PATTERN.match(text) or not math.isfinite(number := float(text)):
        raise ConfigValidationError(
            f"value {value!r} of {key} is not a number: expected a finite decimal like 42 or 1.5e3"
        )
    if number.is_integer() and abs(number) < _EXACT_INT_LIMIT:
        return str(int(number))
    return repr(number)


def _refuse_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def matches_prefix(key: str, prefix: str) -> bool:
    """Dotted-prefix match: "risk" matches "risk" and "risk.x" but not "riskier"; "" matches everything."""
    return not prefix or key == prefix or key.startswith(prefix + ".")


# One script so that a reader never sees a new value with an old version or a change without its entry,
# and concurrent sets of one key get consecutive versions. ARGV[6] = "1" writes only when the key is absent.
_SET_SCRIPT = """
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local now = redis.call('TIME')
local updated_at_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'value', ARGV[2], 'type', ARGV[3], 'updated_at_ms', updated_at_ms)
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
  'environment', ARGV[4], 'key', ARGV[1], 'version', version,
  'value', ARGV[2], 'type', ARGV[3], 'updated_at_ms', updated_at_ms)
return {version, updated_at_ms}
"""


def _config_key(environment: str, key: str) -> str:
    return f"cfg:v1:{environment}:{key}"


def _index_key(environment: str) -> str:
    return f"cfg:v1:{environment}:keys"


class ConfigStore:
    """Reads, writes, seeds and watches configuration; every input is validated before Redis is touched."""

    def __init__(self, redis: aioredis.Redis, *, seed: Path | None = None) -> None:
        """With `seed`, a read that finds Redis emptied (flushed, restarted) seeds it again first."""
        self._redis = redis
        self._seed = seed
        self._set_script = redis.register_script(_SET_SCRIPT)

    async def get(self, key: str, environment: str) -> StoredConfig:
        return (await self.get_many([key], environment))[0]

    async def get_many(self, keys: Iterable[str], environment: str) -> list[StoredConfig]:
        """Every key, in the order asked; ConfigNotFoundError names the first missing one."""
        validate_environment(environment)
        keys = list(keys)
        for key in keys:
            validate_key(key)
        results = await self._read(keys, environment)
        if not all(results) and await self._seed_if_lost():
            results = await self._read(keys, environment)
        for key, fields in zip(keys, results, strict=True):
            if not fields:
                raise ConfigNotFoundError(key, environment)
        return [_from_fields(key, environment, fields) for key, fields in zip(keys, results, strict=True)]

    async def list(self, prefix: str, environment: str) -> list[StoredConfig]:
        """Every configuration whose key is `prefix` or below it, sorted by key."""
        validate_environment(environment)
        if prefix:
            validate_key(prefix, what="prefix")
        known = cast(set[str], await self._redis.smembers(_index_key(environment)))
        if not known and await self._seed_if_lost():
            known = cast(set[str], await self._redis.smembers(_index_key(environment)))
        keys = sorted(key for key in known if matches_prefix(key, prefix))
        results = await self._read(keys, environment)
        return [_from_fields(key, environment, fields) for key, fields in zip(keys, results, strict=True) if fields]

    async def set(self, key: str, value: str, type_: str, environment: str) -> StoredConfig:
        """Store the canonical value with the next version and record the change, all in one step."""
        stored = await self._write(key, value, type_, environment, only_if_absent=False)
        assert stored is not None  # only a conditional write can be skipped
        return stored

    async def seed(self, path: Path, *, overwrite: bool = False) -> int:
        """Write the seed file's keys that do not exist yet (all of them with overwrite); return how many."""
        written = 0
        for environment, entries in load_seed(path).items():
            for key, (value, type_) in entries.items():
                if await self._write(key, value, type_, environment, only_if_absent=not overwrite) is not None:
                    written += 1
        await self._redis.set(SEEDED_MARKER, str(path))
        return written

    async def ensure_seeded(self, path: Path) -> int:
        """Seed again when Redis has lost the seed (flushed, or restarted without persistence)."""
        if await self._redis.exists(SEEDED_MARKER):
            return 0
        return await self.seed(path)

    # builtins.list: in this class `list` is the method above.
    async def _read(self, keys: builtins.list[str], environment: str) -> builtins.list[dict[str, str]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(_config_key(environment, key))
            return await pipe.execute()

    async def _seed_if_lost(self) -> bool:
        """Seed again if Redis lost the seed; whether a read may now find more than it did.

        True also when this call wrote nothing: a concurrent read may have been seeding meanwhile, and
        whatever it wrote is there to be read now.
        """
        if self._seed is None:
            return False
        written = await self.ensure_seeded(self._seed)
        if written:
            log_event("config_reseeded", path=str(self._seed), written=written)
        return True

    async def latest_change_id(self) -> str:
        """The id of the newest change so far: watching from it yields only changes made after this call."""
        newest = cast(_Entries, await self._redis.xrevrange(CHANGES_STREAM, count=1))
        return newest[0][0] if newest else "0-0"

    def changes(self, prefix: str, environment: str, *, start_id: str = "$") -> AsyncGenerator[StoredConfig, None]:
        """Each set of a key under `prefix` in `environment` after `start_id` ("$" = from the first iteration on).

        The arguments are validated here, before iteration starts, so a bad watch fails when it is made.
        """
        validate_environment(environment)
        if prefix:
            validate_key(prefix, what="prefix")
        return self._follow_changes(prefix, environment, start_id)

    async def _follow_changes(self, prefix: str, environment: str, start_id: str) -> AsyncGenerator[StoredConfig, None]:
        # Resolve "$" once: passing "$" to every XREAD would drop changes made between two reads.
        last_id = await self.latest_change_id() if start_id == "$" else start_id
        while True:
            response = cast(
                list[tuple[str, _Entries]],
                await self._redis.xread({CHANGES_STREAM: last_id}, block=_BLOCK_MS, count=100),
            )
            for _stream, entries in response:
                for entry_id, fields in entries:
                    last_id = entry_id
                    if fields.get("environment") == environment and matches_prefix(fields.get("key", ""), prefix):
                        yield _from_fields(fields["key"], environment, fields)

    async def _write(
        self, key: str, value: str, type_: str, environment: str, *, only_if_absent: bool
    ) -> StoredConfig | None:
        validate_environment(environment)
        validate_key(key)
        canonical = canonical_value(key, value, type_)
        result = await self._set_script(
            keys=[_config_key(environment, key), _index_key(environment), CHANGES_STREAM],
            args=[key, canonical, type_, environment, CHANGES_MAXLEN, "1" if only_if_absent else "0"],
        )
        if result is None:
            return None
        version, updated_at_ms = result
        return StoredConfig(key, canonical, type_, environment, int(version), int(updated_at_ms))


def _from_fields(key: str, environment: str, fields: Mapping[str, str]) -> StoredConfig:
    return StoredConfig(
        key=key,
        value=fields["value"],
        type=fields["type"],
        environment=environment,
        version=int(fields["version"]),
        updated_at_ms=int(fields["updated_at_ms"]),
    )


def load_seed(path: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """environment -> key -> (canonical value, type): [defaults] for every environment, then its overrides.

    The TOML type of a value gives its configuration type: string -> string, integer/float -> number,
    boolean -> boolean, table/array -> json. Any bad entry raises ConfigValidationError naming the file,
    the environment (or [defaults]) and the key.
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigValidationError(f"seed file {path}: not valid TOML: {exc}") from None
    unknown_tables = set(document) - {"defaults", "environments"}
    if unknown_tables:
        raise ConfigValidationError(
            f"seed file {path}: unexpected top-level entries {sorted(unknown_tables)}: "
            "expected only [defaults] and [environments.<name>]"
        )
    overrides = document.get("environments", {})
    if not isinstance(overrides, dict):
        raise ConfigValidationError(f"seed file {path}: environments must be tables like [environments.production]")
    for environment in overrides:
        if environment not in ENVIRONMENTS:
            raise ConfigValidationError(
                f"seed file {path}: [environments.{environment}] is not one of {', '.join(ENVIRONMENTS)}"
            )
    defaults = _seed_entries(path, "[defaults]", document.get("defaults", {}))
    return {
        environment: {
            **defaults,
            **_seed_entries(path, f"[environments.{environment}]", overrides.get(environment, {})),
        }
        for environment in ENVIRONMENTS
    }


def _seed_entries(path: Path, section: str, table: Any) -> dict[str, tuple[str, str]]:
    if not isinstance(table, dict):
        raise ConfigValidationError(f"seed file {path}: {section} must be a table of quoted dotted keys")
    entries = {}
    for key, raw in table.items():
        try:
            validate_key(key)
            value, type_ = _seed_value(key, raw)
            entries[key] = (canonical_value(key, value, type_), type_)
        except ConfigValidationError as exc:
            raise ConfigValidationError(f"seed file {path}: {section}: {exc}") from None
    return entries


def _seed_value(key: str, raw: Any) -> tuple[str, str]:
    # bool before int: True is an int in Python.
    if isinstance(raw, bool):
        return ("true" if raw else "false"), "boolean"
    if isinstance(raw, int | float):
        return repr(raw), "number"
    if isinstance(raw, str):
        return raw, "string"
    if isinstance(raw, dict | list):
        return json.dumps(raw), "json"
    raise ConfigValidationError(
        f"value {raw!r} of {key} has TOML type {type(raw).__name__}: expected a string, number, boolean, table or array"
    )
