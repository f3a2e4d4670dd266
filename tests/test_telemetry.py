"""Tracing across real grpc.aio servers on loopback, exported over OTLP/gRPC to the suite's receiver.

Three tiny services stand in for the real ones, each with its own Tracing: trading-system-engine's
SubmitOrder calls risk-monitor's CheckOrder, which calls configuration-service's GetConfiguration.
The services sample new traces at the default ratio (or at none, or only past the engine); a caller outside
them traces every call. Their channels to each other are opened as those of a service that traces
(`TRACING_CHANNEL_OPTIONS`).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from acceptance.otlp_receiver import OtlpReceiver, ReceivedSpan
from acceptance.waits import wait_until_async
from ecosystem.api.config.v1 import config_pb2, config_pb2_grpc
from ecosystem.api.risk.v1 import risk_pb2, risk_pb2_grpc
from ecosystem.api.trading.v1 import trading_pb2, trading_pb2_grpc
from ecosystem.names import CONFIGURATION_SERVICE, RISK_MONITOR, TRADING_SYSTEM_ENGINE
from ecosystem.settings import DEFAULT_TRACE_SAMPLE_RATIO, Settings
from ecosystem.telemetry import TRACING_CHANNEL_OPTIONS, TracedChannel, Tracing, setup_tracing

LIMIT_KEY = "risk.position_limits.max_notional"
CRASH_KEY = "risk.crash"
SPAN_WAIT_S = 10.0
CALL_TIMEOUT_S = 5.0

SUBMIT_ORDER = "ecosystem.trading.v1.TradingEngineService/SubmitOrder"
CHECK_ORDER = "ecosystem.risk.v1.RiskMonitorService/CheckOrder"
GET_CONFIGURATION = "ecosystem.config.v1.ConfigurationService/GetConfiguration"
WATCH_CONFIGURATION = "ecosystem.config.v1.ConfigurationService/WatchConfiguration"


class Configuration(config_pb2_grpc.ConfigurationServiceServicer):
    def __init__(self) -> None:
        # What each GetConfiguration arrived with, "" for none.
        self.traceparents: list[str] = []
        self.tracestates: list[str] = []

    async def GetConfiguration(self, request: config_pb2.GetConfigurationRequest, context: Any) -> Any:
        metadata = dict(context.invocation_metadata())
        self.traceparents.append(metadata.get("traceparent", ""))
        self.tracestates.append(metadata.get("tracestate", ""))
        if request.key == CRASH_KEY:
            raise RuntimeError("a bug in the handler")
        if request.key != LIMIT_KEY:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Configuration not found: {request.key}")
        return _limit(request.environment, version=1)

    async def WatchConfiguration(self, request: config_pb2.WatchConfigurationRequest, context: Any) -> Any:
        for version in (1, 2):
            yield config_pb2.ConfigurationChange(configuration=_limit(request.environment, version))


class RiskMonitor(risk_pb2_grpc.RiskMonitorServiceServicer):
    def __init__(self, config: config_pb2_grpc.ConfigurationServiceStub) -> None:
        self._config = config

    async def CheckOrder(self, request: risk_pb2.CheckOrderRequest, context: Any) -> Any:
        limit = await self._config.GetConfiguration(
            config_pb2.GetConfigurationRequest(key=LIMIT_KEY, environment="testing"), timeout=CALL_TIMEOUT_S
        )
        utilization = request.order.quantity * request.order.price / float(limit.value)
        decision = risk_pb2.DECISION_APPROVED if utilization <= 1 else risk_pb2.DECISION_REJECTED
        return risk_pb2.CheckOrderResponse(decision=decision, limit_utilization=utilization)


class TradingEngine(trading_pb2_grpc.TradingEngineServiceServicer):
    def __init__(self, risk: risk_pb2_grpc.RiskMonitorServiceStub) -> None:
        self._risk = risk

    async def SubmitOrder(self, request: trading_pb2.SubmitOrderRequest, context: Any) -> Any:
        order = risk_pb2.Order(
            order_id="order-1", symbol=request.symbol, side=request.side, quantity=request.quantity, price=request.price
        )
        check = await self._risk.CheckOrder(risk_pb2.CheckOrderRequest(order=order), timeout=CALL_TIMEOUT_S)
        approved = check.decision == risk_pb2.DECISION_APPROVED
        return trading_pb2.SubmitOrderResponse(
            order_id=order.order_id,
            status=trading_pb2.ACCEPTED if approved else trading_pb2.REJECTED,
            limit_utilization=check.limit_utilization,
        )


class _ServerSpans(grpc.aio.ServerInterceptor):
    """The server spans ServiceHost's middleware opens, without its statistics and faults."""

    def __init__(self, tracing: Tracing) -> None:
        self._tracing = tracing

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        return None if handler is None else self._tracing.traced_handler(handler, details.method)


