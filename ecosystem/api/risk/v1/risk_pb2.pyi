import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Side(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_UNSPECIFIED: _ClassVar[Side]
    SIDE_BUY: _ClassVar[Side]
    SIDE_SELL: _ClassVar[Side]

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_APPROVED: _ClassVar[Decision]
    DECISION_REJECTED: _ClassVar[Decision]
SIDE_UNSPECIFIED: Side
SIDE_BUY: Side
SIDE_SELL: Side
DECISION_UNSPECIFIED: Decision
DECISION_APPROVED: Decision
DECISION_REJECTED: Decision

class Order(_message.Message):
    __slots__ = ("order_id", "strategy_id", "symbol", "side", "quantity", "price")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    strategy_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    def __init__(self, order_id: _Optional[str] = ..., strategy_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[Side, str]] = ..., quantity: _Optional[float] = ..., price: _Optional[float] = ...) -> None: ...

class CheckOrderRequest(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class CheckOrderResponse(_message.Message):
    __slots__ = ("decision", "reasons", "limit_utilization", "instance_id")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    reasons: _containers.RepeatedScalarFieldContainer[str]
    limit_utilization: float
    instance_id: str
    def __init__(self, decision: _Optional[_Union[Decision, str]] = ..., reasons: _Optional[_Iterable[str]] = ..., limit_utilization: _Optional[float] = ..., instance_id: _Optional[str] = ...) -> None: ...

class StrategyStatus(_message.Message):
    __slots__ = ("strategy_id", "status", "reported_at")
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    status: str
    reported_at: _timestamp_pb2.Timestamp
    def __init__(self, strategy_id: _Optional[str] = ..., status: _Optional[str] = ..., reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReportStrategyStatusResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    def __init__(self, accepted: _Optional[bool] = ...) -> None: ...

class GetRiskMetricsRequest(_message.Message):
    __slots__ = ("strategy_id",)
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    def __init__(self, strategy_id: _Optional[str] = ...) -> None: ...

class RiskMetrics(_message.Message):
    __slots__ = ("strategy_id", "gross_exposure", "net_exposure", "approved_orders", "rejected_orders", "last_status")
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    GROSS_EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    NET_EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    APPROVED_ORDERS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_ORDERS_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    gross_exposure: float
    net_exposure: float
    approved_orders: int
    rejected_orders: int
    last_status: str
    def __init__(self, strategy_id: _Optional[str] = ..., gross_exposure: _Optional[float] = ..., net_exposure: _Optional[float] = ..., approved_orders: _Optional[int] = ..., rejected_orders: _Optional[int] = ..., last_status: _Optional[str] = ...) -> None: ...

class StreamRiskAlertsRequest(_message.Message):
    __slots__ = ("strategy_id",)
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    def __init__(self, strategy_id: _Optional[str] = ...) -> None: ...

class RiskAlert(_message.Message):
    __slots__ = ("alert_id", "strategy_id", "order_id", "limit", "limit_value", "observed", "message", "raised_at")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_VALUE_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RAISED_AT_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    strategy_id: str
    order_id: str
    limit: str
    limit_value: float
    observed: float
    message: str
    raised_at: _timestamp_pb2.Timestamp
    def __init__(self, alert_id: _Optional[str] = ..., strategy_id: _Optional[str] = ..., order_id: _Optional[str] = ..., limit: _Optional[str] = ..., limit_value: _Optional[float] = ..., observed: _Optional[float] = ..., message: _Optional[str] = ..., raised_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
