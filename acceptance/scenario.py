"""What one scenario holds while it runs: its calls, its restores and what its steps hand each other.

Steps never keep state on behave's `context`; drivers read and write `ScenarioState`, which the suite
replaces at the start of every scenario.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from acceptance.health import HealthWatch
from acceptance.rpc import DEFAULT_TIMEOUT_S, Collect, RpcResult
from acceptance.targets import ServiceHandle
from ecosystem.discovery import ServiceInstance

# Bounds what a scenario keeps for its report: a runaway loop must not fill the memory or the report.
MAX_CALLS_KEPT = 200


@dataclass(frozen=True)
class Restore:
    """Undoes what a step broke: `action` acts at once (restart, end, set back) and raises if it could not."""

    description: str
    action: Callable[[], None]


@dataclass
class WaitRecord:
    """One wait as the report shows it: what was awaited, how many polls, how long, the last answer."""

    what: str
    polls: int
    elapsed_s: float
    outcome: str  # "met" | "timed out"
    last: str
    calls: int  # RPCs its probes made

    def record(self) -> dict[str, Any]:
        return {
            "wait": self.what, "outcome": self.outcome, "polls": self.polls,
            "elapsed_ms": round(self.elapsed_s * 1000, 1), "rpc_calls": self.calls, "last_observed": self.last,
        }


class CallLog:
    """The scenario's gRPC calls, made outside waits, and one `WaitRecord` per wait; thread-safe.

    Calls made by a wait's probes are only counted: the wait's summary stands for them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[RpcResult | WaitRecord] = []
        self._dropped = 0
        self._waiting = threading.local()
        self._reported = 0
        self._dropped_reported = 0

    def record_call(self, result: RpcResult) -> None:
        counter = getattr(self._waiting, "calls", None)
        if counter is not None:
            self._waiting.calls = counter + 1
            return
        self._append(result)

    def begin_wait(self) -> None:
        self._waiting.calls = 0

    def end_wait(self, record: WaitRecord) -> None:
        record.calls = self._waiting.calls
        self._waiting.calls = None
        self._append(record)

    def take_unreported(self) -> list[dict[str, Any]]:
        """Records added since the last call: what one step did (and how many it made past the bound)."""
        with self._lock:
            fresh = self._entries[self._reported:]
            self._reported = len(self._entries)
            dropped, self._dropped_reported = self._dropped - self._dropped_reported, self._dropped
        records = [entry.record() for entry in fresh]
        if dropped:
            records.append({"note": f"{dropped} more calls or waits, past the {MAX_CALLS_KEPT} a scenario keeps"})
        return records

    def _append(self, entry: RpcResult | WaitRecord) -> None:
        with self._lock:
            if len(self._entries) >= MAX_CALLS_KEPT:
                self._dropped += 1
                return
            self._entries.append(entry)


@dataclass
class ScenarioState:
    """One scenario's state. Fields below `restores` are what steps hand on to later steps."""

    name: str = ""
    started_at: float = field(default_factory=time.time)
    trace_id: str = field(default_factory=lambda: secrets.token_hex(16))
    calls: CallLog = field(default_factory=CallLog)
    restores: list[Restore] = field(default_factory=list)

    # The generic call steps' options and the last call's outcome.
    deadline_s: float = DEFAULT_TIMEOUT_S
    metadata: dict[str, str] = field(default_factory=dict)
    collect: Collect | None = None  # how much of the next call's response stream to read
    last: RpcResult | None = None
    # The outcomes of the last step that sent orders, and of every order the scenario sent.
    batch: list[RpcResult] = field(default_factory=list)
    orders_sent: list[RpcResult] = field(default_factory=list)
    # A call still running while later steps act (an order in flight during a shutdown).
    in_flight: Future[RpcResult] | None = None
    # The instance a step stopped or killed (and its registry entry then), and the one a restart brought up.
    removed: ServiceHandle | None = None
    removed_entry: ServiceInstance | None = None
    restarted: ServiceHandle | None = None
    # The chaos event the scenario injected, as the coordinator last described it.
    chaos_event: dict[str, Any] | None = None
    injected_latency_ms: int = 0
    injected_failure_code: str = ""
    # The test-coordinator scenario the trading engine reports outcomes to.
    test_scenario_id: str = ""
    # Counters noted before an action, by name ("risk-monitor CheckOrder", "registry reads").
    noted: dict[str, int] = field(default_factory=dict)
    # The trace of a traced order (its own trace id, apart from the scenario's).
    traced_id: str = ""
    # Health Watch streams the scenario keeps open, by service.
    health_watches: dict[str, HealthWatch] = field(default_factory=dict)
    # Security attacks: how the stack refused the last one ("" = it did not), the impostor the scenario
    # registered (its servicer, instance id, endpoint).
    refused: str = ""
    impostor: tuple[Any, str, str] | None = None

    def traceparent(self) -> str:
        """A W3C trace context in the scenario's trace: a new parent span id per call, sampled."""
        return f"00-{self.trace_id}-{secrets.token_hex(8)}-01"

    def last_call(self) -> RpcResult:
        if self.last is None:
            raise AssertionError("no call was made in this scenario before this step")
        return self.last
