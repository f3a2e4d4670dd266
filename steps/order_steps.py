"""Orders through the trading engine, its view of its dependencies, and the test coordinator's scenarios."""

from __future__ import annotations

from behave import given, then, when
from behave.runner import Context


@when("the trading engine receives an order for {quantity:g} {symbol} at {price:g}")
def step_order(context: Context, quantity: float, symbol: str, price: float) -> None:
    """Send one buy order to the trading engine (SubmitOrder); later steps check its answer."""
    context.suite.orders.submit(quantity, symbol, price)


@when("the trading engine receives an order for {quantity:g} {symbol} at {price:g} with a deadline of {ms:d} ms")
def step_order_with_deadline(context: Context, quantity: float, symbol: str, price: float, ms: int) -> None:
    """Send one buy order to the trading engine with a gRPC deadline of that many milliseconds."""
    context.suite.orders.submit(quantity, symbol, price, timeout_s=ms / 1000)


@given("the trading engine receives {count:d} orders for {quantity:g} {symbol} at {price:g}")
@when("the trading engine receives {count:d} orders for {quantity:g} {symbol} at {price:g}")
def step_orders(context: Context, count: int, quantity: float, symbol: str, price: float) -> None:
    """Send that many orders to the trading engine one after another; later steps check the batch."""
    context.suite.orders.submit_many(count, quantity, symbol, price)


@when("the trading engine receives {count:d} orders for {quantity:g} {symbol} at {price:g} at once")
def step_orders_at_once(context: Context, count: int, quantity: float, symbol: str, price: float) -> None:
    """Send that many orders to the trading engine concurrently, each on a thread of its own."""
    context.suite.orders.submit_at_once(count, quantity, symbol, price)


@when('an order for {quantity:g} {symbol} at {price:g} is in flight at "{service}"')
def step_order_in_flight(context: Context, quantity: float, symbol: str, price: float, service: str) -> None:
    """Send an order in the background and wait until the service counts its CheckOrder in flight."""
    context.suite.orders.submit_until_in_flight_at(service, quantity, symbol, price)


@given("the trading engine has accepted an order for {quantity:g} {symbol} at {price:g}")
def step_has_accepted(context: Context, quantity: float, symbol: str, price: float) -> None:
    """Send one order to the trading engine and check that it is ACCEPTED."""
    context.suite.orders.has_accepted(quantity, symbol, price)


@then("the order is {status}")
def step_order_is(context: Context, status: str) -> None:
    """Check that the last order call succeeded and its status is the given one (ACCEPTED, REJECTED)."""
    context.suite.orders.expect_status(status)


@then("the order in flight is {status}")
def step_in_flight_is(context: Context, status: str) -> None:
    """Wait (up to the shutdown grace + 1 s) for the order in flight; check its status or gRPC code."""
    context.suite.orders.expect_in_flight_outcome(status)


@then('the order was decided by a "{service}" instance the stack started')
def step_decided_by_running(context: Context, service: str) -> None:
    """Check the last order was decided under an instance id the stack started the service with."""
    context.suite.orders.expect_decided_by_running(service)


@then('the reasons mention "{text}"')
def step_reasons_mention(context: Context, text: str) -> None:
    """Check that one of the last order's reasons contains the text."""
    context.suite.orders.expect_reasons_mention(text)


@then("every order is {status}")
@then("every one of them fails with {status}")
def step_every_order(context: Context, status: str) -> None:
    """Check every order of the last batch has the outcome: its status or the gRPC code it failed with."""
    context.suite.orders.expect_every(status)


@then("the trading engine receives {count:d} orders for {quantity:g} {symbol} at {price:g} and every one is {status}")
def step_orders_all(context: Context, count: int, quantity: float, symbol: str, price: float, status: str) -> None:
    """Send that many orders one after another and check that every one has the outcome."""
    context.suite.orders.submit_many(count, quantity, symbol, price)
    context.suite.orders.expect_every(status)


@then('within {seconds:d} seconds an order for {quantity:g} {symbol} at {price:g} is {status} for "{reason}"')
def step_eventually_for(context: Context, seconds: int, quantity: float, symbol: str, price: float, status: str,
                        reason: str) -> None:
    """Resend the order until one has the status and a reason containing the text, within the seconds."""
    context.suite.orders.expect_eventually(seconds, quantity, symbol, price, status, reason)


@then("within the breaker's recovery time an order for {quantity:g} {symbol} at {price:g} is {status}")
def step_eventually_after_recovery(context: Context, quantity: float, symbol: str, price: float, status: str) -> None:
    """Resend the order until it has the status, within the declared breaker recovery + TTL + 1 s."""
    context.suite.orders.expect_eventually_after_breaker_recovery(quantity, symbol, price, status)


