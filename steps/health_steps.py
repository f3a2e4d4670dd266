"""grpc.health.v1 and reflection, as any gRPC client sees them."""

from __future__ import annotations

from behave import given, then, when
from behave.runner import Context


@then('"{service}" reports SERVING for "{grpc_service}"')
def step_serving(context: Context, service: str, grpc_service: str) -> None:
    """Check that the service's first instance answers health Check SERVING for this name."""
    context.suite.calls.expect_serving(service, grpc_service)


@when('I ask "{service}" for the health of "{grpc_service}"')
def step_ask_health(context: Context, service: str, grpc_service: str) -> None:
    """Send a health Check for this name to the service's first instance; the answer is the last call."""
    context.suite.calls.ask_health(service, grpc_service)


@then('reflection on "{service}" lists "{grpc_service}"')
def step_reflection_lists(context: Context, service: str, grpc_service: str) -> None:
    """Check that the service's reflection lists this gRPC service."""
    context.suite.calls.expect_reflection_lists(service, grpc_service)


@given('a health watch on "{service}" is open')
def step_watch_health(context: Context, service: str) -> None:
    """Open a health Watch stream on the service's first instance; it closes when the scenario ends."""
    context.suite.calls.watch_health(service)


@then('the health watch on "{service}" reports {status}')
def step_watch_reports(context: Context, service: str, status: str) -> None:
    """Check that the open health Watch on the service has reported this status."""
    context.suite.calls.expect_watch_saw(service, status)
