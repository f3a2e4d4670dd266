"""Traces the services export to the suite's OTLP receiver."""

from __future__ import annotations

import secrets

from behave import then, when
from behave.runner import Context

from acceptance.otlp_receiver import ReceivedSpan
from acceptance.waits import wait_until

# Services export in batches a fraction of a second apart.
EXPORT_TIMEOUT_S = 10.0


@when("the trading engine receives a traced order for {quantity:g} {symbol} at {price:g}")
def step_traced_order(context: Context, quantity: float, symbol: str, price: float) -> None:
    context.trace_id = secrets.token_hex(16)
    traceparent = f"00-{context.trace_id}-{secrets.token_hex(8)}-01"
    context.result = context.ecosystem.submit_order(quantity, symbol, price, metadata={"traceparent": traceparent})
    assert context.result.ok and context.result.body["status"] == "ACCEPTED", context.result.describe()


def server_span(context: Context, trace_id: str, service: str, method: str) -> ReceivedSpan:
    def find() -> ReceivedSpan | None:
        for span in context.otlp.trace(trace_id):
            if span.kind == "SERVER" and span.service == service and span.name.endswith(f"/{method}"):
                return span
        return None

    return wait_until(
        find, timeout=EXPORT_TIMEOUT_S, what=f"trace {trace_id} holds a SERVER span of {service} for {method}"
    )


@then('the trace holds a server span of "{service}" for "{method}" whose parent is a client span of "{parent}"')
def step_trace_parent(context: Context, service: str, method: str, parent: str) -> None:
    span = server_span(context, context.trace_id, service, method)
    found = wait_until(
        lambda: [s for s in context.otlp.trace(context.trace_id) if s.span_id == span.parent_span_id],
        timeout=EXPORT_TIMEOUT_S,
        what=f"the parent span {span.parent_span_id} of {service}'s {method} span arrives",
    )
    assert found[0].kind == "CLIENT" and found[0].service == parent, (
        f"{service}'s {method} span has parent {found[0]}, expected a CLIENT span of {parent}"
    )



@then('the trace holds a server span of "{service}" for "{method}"')
def step_trace_holds(context: Context, service: str, method: str) -> None:
    server_span(context, context.trace_id, service, method)


@then('trace "{trace_id}" holds a server span of "{service}" for "{method}"')
def step_named_trace_holds(context: Context, trace_id: str, service: str, method: str) -> None:
    server_span(context, trace_id, service, method)