@then('an order for {quantity:g} {symbol} at {price:g} is {status} for "{reason}"')
def step_order_decided_for(context: Context, quantity: float, symbol: str, price: float, status: str,
                           reason: str) -> None:
    """Send one order; check its status and that one of its reasons contains the text."""
    context.suite.orders.expect_decision(quantity, symbol, price, status, reason)


@then('every "{service}" instance decided at least one of them')
def step_every_instance_decided(context: Context, service: str) -> None:
    """Check that each running instance of the service decided at least one order of the last batch."""
    context.suite.orders.expect_each_instance_decided(service)


@then('within one heartbeat the trading engine\'s orders are decided by the new "{service}" instance')
def step_new_instance_used(context: Context, service: str) -> None:
    """Resend an order until the restarted instance decides it, within one heartbeat (TTL/3) + 1 s."""
    context.suite.orders.expect_decided_by_restarted(service)


@then("the call ended before the injected latency was over")
def step_ended_before_latency(context: Context) -> None:
    """Check that the last call took less time than the latency injected in this scenario."""
    context.suite.orders.expect_ended_before_injected_latency()


@then("an order for {quantity:g} {symbol} at {price:g} takes the risk monitor at least {ms:d} ms")
def step_takes_at_least(context: Context, quantity: float, symbol: str, price: float, ms: int) -> None:
    """Send an order that must be ACCEPTED; check the engine's last risk-monitor latency is >= ms."""
    context.suite.orders.expect_risk_latency(quantity, symbol, price, at_least_ms=ms)


@then("an order for {quantity:g} {symbol} at {price:g} takes the risk monitor less than {ms:d} ms")
def step_takes_less(context: Context, quantity: float, symbol: str, price: float, ms: int) -> None:
    """Send an order that must be ACCEPTED; check the engine's last risk-monitor latency is < ms."""
    context.suite.orders.expect_risk_latency(quantity, symbol, price, below_ms=ms)


# The trading engine's view of its dependencies


@then('the trading engine finds "{service}" at its registered endpoint, from the registry')
def step_engine_finds(context: Context, service: str) -> None:
    """Check the engine's GetStatus has the service from the registry, at the endpoints in Redis."""
    context.suite.orders.expect_finds_at_registered_endpoint(service)


@then('the trading engine finds "{service}" from its cache')
def step_engine_finds_cached(context: Context, service: str) -> None:
    """Wait up to 5 s until the engine's GetStatus reports the service found from its cache."""
    context.suite.orders.expect_finds_from_cache(service)


@then('within one heartbeat the trading engine no longer lists that "{service}" instance')
def step_engine_forgets(context: Context, service: str) -> None:
    """Wait until the engine drops the removed instance's endpoint, within one heartbeat + 1 s."""
    context.suite.orders.expect_forgets_removed(service)


@then("the trading engine's breaker for \"{service}\" is CLOSED after at least {probes:d} half-open probe")
def step_breaker_closed_after_probe(context: Context, service: str, probes: int) -> None:
    """Check the engine's breaker for the service is CLOSED and has half-opened at least that often."""
    context.suite.orders.expect_breaker_closed_after_probes(service, probes)


@given("the trading engine's breaker for \"{service}\" is {state}")
@then("the trading engine's breaker for \"{service}\" is {state}")
def step_breaker_is(context: Context, service: str, state: str) -> None:
    """Check that the engine's GetStatus reports its breaker for the service in that state now."""
    context.suite.orders.expect_breaker(service, state)


@then('the trading engine saw {code} from "{service}"')
def step_engine_saw(context: Context, code: str, service: str) -> None:
    """Check that the engine's last error from the service, in its GetStatus, contains the code."""
    context.suite.orders.expect_saw(code, service)


# Test scenarios of the test coordinator


@given('a test scenario "{name}" is active and the trading engine knows it')
def step_scenario_active(context: Context, name: str) -> None:
    """Start a test scenario, wait until the engine lists it active; the end completes it."""
    context.suite.orders.start_test_scenario(name)


@then("the test coordinator recorded {accepted:d} ACCEPTED and {rejected:d} REJECTED outcome for the scenario")
def step_outcomes_recorded(context: Context, accepted: int, rejected: int) -> None:
    """Check the coordinator counted these outcomes and recorded every order answered in the scenario."""
    context.suite.orders.expect_outcomes_recorded(accepted, rejected)


@then("a test scenario cannot be started while the fault is active")
def step_scenario_refused(context: Context) -> None:
    """Check that StartScenario fails (any error); a scenario it does start is completed afterwards."""
    context.suite.orders.expect_test_scenario_refused()
