"""Size limits on every request the services accept, checked before any handler runs.

Without them a service keeps what a client sends: a 1 MB strategy id is stored with every exposure and
alert, a scenario with 100k parameters lives as long as the coordinator. Each string or bytes field may
hold `MAX_TEXT` characters (bytes), each repeated or map field `MAX_ENTRIES` entries, unless `FIELD_LIMITS`
names the field (by its full protobuf name, e.g. `ecosystem.config.v1.SetConfigurationRequest.value`).
The whole message is also capped by the server's `grpc.max_receive_message_length` (`MAX_REQUEST_BYTES`),
which gRPC answers with RESOURCE_EXHAUSTED before the message is parsed.

    problem = request_problem(request)   # None, or "strategy_id has 300 characters; the limit is 128"
"""

from __future__ import annotations

import functools
import math
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

MAX_REQUEST_BYTES = 256 * 1024
MAX_TEXT = 128
MAX_ENTRIES = 64
FIELD_LIMITS: dict[str, int] = {
    # Configuration values are documents (JSON lists of symbols, limits); keys stay short dotted names.
    "ecosystem.config.v1.SetConfigurationRequest.value": 64 * 1024,
    "ecosystem.config.v1.GetConfigurationsRequest.keys": 256,
    # Free text a person reads: why an order failed, why a fault could not be applied.
    "ecosystem.coordinator.v1.ScenarioOutcome.detail": 1024,
    "ecosystem.coordinator.v1.ReportChaosEventRequest.detail": 1024,
}
# Requests nest a few levels (an order in a check); deeper nesting is not a request of ours.
MAX_DEPTH = 8

_STRING, _BYTES, _MESSAGE = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_MESSAGE


def request_problem(message: Message) -> str | None:
    """The first field of `message` over its limit, named with its path and the limit; None when all fit."""
    # Every character, byte or entry takes at least a byte on the wire, so no field of a message can be over a
    # limit larger than the whole message: most requests are far below the smallest limit their type holds.
    if message.ByteSize() <= _smallest_limit(message.DESCRIPTOR):
        return None
    return _message_problem(message, "", 0)


def declared_limit(full_name: str, *, repeated: bool = False) -> int:
    """The limit of the field `full_name`: characters (bytes) for text, entries for repeated and map fields."""
    return FIELD_LIMITS.get(full_name, MAX_ENTRIES if repeated else MAX_TEXT)


def limit_of(field: FieldDescriptor) -> int:
    return declared_limit(field.full_name, repeated=field.is_repeated)


@functools.cache
def _smallest_limit(descriptor: Descriptor, depth: int = 0, within: frozenset[str] = frozenset()) -> float:
    """The smallest limit on any field a message of this type holds, at any depth; 0 for a type that may nest
    deeper than MAX_DEPTH (a recursive one), which is always checked field by field."""
    if depth > MAX_DEPTH or descriptor.full_name in within:
        return 0
    within = within | {descriptor.full_name}
    limits: list[float] = [math.inf]
    for field in descriptor.fields:
        item = field
        if field.is_repeated:
            limits.append(limit_of(field))
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                limits.append(MAX_TEXT)  # map keys and values are held to MAX_TEXT
                item = field.message_type.fields_by_name["value"]
        if item.type in (_STRING, _BYTES):
            limits.append(MAX_TEXT if field.is_repeated else limit_of(field))
        elif item.type == _MESSAGE:
            limits.append(_smallest_limit(item.message_type, depth + 1, within))
    return min(limits)


def _message_problem(message: Message, prefix: str, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        return f"{prefix.rstrip('.') or 'the request'} nests more than {MAX_DEPTH} messages deep"
    for field, value in message.ListFields():
        path = prefix + field.name
        if not field.is_repeated:
            problem = _value_problem(field.type, limit_of(field), value, path, depth)
        elif len(value) > limit_of(field):
            problem = f"{path} has {len(value)} entries; the limit is {limit_of(field)}"
        elif field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_type, value_type = (field.message_type.fields_by_name[name].type for name in ("key", "value"))
            problem = next(
                (
                    found
                    for key, item in value.items()
                    if (found := _value_problem(key_type, MAX_TEXT, key, f"{path} key {str(key)[:32]!r}", depth)
                        or _value_problem(value_type, MAX_TEXT, item, f"{path}[{str(key)[:32]!r}]", depth))
                ),
                None,
            )
        else:
            problem = next(
                (
                    found
                    for index, item in enumerate(value)
                    if (found := _value_problem(field.type, MAX_TEXT, item, f"{path}[{index}]", depth))
                ),
                None,
            )
        if problem is not None:
            return problem
    return None


def _value_problem(kind: int, text_limit: int, value: Any, path: str, depth: int) -> str | None:
    if kind in (_STRING, _BYTES) and len(value) > text_limit:
        unit = "characters" if kind == _STRING else "bytes"
        return f"{path} has {len(value)} {unit}; the limit is {text_limit}"
    if kind == _MESSAGE:
        return _message_problem(value, path + ".", depth + 1)
    return None
