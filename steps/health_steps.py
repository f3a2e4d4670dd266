from __future__ import annotations

from behave import then, when
from behave.runner import Context
from hamcrest import assert_that, equal_to, has_item


@then('"{service}" reports SERVING for "{grpc_service}"')
def step_serving(context: Context, service: str, grpc_service: str) -> None:
    result = context.ecosystem.health(service, grpc_service)
    assert result.ok, result.describe()
    assert_that(result.body["status"], equal_to("SERVING"), f"health of {grpc_service} on {service}")


@when('I ask "{service}" for the health of "{grpc_service}"')
def step_ask_health(context: Context, service: str, grpc_service: str) -> None:
    context.result = context.ecosystem.health(service, grpc_service)


@then('reflection on "{service}" lists "{grpc_service}"')
def step_reflection_lists(context: Context, service: str, grpc_service: str) -> None:
    listed = context.ecosystem.rpc.reflected_services(context.stack.endpoint(service))
    assert_that(listed, has_item(grpc_service), f"services listed by reflection on {service}")
