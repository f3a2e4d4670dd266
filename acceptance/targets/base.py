"""What every stack target offers the suite: start the ecosystem, find its endpoints, break it, restore it.

Features only talk to a `StackTarget`. A target declares in `capabilities` which ways of breaking the
stack it supports; scenarios needing one it lacks are skipped before they run, and calling an
unsupported operation anyway raises NotImplementedError naming the target and the operation.
"""

from __future__ import annotations

import json
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from acceptance.transport import PLAINTEXT, Transport

# "orchestrator": the stack runs under an orchestrator that replaces a failed instance by itself (TARGET=swarm).
CAPABILITIES = frozenset(
    {"stop", "kill", "pause", "restart", "scale", "redis", "partition", "security", "orchestrator"}
)
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SuiteTimings:
    """What a target starts the services with: short timings, so failures show within seconds.

    These are the declared values the suite's assertions compare with (acceptance/declared.py).
    """

    environment_name: str = "testing"
    registry_ttl_ms: int = 3000
    breaker_failure_threshold: int = 5
    breaker_recovery_timeout_s: float = 2.0
    retry_attempts: int = 3
    shutdown_grace_s: float = 2.0
    # How long an orchestrator waits before it replaces a failed task (only a target with one uses it).
    restart_delay_ms: int = 1000
    # The services log each decision (order, retry, fault) at debug, for the report of a failed scenario.
    log_level: str = "debug"

    @property
    def stop_timeout_s(self) -> float:
        """A service gets its grace period to drain, plus time to deregister and exit."""
        return self.shutdown_grace_s + 3.0

    def environment(self) -> dict[str, str]:
        return {
            "ECOSYSTEM_ENVIRONMENT": self.environment_name,
            "ECOSYSTEM_REGISTRY_TTL_MS": str(self.registry_ttl_ms),
            "ECOSYSTEM_BREAKER_FAILURE_THRESHOLD": str(self.breaker_failure_threshold),
            "ECOSYSTEM_BREAKER_RECOVERY_TIMEOUT_S": str(self.breaker_recovery_timeout_s),
            "ECOSYSTEM_RETRY_ATTEMPTS": str(self.retry_attempts),
            "ECOSYSTEM_SHUTDOWN_GRACE_S": str(self.shutdown_grace_s),
            "ECOSYSTEM_LOG_LEVEL": self.log_level,
        }


SUITE_TIMINGS = SuiteTimings()


def lines_since(lines: list[str], since: float) -> list[str]:
    """The service log lines written from `since` (epoch seconds) on: JSON lines by their `ts`, and any
    other line (a traceback) with the JSON line before it."""
    kept = []
    keep = False
    for line in lines:
        try:
            keep = float(json.loads(line)["ts"]) >= since
        except (ValueError, KeyError, TypeError):
            pass
        if keep:
            kept.append(line)
    return kept


def run_log_dir(suffix: str = "") -> Path:
    """reports/logs/<time>-<pid><suffix>: where a run's service logs go by default."""
    return REPO_ROOT / "reports" / "logs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}{suffix}"


@dataclass(frozen=True)
class ServiceHandle:
    """One running instance of a service, as the suite reaches it."""

    service: str
    index: int
    instance_id: str
    endpoint: str  # "127.0.0.1:PORT", reachable from the suite's process


class TargetError(RuntimeError):
    """A stack target could not do what was asked: names the service, what was awaited and its last log lines."""

    def __init__(self, service: str, awaited: str, log_tail: str = "") -> None:
        self.service = service
        self.awaited = awaited
        self.log_tail = log_tail
        message = f"{service}: {awaited}"
        if log_tail:
            message += f"\n--- last log lines of {service} ---\n{log_tail.rstrip()}"
        super().__init__(message)