def _limit(environment: str, version: int) -> config_pb2.Configuration:
    return config_pb2.Configuration(
        key=LIMIT_KEY, value="1000000", type=config_pb2.VALUE_TYPE_NUMBER, environment=environment, version=version
    )


@dataclass
class Ecosystem:
    receiver: OtlpReceiver
    engine: str  # host:port of each service
    risk: str
    config: str
    client_tracing: Tracing  # a caller outside the services, tracing every call it makes
    configuration: Configuration


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
async def ecosystem(receiver: OtlpReceiver) -> AsyncIterator[Ecosystem]:
    """The three services sampling new traces at the services' default ratio."""
    async with _ecosystem(receiver, DEFAULT_TRACE_SAMPLE_RATIO) as running:
        yield running


@pytest.fixture
async def unsampled_ecosystem(receiver: OtlpReceiver) -> AsyncIterator[Ecosystem]:
    """The three services starting no trace of their own (ratio 0): only callers' sampled traces are recorded."""
    async with _ecosystem(receiver, 0.0) as running:
        yield running


@pytest.fixture
async def downstream_sampled_ecosystem(receiver: OtlpReceiver) -> AsyncIterator[Ecosystem]:
    """The engine starting no trace of its own, risk-monitor and configuration-service keeping every new one: a
    trace the engine left out would be recorded from risk-monitor on if they decided it again."""
    async with _ecosystem(receiver, 1.0, engine_ratio=0.0) as running:
        yield running


@contextlib.asynccontextmanager
async def _ecosystem(
    receiver: OtlpReceiver, ratio: float, *, engine_ratio: float | None = None
) -> AsyncIterator[Ecosystem]:
    async with contextlib.AsyncExitStack() as stack:

        async def tracing(service_name: str, sample_ratio: float = ratio) -> Tracing:
            traced = setup_tracing(service_name, f"{service_name}-1", receiver.endpoint, sample_ratio)
            assert traced is not None, f"setup_tracing gave no Tracing for {service_name} at {receiver.endpoint}"
            stack.push_async_callback(traced.shutdown)
            return traced

        async def serve(
            service_name: str, add: Callable[[Any, grpc.aio.Server], None], servicer: Any, sample_ratio: float = ratio
        ) -> str:
            server = grpc.aio.server(
                interceptors=[_ServerSpans(await tracing(service_name, sample_ratio))],
                options=[("grpc.so_reuseport", 0)],
            )
            add(servicer, server)
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            stack.push_async_callback(server.stop, None)
            return f"127.0.0.1:{port}"

        async def channel(caller: str, target: str, sample_ratio: float = ratio) -> TracedChannel:
            opened = grpc.aio.insecure_channel(target, options=TRACING_CHANNEL_OPTIONS)
            stack.push_async_callback(opened.close)
            return (await tracing(caller, sample_ratio)).traced_channel(opened)

        configuration = Configuration()
        config = await serve(
            CONFIGURATION_SERVICE, config_pb2_grpc.add_ConfigurationServiceServicer_to_server, configuration
        )
        risk_to_config = config_pb2_grpc.ConfigurationServiceStub(await channel(RISK_MONITOR, config))
        risk = await serve(
            RISK_MONITOR, risk_pb2_grpc.add_RiskMonitorServiceServicer_to_server, RiskMonitor(risk_to_config)
        )
        engine_ratio = ratio if engine_ratio is None else engine_ratio
        engine_to_risk = risk_pb2_grpc.RiskMonitorServiceStub(await channel(TRADING_SYSTEM_ENGINE, risk, engine_ratio))
        engine = await serve(
            TRADING_SYSTEM_ENGINE,
            trading_pb2_grpc.add_TradingEngineServiceServicer_to_server,
            TradingEngine(engine_to_risk),
            engine_ratio,
        )
        yield Ecosystem(
            receiver, engine=engine, risk=risk, config=config, client_tracing=await tracing("suite-client", 1.0),
            configuration=configuration,
        )


