"""Network partitions: a service's container cut off from the stack's network, then connected again."""

from __future__ import annotations

from behave import given, then, when
from behave.runner import Context

from acceptance.hooks import add_cleanup
from acceptance.waits import wait_until


@given('the "{service}" instance is cut off from the network')
def step_partitioned(context: Context, service: str) -> None:
    add_cleanup(context, context.ecosystem.recover)
    context.gone = context.stack.instances(service)[0]
    context.ttl_s = context.ecosystem.registry_ttl_s(service)
    context.stack.partition_service(service, context.gone.index)


@when('the "{service}" instance is connected to the network again')
def step_healed(context: Context, service: str) -> None:
    context.stack.heal_partition(service, context.gone.index)


@then('the "{service}" instance leaves the registry within the registry TTL')
def step_leaves_registry(context: Context, service: str) -> None:
    context.ecosystem.wait_expired(service, context.gone.instance_id, context.ttl_s, "partitioned")


@then('within {seconds:d} seconds the trading engine no longer finds "{service}"')
def step_engine_forgets(context: Context, seconds: int, service: str) -> None:
    wait_until(
        lambda: context.ecosystem.dependency(service)["endpoints"],
        lambda endpoints: not endpoints,
        timeout=seconds,
        what=f"trading-system-engine lists no endpoint of {service}",
    )
