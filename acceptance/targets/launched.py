"""LaunchedTarget: any stack a manifest can start, as child processes on loopback ports, with its own Redis.

Each declared service runs its manifest `start.command` with `{python}`, `{port}`, `{host}`, `{redis_url}`
and `{manifest_dir}` filled in (REDIS_URL is in its environment too), in its own process group, from the
repository's folder. A service that does not register itself (`registers_itself = false`) gets a
registrar beside it, `python -m acceptance.register`, which keeps its entry alive while it answers
health SERVING. Once started, the stack is read like any external one, through its registry; the
suite cannot break it (no capabilities).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from acceptance.manifest import DeclaredService, Manifest
from acceptance.processes import dying_with_parent, stop_processes
from acceptance.redis_server import RedisServer, free_port
from acceptance.targets.base import SUITE_TIMINGS, TargetError, lines_since, run_log_dir
from acceptance.targets.external import ExternalTarget
from acceptance.waits import WaitTimeout, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
LOG_TAIL_LINES = 30


@dataclass
class _Child:
    label: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = LOG_TAIL_LINES, since: float | None = None) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join((text if since is None else lines_since(text, since))[-lines:])


def _stop(children: list[_Child], redis_server: RedisServer | None, grace: float) -> None:
    stop_processes([child.process for child in children], grace)
    if redis_server is not None:
        redis_server.close()


class LaunchedTarget(ExternalTarget):
    name = "local"

    def __init__(
        self, manifest: Manifest, *, log_dir: Path | str | None = None, start_timeout: float = 20.0,
        registry_ttl_ms: int = SUITE_TIMINGS.registry_ttl_ms,
    ) -> None:
        not_startable = [service.name for service in manifest.services if service.start is None]
        if not_startable:
            raise TargetError(
                ", ".join(not_startable),
                f"a [services.start] command in {manifest.path} to start it on target local; start the stack "
                "yourself and use TARGET=external REDIS_URL=... instead",
            )
        self._server = RedisServer()
        super().__init__(self._server.url, manifest=manifest, start_timeout=start_timeout)
        self.log_dir = Path(log_dir) if log_dir is not None else run_log_dir()
        self.registry_ttl_ms = registry_ttl_ms
        self._children: list[_Child] = []
        weakref.finalize(self, _stop, self._children, self._server, 5.0)

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._server.start()
        except WaitTimeout as exc:
            raise TargetError("redis", str(exc)) from None
        deadline = time.monotonic() + self.start_timeout
        try:
            for service in self.manifest.services:
                self._launch(service, deadline)
            self._await_registered(deadline)
            self.wait_healthy(max(0.0, deadline - time.monotonic()))
        except BaseException:
            self.stop_all()
            raise

    def logs(self, lines: int = 50, since: float | None = None) -> dict[str, str]:
        return {child.label: child.tail(lines, since) for child in self._children}

    def pids(self) -> dict[str, int]:
        return {child.label: child.process.pid for child in self._children}

    def stop_all(self) -> None:
        _stop(self._children, self._server, grace=5.0)
        super().stop_all()

    def _launch(self, service: DeclaredService, deadline: float) -> None:
        assert service.start is not None
        port = free_port()
        values = {"{python}": sys.executable, "{port}": str(port), "{host}": HOST, "{redis_url}": self.redis_url,
                  "{manifest_dir}": str(self.manifest.path.resolve().parent)}
        command = [_fill(argument, values) for argument in service.start.command]
        server = self._spawn(service.name, command)
        if service.start.registers_itself:
            return
        self._await_port(server, port, deadline)
        self._spawn(f"{service.name}-registrar", [
            sys.executable, "-m", "acceptance.register", "--redis-url", self.redis_url, "--service", service.name,
            "--host", HOST, "--port", str(port), "--version", service.version or "unversioned",
            "--health-service", service.health_service, "--ttl-ms", str(self.registry_ttl_ms),
        ])

    def _spawn(self, label: str, command: list[str]) -> _Child:
        log_path = self.log_dir / f"{label}.log"
        with log_path.open("wb") as log:
            try:
                process = subprocess.Popen(
                    dying_with_parent(command), cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                    env={**os.environ, "PYTHONUNBUFFERED": "1", "REDIS_URL": self.redis_url},
                )
            except OSError as exc:
                raise TargetError(label, f"its command {command} to start: {exc}") from None
        child = _Child(label, process, log_path)
        self._children.append(child)
        return child

    def _await_registered(self, deadline: float) -> None:
        """Every declared service has a SERVING entry, unless one of the processes exits first."""

        def progress() -> tuple[list[_Child], list[str]]:
            exited = [child for child in self._children if child.process.poll() is not None]
            return exited, [name for name in self.manifest.service_names if not self.instances(name)]

        try:
            exited, _ = wait_until(progress, lambda seen: bool(seen[0]) or not seen[1],
                                   timeout=max(0.0, deadline - time.monotonic()),
                                   what="every declared service has a SERVING entry in the registry", interval=0.1)
        except WaitTimeout as exc:
            missing = [name for name in self.manifest.service_names if not self.instances(name)]
            explained = [self.reading(name).explain_none() for name in missing]
            logs = [f"--- {child.label} ---\n{child.tail()}" for child in self._children
                    if child.label.removesuffix("-registrar") in missing]
            raise TargetError(", ".join(missing), "\n".join([str(exc), *explained, *logs])) from None
        if exited:
            child = exited[0]
            raise TargetError(child.label, f"to keep running, but it exited with {child.process.returncode}",
                              child.tail())

    def _await_port(self, child: _Child, port: int, deadline: float) -> None:
        """The server listens before its registrar advertises it."""

        def listening() -> bool | int:
            code = child.process.poll()
            if code is not None:
                return code
            with socket.socket() as probe:
                return probe.connect_ex((HOST, port)) == 0

        try:
            seen = wait_until(listening, lambda v: v is True or not isinstance(v, bool),
                              timeout=max(0.0, deadline - time.monotonic()),
                              what=f"{child.label} listens on {HOST}:{port}", interval=0.05)
        except WaitTimeout as exc:
            raise TargetError(child.label, str(exc), child.tail()) from None
        if seen is not True:
            raise TargetError(child.label, f"to listen on {HOST}:{port}, but it exited with {seen}", child.tail())


def _fill(argument: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        argument = argument.replace(placeholder, value)
    return argument
