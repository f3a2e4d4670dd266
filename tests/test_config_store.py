"""ConfigStore against a real redis-server: validation, canonical values, versions, prefixes, seeding, changes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from acceptance.waits import wait_until_async
from ecosystem.config_store import (
    CHANGES_STREAM,
    ConfigNotFoundError,
    ConfigStore,
    ConfigValidationError,
    StoredConfig,
    canonical_value,
    load_seed,
    validate_environment,
    validate_key,
)
from ecosystem.names import ENVIRONMENTS

REPO_SEED = Path(__file__).resolve().parents[1] / "config" / "seed.toml"


@pytest.fixture
def store(aredis: aioredis.Redis) -> ConfigStore:
    return ConfigStore(aredis)


@pytest.mark.parametrize(
    "key", ["risk", "risk.max_order_quantity", "risk.position_limits.max_notional", "a1_b.C_2", "X"]
)
def test_well_formed_keys_are_accepted(key: str) -> None:
    validate_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "1risk",
        "_risk",
        "risk.",
        ".risk",
        "risk..limit",
        "risk.1limit",
        "risk-limit",
        "risk limit",
        "risk/x",
        "keys",
    ],
)
def test_malformed_keys_are_refused_naming_the_key(key: str) -> None:
    with pytest.raises(ConfigValidationError, match=f"key {key!r}"):
        validate_key(key)


def test_environments_are_the_four_known_ones() -> None:
    for environment in ENVIRONMENTS:
        validate_environment(environment)
    with pytest.raises(ConfigValidationError, match="environment 'staging' is not one of development, testing"):
        validate_environment("staging")


@pytest.mark.parametrize(
    ("value", "type_", "canonical"),
    [
        ("BTC-USD", "string", "BTC-USD"),
        (" spaced ", "string", " spaced "),
        ("", "string", ""),
        ("42", "number", "42"),
        ("1e3", "number", "1000"),
        ("1.50", "number", "1.5"),
        ("-0.25", "number", "-0.25"),
        (" 7 ", "number", "7"),
        ("true", "boolean", "true"),
        ("FALSE", "boolean", "false"),
        ("True", "boolean", "true"),
        ('{"a":1,  "b":[1,2]}', "json", '{"a": 1, "b": [1, 2]}'),
        ("[]", "json", "[]"),
        ("3", "json", "3"),
    ],
)
def test_values_are_stored_in_canonical_form(value: str, type_: str, canonical: str) -> None:
    assert canonical_value("app.setting", value, type_) == canonical


@pytest.mark.parametrize(
    ("value", "type_", "expected"),
    [
        ("abc", "number", "is not a number"),
        ("nan", "number", "is not a number"),
        ("inf", "number", "is not a number"),
        ("1e999", "number", "is not a number"),
        ("1_000", "number", "is not a number"),
        ("", "number", "is not a number"),
        ("yes", "boolean", "is not a boolean"),
        ("1", "boolean", "is not a boolean"),
        ("{a: 1}", "json", "is not JSON"),
        ("NaN", "json", "is not JSON"),
        ("x", "float", "is not one of string, number, boolean, json"),
    ],
)
def test_values_that_do_not_parse_as_their_type_are_refused_naming_the_key(
    value: str, type_: str, expected: str
) -> None:
    with pytest.raises(ConfigValidationError, match=r"app\.setting") as raised:
        canonical_value("app.setting", value, type_)
    assert expected in str(raised.value)


async def test_set_then_get_returns_the_canonical_typed_value(store: ConfigStore) -> None:
    written = await store.set("risk.max_order_quantity", "1e3", "number", "development")

    assert written.value == "1000"
    assert await store.get("risk.max_order_quantity", "development") == written
    assert written == StoredConfig("risk.max_order_quantity", "1000", "number", "development", 1, written.updated_at_ms)


async def test_set_bumps_the_version_and_stamps_redis_time(store: ConfigStore, aredis: aioredis.Redis) -> None:
    seconds, micros = await aredis.time()
    before_ms = seconds * 1000 + micros // 1000

    first = await store.set("trading.venue", "SIM", "string", "testing")
    second = await store.set("trading.venue", "LIVE", "string", "testing")

    assert (first.version, second.version) == (1, 2)
    assert before_ms <= first.updated_at_ms <= second.updated_at_ms
    assert await store.get("trading.venue", "testing") == second


async def test_concurrent_sets_of_one_key_get_distinct_consecutive_versions(store: ConfigStore) -> None:
    results = await asyncio.gather(*(store.set("risk.limit", str(n), "number", "development") for n in range(50)))

    assert sorted(result.version for result in results) == list(range(1, 51))
    final = await store.get("risk.limit", "development")
    assert final.version == 50
    assert final.value == next(result.value for result in results if result.version == 50)


async def test_a_refused_set_writes_nothing(store: ConfigStore, aredis: aioredis.Redis) -> None:
    with pytest.raises(ConfigValidationError, match=r"risk\.limit"):
        await store.set("risk.limit", "abc", "number", "development")

    assert await aredis.keys("*") == []


async def test_environments_are_separate(store: ConfigStore) -> None:
    await store.set("trading.enabled", "true", "boolean", "production")

    with pytest.raises(ConfigNotFoundError) as raised:
        await store.get("trading.enabled", "development")
    assert str(raised.value) == "Configuration not found: trading.enabled (environment development)"


async def test_get_refuses_bad_input_before_reading(store: ConfigStore) -> None:
    with pytest.raises(ConfigValidationError, match=re.escape("key 'risk..x' is malformed")):
        await store.get("risk..x", "development")
    with pytest.raises(ConfigValidationError, match="environment 'prod'"):
        await store.get("risk.x", "prod")


async def test_get_many_returns_keys_in_order_or_names_the_first_missing(store: ConfigStore) -> None:
    await store.set("a.one", "1", "number", "docker")
    await store.set("a.two", "two", "string", "docker")

    found = await store.get_many(["a.two", "a.one"], "docker")
    assert [(c.key, c.value) for c in found] == [("a.two", "two"), ("a.one", "1")]

    with pytest.raises(ConfigNotFoundError) as raised:
        await store.get_many(["a.one", "a.missing", "a.gone"], "docker")
    assert str(raised.value) == "Configuration not found: a.missing (environment docker)"


async def test_list_matches_dotted_prefixes_sorted_by_key(store: ConfigStore) -> None:
    for key in ["risk.b", "risk", "riskier", "risk.a.deep", "trading.x"]:
        await store.set(key, "1", "number", "development")
    await store.set("risk.other_environment", "1", "number", "testing")

    assert [c.key for c in await store.list("risk", "development")] == ["risk", "risk.a.deep", "risk.b"]
    assert [c.key for c in await store.list("risk.a", "development")] == ["risk.a.deep"]
    assert [c.key for c in await store.list("", "development")] == [
        "risk",
        "risk.a.deep",
        "risk.b",
        "riskier",
        "trading.x",
    ]
    assert await store.list("nothing", "development") == []
    with pytest.raises(ConfigValidationError, match=re.escape("prefix 'risk.'")):
        await store.list("risk.", "development")


def test_repository_seed_holds_the_keys_other_services_read() -> None:
    seed = load_seed(REPO_SEED)

    assert set(seed) == set(ENVIRONMENTS)
    for environment in ENVIRONMENTS:
        assert seed[environment]["risk.max_order_quantity"][1] == "number"
        assert seed[environment]["risk.position_limits.max_notional"][1] == "number"
        assert seed[environment]["risk.allowed_symbols"] == ('["BTC-USD", "ETH-USD", "SOL-USD"]', "json")
        assert seed[environment]["trading.enabled"] == ("true", "boolean")
        assert seed[environment]["trading.risk_check_timeout_ms"][1] == "number"


SEED = """
[defaults]
"risk.max_order_quantity" = 1000
"risk.ratio" = 0.5
"risk.allowed_symbols" = ["BTC-USD", "ETH-USD"]
"risk.limits" = { max = 3 }
"trading.venue" = "SIM"
"trading.enabled" = true

