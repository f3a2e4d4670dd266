"""Orders through the trading engine, and the scenarios the test coordinator records them under."""

from __future__ import annotations

from behave import given, then, when
from behave.runner import Context
from hamcrest import assert_that, contains_string, equal_to, greater_than_or_equal_to, has_item, less_than

from acceptance.hooks import add_cleanup
from acceptance.waits import wait_until
from ecosystem.names import TEST_COORDINATOR, TRADING_SYSTEM_ENGINE


def submit(context: Context, quantity: float, symbol: str, price: float, **options) -> None:
    context.result = context.ecosystem.submit_order(quantity, symbol, price, **options)
    context.results.append(context.result)


def submit_many(context: Context, count: int, quantity: float, symbol: str, price: float) -> None:
    context.results = [context.ecosystem.submit_order(quantity, symbol, price) for _ in range(count)]
    context.result = context.results[-1]


def statuses(context: Context) -> list[str]:
    return [r.body["status"] if r.ok else r.code.name for r in context.results]


@when("the trading engine receives an order for {quantity:g} {symbol} at {price:g}")
def step_order(context: Context, quantity: float, symbol: str, price: float) -> None:
    submit(context, quantity, symbol, price)


@when("the trading engine receives an order for {quantity:g} {symbol} at {price:g} with a deadline of {ms:d} ms")
def step_order_with_deadline(context: Context, quantity: float, symbol: str, price: float, ms: int) -> None:
    submit(context, quantity, symbol, price, timeout=ms / 1000)


@given("the trading engine receives {count:d} orders for {quantity:g} {symbol} at {price:g}")
@when("the trading engine receives {count:d} orders for {quantity:g} {symbol} at {price:g}")
def step_orders(context: Context, count: int, quantity: float, symbol: str, price: float) -> None:
    submit_many(context, count, quantity, symbol, price)


@given("the trading engine has accepted an order for {quantity:g} {symbol} at {price:g}")
def step_has_accepted(context: Context, quantity: float, symbol: str, price: float) -> None:
    submit(context, quantity, symbol, price)
    step_order_is(context, "ACCEPTED")


@then("the order is {status}")
def step_order_is(context: Context, status: str) -> None:
    result = context.result
    assert result.ok, f"expected an order {status}, but {result.describe()}"
    assert_that(result.body["status"], equal_to(status), f"order reasons: {result.body['reasons']}")


@then('the reasons mention "{text}"')
def step_reasons_mention(context: Context, text: str) -> None:
    assert_that(context.result.body["reasons"], has_item(contains_string(text)))


@then("every order is {status}")
def step_every_order(context: Context, status: str) -> None:
    assert_that(set(statuses(context)), equal_to({status}), f"outcomes: {statuses(context)}")


@then("every one of them fails with {code}")
def step_every_fails(context: Context, code: str) -> None:
    assert_that(set(statuses(context)), equal_to({code}), [r.describe() for r in context.results])


@then("the trading engine receives {count:d} orders for {quantity:g} {symbol} at {price:g} and every one is {status}")
def step_orders_all(context: Context, count: int, quantity: float, symbol: str, price: float, status: str) -> None:
    submit_many(context, count, quantity, symbol, price)
    step_every_order(context, status)


@then('within {seconds:d} seconds an order for {quantity:g} {symbol} at {price:g} is {status} for "{text}"')
def step_eventually_for(context: Context, seconds: int, quantity: float, symbol: str, price: float, status: str,
                        text: str) -> None:
    result = wait_until(
        lambda: context.ecosystem.submit_order(quantity, symbol, price),
        lambda r: r.ok and r.body["status"] == status and any(text in reason for reason in r.body["reasons"]),
        timeout=seconds,
        what=f"an order for {quantity:g} {symbol} at {price:g} is {status} for {text}",
        interval=0.05,
    )
    context.result = result


@then("within {seconds:d} seconds an order for {quantity:g} {symbol} at {price:g} is {status}")
def step_eventually(context: Context, seconds: int, quantity: float, symbol: str, price: float, status: str) -> None:
    context.result = wait_until(
        lambda: context.ecosystem.submit_order(quantity, symbol, price),
        lambda r: r.ok and r.body["status"] == status,
        timeout=seconds,
        what=f"an order for {quantity:g} {symbol} at {price:g} is {status}",
        interval=0.1,
    )


@then("the call ended before the injected latency was over")
def step_ended_before_latency(context: Context) -> None:
    assert_that(context.result.elapsed_s * 1000, less_than(context.injected_latency_ms))


@then('the trading engine saw {code} from "{service}"')
def step_engine_saw(context: Context, code: str, service: str) -> None:
    assert_that(context.ecosystem.dependency(service)["last_error"], contains_string(code))


@given('a test scenario "{name}" is active and the trading engine knows it')
def step_scenario_active(context: Context, name: str) -> None:
    scenario = context.ecosystem.ok_body(context.ecosystem.call(TEST_COORDINATOR, "StartScenario", {"name": name}))
    context.scenario_id = scenario["scenario_id"]
    add_cleanup(context, context.ecosystem.call, TEST_COORDINATOR, "CompleteScenario",
                {"scenario_id": context.scenario_id})
    wait_until(
        lambda: context.ecosystem.engine_status()["active_scenarios"],
        lambda active: context.scenario_id in active,
        timeout=5,
        what=f"{TRADING_SYSTEM_ENGINE} lists scenario {context.scenario_id} as active",
    )


@then("the test coordinator recorded {accepted:d} ACCEPTED and {rejected:d} REJECTED outcome for the scenario")
def step_outcomes_recorded(context: Context, accepted: int, rejected: int) -> None:
    scenario = context.ecosystem.ok_body(
        context.ecosystem.call(TEST_COORDINATOR, "GetScenario", {"scenario_id": context.scenario_id})
    )
    counts = {k: int(v) for k, v in scenario["outcome_counts"].items()}
    assert_that(counts, equal_to({"ACCEPTED": accepted, "REJECTED": rejected}))
    order_ids = {r.body["order_id"] for r in context.results}
    assert_that({o["order_id"] for o in scenario["outcomes"]}, equal_to(order_ids))


def risk_monitor_latency_ms(context: Context, quantity: float, symbol: str, price: float) -> float:
    """Submit an order that must be accepted; the risk-monitor latency the trading engine saw for it."""
    submit(context, quantity, symbol, price)
    step_order_is(context, "ACCEPTED")
    return context.ecosystem.dependency("risk-monitor")["last_latency_ms"]


@then("an order for {quantity:g} {symbol} at {price:g} takes the risk monitor at least {ms:d} ms")
def step_takes_at_least(context: Context, quantity: float, symbol: str, price: float, ms: int) -> None:
    latency = risk_monitor_latency_ms(context, quantity, symbol, price)
    assert_that(latency, greater_than_or_equal_to(ms), "risk-monitor latency seen by the trading engine")


@then("an order for {quantity:g} {symbol} at {price:g} takes the risk monitor less than {ms:d} ms")
def step_takes_less(context: Context, quantity: float, symbol: str, price: float, ms: int) -> None:
    latency = risk_monitor_latency_ms(context, quantity, symbol, price)
    assert_that(latency, less_than(ms), "risk-monitor latency seen by the trading engine")
