"""Faults injected through the test coordinator, the chaos control plane."""

from __future__ import annotations

from behave import given, then, when
from behave.runner import Context


@given('the test coordinator injects {delay:d} ms of latency into "{service}" for {duration:d} ms')
@when('the test coordinator injects {delay:d} ms of latency into "{service}" for {duration:d} ms')
def step_inject_latency(context: Context, delay: int, service: str, duration: int) -> None:
    """Inject latency of the delay into the service (InjectChaos); the scenario's end ends the event."""
    context.suite.chaos.inject_latency(delay, service, duration)


@given('the test coordinator injects {code} errors at {percentage:d} percent into "{service}" for {duration:d} ms')
def step_inject_errors(context: Context, code: str, percentage: int, service: str, duration: int) -> None:
    """Inject errors with the code at the percentage into the service; the scenario's end ends the event."""
    context.suite.chaos.inject_errors(code, percentage, service, duration)


@when('the test coordinator is asked to inject "{event_type}" into "{service}"')
def step_ask_inject(context: Context, event_type: str, service: str) -> None:
    """Ask InjectChaos for the event, keeping its answer even if refused; an accepted event is ended later."""
    context.suite.chaos.ask(event_type, service)


@when("the chaos event is ended early")
def step_end_early(context: Context) -> None:
    """End this scenario's chaos event now (EndChaosEvent); later steps wait on its answer, cut short."""
    context.suite.chaos.end_early()


@then("the chaos event becomes RECOVERED with a recovery time")
def step_recovered_with_time(context: Context) -> None:
    """Wait until the chaos event is RECOVERED; check it has a recovered_at and a recovery_time_ms >= 0."""
    context.suite.chaos.expect_recovered_with_time()


@given("the chaos event becomes {status}")
@when("the chaos event becomes {status}")
@then("the chaos event becomes {status}")
def step_event_becomes(context: Context, status: str) -> None:
    """Wait until GetChaosEvent reports the status: within 5 s, plus duration + 1 s for RECOVERED."""
    context.suite.chaos.expect_status(status)


@then("between {low:d} and {high:d} percent of them fail with {code}")
def step_share_fails(context: Context, low: int, high: int, code: str) -> None:
    """Check that between low and high percent (inclusive) of the last batch failed with the code."""
    context.suite.orders.expect_share_failing(low, high, code)


@then("the others are ACCEPTED")
def step_others_accepted(context: Context) -> None:
    """Check that every order of the last batch that did not fail with the injected code is ACCEPTED."""
    context.suite.orders.expect_others_accepted()
