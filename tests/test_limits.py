"""ecosystem.limits: a field over its limit is found in every request the services accept, however small the
rest of the request (`request_problem` skips messages smaller than the smallest limit their type holds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ecosystem.api.common.v1 import stats_pb2
from ecosystem.api.config.v1 import config_pb2
from ecosystem.api.coordinator.v1 import coordinator_pb2
from ecosystem.api.risk.v1 import risk_pb2
from ecosystem.api.trading.v1 import trading_pb2
from ecosystem.limits import declared_limit, request_problem
from ecosystem.names import GRPC_SERVICES, STATS_SERVICE

FILES = (stats_pb2, config_pb2, coordinator_pb2, risk_pb2, trading_pb2)


def request_types() -> list[Descriptor]:
    services = {*GRPC_SERVICES.values(), STATS_SERVICE}
    found = {
        method.input_type.full_name: method.input_type
        for module in FILES
        for service in module.DESCRIPTOR.services_by_name.values()
        if service.full_name in services
        for method in service.methods
    }
    return [found[name] for name in sorted(found)]


Path = tuple[FieldDescriptor, ...]


def limited_fields(descriptor: Descriptor, path: Path = ()) -> Iterator[Path]:
    """Paths to every text field and repeated field of `descriptor`, through singular message fields."""
    for field in descriptor.fields:
        if field.is_repeated or field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
            yield (*path, field)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and len(path) < 3:
            yield from limited_fields(field.message_type, (*path, field))


def with_field_over(descriptor: Descriptor, path: Path, by: int) -> Message:
    """A request of `descriptor`'s type holding only the field at `path`, `by` characters or entries over its limit."""
    request = message_factory.GetMessageClass(descriptor)()
    holder = request
    for field in path[:-1]:
        holder = getattr(holder, field.name)
    field = path[-1]
    limit = declared_limit(field.full_name, repeated=field.is_repeated)
    size = limit + by
    if not field.is_repeated:
        setattr(holder, field.name, "x" * size if field.type == FieldDescriptor.TYPE_STRING else b"x" * size)
    elif field.message_type is not None and field.message_type.GetOptions().map_entry:
        getattr(holder, field.name).update({str(index): "" for index in range(size)})  # every map is string -> string
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        for _ in range(size):
            getattr(holder, field.name).add()
    else:
        getattr(holder, field.name).extend([""] * size)  # every other repeated field holds strings
    return request


CASES = [
    pytest.param(descriptor, path, id=".".join([descriptor.name, *(field.name for field in path)]))
    for descriptor in request_types()
    for path in limited_fields(descriptor)
]


@pytest.mark.parametrize(("descriptor", "path"), CASES)
def test_a_field_one_over_its_limit_is_named_and_one_at_it_passes(descriptor: Descriptor, path: Path) -> None:
    name = ".".join(field.name for field in path)

    problem = request_problem(with_field_over(descriptor, path, 1))

    assert problem is not None and problem.startswith(name), f"{descriptor.name}.{name} over its limit: {problem}"
    assert request_problem(with_field_over(descriptor, path, 0)) is None
