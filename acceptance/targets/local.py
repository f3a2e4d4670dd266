"""LocalTarget: redis-server and the four services as child processes of the suite, on loopback ports.

Each service runs as `python -m ecosystem.services.<name>` with a fresh ECOSYSTEM_INSTANCE_ID; its
endpoint is whatever the registry holds for that instance id, and it is ready when grpc.health.v1
answers SERVING. Children get SIGKILL from the kernel when the thread that started them dies (so a
SIGKILLed suite leaves no service behind) and run in their own session (so Ctrl-C in a terminal
reaches only the suite, which then stops them). Start targets from the main thread: PDEATHSIG
fires when the *thread* that forked a child ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import redis

from acceptance import health
from acceptance.pki import Pki
from acceptance.processes import dying_with_parent, stop_processes
from acceptance.redis_acl import RedisUsers
from acceptance.redis_server import RedisServer
from acceptance.targets.base import (
    SUITE_TIMINGS,
    ServiceHandle,
    StackTarget,
    SuiteTimings,
    TargetError,
    lines_since,
    run_log_dir,
)
from acceptance.transport import Transport
from acceptance.waits import WaitTimeout, wait_until
from ecosystem.discovery import lookup_sync
from ecosystem.names import ALL_SERVICES, GRPC_SERVICES
from ecosystem.security import ADMIN, MODES, SECURE, SUITE

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_MODULES = {service: "ecosystem.services." + service.replace("-", "_") for service in ALL_SERVICES}
ERROR_LOG_LINES = 30
POLL_INTERVAL_S = 0.05

def _describe_exit(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


@dataclass
class _Instance:
    service: str
    index: int
    instance_id: str
    process: subprocess.Popen[bytes]
    log_path: Path
    endpoint: str = ""
    paused: bool = False

    @property
    def label(self) -> str:
        return f"{self.service}#{self.index}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def handle(self) -> ServiceHandle:
        return ServiceHandle(self.service, self.index, self.instance_id, self.endpoint)

    def tail(self, lines: int = ERROR_LOG_LINES, since: float | None = None) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        kept = text.splitlines() if since is None else lines_since(text.splitlines(), since)
        return "\n".join(kept[-lines:])


@dataclass(frozen=True)
class _Exited:
    code: int


class _Children:
    """Everything a LocalTarget started, kept apart from it so the safety net can stop it without the target."""

    def __init__(self) -> None:
        self.slots: dict[str, list[_Instance]] = {service: [] for service in ALL_SERVICES}
        self.redis: RedisServer | None = None

    def all(self) -> list[_Instance]:
        return [instance for slots in self.slots.values() for instance in slots]

    def stop(self, grace: float) -> None:
        """SIGTERM every live service, SIGKILL those still running after `grace`, then stop Redis.

        The instances stay listed, so their logs can still be read.
        """
        for instance in self.all():
            if instance.alive and instance.paused:  # a stopped process only sees SIGTERM once it runs again
                instance.process.send_signal(signal.SIGCONT)
        stop_processes([instance.process for instance in self.all()], grace)
        if self.redis is not None:
            self.redis.close()
            self.redis = None


class LocalTarget(StackTarget):
    """The ecosystem as child processes; supports every capability except network partitions."""

    name = "local"
    capabilities = frozenset({"stop", "kill", "pause", "restart", "scale", "redis"})

    def __init__(
        self,
        *,
        log_dir: Path | str | None = None,
        timings: SuiteTimings = SUITE_TIMINGS,
        start_timeout: float = 15.0,
        env: Mapping[str, str] | None = None,
        security: str = SECURE,
    ) -> None:
        """`env` overrides any ECOSYSTEM_* variable the services get; logs go to `log_dir` (default reports/logs/).

        In `secure` mode (the default) the stack gets its own CA and certificates (`log_dir`/pki) and its Redis
        a user per service (acceptance/redis_acl.py); `insecure` runs plaintext with an open Redis.
        """
        if security not in MODES:
            raise ValueError(f"security mode {security!r} is not one of {', '.join(MODES)}")
        self.log_dir = Path(log_dir) if log_dir is not None else run_log_dir()
        self.security = security
        self._users: RedisUsers | None = None
        if security == SECURE:
            self.transport = Transport(Pki.create(self.log_dir / "pki", [*ALL_SERVICES, SUITE, ADMIN]))
            self._users = RedisUsers.create(list(ALL_SERVICES))
            self.capabilities = self.capabilities | {"security"}
        self.timings = timings
        self.start_timeout = start_timeout
        self.stop_timeout = timings.stop_timeout_s
        self._env = {
            "ECOSYSTEM_LISTEN_HOST": "127.0.0.1",
            "ECOSYSTEM_ADVERTISE_HOST": "127.0.0.1",
            "ECOSYSTEM_PORT": "0",
            **timings.environment(),
            "ECOSYSTEM_SECURITY": security,
            "PYTHONUNBUFFERED": "1",
        }
        self._env.update(env or {})
        self._children = _Children()
        self._client: redis.Redis | None = None
        # Safety net: a target dropped or left running at interpreter exit still stops its children.
        weakref.finalize(self, self._children.stop, self.stop_timeout)

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        return self._redis().url

    def export_traces_to(self, endpoint: str) -> None:
        self._env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint

    def start(self) -> None:
        if self._children.redis is not None:
            raise TargetError("local target", "a target not yet started, but start() already ran")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for slots in self._children.slots.values():
            slots.clear()
        try:
            self._children.redis = RedisServer(users=self._users)
            self._start_redis_server()
            self._client = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
            # All four start at once; waiting on them one after another then costs only the slowest.
            for service in ALL_SERVICES:
                self._children.slots[service].append(self._spawn(service, 0))
            spawned = self._children.all()
            deadline = time.monotonic() + self.start_timeout
            for instance in spawned:
                self._wait_registered(instance, deadline)
            for instance in spawned:
                self._wait_serving(instance, deadline)
        except BaseException:
            self.stop_all()
            raise

    def wait_healthy(self, timeout: float = 20.0) -> None:
        """Every running instance that is not paused answers SERVING (a paused process cannot answer)."""
        deadline = time.monotonic() + timeout
        for instance in self._running():
            if not instance.paused:
                self._wait_serving(instance, deadline)

    def restore(self) -> None:
        if not self._redis().running:
            self.start_redis()
        for service in ALL_SERVICES:
            for instance in self._children.slots[service]:
                if instance.paused:
                    self.resume_service(service, instance.index)
            self.scale(service, 1)
        deadline = time.monotonic() + self.start_timeout
        # After a Redis restart or flush the services' heartbeats write their entries again.
        for instance in self._running():
            self._wait_registered(instance, deadline)
        self.wait_healthy(max(0.0, deadline - time.monotonic()))

    def stop_all(self) -> None:
        self._children.stop(self.stop_timeout)
        if self._client is not None:
            self._client.close()
            self._client = None

    def rebuild(self) -> None:
        self.stop_all()
        self.start()

    # --- what runs -------------------------------------------------------------------------

    def instances(self, service: str) -> list[ServiceHandle]:
        return [instance.handle() for instance in self._slots(service) if instance.alive]

    def logs(self, lines: int = 50, since: float | None = None) -> dict[str, str]:
        return {instance.label: instance.tail(lines, since) for instance in self._children.all()}

    def log_paths(self) -> dict[str, Path]:
        """The log file of each instance's current process, stdout and stderr together."""
        return {instance.label: instance.log_path for instance in self._children.all()}

    def pids(self) -> dict[str, int]:
        """The process id of every live service instance."""
        return {instance.label: instance.process.pid for instance in self._running()}

    def exit_code(self, service: str, index: int = 0) -> int | None:
        """How the instance's process ended (negative: killed by that signal); None while it runs."""
        return self._slot(service, index).process.poll()

    # --- breaking and repairing ------------------------------------------------------------

    def stop_service(self, service: str, index: int = 0) -> None:
        instance = self._slot(service, index)
        if not instance.alive:
            return
        instance.process.terminate()
        if instance.paused:
            instance.process.send_signal(signal.SIGCONT)
            instance.paused = False
        try:
            instance.process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            instance.process.kill()
            instance.process.wait(timeout=5)
            raise TargetError(
                instance.label, f"exit within {self.stop_timeout:g}s of SIGTERM, so it was killed", instance.tail()
            ) from None

    def terminate_service(self, service: str, index: int = 0) -> None:
        instance = self._live_slot(service, index, "terminate")
        instance.process.terminate()

    def wait_exited(self, service: str, index: int, timeout: float) -> int:
        instance = self._slot(service, index)
        try:
            return instance.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TargetError(instance.label, f"exit within {timeout:g}s of SIGTERM, but it still runs") from None

    def kill_service(self, service: str, index: int = 0) -> None:
        instance = self._slot(service, index)
        if instance.alive:
            instance.process.kill()
            instance.process.wait(timeout=5)
        instance.paused = False

    def pause_service(self, service: str, index: int = 0) -> None:
        instance = self._live_slot(service, index, "pause")
        instance.process.send_signal(signal.SIGSTOP)
        instance.paused = True

    def resume_service(self, service: str, index: int = 0) -> None:
        instance = self._live_slot(service, index, "resume")
        instance.process.send_signal(signal.SIGCONT)
        instance.paused = False

    def start_service(self, service: str, index: int = 0) -> ServiceHandle:
        if self._slot(service, index).alive:
            raise TargetError(f"{service}#{index}", "a stopped instance to start, but it is running")
        instance = self._spawn(service, index)
        self._children.slots[service][index] = instance
        self._wait_ready(instance, time.monotonic() + self.start_timeout)
        return instance.handle()

    def add_instances(self, services: Iterable[str]) -> list[ServiceHandle]:
        """One more instance of each of `services` (named twice, two more) at the next indices, all started at
        once and returned once every one is registered and SERVING.

        Unlike `scale`, stopped instances stay stopped and keep their slot (and log): a rolling restart starts
        the new instances here, then SIGTERMs the old ones (`terminate_service`, `wait_exited`).
        """
        started = []
        for service in services:
            slots = self._slots(service)
            slots.append(self._spawn(service, len(slots)))
            started.append(slots[-1])
        deadline = time.monotonic() + self.start_timeout
        for instance in started:
            self._wait_ready(instance, deadline)
        return [instance.handle() for instance in started]

    def scale(self, service: str, count: int) -> list[ServiceHandle]:
        """Instances 0..count-1 run (stopped ones are started again); higher indices stop gracefully."""
        if count < 0:
            raise ValueError(f"cannot scale {service} to {count} instances")
        slots = self._slots(service)
        for instance in reversed(slots[count:]):
            self.stop_service(service, instance.index)
        del slots[count:]
        started = []
        for index in range(count):
            if index == len(slots):
                slots.append(self._spawn(service, index))
            elif not slots[index].alive:
                slots[index] = self._spawn(service, index)
            else:
                continue
            started.append(slots[index])
        deadline = time.monotonic() + self.start_timeout
        for instance in started:
            self._wait_ready(instance, deadline)
        return self.instances(service)

    def stop_redis(self) -> None:
        self._redis().stop()

    def start_redis(self) -> None:
        if not self._redis().running:
            self._start_redis_server()

    def flush_redis(self) -> None:
        if self._client is None:
            raise TargetError("redis", "a started target to flush, but it is not started")
        self._client.flushall()

    # --- internals -------------------------------------------------------------------------

    def _redis(self) -> RedisServer:
        if self._children.redis is None:
            raise TargetError("redis", "a started local target, but start() has not run or stop_all() has")
        return self._children.redis

    def _start_redis_server(self) -> None:
        server = self._redis()
        try:
            server.start()
        except WaitTimeout as exc:
            tail = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
            raise TargetError("redis", str(exc), "\n".join(tail.splitlines()[-ERROR_LOG_LINES:])) from None

    def _slots(self, service: str) -> list[_Instance]:
        try:
            return self._children.slots[service]
        except KeyError:
            raise ValueError(f"unknown service {service!r}: one of {', '.join(ALL_SERVICES)}") from None

    def _slot(self, service: str, index: int) -> _Instance:
        slots = self._slots(service)
        if not 0 <= index < len(slots):
            raise TargetError(f"{service}#{index}", f"an instance at index {index}, but {service} has {len(slots)}")
        return slots[index]

    def _live_slot(self, service: str, index: int, operation: str) -> _Instance:
        instance = self._slot(service, index)
        if not instance.alive:
            raise TargetError(instance.label, f"a running instance to {operation}, but it is not running")
        return instance

    def _running(self) -> list[_Instance]:
        return [instance for instance in self._children.all() if instance.alive]

    def _spawn(self, service: str, index: int) -> _Instance:
        instance_id = uuid.uuid4().hex
        log_path = self.log_dir / f"{service}-{index}-{instance_id[:8]}.log"
        env = {
            **os.environ, **self._env, **self._identity_env(service),
            "ECOSYSTEM_REDIS_URL": self._redis().url_for(service), "ECOSYSTEM_INSTANCE_ID": instance_id,
        }
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                dying_with_parent([sys.executable, "-m", SERVICE_MODULES[service]]),
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return _Instance(service, index, instance_id, process, log_path)

    def redis_url_for(self, user: str) -> str:
        return self._redis().url_for(user)

    def _identity_env(self, service: str) -> dict[str, str]:
        """Where the service finds its certificate, key and the stack's CA (nothing in plaintext mode)."""
        if self.transport.pki is None:
            return {}
        files = self.transport.pki.files(service)
        return {"ECOSYSTEM_TLS_CA_FILE": str(files.ca), "ECOSYSTEM_TLS_CERT_FILE": str(files.cert),
                "ECOSYSTEM_TLS_KEY_FILE": str(files.key)}

    def _wait_ready(self, instance: _Instance, deadline: float) -> None:
        try:
            self._wait_registered(instance, deadline)
            self._wait_serving(instance, deadline)
        except TargetError:
            if instance.alive:
                instance.process.kill()
                instance.process.wait(timeout=5)
            raise

    def _wait_registered(self, instance: _Instance, deadline: float) -> None:
        assert self._client is not None
        client = self._client

        def registered_endpoint() -> str:
            found = [i for i in lookup_sync(client, instance.service) if i.instance_id == instance.instance_id]
            return found[0].endpoint if found else ""

        instance.endpoint = self._await(
            instance, registered_endpoint, bool, deadline, f"instance {instance.instance_id} is registered in Redis"
        )

    def _wait_serving(self, instance: _Instance, deadline: float) -> None:
        grpc_service = GRPC_SERVICES[instance.service]
        self._await(
            instance,
            lambda: health.check(instance.endpoint, grpc_service, timeout=1.0, transport=self.transport,
                                 server=instance.service),
            lambda status: status == health.SERVING,
            deadline,
            f"{instance.endpoint} answers health Check SERVING for {grpc_service}",
        )

    def _await(
        self, instance: _Instance, probe: Callable[[], T], done: Callable[[T], bool], deadline: float, what: str
    ) -> T:
        """Poll until `done(probe())`; the process exiting first or the deadline passing raise TargetError."""

        def observe() -> T | _Exited:
            code = instance.process.poll()
            return _Exited(code) if code is not None else probe()

        try:
            value = wait_until(
                observe,
                lambda seen: isinstance(seen, _Exited) or done(seen),
                timeout=max(0.0, deadline - time.monotonic()),
                what=f"{instance.label}: {what}",
                interval=POLL_INTERVAL_S,
            )
        except WaitTimeout as exc:
            raise TargetError(instance.label, str(exc), instance.tail()) from None
        if isinstance(value, _Exited):
            raise TargetError(
                instance.label, f"awaited {what}, but it exited with {_describe_exit(value.code)}", instance.tail()
            )
        return value
