"""configuration-service, called directly, and the configuration caches of its clients."""

from __future__ import annotations

import json

from behave import given, then, when
from behave.runner import Context
from hamcrest import assert_that, equal_to

from acceptance.hooks import add_cleanup
from ecosystem.names import CONFIGURATION_SERVICE


def get_config(context: Context, key: str, environment: str):
    return context.ecosystem.call(CONFIGURATION_SERVICE, "GetConfiguration", {"key": key, "environment": environment})


def set_config(context: Context, key: str, environment: str, value: str, value_type: str):
    request = {"key": key, "environment": environment, "value": value, "type": f"VALUE_TYPE_{value_type}"}
    return context.ecosystem.call(CONFIGURATION_SERVICE, "SetConfiguration", request)


def canonical(value: str) -> str:
    """Compare JSON values by content, anything else as text."""
    try:
        return json.dumps(json.loads(value), sort_keys=True)
    except ValueError:
        return value


@when('I get the configuration "{key}" for "{environment}"')
def step_get(context: Context, key: str, environment: str) -> None:
    context.result = get_config(context, key, environment)


@then("the configuration value is {value} of type {value_type}")
def step_value_is(context: Context, value: str, value_type: str) -> None:
    result = context.result
    assert result.ok, result.describe()
    assert_that(canonical(result.body["value"]), equal_to(canonical(value)))
    assert_that(result.body["type"], equal_to(f"VALUE_TYPE_{value_type}"))


@when('I set the configuration "{key}" for "{environment}" to "{value}" as {value_type}')
def step_try_set(context: Context, key: str, environment: str, value: str, value_type: str) -> None:
    context.result = set_config(context, key, environment, value, value_type)


@when('the configuration "{key}" for "{environment}" is set to "{value}" as {value_type}')
def step_set(context: Context, key: str, environment: str, value: str, value_type: str) -> None:
    before = context.ecosystem.ok_body(get_config(context, key, environment))
    add_cleanup(context, lambda: context.ecosystem.ok_body(
        set_config(context, key, environment, before["value"], before["type"].removeprefix("VALUE_TYPE_"))
    ))
    context.ecosystem.ok_body(set_config(context, key, environment, value, value_type))


@then('the configuration "{key}" for "{environment}" is still {value}')
def step_still(context: Context, key: str, environment: str, value: str) -> None:
    assert_that(context.ecosystem.ok_body(get_config(context, key, environment))["value"], equal_to(value))


@given('the configuration cache statistics of "{service}" are noted')
def step_note_cache(context: Context, service: str) -> None:
    context.cache_before = context.ecosystem.config_cache(service)


@then('the configuration cache of "{service}" counted {hits:d} more hits and no more misses')
def step_cache_counted(context: Context, service: str, hits: int) -> None:
    before, after = context.cache_before, context.ecosystem.config_cache(service)
    counted = {
        "hits": int(after["cache_hits"]) - int(before["cache_hits"]),
        "misses": int(after["cache_misses"]) - int(before["cache_misses"]),
    }
    assert_that(counted, equal_to({"hits": hits, "misses": 0}), f"cache statistics before {before}, after {after}")
