"""An orchestrator that replaces failed instances by itself, watched rather than driven."""

from __future__ import annotations

from behave import given, then, when
from behave.runner import Context


@given("the orchestrator replaces a failed task after a restart delay of {delay_ms:d} ms")
def step_restart_delay(context: Context, delay_ms: int) -> None:
    """Check that the stated restart delay is the one the stack was deployed with; nothing is changed."""
    context.suite.declared.expect(restart_delay_ms=delay_ms)


@when('the "{service}" instance is killed and left to the orchestrator')
def step_killed_and_left(context: Context, service: str) -> None:
    """Kill the first instance (SIGKILL) and note when; the suite then only watches (the end runs 1 instance)."""
    context.suite.orchestrator.kill_and_leave(service)


@then('the orchestrator starts a new "{service}" instance, which registers itself')
def step_replaced(context: Context, service: str) -> None:
    """Wait (restart delay + the target's start timeout + 1 s) for another instance, registered after the kill."""
    context.suite.orchestrator.expect_replacement(service)


@then('every one of them was decided by the new "{service}" instance')
def step_decided_by_new(context: Context, service: str) -> None:
    """Check every order of the last batch was decided by the instance the orchestrator started."""
    context.suite.orchestrator.expect_batch_decided_by_replacement(service)