class StackTarget(ABC):
    """The reference ecosystem (Redis + the four services) somewhere the suite can reach it."""

    name: str
    capabilities: frozenset[str] = frozenset()
    # What the services were started with: the declared values the suite compares with.
    timings: SuiteTimings = SUITE_TIMINGS
    # How the suite reaches the services: mTLS with the stack's certificates where the target made them.
    transport: Transport = PLAINTEXT
    # How long an instance may take from its start until it is SERVING: the bound every target waits with.
    start_timeout: float

    @property
    @abstractmethod
    def redis_url(self) -> str:
        """The registry's Redis, reachable from the suite."""

    @abstractmethod
    def start(self) -> None:
        """Redis and one instance of each service, then `wait_healthy`; on failure leave nothing running."""

    @abstractmethod
    def wait_healthy(self, timeout: float = 20.0) -> None:
        """Every running instance answers grpc.health.v1 Check SERVING for its gRPC service name."""

    @abstractmethod
    def instances(self, service: str) -> list[ServiceHandle]:
        """The running instances of `service`, by index."""

    @abstractmethod
    def restore(self) -> None:
        """Back to the initial shape (one instance each, all running, Redis up, none paused), then healthy."""

    @abstractmethod
    def stop_all(self) -> None:
        """Stop everything this target started; idempotent."""

    def rebuild(self) -> None:
        """Replace the whole stack: everything started stops, then fresh processes or containers start on an
        empty registry, and `wait_healthy`. For a stack the suite could not restore to its initial shape."""
        self._unsupported("rebuild")

    def unexpected_exits(self) -> list[str]:
        """The instances that failed, exited, were rejected or replaced since the stack was (re)built, other than
        those the target stopped, killed or scaled away itself: what an orchestrator hides by starting a new
        instance. Each names the service, the instance, how it ended and its last log lines; once seen, an exit is
        reported at every check until the stack is rebuilt. None where nothing starts an instance behind the suite's
        back: an instance that exits there stays gone, which the stack's health sees by itself."""
        return []

    def tools(self) -> dict[str, str]:
        """The tools this target runs the stack with and their versions, for the sign-off and the report."""
        return {}

    @property
    def otlp_bind_host(self) -> str:
        """The address the suite's OTLP receiver listens on so the services can reach it; asked before start()."""
        return "127.0.0.1"

    def export_traces_to(self, endpoint: str) -> None:
        """Services started from now on export spans over OTLP/gRPC to `endpoint`; called before start()."""
        self._unsupported("export_traces_to")

    def endpoint(self, service: str) -> str:
        """The endpoint of the first running instance of `service`."""
        running = self.instances(service)
        if not running:
            raise TargetError(service, f"a running instance on target {self.name!r}, but none is running")
        return running[0].endpoint

    def logs(self, lines: int = 50, since: float | None = None) -> dict[str, str]:
        """Last `lines` log lines per instance ("risk-monitor#0" -> text), only those written from `since`
        (epoch seconds) on when given; empty where the target cannot read logs."""
        return {}

    def stop_service(self, service: str, index: int = 0) -> None:
        """Graceful stop (SIGTERM), waiting until the instance has exited."""
        self._unsupported("stop_service")

    def terminate_service(self, service: str, index: int = 0) -> None:
        """Send SIGTERM and return at once: the instance drains while the suite watches (`wait_exited`)."""
        self._unsupported("terminate_service")

    def wait_exited(self, service: str, index: int, timeout: float) -> int:
        """The exit status of an instance that was sent SIGTERM, once it has exited; TargetError after `timeout`."""
        self._unsupported("wait_exited")

    def kill_service(self, service: str, index: int = 0) -> None:
        """Immediate stop (SIGKILL): no deregistration, no drain."""
        self._unsupported("kill_service")

    def pause_service(self, service: str, index: int = 0) -> None:
        self._unsupported("pause_service")

    def resume_service(self, service: str, index: int = 0) -> None:
        self._unsupported("resume_service")

    def start_service(self, service: str, index: int = 0) -> ServiceHandle:
        """(Re)start a stopped or killed instance and wait until it is SERVING."""
        self._unsupported("start_service")

    def scale(self, service: str, count: int) -> list[ServiceHandle]:
        """Run exactly `count` instances of `service`, all SERVING."""
        self._unsupported("scale")

    def redis_url_for(self, user: str) -> str:
        """The stack's Redis as one of its users (a service's name, or the suite's); for the security scenarios."""
        self._unsupported("redis_url_for")

    def stop_redis(self) -> None:
        self._unsupported("stop_redis")

    def start_redis(self) -> None:
        """Start Redis again on the same address."""
        self._unsupported("start_redis")

    def flush_redis(self) -> None:
        self._unsupported("flush_redis")

    def partition_service(self, service: str, index: int = 0) -> None:
        """Cut the instance off the network: it reaches nothing and nothing reaches it; the process keeps running."""
        self._unsupported("partition_service")

    def heal_partition(self, service: str, index: int = 0) -> None:
        """Connect a partitioned instance to the network again."""
        self._unsupported("heal_partition")

    def _unsupported(self, operation: str) -> NoReturn:
        raise NotImplementedError(f"stack target {self.name!r} does not support {operation}")

    def __enter__(self) -> StackTarget:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop_all()
