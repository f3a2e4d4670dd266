"""Faults the stack target applies: instances stopped, killed, scaled, restarted; Redis; the network."""

from __future__ import annotations

from behave import given, then, when
from behave.runner import Context


@given('{count:d} instances of "{service}" are running')
def step_scaled(context: Context, count: int, service: str) -> None:
    """Run exactly that many instances, used by the trading engine; the scenario's end scales back to 1."""
    context.suite.faults.scale(count, service)


@when('instance {number:d} of "{service}" is stopped gracefully')
def step_stop_instance(context: Context, number: int, service: str) -> None:
    """Stop the nth instance gracefully (SIGTERM) and wait for its exit; the end runs 1 instance again."""
    context.suite.faults.stop_instance(number, service)


@when('instance {number:d} of "{service}" is killed')
def step_kill_instance(context: Context, number: int, service: str) -> None:
    """Kill the nth instance (SIGKILL: no drain, no deregistration); the end runs 1 instance again."""
    context.suite.faults.kill_instance(number, service)


@given('"{service}" is restarted')
@when('"{service}" is restarted')
def step_restart(context: Context, service: str) -> None:
    """Stop the service gracefully and start it again as a new instance; the end runs 1 instance again."""
    context.suite.faults.restart(service)


@given('every "{service}" instance is stopped')
@when('every "{service}" instance is stopped')
def step_all_stopped(context: Context, service: str) -> None:
    """Stop every instance gracefully; the end starts one again and restarts the trading engine."""
    context.suite.faults.stop_every_instance(service)


@when('"{service}" is started again')
def step_started_again(context: Context, service: str) -> None:
    """Start the service's first instance again and wait until it is SERVING."""
    context.suite.faults.start_again(service)


@when('"{service}" is sent SIGTERM')
def step_sigterm(context: Context, service: str) -> None:
    """Send SIGTERM to the first instance and go on while it drains; the end runs 1 instance again."""
    context.suite.faults.terminate(service)


@then('"{service}" exits with status 0 within its grace period')
def step_exit_ok(context: Context, service: str) -> None:
    """Check that the first instance exits with status 0 within the declared shutdown grace + 1 s."""
    context.suite.faults.expect_exit_within_grace(service)


@then('the log of "{service}" shows {first}, {second} and {third}, in that order')
def step_lifecycle_logged(context: Context, service: str, first: str, second: str, third: str) -> None:
    """Check that the first instance's JSON log of this scenario has the three events in that order."""
    context.suite.faults.expect_logged_in_order(service, [first, second, third])


@when("the registry's Redis is flushed")
def step_flush(context: Context) -> None:
    """Flush the registry's Redis; the end waits for every service to register again or restarts it."""
    context.suite.faults.flush_redis()


@when("the registry's Redis is down for {heartbeats:d} heartbeats and comes back")
def step_redis_outage(context: Context, heartbeats: int) -> None:
    """Stop Redis, check it stays down for that many heartbeats (TTL/3 each), then start it again."""
    context.suite.faults.redis_outage(heartbeats)


@when("the registry's Redis is stopped")
def step_stop_redis(context: Context) -> None:
    """Stop the registry's Redis; the scenario's end starts it and gets every service registered again."""
    context.suite.faults.stop_redis()


@given('the "{service}" instance is cut off from the network')
def step_partitioned(context: Context, service: str) -> None:
    """Cut the first instance off the network; the end reconnects it and restarts the trading engine."""
    context.suite.faults.partition(service)


@when('the "{service}" instance is connected to the network again')
def step_healed(context: Context, service: str) -> None:
    """Connect the instance this scenario cut off to the network again."""
    context.suite.faults.heal(service)
