"""The registry as the suite sees it in Redis, and as the trading engine reports using it."""

from __future__ import annotations

import ipaddress

from behave import given, then, when
from behave.runner import Context
from hamcrest import assert_that, equal_to, has_item, is_not

from acceptance.hooks import add_cleanup
from acceptance.waits import wait_until
from ecosystem.names import ALL_SERVICES, TRADING_SYSTEM_ENGINE

# The resolver notices an unreachable registry on its next read: a watch round trip.
REGISTRY_READ_TIMEOUT_S = 5.0


def routable(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return bool(host)  # a name: the container's, resolvable on the stack's network


def breaks_the_stack(context: Context) -> None:
    add_cleanup(context, context.ecosystem.recover)


@then("every service is registered with a routable endpoint and a version")
def step_registered(context: Context) -> None:
    for service in ALL_SERVICES:
        instances = context.ecosystem.registered(service)
        assert instances, f"{service} is not in the registry: {context.ecosystem.registry_snapshot()}"
        for instance in instances:
            assert routable(instance.host), f"{service} registered an unroutable host {instance.host!r}"
            assert 0 < instance.port < 65536, f"{service} registered port {instance.port!r}"
            assert instance.version, f"{service} registered no version"


@then('the trading engine finds "{service}" at its registered endpoint, from the registry')
def step_engine_finds(context: Context, service: str) -> None:
    dependency = context.ecosystem.dependency(service)
    registered = sorted(i.endpoint for i in context.ecosystem.registered(service))
    assert_that(dependency["source"], equal_to("registry"))
    assert_that(sorted(dependency["endpoints"]), equal_to(registered))


@then('the trading engine finds "{service}" from its cache')
def step_engine_finds_cached(context: Context, service: str) -> None:
    wait_until(
        lambda: context.ecosystem.dependency(service)["source"],
        lambda source: source == "cache",
        timeout=REGISTRY_READ_TIMEOUT_S,
        what=f"trading-system-engine reports {service} found from its cache while Redis is down",
    )


@given('{count:d} instances of "{service}" are running')
def step_scaled(context: Context, count: int, service: str) -> None:
    breaks_the_stack(context)
    instance_ids = {h.instance_id for h in context.stack.scale(service, count)}
    wanted = {i.endpoint for i in context.ecosystem.registered(service) if i.instance_id in instance_ids}
    wait_until(
        lambda: set(context.ecosystem.dependency(service)["endpoints"]),
        lambda seen: seen == wanted and len(wanted) == count,
        timeout=5,
        what=f"{TRADING_SYSTEM_ENGINE} knows all {count} instances of {service}",
    )


@then('every "{service}" instance decided at least one of them')
def step_every_instance_decided(context: Context, service: str) -> None:
    deciders = {r.body["risk_instance_id"] for r in context.results}
    for handle in context.stack.instances(service):
        assert_that(deciders, has_item(handle.instance_id), f"instances that decided: {deciders}")


@when('instance {number:d} of "{service}" is stopped gracefully')
def step_stop_instance(context: Context, number: int, service: str) -> None:
    breaks_the_stack(context)
    context.gone = context.stack.instances(service)[number - 1]
    context.stack.stop_service(service, context.gone.index)


@when('instance {number:d} of "{service}" is killed')
def step_kill_instance(context: Context, number: int, service: str) -> None:
    breaks_the_stack(context)
    context.gone = context.stack.instances(service)[number - 1]
    context.ttl_s = context.ecosystem.registry_ttl_s(service)
    context.stack.kill_service(service, context.gone.index)


@then('instance {number:d} of "{service}" is no longer in the registry')
def step_not_registered(context: Context, number: int, service: str) -> None:
    entries = context.ecosystem.registry_snapshot().get(service, [])
    assert_that(
        [entry["instance_id"] for entry in entries],
        is_not(has_item(context.gone.instance_id)),
        f"the entry of the stopped instance, whatever its status, is deleted before its process exits: {entries}",
    )


@then('instance {number:d} of "{service}" leaves the registry within the registry TTL')
def step_expires(context: Context, number: int, service: str) -> None:
    context.ecosystem.wait_expired(service, context.gone.instance_id, context.ttl_s, "killed")


@given('"{service}" is restarted')
@when('"{service}" is restarted')
def step_restart(context: Context, service: str) -> None:
    breaks_the_stack(context)
    context.stack.stop_service(service)
    context.restarted = context.stack.start_service(service)


@then("within {seconds:d} seconds the trading engine's orders are decided by the new \"{service}\" instance")
def step_new_instance_used(context: Context, seconds: int, service: str) -> None:
    wait_until(
        lambda: context.ecosystem.submit_order(1, "BTC-USD", 100),
        lambda r: r.ok and r.body["risk_instance_id"] == context.restarted.instance_id,
        timeout=seconds,
        what=f"an order is decided by the restarted {service} instance {context.restarted.instance_id}",
    )


@when("the registry's Redis is flushed")
def step_flush(context: Context) -> None:
    breaks_the_stack(context)
    context.ttl_s = context.ecosystem.registry_ttl_s(*ALL_SERVICES)
    context.stack.flush_redis()


@when("the registry's Redis is restarted")
def step_restart_redis(context: Context) -> None:
    breaks_the_stack(context)
    context.ttl_s = context.ecosystem.registry_ttl_s(*ALL_SERVICES)
    context.stack.stop_redis()
    context.stack.start_redis()


@when("the registry's Redis is stopped")
def step_stop_redis(context: Context) -> None:
    breaks_the_stack(context)
    context.stack.stop_redis()


@then("every service is registered again within one heartbeat")
def step_registered_again(context: Context) -> None:
    context.ecosystem.wait_all_registered(timeout_s=context.ttl_s / 3)
