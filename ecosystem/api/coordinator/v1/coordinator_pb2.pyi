import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScenarioStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCENARIO_STATUS_UNSPECIFIED: _ClassVar[ScenarioStatus]
    SCENARIO_STATUS_ACTIVE: _ClassVar[ScenarioStatus]
    SCENARIO_STATUS_COMPLETED: _ClassVar[ScenarioStatus]

class ChaosEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAOS_EVENT_TYPE_UNSPECIFIED: _ClassVar[ChaosEventType]
    SERVICE_RESTART: _ClassVar[ChaosEventType]
    SERVICE_KILL: _ClassVar[ChaosEventType]
    NETWORK_PARTITION: _ClassVar[ChaosEventType]
    NETWORK_LATENCY: _ClassVar[ChaosEventType]
    NETWORK_PACKET_LOSS: _ClassVar[ChaosEventType]
    CPU_STRESS: _ClassVar[ChaosEventType]
    MEMORY_STRESS: _ClassVar[ChaosEventType]
    DISK_IO_STRESS: _ClassVar[ChaosEventType]
    CLOCK_SKEW: _ClassVar[ChaosEventType]
    ERROR_INJECTION: _ClassVar[ChaosEventType]

class ChaosEventStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAOS_EVENT_STATUS_UNSPECIFIED: _ClassVar[ChaosEventStatus]
    PENDING: _ClassVar[ChaosEventStatus]
    INJECTED: _ClassVar[ChaosEventStatus]
    IN_PROGRESS: _ClassVar[ChaosEventStatus]
    RECOVERED: _ClassVar[ChaosEventStatus]
    FAILED: _ClassVar[ChaosEventStatus]
SCENARIO_STATUS_UNSPECIFIED: ScenarioStatus
SCENARIO_STATUS_ACTIVE: ScenarioStatus
SCENARIO_STATUS_COMPLETED: ScenarioStatus
CHAOS_EVENT_TYPE_UNSPECIFIED: ChaosEventType
SERVICE_RESTART: ChaosEventType
SERVICE_KILL: ChaosEventType
NETWORK_PARTITION: ChaosEventType
NETWORK_LATENCY: ChaosEventType
NETWORK_PACKET_LOSS: ChaosEventType
CPU_STRESS: ChaosEventType
MEMORY_STRESS: ChaosEventType
DISK_IO_STRESS: ChaosEventType
CLOCK_SKEW: ChaosEventType
ERROR_INJECTION: ChaosEventType
CHAOS_EVENT_STATUS_UNSPECIFIED: ChaosEventStatus
PENDING: ChaosEventStatus
INJECTED: ChaosEventStatus
IN_PROGRESS: ChaosEventStatus
RECOVERED: ChaosEventStatus
FAILED: ChaosEventStatus

