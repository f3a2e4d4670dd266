"""What the stack manifest declares about every service, checked on the running stack."""

from __future__ import annotations

from behave import then
from behave.runner import Context


@then('"{service}" is registered by the registry contract at endpoints that answer SERVING')
def step_registered_by_contract(context: Context, service: str) -> None:
    """Check the service's registry entries against docs/REGISTRY.md and its declared version, then ask each
    registered endpoint for the declared health name."""
    context.suite.registry.expect_registered_by_contract(service)
