import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ecosystem.api.common.v1 import stats_pb2 as _stats_pb2
from ecosystem.api.risk.v1 import risk_pb2 as _risk_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ACCEPTED: _ClassVar[OrderStatus]
    REJECTED: _ClassVar[OrderStatus]
ORDER_STATUS_UNSPECIFIED: OrderStatus
ACCEPTED: OrderStatus
REJECTED: OrderStatus

class SubmitOrderRequest(_message.Message):
    __slots__ = ("strategy_id", "symbol", "side", "quantity", "price")
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    symbol: str
    side: _risk_pb2.Side
    quantity: float
    price: float
    def __init__(self, strategy_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_risk_pb2.Side, str]] = ..., quantity: _Optional[float] = ..., price: _Optional[float] = ...) -> None: ...

class SubmitOrderResponse(_message.Message):
    __slots__ = ("order_id", "status", "reasons", "limit_utilization", "risk_instance_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    RISK_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    status: OrderStatus
    reasons: _containers.RepeatedScalarFieldContainer[str]
    limit_utilization: float
    risk_instance_id: str
    def __init__(self, order_id: _Optional[str] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., reasons: _Optional[_Iterable[str]] = ..., limit_utilization: _Optional[float] = ..., risk_instance_id: _Optional[str] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class OrderRecord(_message.Message):
    __slots__ = ("order_id", "order", "status", "reasons", "risk_instance_id", "submitted_at")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    RISK_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    order: _risk_pb2.Order
    status: OrderStatus
    reasons: _containers.RepeatedScalarFieldContainer[str]
    risk_instance_id: str
    submitted_at: _timestamp_pb2.Timestamp
    def __init__(self, order_id: _Optional[str] = ..., order: _Optional[_Union[_risk_pb2.Order, _Mapping]] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., reasons: _Optional[_Iterable[str]] = ..., risk_instance_id: _Optional[str] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BreakerStatus(_message.Message):
    __slots__ = ("state", "consecutive_failures", "opened_count", "half_opened_count", "closed_count", "last_transition_at")
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    OPENED_COUNT_FIELD_NUMBER: _ClassVar[int]
    HALF_OPENED_COUNT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_TRANSITION_AT_FIELD_NUMBER: _ClassVar[int]
    state: str
    consecutive_failures: int
    opened_count: int
    half_opened_count: int
    closed_count: int
    last_transition_at: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[str] = ..., consecutive_failures: _Optional[int] = ..., opened_count: _Optional[int] = ..., half_opened_count: _Optional[int] = ..., closed_count: _Optional[int] = ..., last_transition_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DependencyStatus(_message.Message):
    __slots__ = ("service", "endpoints", "source", "breaker", "last_latency_ms", "requests", "failures", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "last_error", "rejected", "retries")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    BREAKER_FIELD_NUMBER: _ClassVar[int]
    LAST_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    P50_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P95_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P99_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    service: str
    endpoints: _containers.RepeatedScalarFieldContainer[str]
    source: str
    breaker: BreakerStatus
    last_latency_ms: float
    requests: int
    failures: int
    p50_latency_ms: float
    p95_latency_ms: float
    p99_latency_ms: float
    last_error: str
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedInstance]
    retries: int
    def __init__(self, service: _Optional[str] = ..., endpoints: _Optional[_Iterable[str]] = ..., source: _Optional[str] = ..., breaker: _Optional[_Union[BreakerStatus, _Mapping]] = ..., last_latency_ms: _Optional[float] = ..., requests: _Optional[int] = ..., failures: _Optional[int] = ..., p50_latency_ms: _Optional[float] = ..., p95_latency_ms: _Optional[float] = ..., p99_latency_ms: _Optional[float] = ..., last_error: _Optional[str] = ..., rejected: _Optional[_Iterable[_Union[RejectedInstance, _Mapping]]] = ..., retries: _Optional[int] = ...) -> None: ...

class RejectedInstance(_message.Message):
    __slots__ = ("instance_id", "endpoint", "reason")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    endpoint: str
    reason: str
    def __init__(self, instance_id: _Optional[str] = ..., endpoint: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EngineStatus(_message.Message):
    __slots__ = ("instance_id", "dependencies", "config_cache", "active_scenarios", "orders_accepted", "orders_rejected")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    CONFIG_CACHE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_SCENARIOS_FIELD_NUMBER: _ClassVar[int]
    ORDERS_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ORDERS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    dependencies: _containers.RepeatedCompositeFieldContainer[DependencyStatus]
    config_cache: _stats_pb2.ConfigCacheStats
    active_scenarios: _containers.RepeatedScalarFieldContainer[str]
    orders_accepted: int
    orders_rejected: int
    def __init__(self, instance_id: _Optional[str] = ..., dependencies: _Optional[_Iterable[_Union[DependencyStatus, _Mapping]]] = ..., config_cache: _Optional[_Union[_stats_pb2.ConfigCacheStats, _Mapping]] = ..., active_scenarios: _Optional[_Iterable[str]] = ..., orders_accepted: _Optional[int] = ..., orders_rejected: _Optional[int] = ...) -> None: ...
