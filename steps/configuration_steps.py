"""configuration-service, called directly, against the configuration seed."""

from __future__ import annotations

from behave import given, then, when
from behave.runner import Context


@when('I get the configuration "{key}" for "{environment}"')
def step_get(context: Context, key: str, environment: str) -> None:
    """Call GetConfiguration on configuration-service for the key and environment; later steps check it."""
    context.suite.config.get(key, environment)


@then("the configuration value is {value} of type {value_type}, as seeded")
def step_value_is(context: Context, value: str, value_type: str) -> None:
    """Check the value and type are what the seed declares, and what the last GetConfiguration answered."""
    context.suite.config.expect_value(value, value_type)


@when('I set the configuration "{key}" for "{environment}" to "{value}" as {value_type}')
def step_try_set(context: Context, key: str, environment: str, value: str, value_type: str) -> None:
    """Call SetConfiguration, whatever it answers; the end restores the seed, restarting its caching users."""
    context.suite.config.try_set(key, environment, value, value_type)


@when('the configuration "{key}" for "{environment}" is set to "{value}" as {value_type}')
def step_set(context: Context, key: str, environment: str, value: str, value_type: str) -> None:
    """Set it (SetConfiguration must succeed); the end restores the seed, restarting its caching users."""
    context.suite.config.set(key, environment, value, value_type)


@then('the configuration "{key}" for "{environment}" still has its seeded value')
def step_still_seeded(context: Context, key: str, environment: str) -> None:
    """Check that GetConfiguration now answers the value config/seed.toml declares for the key."""
    context.suite.config.expect_seeded(key, environment)


@then("the configuration service serves its seeded limits again")
def step_seeded_again(context: Context) -> None:
    """Check that configuration-service serves every risk limit with its seeded value again."""
    context.suite.config.expect_limits_served_as_seeded()


@given('the configuration watch of "{service}" is live')
def step_watch_live(context: Context, service: str) -> None:
    """Wait until every instance of the service follows configuration changes, and note how often each connected."""
    context.suite.config.await_watch_live(service)


@then('the configuration watch of "{service}" did not reconnect meanwhile')
def step_watch_not_reconnected(context: Context, service: str) -> None:
    """Check no instance reconnected its watch since it was live: a reconnection re-reads every cached key."""
    context.suite.config.expect_watch_not_reconnected(service)
