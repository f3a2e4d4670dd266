"""Steps any gRPC service can use: call a method by name with a JSON body, check status and fields."""

from __future__ import annotations

from behave import given, then, when
from behave.runner import Context


@given("a deadline of {milliseconds:d} ms")
def step_deadline(context: Context, milliseconds: int) -> None:
    context.suite.calls.set_deadline(milliseconds)


@given('the metadata "{key}" is "{value}"')
def step_metadata(context: Context, key: str, value: str) -> None:
    context.suite.calls.add_metadata(key, value)


@when('I call "{method}" on "{service}" with')
def step_call(context: Context, method: str, service: str) -> None:
    context.suite.calls.call(method, service, context.text)


@then("the call succeeds")
def step_succeeds(context: Context) -> None:
    context.suite.calls.expect_ok()


@then("the call fails with {code}")
def step_fails_with(context: Context, code: str) -> None:
    context.suite.calls.expect_code(code)


@then('the error message contains "{text}"')
def step_error_contains(context: Context, text: str) -> None:
    context.suite.calls.expect_details_contain(text)


@then('the response field "{path}" is "{value}"')
def step_field_is(context: Context, path: str, value: str) -> None:
    context.suite.calls.expect_field(path, value)


@then('the response field "{path}" has {count:d} items')
def step_field_has_items(context: Context, path: str, count: int) -> None:
    context.suite.calls.expect_field_count(path, count)


@given('the {method} calls of "{service}" are counted')
def step_count_calls(context: Context, method: str, service: str) -> None:
    context.suite.calls.note_requests(service, method)


@then('"{service}" received {count:d} {method} calls since they were counted')
def step_calls_received(context: Context, service: str, count: int, method: str) -> None:
    context.suite.calls.expect_requests_since_noted(service, method, count)
