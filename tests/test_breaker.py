"""CircuitBreaker on a fake clock: transitions, fail-fast errors, probe slots, counts."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import grpc
import pytest
from fakes import FakeClock

from ecosystem.breaker import CircuitBreaker, CircuitOpenError, CircuitState
from ecosystem.settings import BreakerSettings

SERVICE = "risk-monitor"
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE



@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def wall_clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


def make_breaker(
    clock: FakeClock, wall_clock: FakeClock | None = None, *, half_open_max_calls: int = 1, **kwargs
) -> CircuitBreaker:
    settings = BreakerSettings(failure_threshold=5, recovery_timeout_s=60.0, half_open_max_calls=half_open_max_calls)
    return CircuitBreaker(SERVICE, settings, clock=clock, wall_clock=wall_clock or FakeClock(), **kwargs)


def fail(breaker: CircuitBreaker, times: int, code: grpc.StatusCode = UNAVAILABLE) -> None:
    for _ in range(times):
        breaker.acquire()
        breaker.record_failure(code)


def open_breaker(breaker: CircuitBreaker) -> None:
    fail(breaker, 5)
    assert breaker.state is CircuitState.OPEN


def test_opens_at_exactly_the_threshold(clock: FakeClock) -> None:
    breaker = make_breaker(clock)

    fail(breaker, 4)
    assert breaker.state is CircuitState.CLOSED
    breaker.acquire()  # still admitted
    breaker.record_failure(grpc.StatusCode.DEADLINE_EXCEEDED)

    assert breaker.state is CircuitState.OPEN
    assert breaker.snapshot().consecutive_failures == 5
    assert breaker.snapshot().last_failure == "DEADLINE_EXCEEDED"


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INTERNAL,
    ],
)
def test_business_errors_never_open_it(clock: FakeClock, code: grpc.StatusCode) -> None:
    breaker = make_breaker(clock)

    fail(breaker, 50, code)

    assert breaker.state is CircuitState.CLOSED
    assert breaker.snapshot().consecutive_failures == 0


def test_a_business_error_breaks_the_run_of_transport_failures(clock: FakeClock) -> None:
    breaker = make_breaker(clock)

    fail(breaker, 4)
    fail(breaker, 1, grpc.StatusCode.NOT_FOUND)
    fail(breaker, 4)

    assert breaker.state is CircuitState.CLOSED
    assert breaker.snapshot().consecutive_failures == 4


def test_success_resets_the_consecutive_count(clock: FakeClock) -> None:
    breaker = make_breaker(clock)

    fail(breaker, 4)
    breaker.acquire()
    breaker.record_success()
    assert breaker.snapshot().consecutive_failures == 0
    fail(breaker, 4)

    assert breaker.state is CircuitState.CLOSED


def test_failure_codes_are_configurable(clock: FakeClock) -> None:
    breaker = make_breaker(clock, failure_codes=frozenset({grpc.StatusCode.INTERNAL}))

    fail(breaker, 10, UNAVAILABLE)
    assert breaker.state is CircuitState.CLOSED
    fail(breaker, 5, grpc.StatusCode.INTERNAL)

    assert breaker.state is CircuitState.OPEN


def test_open_fails_fast_naming_the_service(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(47.7)

    with pytest.raises(CircuitOpenError) as raised:
        breaker.acquire()

    err = raised.value
    assert err.service == SERVICE
    assert err.state is CircuitState.OPEN
    assert err.retry_after_s == pytest.approx(12.3)
    assert str(err) == (
        "circuit breaker for risk-monitor is OPEN after 5 consecutive transport failures (last: UNAVAILABLE); "
        "failing fast, next probe in 12.3s"
    )


def test_half_open_once_the_recovery_timeout_has_passed(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)

    clock.advance(59.9)
    assert breaker.state is CircuitState.OPEN
    clock.advance(0.1)
    assert breaker.state is CircuitState.HALF_OPEN


@pytest.mark.parametrize("max_calls", [1, 3])
def test_half_open_admits_at_most_max_calls_probes(clock: FakeClock, max_calls: int) -> None:
    breaker = make_breaker(clock, half_open_max_calls=max_calls)
    open_breaker(breaker)
    clock.advance(60)

    for _ in range(max_calls):
        breaker.acquire()
    with pytest.raises(CircuitOpenError) as raised:
        breaker.acquire()

    calls = "call" if max_calls == 1 else "calls"
    assert raised.value.state is CircuitState.HALF_OPEN
    assert raised.value.retry_after_s == 0.0
    assert str(raised.value) == (
        f"circuit breaker for risk-monitor is HALF_OPEN with {max_calls} probe {calls} in flight; failing fast"
    )


def test_probe_success_closes_the_circuit(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(60)

    breaker.acquire()
    breaker.record_success()

    assert breaker.state is CircuitState.CLOSED
    assert breaker.snapshot().consecutive_failures == 0
    for _ in range(10):  # no probe limit once closed
        breaker.acquire()


def test_probe_answering_a_business_error_closes_the_circuit(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(60)

    breaker.acquire()
    breaker.record_failure(grpc.StatusCode.INVALID_ARGUMENT)

    assert breaker.state is CircuitState.CLOSED


def test_probe_failure_reopens_with_a_restarted_timer(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(60)
    breaker.acquire()
    clock.advance(2)  # the probe took a while

    breaker.record_failure(grpc.StatusCode.DEADLINE_EXCEEDED)

    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as raised:
        breaker.acquire()
    assert raised.value.retry_after_s == pytest.approx(60.0)
    assert "last: DEADLINE_EXCEEDED" in str(raised.value)
    clock.advance(59.9)
    assert breaker.state is CircuitState.OPEN
    clock.advance(0.1)
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.acquire()  # the slot of the failed probe is free again


def test_a_cancelled_probe_frees_its_slot_and_decides_nothing(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(60)
    breaker.acquire()

    breaker.record_cancelled()

    assert breaker.state is CircuitState.HALF_OPEN
    breaker.acquire()  # the slot is free for the next probe
    with pytest.raises(CircuitOpenError):
        breaker.acquire()


def test_a_cancelled_call_leaves_the_failure_count_alone(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    fail(breaker, 4)
    breaker.acquire()

    breaker.record_cancelled()
    fail(breaker, 1)

    assert breaker.state is CircuitState.OPEN


def test_results_of_calls_admitted_before_opening_change_nothing_while_open(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    for _ in range(7):
        breaker.acquire()
    for _ in range(5):
        breaker.record_failure(UNAVAILABLE)
    assert breaker.state is CircuitState.OPEN
    clock.advance(30)

    breaker.record_success()
    breaker.record_failure(UNAVAILABLE)

    assert breaker.state is CircuitState.OPEN
    assert breaker.snapshot().consecutive_failures == 5
    with pytest.raises(CircuitOpenError) as raised:
        breaker.acquire()
    assert raised.value.retry_after_s == pytest.approx(30.0)  # timer not restarted


def test_snapshot_counts_transitions_with_their_wall_clock_time(clock: FakeClock, wall_clock: FakeClock) -> None:
    breaker = make_breaker(clock, wall_clock)
    initial = breaker.snapshot()
    assert (initial.state, initial.opened_count, initial.half_opened_count, initial.closed_count) == ("CLOSED", 0, 0, 0)
    assert initial.last_transition_at is None
    assert initial.last_failure == ""

    open_breaker(breaker)
    opened_at = wall_clock.now
    assert breaker.snapshot().last_transition_at == opened_at

    clock.advance(60)
    wall_clock.advance(60)
    breaker.acquire()
    breaker.record_failure(UNAVAILABLE)  # HALF_OPEN -> OPEN
    clock.advance(60)
    wall_clock.advance(60)
    breaker.acquire()
    breaker.record_success()  # HALF_OPEN -> CLOSED

    snapshot = breaker.snapshot()
    assert snapshot.service == SERVICE
    assert snapshot.state == "CLOSED"
    assert (snapshot.opened_count, snapshot.half_opened_count, snapshot.closed_count) == (2, 2, 1)
    assert snapshot.last_transition_at == opened_at + 120
    assert snapshot.consecutive_failures == 0
    assert snapshot.last_failure == "UNAVAILABLE"


def test_transitions_reach_the_callback_and_the_log(clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[tuple[str, CircuitState, CircuitState]] = []
    breaker = make_breaker(clock, on_transition=lambda *transition: seen.append(transition))

    open_breaker(breaker)
    clock.advance(60)
    breaker.acquire()
    breaker.record_success()

    assert seen == [
        (SERVICE, CircuitState.CLOSED, CircuitState.OPEN),
        (SERVICE, CircuitState.OPEN, CircuitState.HALF_OPEN),
        (SERVICE, CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    logged = [(line["target"], line["from_state"], line["to_state"]) for line in lines]
    assert [line["event"] for line in lines] == ["breaker_transition"] * 3
    assert logged == [(SERVICE, "CLOSED", "OPEN"), (SERVICE, "OPEN", "HALF_OPEN"), (SERVICE, "HALF_OPEN", "CLOSED")]


async def test_interleaved_coroutines_get_at_most_max_probes(clock: FakeClock) -> None:
    breaker = make_breaker(clock, half_open_max_calls=2)
    open_breaker(breaker)
    clock.advance(60)
    callers = 10
    outcomes: list[str] = []
    all_attempted = asyncio.Event()
    release = asyncio.Event()

    def attempted(outcome: str) -> None:
        outcomes.append(outcome)
        if len(outcomes) == callers:
            all_attempted.set()

    async def call() -> None:
        try:
            breaker.acquire()
        except CircuitOpenError:
            attempted("refused")
            return
        attempted("admitted")
        await release.wait()
        breaker.record_failure(UNAVAILABLE)

    tasks = [asyncio.create_task(call()) for _ in range(callers)]
    await asyncio.wait_for(all_attempted.wait(), timeout=5)
    assert Counter(outcomes) == {"admitted": 2, "refused": 8}
    release.set()
    await asyncio.gather(*tasks)

    # The first failed probe reopened the circuit; the second probe's result arrives while OPEN.
    snapshot = breaker.snapshot()
    assert snapshot.state == "OPEN"
    assert snapshot.opened_count == 2


@pytest.mark.parametrize(
    "settings",
    [
        BreakerSettings(failure_threshold=0),
        BreakerSettings(half_open_max_calls=0),
        BreakerSettings(recovery_timeout_s=-1.0),
    ],
)
def test_rejects_settings_that_cannot_work(settings: BreakerSettings) -> None:
    with pytest.raises(ValueError, match=f"breaker for {SERVICE}"):
        CircuitBreaker(SERVICE, settings)