[environments.production]
"risk.max_order_quantity" = 100
"trading.enabled" = false
"""


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "seed.toml"
    path.write_text(SEED, encoding="utf-8")
    return path


def test_load_seed_applies_defaults_everywhere_and_overrides_per_environment(seed_file: Path) -> None:
    seed = load_seed(seed_file)

    assert seed["development"] == {
        "risk.max_order_quantity": ("1000", "number"),
        "risk.ratio": ("0.5", "number"),
        "risk.allowed_symbols": ('["BTC-USD", "ETH-USD"]', "json"),
        "risk.limits": ('{"max": 3}', "json"),
        "trading.venue": ("SIM", "string"),
        "trading.enabled": ("true", "boolean"),
    }
    assert seed["production"]["risk.max_order_quantity"] == ("100", "number")
    assert seed["production"]["trading.enabled"] == ("false", "boolean")
    assert seed["production"]["trading.venue"] == ("SIM", "string")


async def test_seed_writes_every_environment_and_keeps_values_set_at_run_time(
    store: ConfigStore, seed_file: Path
) -> None:
    assert await store.seed(seed_file) == 6 * len(ENVIRONMENTS)
    assert (await store.get("risk.max_order_quantity", "production")).value == "100"
    assert (await store.get("risk.max_order_quantity", "testing")).value == "1000"

    changed = await store.set("risk.max_order_quantity", "250", "number", "testing")
    assert await store.seed(seed_file) == 0
    assert await store.get("risk.max_order_quantity", "testing") == changed

    assert await store.seed(seed_file, overwrite=True) == 6 * len(ENVIRONMENTS)
    restored = await store.get("risk.max_order_quantity", "testing")
    assert (restored.value, restored.version) == ("1000", 3)


async def test_a_store_with_a_seed_seeds_again_when_a_read_finds_redis_emptied(
    aredis: aioredis.Redis, seed_file: Path
) -> None:
    store = ConfigStore(aredis, seed=seed_file)
    await store.seed(seed_file)

    await aredis.flushall()
    assert (await store.get("risk.max_order_quantity", "testing")).value == "1000"
    await aredis.flushall()
    listed = [c.key for c in await store.list("risk", "production")]
    assert listed == ["risk.allowed_symbols", "risk.limits", "risk.max_order_quantity", "risk.ratio"]
    with pytest.raises(ConfigNotFoundError):
        await store.get("risk.not_in_the_seed", "testing")


async def test_concurrent_reads_of_an_emptied_redis_all_find_the_seed(
    aredis: aioredis.Redis, seed_file: Path
) -> None:
    store = ConfigStore(aredis, seed=seed_file)
    await store.seed(seed_file)
    await aredis.flushall()

    # One read seeds; the others must not give up because they found nothing left to write.
    values = await asyncio.gather(*(store.get("risk.max_order_quantity", "testing") for _ in range(20)))

    assert {value.value for value in values} == {"1000"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[defaults]\n"risk.limit" = "x"\n"risk..bad" = 1\n', "[defaults]: key 'risk..bad' is malformed"),
        ('[environments.production]\n"risk.limit" = nan\n', "[environments.production]: value 'nan' of risk.limit"),
        ('[environments.staging]\n"risk.limit" = 1\n', "[environments.staging] is not one of development"),
        ('[defaults]\n"risk.when" = 2024-01-01\n', "risk.when has TOML type date"),
        ("[risk]\nlimit = 1\n", "unexpected top-level entries ['risk']"),
        ('[defaults]\n"risk.limit" = \n', "not valid TOML"),
    ],
)
async def test_a_bad_seed_is_refused_naming_file_environment_and_key(
    store: ConfigStore, aredis: aioredis.Redis, tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "bad-seed.toml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigValidationError) as raised:
        await store.seed(path)

    assert str(raised.value).startswith(f"seed file {path}: ")
    assert expected in str(raised.value)
    assert await aredis.keys("*") == []


async def test_changes_yields_a_set_made_after_subscribing(store: ConfigStore) -> None:
    changes = store.changes("risk", "development")
    next_change = asyncio.ensure_future(anext(changes))
    written: list[StoredConfig] = []
    try:
        # The generator fixes its starting point when it first runs: set until a change comes through.
        async def set_and_check() -> bool:
            written.append(await store.set("risk.limit", str(len(written)), "number", "development"))
            await asyncio.wait([next_change], timeout=0.05)
            return next_change.done()

        await wait_until_async(set_and_check, timeout=10, what="changes() yields a set of risk.limit")
        assert next_change.result() in written
    finally:
        next_change.cancel()
        await changes.aclose()


async def test_changes_only_yields_its_environment_and_prefix_in_order(store: ConfigStore) -> None:
    start_id = await store.latest_change_id()
    await store.set("risk.limit", "1", "number", "testing")
    await store.set("riskier.limit", "1", "number", "development")
    await store.set("trading.venue", "SIM", "string", "development")
    await store.set("risk.limit", "2", "number", "development")
    await store.set("risk.limit", "3", "number", "development")

    changes = store.changes("risk", "development", start_id=start_id)
    try:
        first = await asyncio.wait_for(anext(changes), timeout=10)
        second = await asyncio.wait_for(anext(changes), timeout=10)
    finally:
        await changes.aclose()

    assert [(c.key, c.value, c.version) for c in (first, second)] == [("risk.limit", "2", 1), ("risk.limit", "3", 2)]
    assert second == await store.get("risk.limit", "development")


def test_changes_refuses_a_bad_watch_when_it_is_made(store: ConfigStore) -> None:
    with pytest.raises(ConfigValidationError, match=re.escape("prefix 'risk.'")):
        store.changes("risk.", "development")
    with pytest.raises(ConfigValidationError, match="environment 'qa'"):
        store.changes("risk", "qa")


async def test_each_set_records_one_change_entry(store: ConfigStore, aredis: aioredis.Redis) -> None:
    await store.set("risk.limit", "1", "number", "development")

    info = await aredis.xinfo_stream(CHANGES_STREAM)
    assert info["length"] == 1
    entry_fields = info["last-entry"][1]
    assert {"environment": "development", "key": "risk.limit", "version": "1"}.items() <= entry_fields.items()
