"""Traces the services export to the suite's OTLP receiver."""

from __future__ import annotations

from behave import then, when
from behave.runner import Context


@when("the trading engine receives a traced order for {quantity:g} {symbol} at {price:g}")
def step_traced_order(context: Context, quantity: float, symbol: str, price: float) -> None:
    """Send an order in a trace of its own (W3C traceparent) and check that it is ACCEPTED."""
    context.suite.traces.submit_traced_order(quantity, symbol, price)


@then('the trace holds a server span of "{service}" for "{method}" whose parent is a client span of "{parent}"')
def step_trace_parent(context: Context, service: str, method: str, parent: str) -> None:
    """Check the traced order's SERVER span of the service has a CLIENT span of the parent as parent."""
    context.suite.traces.expect_parent_client_span(service, method, parent)


@then('the trace holds a server span of "{service}" for "{method}"')
def step_trace_holds(context: Context, service: str, method: str) -> None:
    """Wait up to 10 s until the traced order's trace holds a SERVER span of the service for the method."""
    context.suite.traces.expect_server_span(service, method)


@then('trace "{trace_id}" holds a server span of "{service}" for "{method}"')
def step_named_trace_holds(context: Context, trace_id: str, service: str, method: str) -> None:
    """Wait up to 10 s until that trace holds a SERVER span of the service for the method."""
    context.suite.traces.expect_server_span(service, method, trace_id)