async def _spans_until(receiver: OtlpReceiver, enough: Callable[[list[ReceivedSpan]], bool], what: str) -> list:
    async def received() -> list[ReceivedSpan]:
        return receiver.spans()

    return await wait_until_async(received, enough, timeout=SPAN_WAIT_S, what=f"{what} at {receiver.endpoint}")


def _one(spans: list[ReceivedSpan], service: str, kind: str, name: str) -> ReceivedSpan:
    found = [s for s in spans if s.service == service and s.kind == kind and s.name == name]
    assert len(found) == 1, f"expected one {kind} span {name} from {service}, got {found} among {spans}"
    return found[0]


def _has(*wanted: tuple[str, str]) -> Callable[[list[ReceivedSpan]], bool]:
    """True once spans with every (kind, name) pair have arrived."""
    return lambda spans: set(wanted) <= {(s.kind, s.name) for s in spans}


async def _submit_order(ecosystem: Ecosystem, metadata: Sequence[tuple[str, str]] = ()) -> None:
    async with grpc.aio.insecure_channel(ecosystem.engine) as channel:
        response = await trading_pb2_grpc.TradingEngineServiceStub(channel).SubmitOrder(
            trading_pb2.SubmitOrderRequest(
                strategy_id="s1", symbol="BTC-USD", side=risk_pb2.SIDE_BUY, quantity=1, price=100
            ),
            metadata=metadata,
            timeout=CALL_TIMEOUT_S,
        )
    assert response.status == trading_pb2.ACCEPTED


def _trace_of(traceparent: str) -> tuple[str, bool]:
    """The trace id of a W3C `traceparent` and whether its sampled flag is set (the other flags may be too)."""
    version, trace_id, _, flags = traceparent.split("-")
    assert version == "00", traceparent
    return trace_id, bool(int(flags, 16) & 1)


async def _traced_order(ecosystem: Ecosystem) -> str:
    """An order its caller traces (sampled flag set, as the suite sends on every call); the trace id, once all five
    spans of it have arrived."""
    trace_id = secrets.token_hex(16)
    await _submit_order(ecosystem, [("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01")])
    await _spans_until(
        ecosystem.receiver,
        lambda spans: len([s for s in spans if s.trace_id == trace_id]) >= 5,
        f"five spans of trace {trace_id}",
    )
    return trace_id


