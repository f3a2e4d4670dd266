"""configuration-service, called directly, against the configuration seed."""

from __future__ import annotations

from behave import then, when
from behave.runner import Context


@when('I get the configuration "{key}" for "{environment}"')
def step_get(context: Context, key: str, environment: str) -> None:
    context.suite.config.get(key, environment)


@then("the configuration value is {value} of type {value_type}, as seeded")
def step_value_is(context: Context, value: str, value_type: str) -> None:
    context.suite.config.expect_value(value, value_type)


@when('I set the configuration "{key}" for "{environment}" to "{value}" as {value_type}')
def step_try_set(context: Context, key: str, environment: str, value: str, value_type: str) -> None:
    context.suite.config.try_set(key, environment, value, value_type)


@when('the configuration "{key}" for "{environment}" is set to "{value}" as {value_type}')
def step_set(context: Context, key: str, environment: str, value: str, value_type: str) -> None:
    context.suite.config.set(key, environment, value, value_type)


@then('the configuration "{key}" for "{environment}" still has its seeded value')
def step_still_seeded(context: Context, key: str, environment: str) -> None:
    context.suite.config.expect_seeded(key, environment)


@then("the configuration service serves its seeded limits again")
def step_seeded_again(context: Context) -> None:
    context.suite.config.expect_limits_served_as_seeded()
