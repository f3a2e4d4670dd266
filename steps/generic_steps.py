"""Steps any gRPC service can use: call a method by name with a JSON body, check status and fields."""

from __future__ import annotations

import json
from typing import Any

import grpc
from behave import given, then, when
from behave.runner import Context
from hamcrest import assert_that, contains_string, equal_to, has_length


def last_result(context: Context) -> Any:
    assert context.result is not None, "no call was made in this scenario"
    return context.result


def field(body: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a JSON response ("dependencies.0.service")."""
    value: Any = body
    for part in path.split("."):
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, ValueError):
            raise AssertionError(f"the response has no field {path!r}: {json.dumps(body)[:500]}") from None
    return value


@given("a deadline of {milliseconds:d} ms")
def step_deadline(context: Context, milliseconds: int) -> None:
    context.deadline_s = milliseconds / 1000


@given('the metadata "{key}" is "{value}"')
def step_metadata(context: Context, key: str, value: str) -> None:
    context.metadata[key] = value


@when('I call "{method}" on "{service}" with')
def step_call(context: Context, method: str, service: str) -> None:
    body = json.loads(context.text or "{}")
    context.result = context.ecosystem.call(
        service, method, body, timeout=context.deadline_s, metadata=context.metadata
    )


@then("the call succeeds")
def step_succeeds(context: Context) -> None:
    result = last_result(context)
    assert_that(result.code, equal_to(grpc.StatusCode.OK), result.describe())


@then("the call fails with {code}")
def step_fails_with(context: Context, code: str) -> None:
    result = last_result(context)
    assert_that(result.code.name, equal_to(code), result.describe())


@then('the error message contains "{text}"')
def step_error_contains(context: Context, text: str) -> None:
    assert_that(last_result(context).details, contains_string(text))


@then('the response field "{path}" is "{value}"')
def step_field_is(context: Context, path: str, value: str) -> None:
    assert_that(str(field(last_result(context).body, path)), equal_to(value))


@then('the response field "{path}" has {count:d} items')
def step_field_has_items(context: Context, path: str, count: int) -> None:
    assert_that(field(last_result(context).body, path), has_length(count))
