"""Steps any gRPC service can use: call a method by name with JSON messages (unary and streaming), metadata,
and checks of the status, the messages, the headers and the trailers. See docs/STEPS.md."""

from __future__ import annotations

from behave import given, then, when
from behave.runner import Context

from acceptance.drivers.calls import parse_json, table_messages


@given("a deadline of {milliseconds:d} ms")
def step_deadline(context: Context, milliseconds: int) -> None:
    """Give the scenario's next calls this deadline instead of the default 5 s."""
    context.suite.calls.set_deadline(milliseconds)


@given('the metadata "{key}" is "{value}"')
def step_metadata(context: Context, key: str, value: str) -> None:
    """Send this request metadata (a gRPC header) with the scenario's next calls."""
    context.suite.calls.add_metadata(key, value)


@given("the next call reads only the first {count:d} response messages")
def step_read_first(context: Context, count: int) -> None:
    """Stop reading the next call's response stream after `count` messages, and cancel it."""
    context.suite.calls.read_first(count)


@given('the next call reads response messages until the field "{path}" is "{value}"')
def step_read_until(context: Context, path: str, value: str) -> None:
    """Stop reading the next call's response stream at the first message with this field value."""
    context.suite.calls.read_until(path, value)


@when('I call "{method}" on "{service}"')
def step_call_empty(context: Context, method: str, service: str) -> None:
    """Call the method with an empty request (no messages for a client stream) on the service's first instance."""
    context.suite.calls.call(method, service, None)


@when('I call "{method}" on "{service}" with')
def step_call(context: Context, method: str, service: str) -> None:
    """Call the method with the docstring's JSON: an object, or a list of objects for client streaming."""
    context.suite.calls.call(method, service, parse_json(method, context.text))


@when('I call "{method}" on "{service}" with the messages')
def step_call_table(context: Context, method: str, service: str) -> None:
    """Call a client-streaming or bidi method with one request message per table row (headings: field paths)."""
    context.suite.calls.call(method, service, table_messages(context.table.headings, context.table.rows))


@then("the call succeeds")
def step_succeeds(context: Context) -> None:
    """Check that the last call ended with status OK."""
    context.suite.calls.expect_ok()


@then("the call fails with {code}")
def step_fails_with(context: Context, code: str) -> None:
    """Check that the last call ended with this gRPC status code (NOT_FOUND, UNAVAILABLE, ...)."""
    context.suite.calls.expect_code(code)


@then('the error message contains "{text}"')
def step_error_contains(context: Context, text: str) -> None:
    """Check that the last call's status details contain the text."""
    context.suite.calls.expect_details_contain(text)


@then('the response field "{path}" is "{value}"')
def step_field_is(context: Context, path: str, value: str) -> None:
    """Check a field (dotted path, list items by index) of the last call's single response message."""
    context.suite.calls.expect_field(path, value)


@then('the response field "{path}" has {count:d} items')
def step_field_has_items(context: Context, path: str, count: int) -> None:
    """Check how many items a list field of the last call's single response message has."""
    context.suite.calls.expect_field_count(path, count)


@then("the call returned {count:d} messages")
def step_message_count(context: Context, count: int) -> None:
    """Check how many response messages the last call returned (a stream's, or 1 for a unary call)."""
    context.suite.calls.expect_message_count(count)


@then('message {number:d} field "{path}" is "{value}"')
def step_message_field(context: Context, number: int, path: str, value: str) -> None:
    """Check a field of one response message of the last call, counting from 1."""
    context.suite.calls.expect_message_field(number, path, value)


@then('the response header "{key}" is "{value}"')
def step_header(context: Context, key: str, value: str) -> None:
    """Check one of the last call's response headers (initial metadata)."""
    context.suite.calls.expect_header(key, value)


@then('the response trailer "{key}" is "{value}"')
def step_trailer(context: Context, key: str, value: str) -> None:
    """Check one of the last call's response trailers (trailing metadata)."""
    context.suite.calls.expect_trailer(key, value)


@given('the {method} calls of "{service}" are counted')
def step_count_calls(context: Context, method: str, service: str) -> None:
    """Note how many calls of one of its own methods the reference service has counted so far."""
    context.suite.calls.note_requests(service, method)


@then('"{service}" received {count:d} {method} calls since they were counted')
def step_calls_received(context: Context, service: str, count: int, method: str) -> None:
    """Check the reference service's own count of calls of the method since it was noted."""
    context.suite.calls.expect_requests_since_noted(service, method, count)
