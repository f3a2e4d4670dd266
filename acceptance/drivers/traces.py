"""Traces the services exported to the suite's OTLP receiver."""

from __future__ import annotations

import secrets

from acceptance.drivers import Driver
from acceptance.drivers.orders import order, outcome
from acceptance.otlp_receiver import OtlpReceiver, ReceivedSpan
from ecosystem.names import TRADING_SYSTEM_ENGINE

# Services export in batches a fraction of a second apart.
EXPORT_TIMEOUT_S = 10.0


class Traces(Driver):
    def submit_traced_order(self, quantity: float, symbol: str, price: float) -> None:
        """An order in a trace of its own, which must be ACCEPTED."""
        self.state.traced_id = secrets.token_hex(16)
        traceparent = f"00-{self.state.traced_id}-{secrets.token_hex(8)}-01"
        result = self._suite.call(
            TRADING_SYSTEM_ENGINE, "SubmitOrder", order(quantity, symbol, price), metadata={"traceparent": traceparent}
        )
        assert outcome(result) == "ACCEPTED", f"the traced order: {result.describe()}"

    def expect_server_span(self, service: str, method: str, trace_id: str = "") -> ReceivedSpan:
        trace_id = trace_id or self.state.traced_id
        receiver = self._receiver()

        def find() -> ReceivedSpan | None:
            for span in receiver.trace(trace_id):
                if span.kind == "SERVER" and span.service == service and span.name.endswith(f"/{method}"):
                    return span
            return None

        return self._suite.wait(
            find, timeout=EXPORT_TIMEOUT_S, what=f"trace {trace_id} holds a SERVER span of {service} for {method}"
        )

    def expect_parent_client_span(self, service: str, method: str, parent: str) -> None:
        span = self.expect_server_span(service, method)
        receiver = self._receiver()
        found = self._suite.wait(
            lambda: [s for s in receiver.trace(span.trace_id) if s.span_id == span.parent_span_id],
            timeout=EXPORT_TIMEOUT_S,
            what=f"the parent span {span.parent_span_id} of {service}'s {method} span arrives",
        )
        assert found[0].kind == "CLIENT" and found[0].service == parent, (
            f"{service}'s {method} span has the parent {found[0]}, expected a CLIENT span of {parent}"
        )

    def _receiver(self) -> OtlpReceiver:
        if self._suite.otlp is None:
            raise AssertionError("this stack exports no traces to the suite (no OTLP receiver runs)")
        return self._suite.otlp