class ScenarioOutcome(_message.Message):
    __slots__ = ("service", "order_id", "outcome", "detail", "recorded_at")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    service: str
    order_id: str
    outcome: str
    detail: str
    recorded_at: _timestamp_pb2.Timestamp
    def __init__(self, service: _Optional[str] = ..., order_id: _Optional[str] = ..., outcome: _Optional[str] = ..., detail: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Scenario(_message.Message):
    __slots__ = ("scenario_id", "name", "status", "parameters", "started_at", "completed_at", "outcomes", "outcome_counts")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class OutcomeCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_COUNTS_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    name: str
    status: ScenarioStatus
    parameters: _containers.ScalarMap[str, str]
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    outcomes: _containers.RepeatedCompositeFieldContainer[ScenarioOutcome]
    outcome_counts: _containers.ScalarMap[str, int]
    def __init__(self, scenario_id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[_Union[ScenarioStatus, str]] = ..., parameters: _Optional[_Mapping[str, str]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcomes: _Optional[_Iterable[_Union[ScenarioOutcome, _Mapping]]] = ..., outcome_counts: _Optional[_Mapping[str, int]] = ...) -> None: ...

class StartScenarioRequest(_message.Message):
    __slots__ = ("name", "parameters")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    parameters: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetScenarioRequest(_message.Message):
    __slots__ = ("scenario_id",)
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    def __init__(self, scenario_id: _Optional[str] = ...) -> None: ...

class ListActiveScenariosRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListActiveScenariosResponse(_message.Message):
    __slots__ = ("scenarios",)
    SCENARIOS_FIELD_NUMBER: _ClassVar[int]
    scenarios: _containers.RepeatedCompositeFieldContainer[Scenario]
    def __init__(self, scenarios: _Optional[_Iterable[_Union[Scenario, _Mapping]]] = ...) -> None: ...

class CompleteScenarioRequest(_message.Message):
    __slots__ = ("scenario_id",)
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    def __init__(self, scenario_id: _Optional[str] = ...) -> None: ...

class RecordOutcomeRequest(_message.Message):
    __slots__ = ("scenario_ids", "outcome")
    SCENARIO_IDS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    scenario_ids: _containers.RepeatedScalarFieldContainer[str]
    outcome: ScenarioOutcome
    def __init__(self, scenario_ids: _Optional[_Iterable[str]] = ..., outcome: _Optional[_Union[ScenarioOutcome, _Mapping]] = ...) -> None: ...

class RecordOutcomeResponse(_message.Message):
    __slots__ = ("recorded", "not_recorded")
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    NOT_RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: _containers.RepeatedScalarFieldContainer[str]
    not_recorded: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, recorded: _Optional[_Iterable[str]] = ..., not_recorded: _Optional[_Iterable[str]] = ...) -> None: ...

class ChaosEvent(_message.Message):
    __slots__ = ("event_id", "event_type", "target_service", "parameters", "injected_at", "duration_ms", "status", "recovery_time_ms", "created_at", "recovered_at", "acknowledged_by", "detail")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_SERVICE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    INJECTED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_AT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_BY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_type: ChaosEventType
    target_service: str
    parameters: _containers.ScalarMap[str, str]
    injected_at: _timestamp_pb2.Timestamp
    duration_ms: int
    status: ChaosEventStatus
    recovery_time_ms: int
    created_at: _timestamp_pb2.Timestamp
    recovered_at: _timestamp_pb2.Timestamp
    acknowledged_by: _containers.RepeatedScalarFieldContainer[str]
    detail: str
    def __init__(self, event_id: _Optional[str] = ..., event_type: _Optional[_Union[ChaosEventType, str]] = ..., target_service: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., injected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_ms: _Optional[int] = ..., status: _Optional[_Union[ChaosEventStatus, str]] = ..., recovery_time_ms: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recovered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged_by: _Optional[_Iterable[str]] = ..., detail: _Optional[str] = ...) -> None: ...

class InjectChaosRequest(_message.Message):
    __slots__ = ("event_type", "target_service", "parameters", "duration_ms")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_SERVICE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    event_type: ChaosEventType
    target_service: str
    parameters: _containers.ScalarMap[str, str]
    duration_ms: int
    def __init__(self, event_type: _Optional[_Union[ChaosEventType, str]] = ..., target_service: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class GetChaosEventRequest(_message.Message):
    __slots__ = ("event_id",)
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    def __init__(self, event_id: _Optional[str] = ...) -> None: ...

class ListChaosEventsRequest(_message.Message):
    __slots__ = ("target_service",)
    TARGET_SERVICE_FIELD_NUMBER: _ClassVar[int]
    target_service: str
    def __init__(self, target_service: _Optional[str] = ...) -> None: ...

class ListChaosEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[ChaosEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[ChaosEvent, _Mapping]]] = ...) -> None: ...

class ReportChaosEventRequest(_message.Message):
    __slots__ = ("event_id", "status", "instance_id", "detail")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    status: ChaosEventStatus
    instance_id: str
    detail: str
    def __init__(self, event_id: _Optional[str] = ..., status: _Optional[_Union[ChaosEventStatus, str]] = ..., instance_id: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class EndChaosEventRequest(_message.Message):
    __slots__ = ("event_id",)
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    def __init__(self, event_id: _Optional[str] = ...) -> None: ...

class WatchControlEventsRequest(_message.Message):
    __slots__ = ("service", "instance_id")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    service: str
    instance_id: str
    def __init__(self, service: _Optional[str] = ..., instance_id: _Optional[str] = ...) -> None: ...

class ControlEvent(_message.Message):
    __slots__ = ("chaos", "scenario")
    CHAOS_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    chaos: ChaosEvent
    scenario: Scenario
    def __init__(self, chaos: _Optional[_Union[ChaosEvent, _Mapping]] = ..., scenario: _Optional[_Union[Scenario, _Mapping]] = ...) -> None: ...
