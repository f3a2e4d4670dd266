"""DockerTarget: the ecosystem as containers, started with Compose and broken with Docker itself.

    target = DockerTarget()
    target.otlp_bind_host           # creates the run's network; the suite's OTLP receiver listens on its gateway
    target.start()                  # images (cached), `compose up -d`, registered + SERVING through published ports

Each run is a Compose project of its own (`ecosystem-<random>`) on a network the target creates, so
containers reach the suite's OTLP receiver on that network's gateway and nothing else. Containers are
found by the labels Compose v1 and v2 both set (`com.docker.compose.project/service/container-number`);
an instance's index is its rank by container number. Services register the container's host name, the
suite reaches them through their ports published on 127.0.0.1. Every container and the network carry
`org.ecosystem.suite.owner=<host>:<pid>`: a later run removes what a run whose process is gone left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import docker
import redis
import requests
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.models.networks import Network

from acceptance import health
from acceptance.images import ensure_images
from acceptance.redis_acl import redact
from acceptance.secrets import create as create_secrets
from acceptance.targets.base import (
    SUITE_TIMINGS,
    ServiceHandle,
    StackTarget,
    SuiteTimings,
    TargetError,
    lines_since,
    run_log_dir,
)
from acceptance.waits import WaitTimeout, wait_until
from ecosystem.discovery import lookup_sync
from ecosystem.names import ALL_SERVICES, GRPC_SERVICES
from ecosystem.security import SECURE

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = (REPO_ROOT / "compose" / "docker-compose.yml", REPO_ROOT / "compose" / "docker-compose.suite.yml")
SERVICE_PORT = "50051/tcp"
REDIS_PORT = "6379/tcp"
REDIS = "redis"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
OWNER_LABEL = "org.ecosystem.suite.owner"
STACK_LABEL = "org.ecosystem.stack"
ALIVE = ("running", "paused")
ERROR_LOG_LINES = 30
POLL_INTERVAL_S = 0.1
COMPOSE_DOWN_TIMEOUT_S = 120.0


def compose_command() -> list[str]:
    """`docker compose` (v2) where the plugin exists, else `docker-compose` (v1)."""
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if plugin.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise TargetError("docker target", "`docker compose` or `docker-compose` on PATH, but there is neither")


def sweep_leftovers(client: docker.DockerClient, log: Callable[[str], None] = print) -> None:
    """Remove containers and networks of earlier runs on this host whose suite process no longer exists."""
    host = socket.gethostname()

    def orphaned(labels: Mapping[str, str]) -> bool:
        owner_host, _, pid = labels.get(OWNER_LABEL, "").rpartition(":")
        if owner_host != host or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
        if orphaned(container.labels):
            log(f"docker target: removing {container.name}, left by an earlier run ({container.labels[OWNER_LABEL]})")
            with contextlib.suppress(NotFound):
                container.remove(force=True, v=True)
    for network in client.networks.list(filters={"label": OWNER_LABEL}):
        if orphaned(network.attrs.get("Labels") or {}):
            log(f"docker target: removing network {network.name}, left by an earlier run")
            with contextlib.suppress(NotFound):
                network.remove()


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class _Exited:
    status: str
    code: int


class _Run:
    """What one DockerTarget created, kept apart from it so the safety net can remove it without the target."""

    def __init__(self, compose: list[str], project: str) -> None:
        self.compose = compose
        self.project = project
        self.env: dict[str, str] = {}
        self.network_name = ""
        self.composed = False

    def compose_args(self, *args: str) -> list[str]:
        files = [arg for path in COMPOSE_FILES for arg in ("-f", str(path))]
        return [*self.compose, "-p", self.project, *files, *args]

    def down(self, client: docker.DockerClient, *, keep_network: bool = False) -> None:
        if self.composed:
            # A paused container cannot be stopped.
            for container in client.containers.list(filters={"label": f"{PROJECT_LABEL}={self.project}"}):
                if container.status == "paused":
                    with contextlib.suppress(APIError):
                        container.unpause()
            subprocess.run(
                self.compose_args("down", "--volumes", "--remove-orphans", "--timeout", "10"),
                cwd=REPO_ROOT, env={**os.environ, **self.env}, capture_output=True, timeout=COMPOSE_DOWN_TIMEOUT_S,
                check=False,
            )
            self.composed = False
        # Whatever compose did not remove (a failed `up`, a container it no longer knows) goes too.
        for container in client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"}):
            with contextlib.suppress(NotFound):
                container.remove(force=True, v=True)
        if self.network_name and not keep_network:
            with contextlib.suppress(NotFound):
                client.networks.get(self.network_name).remove()
            self.network_name = ""


class DockerTarget(StackTarget):
    """The ecosystem as Compose containers; supports every capability, network partitions included."""

    name = "docker"
    capabilities = frozenset({"stop", "kill", "pause", "restart", "scale", "redis", "partition"})

    def __init__(
        self,
        *,
        log_dir: Path | str | None = None,
        timings: SuiteTimings = SUITE_TIMINGS,
        start_timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
        security: str = SECURE,
    ) -> None:
        """`env` overrides the variables compose/docker-compose.yml reads (ECOSYSTEM_REGISTRY_TTL_MS, ...).

        The stack's secrets (acceptance/secrets.py: certificates in `secure` mode, Redis users) are made fresh
        in `log_dir`/secrets and bind-mounted read-only into the containers.
        """
        self.log_dir = Path(log_dir) if log_dir is not None else run_log_dir("-docker")
        self.security = security
        self._secrets = create_secrets(self.log_dir / "secrets", security)
        self.transport = self._secrets.transport
        if security == SECURE:
            self.capabilities = self.capabilities | {"security"}
        self.timings = timings
        self.start_timeout = start_timeout
        self.stop_timeout = timings.stop_timeout_s
        self._docker = docker.from_env()
        self._run = _Run(compose_command(), f"ecosystem-{uuid.uuid4().hex[:10]}")
        self._run.env = {
            "ECOSYSTEM_SUITE_OWNER": f"{socket.gethostname()}:{os.getpid()}",
            **timings.environment(),
            "ECOSYSTEM_STOP_GRACE_PERIOD": f"{self.stop_timeout:g}s",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "",
            **self._secrets.compose_env(),
            **(env or {}),
        }
        self._network: Network | None = None
        self._redis_port = 0
        self._client: redis.Redis | None = None
        self._started = False
        # (container id, start time) -> the instance id that process registered.
        self._instance_ids: dict[tuple[str, str], str] = {}
        # Partitioned container id -> its aliases on the network, given back on reconnect.
        self._partitioned: dict[str, list[str]] = {}
        # Safety net: a target dropped or left running at interpreter exit still removes its containers.
        weakref.finalize(self, self._run.down, self._docker)

    @property
    def project(self) -> str:
        return self._run.project

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def otlp_bind_host(self) -> str:
        """The gateway of the run's network: the host's address the containers can reach."""
        network = self._ensure_network()
        return network.attrs["IPAM"]["Config"][0]["Gateway"]

    def export_traces_to(self, endpoint: str) -> None:
        self._run.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint

    @property
    def redis_url(self) -> str:
        if not self._redis_port:
            raise TargetError(REDIS, "a started docker target, but start() has not run")
        return self._secrets.redis_url(f"127.0.0.1:{self._redis_port}")

    def redis_url_for(self, user: str) -> str:
        if self._secrets.users is None:
            return self.redis_url
        return self._secrets.users.url(f"redis://127.0.0.1:{self._redis_port}/0", user)

    def start(self) -> None:
        if self._started:
            raise TargetError("docker target", "a target not yet started, but start() already ran")
        self._started = True
        try:
            self._ensure_network()
            self._run.env.update(ensure_images(log=lambda line: print(line, flush=True)).compose_env())
            self._compose_up()
        except BaseException:
            self.stop_all()
            raise

    def rebuild(self) -> None:
        """Fresh containers and an empty Redis on the same network (the OTLP receiver listens on its gateway)."""
        self._save_logs()
        self._run.down(self._docker, keep_network=True)
        self._instance_ids.clear()
        self._partitioned.clear()
        if self._client is not None:
            self._client.close()
        try:
            self._compose_up()
        except BaseException:
            self.stop_all()
            raise

    def _compose_up(self) -> None:
        self._redis_port = _free_loopback_port()
        self._run.env["ECOSYSTEM_REDIS_HOST_PORT"] = str(self._redis_port)
        started = time.monotonic()
        self._run.composed = True
        self._compose("up", "--detach", "--no-build")
        self._client = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        deadline = time.monotonic() + self.start_timeout
        for service in ALL_SERVICES:
            for container in self._containers(service):
                self._wait_ready(service, container, deadline)
        print(f"docker target: project {self.project} up and SERVING in {time.monotonic() - started:.1f}s", flush=True)

    def wait_healthy(self, timeout: float = 20.0) -> None:
        """Every running, unpaused, connected container answers SERVING (the others cannot answer)."""
        deadline = time.monotonic() + timeout
        for service in ALL_SERVICES:
            for container in self._containers(service):
                if container.status == "running" and container.id not in self._partitioned:
                    self._wait_ready(service, container, deadline)

    def restore(self) -> None:
        if self._redis_container().status != "running":
            self.start_redis()
        for container_id in list(self._partitioned):
            self._reconnect(self._docker.containers.get(container_id))
        for service in ALL_SERVICES:
            for container in self._containers(service):
                if container.status == "paused":
                    container.unpause()
            self.scale(service, 1)
        # After a Redis restart or flush the services' heartbeats write their entries again.
        self.wait_healthy(self.start_timeout)

    def stop_all(self) -> None:
        if self._run.composed:
            self._save_logs()
        self._run.down(self._docker)
        self._network = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- what runs -------------------------------------------------------------------------

    def instances(self, service: str) -> list[ServiceHandle]:
        return [
            self._handle(service, index, container)
            for index, container in enumerate(self._containers(service))
            if container.status in ALIVE
        ]

    def logs(self, lines: int = 50, since: float | None = None) -> dict[str, str]:
        found = {}
        for service in (REDIS, *ALL_SERVICES):
            for index, container in enumerate(self._containers(service)):
                if since is None:
                    text = container.logs(tail=lines).decode(errors="replace")
                else:
                    # Docker filters by whole seconds; the lines' own timestamps cut the rest.
                    raw = container.logs(since=int(since)).decode(errors="replace").splitlines()
                    text = "\n".join(lines_since(raw, since)[-lines:])
                found[f"{service}#{index}"] = text
        return found

    # --- breaking and repairing ------------------------------------------------------------

    def stop_service(self, service: str, index: int = 0) -> None:
        container = self._container(service, index)
        if container.status not in ALIVE:
            return
        if container.status == "paused":
            container.unpause()
        container.stop(timeout=int(self.stop_timeout + 0.999))
        container.reload()
        code = container.attrs["State"]["ExitCode"]
        if code != 0:
            raise TargetError(
                self._label(service, index),
                f"exit 0 within {self.stop_timeout:g}s of SIGTERM, but it exited with {code}",
                self._tail(container),
            )

    def terminate_service(self, service: str, index: int = 0) -> None:
        self._alive_container(service, index, "terminate").kill(signal="SIGTERM")

    def wait_exited(self, service: str, index: int, timeout: float) -> int:
        container = self._container(service, index)
        try:
            return int(container.wait(timeout=timeout)["StatusCode"])
        except (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout):
            raise TargetError(
                self._label(service, index), f"exit within {timeout:g}s of SIGTERM, but it still runs"
            ) from None

    def kill_service(self, service: str, index: int = 0) -> None:
        container = self._container(service, index)
        if container.status == "paused":
            container.unpause()
        if container.status in ALIVE:
            container.kill()
            container.wait(timeout=10)

    def pause_service(self, service: str, index: int = 0) -> None:
        self._alive_container(service, index, "pause").pause()

    def resume_service(self, service: str, index: int = 0) -> None:
        self._alive_container(service, index, "resume").unpause()

    def start_service(self, service: str, index: int = 0) -> ServiceHandle:
        container = self._container(service, index)
        if container.status in ALIVE:
            raise TargetError(self._label(service, index), "a stopped instance to start, but it is running")
        container.start()
        self._wait_ready(service, container, time.monotonic() + self.start_timeout)
        return self._handle(service, index, container)

    def scale(self, service: str, count: int) -> list[ServiceHandle]:
        """Containers 0..count-1 run (stopped ones are started again); Compose stops and removes the others."""
        if count < 0:
            raise ValueError(f"cannot scale {service} to {count} instances")
        if len(self._containers(service)) != count:
            self._compose("up", "--detach", "--no-build", "--no-deps", "--no-recreate", "--scale", f"{service}={count}",
                          service)
        containers = self._containers(service)
        for container in containers:
            if container.status not in ALIVE:
                container.start()
        deadline = time.monotonic() + self.start_timeout
        for container in self._containers(service):
            self._wait_ready(service, container, deadline)
        return self.instances(service)

    def stop_redis(self) -> None:
        self._redis_container().stop(timeout=5)

    def start_redis(self) -> None:
        container = self._redis_container()
        if container.status != "running":
            container.start()
        assert self._client is not None
        client = self._client

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        self._await(REDIS, container, answers, bool, time.monotonic() + self.start_timeout,
                    f"Redis answers PING at {redact(self.redis_url)}")

    def flush_redis(self) -> None:
        if self._client is None:
            raise TargetError(REDIS, "a started target to flush, but it is not started")
        self._client.flushall()

    def partition_service(self, service: str, index: int = 0) -> None:
        """Disconnect the container from the run's network: nothing reaches it, it reaches nothing."""
        container = self._alive_container(service, index, "partition")
        network = self._ensure_network()
        aliases = container.attrs["NetworkSettings"]["Networks"].get(network.name, {}).get("Aliases") or []
        network.disconnect(container)
        self._partitioned[container.id] = aliases

    def heal_partition(self, service: str, index: int = 0) -> None:
        self._reconnect(self._container(service, index))

    # --- internals -------------------------------------------------------------------------

    def _ensure_network(self) -> Network:
        if self._network is None:
            sweep_leftovers(self._docker, log=lambda line: print(line, flush=True))
            name = f"{self.project}_net"
            self._network = self._docker.networks.create(
                name,
                driver="bridge",
                labels={
                    OWNER_LABEL: self._run.env["ECOSYSTEM_SUITE_OWNER"],
                    STACK_LABEL: "reference-ecosystem",
                    PROJECT_LABEL: self.project,
                },
            )
            self._network.reload()
            self._run.network_name = name
            self._run.env["ECOSYSTEM_NETWORK"] = name
        return self._network

    def _reconnect(self, container: Container) -> None:
        aliases = self._partitioned.pop(container.id, None)
        if aliases is not None:
            self._ensure_network().connect(container, aliases=aliases)

    def _compose(self, *args: str) -> None:
        command = self._run.compose_args(*args)
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env={**os.environ, **self._run.env},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            output, _ = process.communicate(timeout=self.start_timeout)
        except BaseException:
            process.kill()
            process.wait()
            raise
        if process.returncode != 0:
            raise TargetError("compose", f"`{' '.join(command)}` to exit 0, but it exited {process.returncode}",
                              output)

    def _containers(self, service: str) -> list[Container]:
        if service != REDIS and service not in ALL_SERVICES:
            raise ValueError(f"unknown service {service!r}: one of {', '.join(ALL_SERVICES)}")
        found = self._docker.containers.list(
            all=True, filters={"label": [f"{PROJECT_LABEL}={self.project}", f"{SERVICE_LABEL}={service}"]}
        )
        return sorted(found, key=lambda container: int(container.labels.get(NUMBER_LABEL, "0")))

    def _container(self, service: str, index: int) -> Container:
        containers = self._containers(service)
        if not 0 <= index < len(containers):
            raise TargetError(self._label(service, index),
                              f"an instance at index {index}, but {service} has {len(containers)}")
        return containers[index]

    def _alive_container(self, service: str, index: int, operation: str) -> Container:
        container = self._container(service, index)
        if container.status not in ALIVE:
            raise TargetError(self._label(service, index), f"a running instance to {operation}, but it is not running")
        return container

    def _redis_container(self) -> Container:
        containers = self._containers(REDIS)
        if not containers:
            raise TargetError(REDIS, f"a redis container in project {self.project}, but there is none")
        return containers[0]

    @staticmethod
    def _label(service: str, index: int) -> str:
        return f"{service}#{index}"

    @staticmethod
    def _endpoint(container: Container) -> str:
        bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get(SERVICE_PORT) or []
        return f"127.0.0.1:{bindings[0]['HostPort']}" if bindings else ""

    @staticmethod
    def _run_key(container: Container) -> tuple[str, str]:
        return container.id, container.attrs["State"]["StartedAt"]

    def _handle(self, service: str, index: int, container: Container) -> ServiceHandle:
        instance_id = self._instance_ids.get(self._run_key(container), "")
        return ServiceHandle(service, index, instance_id, self._endpoint(container))

    def _registered_id(self, service: str, container: Container) -> str:
        """The instance id the container's current process registered; "" until it has."""
        key = self._run_key(container)
        known = self._instance_ids.get(key)
        earlier = {value for (cid, _), value in self._instance_ids.items() if cid == container.id and value != known}
        hostname = container.attrs["Config"]["Hostname"]
        assert self._client is not None
        try:
            entries = lookup_sync(self._client, service)
        except Exception:
            return ""
        mine = [e for e in entries if e.host == hostname and e.instance_id not in earlier]
        if known is not None:
            return known if any(e.instance_id == known for e in mine) else ""
        if not mine:
            return ""
        newest = max(mine, key=lambda e: e.started_at_ms)
        self._instance_ids[key] = newest.instance_id
        return newest.instance_id

    def _wait_ready(self, service: str, container: Container, deadline: float) -> None:
        """The container's process is registered in Redis and answers SERVING through its published port."""
        container.reload()
        label = f"{service} container {container.name}"
        hostname = container.attrs["Config"]["Hostname"]
        self._await(label, container, lambda: self._registered_id(service, container), bool, deadline,
                    f"the process in {container.name} is registered in Redis under host {hostname}")
        grpc_service = GRPC_SERVICES[service]

        def status() -> str:
            endpoint = self._endpoint(container)
            try:
                if not endpoint:
                    return "no published port"
                return health.check(endpoint, grpc_service, timeout=1.0, transport=self.transport, server=service)
            except health.HealthCheckError as exc:
                return str(exc)

        self._await(label, container, status, lambda seen: seen == health.SERVING, deadline,
                    f"{container.name} answers health Check SERVING for {grpc_service} on its published port")

    def _await(
        self, label: str, container: Container, probe: Callable[[], T], done: Callable[[T], bool], deadline: float,
        what: str,
    ) -> T:
        """Poll until `done(probe())`; the container exiting first or the deadline passing raise TargetError."""

        def observe() -> T | _Exited:
            container.reload()
            if container.status not in ALIVE:
                return _Exited(container.status, container.attrs["State"]["ExitCode"])
            return probe()

        try:
            value: Any = wait_until(
                observe,
                lambda seen: isinstance(seen, _Exited) or done(seen),
                timeout=max(0.0, deadline - time.monotonic()),
                what=f"{label}: {what}",
                interval=POLL_INTERVAL_S,
            )
        except WaitTimeout as exc:
            raise TargetError(label, str(exc), self._tail(container)) from None
        if isinstance(value, _Exited):
            raise TargetError(
                label, f"awaited {what}, but the container is {value.status} with exit code {value.code}",
                self._tail(container),
            )
        return value

    @staticmethod
    def _tail(container: Container, lines: int = ERROR_LOG_LINES) -> str:
        try:
            return container.logs(tail=lines).decode(errors="replace")
        except (NotFound, APIError):
            return ""

    def _save_logs(self) -> None:
        """Every container's whole log to log_dir, before `down` removes the containers."""
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            for service in (REDIS, *ALL_SERVICES):
                for index, container in enumerate(self._containers(service)):
                    path = self.log_dir / f"{service}-{index}-{container.short_id}.log"
                    path.write_bytes(container.logs())
        except (APIError, OSError) as exc:
            print(f"docker target: could not save the containers' logs to {self.log_dir}: {exc}", flush=True)