async def test_an_order_is_one_trace_across_engine_risk_and_configuration(ecosystem: Ecosystem) -> None:
    trace_id, root_span_id = secrets.token_hex(16), secrets.token_hex(8)
    await _submit_order(ecosystem, [("traceparent", f"00-{trace_id}-{root_span_id}-01")])

    await _spans_until(
        ecosystem.receiver,
        lambda spans: len([s for s in spans if s.trace_id == trace_id]) >= 5,
        f"five spans of trace {trace_id}",
    )
    spans = ecosystem.receiver.trace(trace_id)
    engine_server = _one(spans, TRADING_SYSTEM_ENGINE, "SERVER", SUBMIT_ORDER)
    engine_client = _one(spans, TRADING_SYSTEM_ENGINE, "CLIENT", CHECK_ORDER)
    risk_server = _one(spans, RISK_MONITOR, "SERVER", CHECK_ORDER)
    risk_client = _one(spans, RISK_MONITOR, "CLIENT", GET_CONFIGURATION)
    config_server = _one(spans, CONFIGURATION_SERVICE, "SERVER", GET_CONFIGURATION)
    assert len(spans) == 5, spans

    assert engine_server.parent_span_id == root_span_id
    assert engine_client.parent_span_id == engine_server.span_id
    assert risk_server.parent_span_id == engine_client.span_id
    assert risk_client.parent_span_id == risk_server.span_id
    assert config_server.parent_span_id == risk_client.span_id
    assert risk_server.attributes == {
        "rpc.system": "grpc",
        "rpc.service": "ecosystem.risk.v1.RiskMonitorService",
        "rpc.method": "CheckOrder",
        "rpc.grpc.status_code": 0,
    }
    assert all(span.attributes["rpc.grpc.status_code"] == 0 for span in spans), spans


async def test_an_order_its_caller_did_not_sample_leaves_no_span_and_passes_the_decision_on(
    ecosystem: Ecosystem,
) -> None:
    trace_id = secrets.token_hex(16)
    await _submit_order(
        ecosystem, [("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-00"), ("tracestate", "vendor=opaque")]
    )
    # Each service exports its spans in the order they ended: once every span of a later traced order is in,
    # any span of the first one would be too.
    traced_id = await _traced_order(ecosystem)

    assert ecosystem.receiver.trace(trace_id) == []
    assert {span.service for span in ecosystem.receiver.spans()} == {
        TRADING_SYSTEM_ENGINE, RISK_MONITOR, CONFIGURATION_SERVICE
    }, "only the traced order's spans were exported"
    not_sampled, sampled = ecosystem.configuration.traceparents
    # Two hops down, configuration-service was told the trace and that it is not sampled, with the caller's state.
    assert _trace_of(not_sampled) == (trace_id, False), not_sampled
    assert ecosystem.configuration.tracestates[0] == "vendor=opaque"
    assert _trace_of(sampled) == (traced_id, True), sampled


async def test_an_order_outside_the_root_sample_is_traced_nowhere(downstream_sampled_ecosystem: Ecosystem) -> None:
    await _submit_order(downstream_sampled_ecosystem)
    traced_id = await _traced_order(downstream_sampled_ecosystem)

    assert {span.trace_id for span in downstream_sampled_ecosystem.receiver.spans()} == {traced_id}
    left_out, sampled = downstream_sampled_ecosystem.configuration.traceparents
    # The engine started a trace and left it out; risk-monitor, which keeps every new trace, did not start one of
    # its own for a call from one of ours that came without a trace context, and sent none on either.
    assert left_out == "", left_out
    assert _trace_of(sampled) == (traced_id, True), sampled


async def test_a_call_outside_any_request_left_out_of_the_sample_is_traced_nowhere(
    downstream_sampled_ecosystem: Ecosystem,
) -> None:
    running = downstream_sampled_ecosystem
    engine = setup_tracing(TRADING_SYSTEM_ENGINE, "engine-2", running.receiver.endpoint, 0.0)
    assert engine is not None
    try:
        async with grpc.aio.insecure_channel(running.risk, options=TRACING_CHANNEL_OPTIONS) as opened:
            order = risk_pb2.Order(order_id="o-2", symbol="BTC-USD", side=risk_pb2.SIDE_BUY, quantity=1, price=100)
            await risk_pb2_grpc.RiskMonitorServiceStub(engine.traced_channel(opened)).CheckOrder(
                risk_pb2.CheckOrderRequest(order=order), timeout=CALL_TIMEOUT_S
            )
    finally:
        await engine.shutdown()
    traced_id = await _traced_order(running)

    # A background call of a service that traces, its new trace not kept: no span anywhere, no context sent on.
    assert {span.trace_id for span in running.receiver.spans()} == {traced_id}
    assert running.configuration.traceparents[0] == ""


