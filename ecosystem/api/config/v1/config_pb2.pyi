import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ValueType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALUE_TYPE_UNSPECIFIED: _ClassVar[ValueType]
    VALUE_TYPE_STRING: _ClassVar[ValueType]
    VALUE_TYPE_NUMBER: _ClassVar[ValueType]
    VALUE_TYPE_BOOLEAN: _ClassVar[ValueType]
    VALUE_TYPE_JSON: _ClassVar[ValueType]
VALUE_TYPE_UNSPECIFIED: ValueType
VALUE_TYPE_STRING: ValueType
VALUE_TYPE_NUMBER: ValueType
VALUE_TYPE_BOOLEAN: ValueType
VALUE_TYPE_JSON: ValueType

class Configuration(_message.Message):
    __slots__ = ("key", "value", "type", "environment", "version", "updated_at")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    type: ValueType
    environment: str
    version: int
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ..., type: _Optional[_Union[ValueType, str]] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetConfigurationRequest(_message.Message):
    __slots__ = ("key", "environment")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    key: str
    environment: str
    def __init__(self, key: _Optional[str] = ..., environment: _Optional[str] = ...) -> None: ...

class GetConfigurationsRequest(_message.Message):
    __slots__ = ("keys", "environment")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    environment: str
    def __init__(self, keys: _Optional[_Iterable[str]] = ..., environment: _Optional[str] = ...) -> None: ...

class GetConfigurationsResponse(_message.Message):
    __slots__ = ("configurations",)
    CONFIGURATIONS_FIELD_NUMBER: _ClassVar[int]
    configurations: _containers.RepeatedCompositeFieldContainer[Configuration]
    def __init__(self, configurations: _Optional[_Iterable[_Union[Configuration, _Mapping]]] = ...) -> None: ...

class ListConfigurationsRequest(_message.Message):
    __slots__ = ("prefix", "environment")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    environment: str
    def __init__(self, prefix: _Optional[str] = ..., environment: _Optional[str] = ...) -> None: ...

class ListConfigurationsResponse(_message.Message):
    __slots__ = ("configurations",)
    CONFIGURATIONS_FIELD_NUMBER: _ClassVar[int]
    configurations: _containers.RepeatedCompositeFieldContainer[Configuration]
    def __init__(self, configurations: _Optional[_Iterable[_Union[Configuration, _Mapping]]] = ...) -> None: ...

class SetConfigurationRequest(_message.Message):
    __slots__ = ("key", "value", "type", "environment")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    type: ValueType
    environment: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ..., type: _Optional[_Union[ValueType, str]] = ..., environment: _Optional[str] = ...) -> None: ...

class WatchConfigurationRequest(_message.Message):
    __slots__ = ("prefix", "environment")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    environment: str
    def __init__(self, prefix: _Optional[str] = ..., environment: _Optional[str] = ...) -> None: ...

class ConfigurationChange(_message.Message):
    __slots__ = ("configuration",)
    CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    configuration: Configuration
    def __init__(self, configuration: _Optional[_Union[Configuration, _Mapping]] = ...) -> None: ...
