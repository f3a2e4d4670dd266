import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetPerformanceStatsRequest(_message.Message):
    __slots__ = ("method_prefix",)
    METHOD_PREFIX_FIELD_NUMBER: _ClassVar[int]
    method_prefix: str
    def __init__(self, method_prefix: _Optional[str] = ...) -> None: ...

class OperationStats(_message.Message):
    __slots__ = ("operation", "total_requests", "successful_requests", "failed_requests", "average_latency_ms", "min_latency_ms", "max_latency_ms", "p95_latency_ms", "p99_latency_ms", "requests_per_second", "error_rate", "health", "in_flight")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    MIN_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P95_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P99_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    operation: str
    total_requests: int
    successful_requests: int
    failed_requests: int
    average_latency_ms: float
    min_latency_ms: float
    max_latency_ms: float
    p95_latency_ms: float
    p99_latency_ms: float
    requests_per_second: float
    error_rate: float
    health: str
    in_flight: int
    def __init__(self, operation: _Optional[str] = ..., total_requests: _Optional[int] = ..., successful_requests: _Optional[int] = ..., failed_requests: _Optional[int] = ..., average_latency_ms: _Optional[float] = ..., min_latency_ms: _Optional[float] = ..., max_latency_ms: _Optional[float] = ..., p95_latency_ms: _Optional[float] = ..., p99_latency_ms: _Optional[float] = ..., requests_per_second: _Optional[float] = ..., error_rate: _Optional[float] = ..., health: _Optional[str] = ..., in_flight: _Optional[int] = ...) -> None: ...

class PerformanceStats(_message.Message):
    __slots__ = ("service", "instance_id", "collected_at", "operations", "health", "config_cache")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTED_AT_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    CONFIG_CACHE_FIELD_NUMBER: _ClassVar[int]
    service: str
    instance_id: str
    collected_at: _timestamp_pb2.Timestamp
    operations: _containers.RepeatedCompositeFieldContainer[OperationStats]
    health: str
    config_cache: ConfigCacheStats
    def __init__(self, service: _Optional[str] = ..., instance_id: _Optional[str] = ..., collected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., operations: _Optional[_Iterable[_Union[OperationStats, _Mapping]]] = ..., health: _Optional[str] = ..., config_cache: _Optional[_Union[ConfigCacheStats, _Mapping]] = ...) -> None: ...

class ConfigCacheStats(_message.Message):
    __slots__ = ("cache_size", "cache_hits", "cache_misses", "hit_rate", "total_requests", "stale_served", "fetches", "watching", "watch_connects")
    CACHE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    CACHE_MISSES_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    STALE_SERVED_FIELD_NUMBER: _ClassVar[int]
    FETCHES_FIELD_NUMBER: _ClassVar[int]
    WATCHING_FIELD_NUMBER: _ClassVar[int]
    WATCH_CONNECTS_FIELD_NUMBER: _ClassVar[int]
    cache_size: int
    cache_hits: int
    cache_misses: int
    hit_rate: float
    total_requests: int
    stale_served: int
    fetches: int
    watching: bool
    watch_connects: int
    def __init__(self, cache_size: _Optional[int] = ..., cache_hits: _Optional[int] = ..., cache_misses: _Optional[int] = ..., hit_rate: _Optional[float] = ..., total_requests: _Optional[int] = ..., stale_served: _Optional[int] = ..., fetches: _Optional[int] = ..., watching: _Optional[bool] = ..., watch_connects: _Optional[int] = ...) -> None: ...