async def test_a_caller_outside_our_services_without_a_trace_context_starts_a_trace(
    downstream_sampled_ecosystem: Ecosystem,
) -> None:
    async with grpc.aio.insecure_channel(downstream_sampled_ecosystem.risk) as channel:
        order = risk_pb2.Order(order_id="o-1", symbol="BTC-USD", side=risk_pb2.SIDE_BUY, quantity=1, price=100)
        await risk_pb2_grpc.RiskMonitorServiceStub(channel).CheckOrder(
            risk_pb2.CheckOrderRequest(order=order), timeout=CALL_TIMEOUT_S
        )

    spans = await _spans_until(
        downstream_sampled_ecosystem.receiver,
        _has(("SERVER", CHECK_ORDER), ("SERVER", GET_CONFIGURATION)),
        "the trace risk-monitor started for a caller that is not one of our services",
    )
    risk_server = _one(spans, RISK_MONITOR, "SERVER", CHECK_ORDER)
    assert risk_server.parent_span_id == "", "risk-monitor started the trace"
    (traceparent,) = downstream_sampled_ecosystem.configuration.traceparents
    assert _trace_of(traceparent) == (risk_server.trace_id, True), traceparent


async def test_a_traced_order_is_whole_whatever_the_services_ratio(unsampled_ecosystem: Ecosystem) -> None:
    trace_id = await _traced_order(unsampled_ecosystem)

    spans = unsampled_ecosystem.receiver.trace(trace_id)
    assert sorted((span.service, span.kind) for span in spans) == [
        (CONFIGURATION_SERVICE, "SERVER"), (RISK_MONITOR, "CLIENT"), (RISK_MONITOR, "SERVER"),
        (TRADING_SYSTEM_ENGINE, "CLIENT"), (TRADING_SYSTEM_ENGINE, "SERVER"),
    ]


async def test_a_server_stream_is_traced_until_it_ends(ecosystem: Ecosystem) -> None:
    async with grpc.aio.insecure_channel(ecosystem.config) as channel:
        stub = config_pb2_grpc.ConfigurationServiceStub(ecosystem.client_tracing.traced_channel(channel))
        call = stub.WatchConfiguration(
            config_pb2.WatchConfigurationRequest(prefix="risk", environment="testing"), timeout=CALL_TIMEOUT_S
        )
        versions = [change.configuration.version async for change in call]
    assert versions == [1, 2]

    spans = await _spans_until(
        ecosystem.receiver,
        _has(("CLIENT", WATCH_CONFIGURATION), ("SERVER", WATCH_CONFIGURATION)),
        "client and server spans of WatchConfiguration",
    )
    client = _one(spans, "suite-client", "CLIENT", WATCH_CONFIGURATION)
    server = _one(spans, CONFIGURATION_SERVICE, "SERVER", WATCH_CONFIGURATION)
    assert client.parent_span_id == ""
    assert (server.trace_id, server.parent_span_id) == (client.trace_id, client.span_id)
    assert client.attributes["rpc.grpc.status_code"] == server.attributes["rpc.grpc.status_code"] == 0


