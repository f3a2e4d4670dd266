"""Faults injected through the test coordinator, the chaos control plane."""

from __future__ import annotations

from behave import given, then, when
from behave.runner import Context
from hamcrest import assert_that, greater_than_or_equal_to

from acceptance.hooks import add_cleanup
from acceptance.waits import wait_until

# The coordinator acknowledges within a control-plane round trip; recovery follows the event's end.
ACKNOWLEDGE_TIMEOUT_S = 5.0
RECOVERY_MARGIN_S = 5.0


def inject(context: Context, event_type: str, service: str, parameters: dict[str, str], duration_ms: int) -> None:
    result = context.ecosystem.inject_chaos(event_type, service, parameters, duration_ms)
    context.result = result
    event = context.ecosystem.ok_body(result)
    context.chaos_event = event
    add_cleanup(context, context.ecosystem.end_chaos, event["event_id"])


@given('the test coordinator injects {delay:d} ms of latency into "{service}" for {duration:d} ms')
@when('the test coordinator injects {delay:d} ms of latency into "{service}" for {duration:d} ms')
def step_inject_latency(context: Context, delay: int, service: str, duration: int) -> None:
    context.injected_latency_ms = delay
    inject(context, "NETWORK_LATENCY", service, {"delay_ms": str(delay)}, duration)


@given('the test coordinator injects {code} errors at {percentage:d} percent into "{service}" for {duration:d} ms')
def step_inject_errors(context: Context, code: str, percentage: int, service: str, duration: int) -> None:
    inject(context, "ERROR_INJECTION", service, {"code": code, "percentage": str(percentage)}, duration)


@when('the test coordinator is asked to inject "{event_type}" into "{service}"')
def step_ask_inject(context: Context, event_type: str, service: str) -> None:
    parameters = {"delay_ms": "100"} if event_type == "NETWORK_LATENCY" else {}
    context.result = context.ecosystem.inject_chaos(event_type, service, parameters, 1000)


@then("the chaos event becomes RECOVERED with a recovery time")
def step_recovered_with_time(context: Context) -> None:
    step_event_becomes(context, "RECOVERED")
    event = context.chaos_event
    assert event.get("recovered_at"), f"recovered event without recovered_at: {event}"
    assert_that(int(event["recovery_time_ms"]), greater_than_or_equal_to(0))


@given("the chaos event becomes {status}")
@then("the chaos event becomes {status}")
def step_event_becomes(context: Context, status: str) -> None:
    event_id = context.chaos_event["event_id"]
    timeout = ACKNOWLEDGE_TIMEOUT_S
    if status == "RECOVERED":
        timeout += int(context.chaos_event["duration_ms"]) / 1000 + RECOVERY_MARGIN_S
    context.chaos_event = wait_until(
        lambda: context.ecosystem.chaos_event(event_id),
        lambda event: event["status"] == status,
        timeout=timeout,
        what=f"chaos event {event_id} becomes {status}",
    )


@then("between {low:d} and {high:d} percent of them fail with {code}")
def step_share_fails(context: Context, low: int, high: int, code: str) -> None:
    context.failure_code = code
    failed = sum(1 for r in context.results if r.code.name == code)
    share = 100 * failed / len(context.results)
    assert low <= share <= high, f"{failed} of {len(context.results)} orders failed with {code} ({share:.0f}%)"


@then("the others are ACCEPTED")
def step_others_accepted(context: Context) -> None:
    others = [r for r in context.results if not r.ok or r.body["status"] != "ACCEPTED"]
    unexpected = [r.describe() for r in others if r.ok or r.code.name != context.failure_code]
    assert not unexpected, f"orders neither ACCEPTED nor failed as injected: {unexpected[:5]}"
