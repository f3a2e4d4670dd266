"""Attacks a secure stack must withstand (features/11_security.feature)."""

from __future__ import annotations

import json

from behave import given, then, when
from behave.runner import Context


@when('a plaintext client asks "{service}" for its health')
def step_plaintext(context: Context, service: str) -> None:
    """Send a health Check without TLS to the service's first instance."""
    context.suite.security.ask_health_in_plaintext(service)


@when('a client with a certificate from another CA asks "{service}" for its health')
def step_foreign_certificate(context: Context, service: str) -> None:
    """Send a health Check over TLS with a self-signed client certificate the stack's CA never issued."""
    context.suite.security.ask_health_with_foreign_certificate(service)


@then("the connection is refused")
def step_refused(context: Context) -> None:
    """Check that the last attack's call got no answer from the service: the TLS handshake refused it."""
    context.suite.security.expect_refused()


@when('"{identity}" calls "{method}" on "{service}" with')
def step_call_as(context: Context, identity: str, method: str, service: str) -> None:
    """Call the method with the docstring's JSON as one of the stack's own identities (its certificate)."""
    context.suite.security.call_as(identity, method, service, json.loads(context.text))


@given('an impostor of "{service}" with the certificate of "{identity}" is registered in Redis')
def step_impostor(context: Context, service: str, identity: str) -> None:
    """Run an approve-all server with that certificate ("self-signed": one no CA issued) and register it as the
    service; the scenario's end removes it."""
    context.suite.security.register_impostor(service, identity)


@then("the impostor received no order")
def step_impostor_idle(context: Context) -> None:
    """Check that the impostor server decided no order at all."""
    context.suite.security.expect_impostor_got_nothing()


@then('the trading engine reports the impostor of "{service}" as rejected')
def step_impostor_reported(context: Context, service: str) -> None:
    """Check that GetStatus lists the impostor's instance among the dependency's rejected instances."""
    context.suite.security.expect_impostor_reported(service)


@when('"{user}" writes an entry of "{victim}" in Redis')
def step_write_as(context: Context, user: str, victim: str) -> None:
    """HSET a key of the victim's registry entries with the Redis credentials of `user`'s service."""
    context.suite.security.write_as(user, victim)


@then("Redis refuses the write")
def step_redis_refused(context: Context) -> None:
    """Check that Redis answered the last write with a permission error."""
    context.suite.security.expect_redis_refused()


@when('the registry entry of "{service}" is deleted')
def step_delete_entry(context: Context, service: str) -> None:
    """Delete the running instance's registry hash and its index member."""
    context.suite.security.delete_entry(service)
