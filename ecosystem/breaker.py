"""A circuit breaker per target service that counts transport failures only.

Usage, once per outgoing call::

    breaker.acquire()                      # raises CircuitOpenError instead of calling
    try:
        reply = await stub.Method(request, timeout=...)
    except grpc.aio.AioRpcError as err:
        breaker.record_failure(err.code())
        raise
    except BaseException:                  # cancelled, or failed before reaching the target
        breaker.record_cancelled()
        raise
    breaker.record_success()

Exactly one `record_success`, `record_failure` or `record_cancelled` must follow each `acquire` that
returned: in HALF_OPEN the record is what frees the probe slot, so a missing record keeps the breaker
failing fast until another probe's result arrives.

Built for one asyncio event loop: no locks, but every method keeps the state consistent however
coroutines interleave between `acquire` and their record. A result is attributed to the state the
breaker is in when it is recorded, because `acquire` hands out no token: a result that arrives in
HALF_OPEN decides the probe, one that arrives while OPEN (a call admitted before the circuit opened)
is ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import grpc

from ecosystem.errors import EcosystemError
from ecosystem.logs import log_event
from ecosystem.settings import BreakerSettings


class CircuitState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


# Codes that say the target could not serve the call. Business errors (INVALID_ARGUMENT, NOT_FOUND,
# FAILED_PRECONDITION, ...) prove the target is up, so they never count.
TRANSPORT_FAILURES: frozenset[grpc.StatusCode] = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


class CircuitOpenError(EcosystemError):
    """The breaker refused a call without sending it."""

    def __init__(self, service: str, state: CircuitState, retry_after_s: float, message: str) -> None:
        super().__init__(message)
        self.service = service
        self.state = state
        # Seconds until OPEN turns HALF_OPEN; 0.0 in HALF_OPEN, where a slot frees when a probe finishes.
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class BreakerSnapshot:
    service: str
    state: str
    consecutive_failures: int
    opened_count: int
    half_opened_count: int
    closed_count: int
    last_transition_at: float | None  # wall-clock epoch seconds; None before the first transition
    last_failure: str  # name of the last counted status code, "" when none yet


class CircuitBreaker:
    """CLOSED -> OPEN after `failure_threshold` consecutive transport failures; OPEN -> HALF_OPEN once
    `recovery_timeout_s` has passed; HALF_OPEN admits `half_open_max_calls` probes at a time, and the
    first probe result closes the circuit (success) or opens it again with a fresh timer (failure)."""

    def __init__(
        self,
        service: str,
        settings: BreakerSettings,
        *,
        failure_codes: frozenset[grpc.StatusCode] = TRANSPORT_FAILURES,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_transition: Callable[[str, CircuitState, CircuitState], None] | None = None,
    ) -> None:
        if settings.failure_threshold < 1:
            raise ValueError(f"breaker for {service}: failure_threshold must be >= 1, got {settings.failure_threshold}")
        if settings.half_open_max_calls < 1:
            raise ValueError(
                f"breaker for {service}: half_open_max_calls must be >= 1, got {settings.half_open_max_calls}"
            )
        if settings.recovery_timeout_s < 0:
            raise ValueError(
                f"breaker for {service}: recovery_timeout_s must be >= 0, got {settings.recovery_timeout_s}"
            )
        self.service = service
        self._settings = settings
        self._failure_codes = failure_codes
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_transition = on_transition

        self._state = CircuitState.CLOSED
        self._consecutive_failures = 0
        self._last_failure = ""
        self._opened_at = 0.0  # monotonic; meaningful only while OPEN
        self._probes_in_flight = 0
        self._counts = {state: 0 for state in CircuitState}
        self._last_transition_at: float | None = None

    @property
    def state(self) -> CircuitState:
        """The current state; OPEN becomes HALF_OPEN here, on first look after the recovery timeout."""
        if self._state is CircuitState.OPEN and self._retry_after_s() == 0.0:
            self._transition(CircuitState.HALF_OPEN)
        return self._state

    def acquire(self) -> None:
        """Admit one call or raise CircuitOpenError; a HALF_OPEN admission takes a probe slot."""
        state = self.state
        if state is CircuitState.CLOSED:
            return
        if state is CircuitState.OPEN:
            retry_after_s = self._retry_after_s()
            raise CircuitOpenError(
                self.service,
                state,
                retry_after_s,
                f"circuit breaker for {self.service} is OPEN after {self._consecutive_failures} consecutive "
                f"transport failures (last: {self._last_failure}); failing fast, next probe in {retry_after_s:.1f}s",
            )
        if self._probes_in_flight >= self._settings.half_open_max_calls:
            calls = "call" if self._probes_in_flight == 1 else "calls"
            raise CircuitOpenError(
                self.service,
                state,
                0.0,
                f"circuit breaker for {self.service} is HALF_OPEN with {self._probes_in_flight} probe {calls} "
                f"in flight; failing fast",
            )
        self._probes_in_flight += 1

    def record_success(self) -> None:
        """The call reached the target: reset the failure count; a probe success closes the circuit."""
        state = self.state
        if state is CircuitState.OPEN:
            return
        self._consecutive_failures = 0
        if state is CircuitState.HALF_OPEN:
            self._transition(CircuitState.CLOSED)

    def record_failure(self, code: grpc.StatusCode) -> None:
        """The call failed with `code`; codes outside `failure_codes` count as a transport success."""
        if code not in self._failure_codes:
            self.record_success()
            return
        state = self.state
        if state is CircuitState.OPEN:
            return
        self._consecutive_failures += 1
        self._last_failure = code.name
        if state is CircuitState.HALF_OPEN or (
            state is CircuitState.CLOSED and self._consecutive_failures >= self._settings.failure_threshold
        ):
            self._transition(CircuitState.OPEN)

    def record_cancelled(self) -> None:
        """The call ended without telling anything about the target (the caller cancelled it): free its
        probe slot and change nothing else. Recording CANCELLED as a failure would instead count as a
        transport success and close a half-open circuit on no evidence."""
        if self.state is CircuitState.HALF_OPEN and self._probes_in_flight > 0:
            self._probes_in_flight -= 1

    def snapshot(self) -> BreakerSnapshot:
        return BreakerSnapshot(
            service=self.service,
            state=self.state.value,
            consecutive_failures=self._consecutive_failures,
            opened_count=self._counts[CircuitState.OPEN],
            half_opened_count=self._counts[CircuitState.HALF_OPEN],
            closed_count=self._counts[CircuitState.CLOSED],
            last_transition_at=self._last_transition_at,
            last_failure=self._last_failure,
        )

    def _retry_after_s(self) -> float:
        return max(0.0, self._opened_at + self._settings.recovery_timeout_s - self._clock())

    def _transition(self, to_state: CircuitState) -> None:
        from_state = self._state
        self._state = to_state
        # Probes still running when HALF_OPEN is left report into the new state as ordinary calls,
        # so the next HALF_OPEN starts with every slot free.
        self._probes_in_flight = 0
        if to_state is CircuitState.OPEN:
            self._opened_at = self._clock()
        self._counts[to_state] += 1
        self._last_transition_at = self._wall_clock()
        log_event("breaker_transition", target=self.service, from_state=from_state.value, to_state=to_state.value)
        if self._on_transition is not None:
            self._on_transition(self.service, from_state, to_state)
