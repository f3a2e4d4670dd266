"""The Redis registry as the services keep it."""

from __future__ import annotations

from behave import given, then
from behave.runner import Context


@then("every service is registered under the instance id it was started with, at a routable endpoint, "
      "with the release version")
def step_registered(context: Context) -> None:
    """Check each running instance is registered under its started id, routable, with the declared version."""
    context.suite.registry.expect_every_service_registered()


@then("every service stays registered for two registry TTLs, its heartbeat renewed")
def step_registrations_kept(context: Context) -> None:
    """Check for two registry TTLs that every instance stays registered and its heartbeat moves on."""
    context.suite.registry.expect_registrations_kept()


@then("that instance is deregistered, not left to expire")
def step_deregistered(context: Context) -> None:
    """Check within 1 s that the removed instance deleted its entry and announced down on the stream."""
    context.suite.registry.expect_removed_deregistered()


@then("that instance leaves the registry within the registry TTL")
def step_expires(context: Context) -> None:
    """Check that the removed instance leaves the registry within the declared TTL + 1 s."""
    context.suite.registry.expect_removed_expires()


@then("every service is registered again within one heartbeat")
def step_registered_again(context: Context) -> None:
    """Wait until every running instance is registered again, within one heartbeat (TTL/3) + 1 s."""
    context.suite.registry.expect_every_service_registered_again()


@given("the registry lookups are counted")
def step_note_lookups(context: Context) -> None:
    """Note how many lookups (ZRANGEBYSCORE) Redis has served so far, for a later step."""
    context.suite.registry.note_reads()


@then("the registry served fewer than {count:d} lookups meanwhile")
def step_fewer_lookups(context: Context, count: int) -> None:
    """Check that Redis served fewer lookups (ZRANGEBYSCORE) than the count since they were noted."""
    context.suite.registry.expect_fewer_reads_than(count)
