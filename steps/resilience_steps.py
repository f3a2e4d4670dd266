"""The trading engine's circuit breaker and retries toward the risk monitor."""

from __future__ import annotations

from behave import given, then, when
from behave.runner import Context
from hamcrest import assert_that, equal_to, greater_than_or_equal_to

from acceptance.hooks import add_cleanup


@given('every "{service}" instance is stopped')
def step_all_stopped(context: Context, service: str) -> None:
    add_cleanup(context, context.ecosystem.recover)
    for handle in reversed(context.stack.instances(service)):
        context.stack.stop_service(service, handle.index)


@when('"{service}" is started again')
def step_started_again(context: Context, service: str) -> None:
    context.stack.start_service(service)


@then("the trading engine's breaker for \"{service}\" is CLOSED after at least {probes:d} half-open probe")
def step_breaker_closed_after_probe(context: Context, service: str, probes: int) -> None:
    breaker = context.ecosystem.dependency(service)["breaker"]
    assert_that(breaker["state"], equal_to("CLOSED"), str(breaker))
    assert_that(int(breaker["half_opened_count"]), greater_than_or_equal_to(probes), str(breaker))


@given("the trading engine's breaker for \"{service}\" is {state}")
@then("the trading engine's breaker for \"{service}\" is {state}")
def step_breaker_is(context: Context, service: str, state: str) -> None:
    breaker = context.ecosystem.dependency(service)["breaker"]
    assert_that(breaker["state"], equal_to(state), f"breaker of trading-system-engine for {service}: {breaker}")


@given('the CheckOrder calls of "{service}" are counted')
def step_count_calls(context: Context, service: str) -> None:
    context.calls_before = context.ecosystem.operation_count(service, "CheckOrder")


@then('"{service}" received {count:d} CheckOrder calls for it')
@then('"{service}" received {count:d} CheckOrder call for it')
def step_calls_received(context: Context, service: str, count: int) -> None:
    received = context.ecosystem.operation_count(service, "CheckOrder") - context.calls_before
    assert_that(received, equal_to(count), f"CheckOrder calls {service} counted for one order")
