"""The settings and limits a feature states, checked against what the stack was declared and started with."""

from __future__ import annotations

from behave import given
from behave.runner import Context


@given("the services heartbeat every third of a registry TTL of {ttl_ms:d} ms")
def step_registry_ttl(context: Context, ttl_ms: int) -> None:
    """Check that the stated registry TTL is the one the stack was started with; nothing is changed."""
    context.suite.declared.expect(registry_ttl_ms=ttl_ms)


@given("the trading engine's breaker opens after {failures:d} consecutive transport failures and probes again "
       "after {seconds:g} seconds")
def step_breaker_settings(context: Context, failures: int, seconds: float) -> None:
    """Check the stated breaker threshold and recovery timeout are those the stack was started with."""
    context.suite.declared.expect(breaker_failure_threshold=failures, breaker_recovery_timeout_s=seconds)


@given("a call that fails with UNAVAILABLE is tried {attempts:d} times")
def step_retry_attempts(context: Context, attempts: int) -> None:
    """Check that the stated number of retry attempts is the one the stack was started with."""
    context.suite.declared.expect(retry_attempts=attempts)


@given("the services drain for up to {seconds:g} seconds on SIGTERM")
def step_shutdown_grace(context: Context, seconds: float) -> None:
    """Check that the stated shutdown grace period is the one the stack was started with."""
    context.suite.declared.expect(shutdown_grace_s=seconds)


@given("the testing limits are")
def step_limits(context: Context) -> None:
    """Check that each key and value of the table is what config/seed.toml seeds for the environment."""
    context.suite.config.expect_limits([(row["key"], row["value"]) for row in context.table])