async def test_an_aborted_call_keeps_the_status_the_client_saw(ecosystem: Ecosystem) -> None:
    async with grpc.aio.insecure_channel(ecosystem.config) as channel:
        stub = config_pb2_grpc.ConfigurationServiceStub(ecosystem.client_tracing.traced_channel(channel))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetConfiguration(
                config_pb2.GetConfigurationRequest(key="risk.missing", environment="testing"), timeout=CALL_TIMEOUT_S
            )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND

    spans = await _spans_until(
        ecosystem.receiver,
        _has(("CLIENT", GET_CONFIGURATION), ("SERVER", GET_CONFIGURATION)),
        "client and server spans of the aborted GetConfiguration",
    )
    client = _one(spans, "suite-client", "CLIENT", GET_CONFIGURATION)
    server = _one(spans, CONFIGURATION_SERVICE, "SERVER", GET_CONFIGURATION)
    not_found = grpc.StatusCode.NOT_FOUND.value[0]
    assert server.parent_span_id == client.span_id
    assert server.attributes["rpc.grpc.status_code"] == not_found
    assert server.status == "UNSET", "NOT_FOUND is an answer to the caller, not a failure of the service"
    assert client.attributes["rpc.grpc.status_code"] == not_found
    assert client.status == "ERROR"


async def test_a_handler_that_crashes_is_recorded_as_unknown_and_failed(ecosystem: Ecosystem) -> None:
    async with grpc.aio.insecure_channel(ecosystem.config) as channel:
        stub = config_pb2_grpc.ConfigurationServiceStub(ecosystem.client_tracing.traced_channel(channel))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetConfiguration(
                config_pb2.GetConfigurationRequest(key=CRASH_KEY, environment="testing"), timeout=CALL_TIMEOUT_S
            )
    assert raised.value.code() == grpc.StatusCode.UNKNOWN

    spans = await _spans_until(
        ecosystem.receiver, _has(("SERVER", GET_CONFIGURATION)), "the server span of the crashed GetConfiguration"
    )
    server = _one(spans, CONFIGURATION_SERVICE, "SERVER", GET_CONFIGURATION)
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNKNOWN.value[0]
    assert server.status == "ERROR"


def test_no_endpoint_means_no_tracing() -> None:
    assert setup_tracing(CONFIGURATION_SERVICE, "instance-1", "") is None


async def test_shutdown_exports_what_is_buffered_and_clear_forgets_it(receiver: OtlpReceiver) -> None:
    tracing = setup_tracing("suite-client", "instance-1", receiver.endpoint, sample_ratio=1.0)
    assert tracing is not None
    with tracing.tracer.start_as_current_span("buffered") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    await tracing.shutdown()

    assert [(s.name, s.kind, s.service) for s in receiver.trace(trace_id)] == [("buffered", "INTERNAL", "suite-client")]
    receiver.clear()
    assert receiver.spans() == []


@pytest.mark.parametrize(
    ("sampler", "argument", "ratio"),
    [
        ("", "", DEFAULT_TRACE_SAMPLE_RATIO),
        ("parentbased_traceidratio", "0.25", 0.25),
        ("parentbased_always_on", "", 1.0),
        ("parentbased_always_off", "", 0.0),
    ],
)
def test_the_standard_sampler_variables_set_the_share_of_new_traces(
    monkeypatch: pytest.MonkeyPatch, sampler: str, argument: str, ratio: float
) -> None:
    monkeypatch.setenv("ECOSYSTEM_SECURITY", "insecure")
    for name, value in (("OTEL_TRACES_SAMPLER", sampler), ("OTEL_TRACES_SAMPLER_ARG", argument)):
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    assert Settings.from_env().trace_sample_ratio == ratio


@pytest.mark.parametrize(("sampler", "argument"), [("always_on", ""), ("parentbased_traceidratio", "1.5")])
def test_a_sampler_that_would_break_traces_apart_is_refused(
    monkeypatch: pytest.MonkeyPatch, sampler: str, argument: str
) -> None:
    monkeypatch.setenv("ECOSYSTEM_SECURITY", "insecure")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", argument)
    with pytest.raises(ValueError, match="OTEL_TRACES_SAMPLER"):
        Settings.from_env()
