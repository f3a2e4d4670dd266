"""What the docker and swarm targets share: each instance a container on this engine, broken through the docker SDK.

`ContainerTarget` reads the containers' state, logs and readiness (registered in Redis under the host its process
advertises, SERVING on its port published on the node), stops, kills, pauses and partitions them, and reaches the
stack's Redis on its port published on 127.0.0.1. A subclass says how the stack comes up and goes
(`_prepare`, `_bring_up`, `_take_down`: `start` and `rebuild` here stop everything when one fails), how its containers
are found (`_containers`, `_run_containers`), which host its services register (`_advertised_host`), which network a
partition cuts and how a container is connected to it again (`_reconnection`), and how instances are scaled and
started again. The containers the target stops, kills or sends SIGTERM itself are remembered (`_ended_by_target`), so
a target under an orchestrator can tell the exits the suite caused from the ones it must report.

Everything a run creates carries `org.ecosystem.suite.owner=<host>:<pid>`; `sweep_leftovers` removes what a run whose
process is gone left behind: its stacks, containers and networks, and a swarm a suite run made once nothing uses it.
A run that uses the engine's swarm says so with a file of its own in SWARM_HOLDERS, and joins or leaves the swarm
under one lock per host, so runs sharing the engine (parallel workers) never leave a swarm another one still uses."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import tempfile
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import docker
import redis
import requests
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from acceptance import health
from acceptance.redis_acl import redact
from acceptance.secrets import create as create_secrets
from acceptance.targets.base import REPO_ROOT, ServiceHandle, StackTarget, SuiteTimings, TargetError, lines_since
from acceptance.waits import WaitTimeout, wait_until
from ecosystem.discovery import lookup_sync
from ecosystem.names import ALL_SERVICES, GRPC_SERVICES
from ecosystem.security import SECURE

T = TypeVar("T")

SERVICE_PORT = "50051/tcp"
REDIS = "redis"
OWNER_LABEL = "org.ecosystem.suite.owner"
# The stack both container targets start: Compose runs it as it is, swarm renders it into a stack file.
COMPOSE_FILE = REPO_ROOT / "compose" / "docker-compose.yml"
STACK_LABEL = "org.ecosystem.stack"
NAMESPACE_LABEL = "com.docker.stack.namespace"
# On the swarm spec: the owner of the suite run that made the swarm (a swarm without it is the user's).
SWARM_MAKER_LABEL = "org.ecosystem.suite.swarm-maker"
GWBRIDGE = "docker_gwbridge"
# On the swarm spec: docker_gwbridge did not exist before the suite made the swarm, so it goes when the swarm does.
SWARM_GWBRIDGE_LABEL = "org.ecosystem.suite.swarm-gwbridge"
GWBRIDGE_CAME_WITH_SWARM = "came-with-the-swarm"
ALIVE = ("running", "paused")
ERROR_LOG_LINES = 30
POLL_INTERVAL_S = 0.1
# Compose down or stack rm: every container drains within its stop grace period, then the network goes.
TEARDOWN_TIMEOUT_S = 120.0
# The host's record of which suite processes use the engine's swarm (one empty file each), and its lock.
SWARM_HOLDERS = Path(tempfile.gettempdir()) / "org.ecosystem.suite.swarm"


def owner() -> str:
    """This run's owner label value."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_gone(owner_value: str) -> bool:
    """Whether the suite process an owner label names is gone (one on another host is never judged gone)."""
    owner_host, _, pid = owner_value.rpartition(":")
    if owner_host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def orphaned(labels: Mapping[str, str] | None) -> bool:
    return OWNER_LABEL in (labels or {}) and process_gone((labels or {})[OWNER_LABEL])


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def swarm_lock() -> Iterator[None]:
    """Held while a run joins or leaves this engine's swarm, or says it uses it (the files are never removed)."""
    SWARM_HOLDERS.mkdir(exist_ok=True)
    with (SWARM_HOLDERS / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def hold_swarm(held: bool) -> None:
    """Say (or stop saying) that this process uses the engine's swarm; under `swarm_lock`."""
    holder = SWARM_HOLDERS / owner()
    if held:
        holder.touch()
    else:
        holder.unlink(missing_ok=True)


def _swarm_held() -> bool:
    """Whether a live suite process uses the engine's swarm; the records of processes that are gone are dropped."""
    held = False
    for holder in SWARM_HOLDERS.glob("[!.]*"):
        if process_gone(holder.name):
            holder.unlink(missing_ok=True)
        else:
            held = True
    return held


def swarm_manager(client: docker.DockerClient) -> bool:
    """This engine is a manager of an active swarm: it can list and change services and stacks."""
    state = client.info()["Swarm"]
    return state["LocalNodeState"] == "active" and bool(state["ControlAvailable"])


def checked_service(service: str) -> str:
    """`service` if the stack runs it (Redis or one of the services); ValueError naming the known ones otherwise."""
    if service != REDIS and service not in ALL_SERVICES:
        raise ValueError(f"unknown service {service!r}: one of {', '.join(ALL_SERVICES)}")
    return service


def unpause_all(client: docker.DockerClient, label: str) -> None:
    """Unpause every paused container carrying `label` ("key=value"): a paused container cannot be stopped."""
    for container in client.containers.list(filters={"label": label, "status": "paused"}):
        with contextlib.suppress(APIError):
            container.unpause()


def stack_leftovers(client: docker.DockerClient, namespace: str) -> list[str]:
    """What of stack `namespace` is still there: its services, containers, networks and secrets."""
    if not swarm_manager(client):
        return []  # no swarm, no stack
    label = {"label": f"{NAMESPACE_LABEL}={namespace}"}
    return (
        [f"service {service.name}" for service in client.services.list(filters=label)]
        + [f"container {container.name}" for container in client.containers.list(all=True, filters=label)]
        + [f"network {network.name}" for network in client.networks.list(filters=label)]
        + [f"secret {secret.name}" for secret in client.secrets.list(filters=label)]
    )


def remove_stack(client: docker.DockerClient, namespace: str, timeout: float = TEARDOWN_TIMEOUT_S) -> None:
    """`docker stack rm`, then wait until the stack's services, containers, networks and secrets are all gone (the
    command returns while they are still going, and a stack deployed again under the name meanwhile would fail)."""
    if not swarm_manager(client):
        return  # no swarm, no stack
    unpause_all(client, f"{NAMESPACE_LABEL}={namespace}")
    removal = subprocess.run(["docker", "stack", "rm", namespace], capture_output=True, text=True, timeout=timeout,
                             check=False)
    try:
        wait_until(lambda: stack_leftovers(client, namespace), lambda found: not found, timeout=timeout,
                   what=f"stack {namespace} is removed", interval=POLL_INTERVAL_S * 5)
    except WaitTimeout as exc:
        raise TargetError(f"stack {namespace}", str(exc), removal.stdout + removal.stderr) from None


def leave_swarm_if_idle(client: docker.DockerClient, log: Callable[[str], None]) -> None:
    """Leave the swarm if a suite run made it and no live suite process uses it or runs a service on it, and remove
    the docker_gwbridge network that came with it; under `swarm_lock`. A swarm the suite did not make is never left."""
    if not swarm_manager(client):
        return
    client.swarm.reload()
    labels = client.swarm.attrs["Spec"].get("Labels") or {}
    if SWARM_MAKER_LABEL not in labels or _swarm_held() or client.services.list():
        return
    client.swarm.leave(force=True)
    log("swarm: left the one-node swarm a suite run made")
    if labels.get(SWARM_GWBRIDGE_LABEL) == GWBRIDGE_CAME_WITH_SWARM:
        with contextlib.suppress(NotFound, APIError):  # gone, or a container still uses it
            client.networks.get(GWBRIDGE).remove()


def sweep_leftovers(client: docker.DockerClient, log: Callable[[str], None] = print) -> None:
    """Remove what earlier runs on this host left behind once their suite process is gone: their stacks first (a task
    container removed alone is started again by swarm), then their containers and networks, then a swarm a suite
    run made once nothing runs on it."""
    with swarm_lock():
        if swarm_manager(client):
            labelled = [service.attrs["Spec"].get("Labels") or {}
                        for service in client.services.list(filters={"label": OWNER_LABEL})]
            labelled += [network.attrs.get("Labels") or {}
                         for network in client.networks.list(filters={"label": OWNER_LABEL})]
            for namespace in sorted({labels[NAMESPACE_LABEL] for labels in labelled
                                     if NAMESPACE_LABEL in labels and orphaned(labels)}):
                log(f"swarm: removing stack {namespace}, left by an earlier run")
                remove_stack(client, namespace)
        for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
            if orphaned(container.labels):
                log(f"docker: removing {container.name}, left by an earlier run ({container.labels[OWNER_LABEL]})")
                with contextlib.suppress(NotFound):
                    container.remove(force=True, v=True)
        for network in client.networks.list(filters={"label": OWNER_LABEL}):
            if orphaned(network.attrs.get("Labels")):
                try:
                    network.remove()
                except (NotFound, APIError):
                    continue  # gone, or in use: docker_gwbridge while a swarm routes through it goes with the swarm
                log(f"docker: removed network {network.name}, left by an earlier run")
        leave_swarm_if_idle(client, log)


@dataclass(frozen=True)
class _Exited:
    status: str
    code: int


class ContainerTarget(StackTarget):
    """The ecosystem as containers on this docker engine; every fault goes through the docker SDK."""

    def __init__(
        self, *, log_dir: Path, timings: SuiteTimings, start_timeout: float, security: str,
        env: Mapping[str, str] | None,
    ) -> None:
        """The stack's secrets (acceptance/secrets.py: certificates in `secure` mode, Redis users) are made fresh in
        `log_dir`/secrets; `env` overrides the variables the compose files read (ECOSYSTEM_REGISTRY_TTL_MS, ...)."""
        self.log_dir = log_dir
        self.security = security
        self._secrets = create_secrets(self.log_dir / "secrets", security)
        self.transport = self._secrets.transport
        if security == SECURE:
            self.capabilities = self.capabilities | {"security"}
        self.timings = timings
        self.start_timeout = start_timeout
        self.stop_timeout = timings.stop_timeout_s
        self._docker = docker.from_env()
        # The variables the compose files read.
        self._env: dict[str, str] = {
            "ECOSYSTEM_SUITE_OWNER": owner(),
            **timings.environment(),
            "ECOSYSTEM_STOP_GRACE_PERIOD": f"{self.stop_timeout:g}s",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "",
            **self._secrets.compose_env(),
            **(env or {}),
        }
        self._started = False
        self._redis_port = 0
        self._client: redis.Redis | None = None
        # (container id, start time) -> the instance id that process registered.
        self._instance_ids: dict[tuple[str, str], str] = {}
        # Partitioned container id -> what connects it to the network again as it was.
        self._partitioned: dict[str, dict[str, Any]] = {}
        # The containers this target stopped, killed or sent SIGTERM itself: their exits are the suite's doing.
        self._ended_by_target: set[str] = set()
        # (service, index) -> the container sent SIGTERM, whose exit `wait_exited` awaits: under an orchestrator
        # the index may already name its replacement.
        self._terminated: dict[tuple[str, int], Container] = {}

    def tools(self) -> dict[str, str]:
        return {"engine": f"docker {self._docker.version().get('Version', 'unknown')}"}

    # --- what a subclass says ----------------------------------------------------------------

    @abstractmethod
    def _prepare(self) -> None:
        """What the stack needs before it first comes up: the network or swarm it runs on, its images."""

    @abstractmethod
    def _bring_up(self) -> None:
        """The stack's containers started, each registered and SERVING (Redis answering) within start_timeout."""

    @abstractmethod
    def _take_down(self) -> None:
        """The stack's containers removed; what `_prepare` made stays, for `_bring_up` to start on again."""

    @abstractmethod
    def _containers(self, service: str) -> list[Container]:
        """The containers of `service` (or Redis), by instance index, running or not."""

    @abstractmethod
    def _run_containers(self) -> list[Container]:
        """Every container this run started, replaced ones included: whose logs are saved."""

    @abstractmethod
    def _advertised_host(self, container: Container) -> str:
        """The host the service in `container` registers in Redis."""

    @property
    @abstractmethod
    def _network_name(self) -> str:
        """The network a partition disconnects a container from."""

    @abstractmethod
    def _reconnection(self, container: Container) -> dict[str, Any]:
        """The arguments of `Network.connect` that give `container` back what it had on the network."""

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            raise TargetError(f"{self.name} target", "a target not yet started, but start() already ran")
        self._started = True
        with self._stopped_on_failure():
            self._prepare()
            self._bring_up()

    def rebuild(self) -> None:
        """Fresh containers and an empty Redis where the stack ran (the OTLP receiver's address holds)."""
        self._save_logs()
        self._take_down()
        self._instance_ids.clear()
        self._partitioned.clear()
        self._ended_by_target.clear()
        self._terminated.clear()
        with self._stopped_on_failure():
            self._bring_up()

    @contextlib.contextmanager
    def _stopped_on_failure(self) -> Iterator[None]:
        """Whatever fails (an interrupt too), nothing is left running: `stop_all`, then the failure goes on."""
        try:
            yield
        except BaseException:
            self.stop_all()
            raise

    # --- Redis ---------------------------------------------------------------------------------

    def export_traces_to(self, endpoint: str) -> None:
        self._env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint

    @property
    def redis_url(self) -> str:
        if not self._redis_port:
            raise TargetError(REDIS, f"a started {self.name} target, but start() has not run")
        return self._secrets.redis_url(f"127.0.0.1:{self._redis_port}")

    def redis_url_for(self, user: str) -> str:
        if self._secrets.users is None:
            return self.redis_url
        return self._secrets.users.url(f"redis://127.0.0.1:{self._redis_port}/0", user)

    def _publish_redis_port(self) -> None:
        """A free loopback port for the stack's Redis: chosen before it starts, so its address holds across restarts."""
        self._redis_port = free_loopback_port()
        self._env["ECOSYSTEM_REDIS_HOST_PORT"] = str(self._redis_port)
        self._close_redis()
        self._client = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)

    def _close_redis(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _redis_problem(self) -> str:
        """Why the stack's Redis does not answer PING; empty once it does."""
        if self._client is None:
            return "the target has no Redis client (not started)"
        try:
            return "" if self._client.ping() else "PING got no PONG"
        except redis.RedisError as exc:
            return f"PING at {redact(self.redis_url)} failed: {exc}"

    def stop_redis(self) -> None:
        container = self._redis_container()
        self._ended_by_target.add(container.id)
        container.stop(timeout=5)

    def flush_redis(self) -> None:
        if self._client is None:
            raise TargetError(REDIS, "a started target to flush, but it is not started")
        self._client.flushall()

    # --- what runs -----------------------------------------------------------------------------

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

    # --- breaking and repairing ----------------------------------------------------------------

    def stop_service(self, service: str, index: int = 0) -> None:
        container = self._container(service, index)
        if container.status not in ALIVE:
            return
        if container.status == "paused":
            container.unpause()
        self._ended_by_target.add(container.id)
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
        container = self._alive_container(service, index, "terminate")
        self._ended_by_target.add(container.id)
        self._terminated[(service, index)] = container
        container.kill(signal="SIGTERM")

    def wait_exited(self, service: str, index: int, timeout: float) -> int:
        container = self._terminated.pop((service, index), None) or self._container(service, index)
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
            self._ended_by_target.add(container.id)
            container.kill()
            container.wait(timeout=10)

    def pause_service(self, service: str, index: int = 0) -> None:
        self._alive_container(service, index, "pause").pause()

    def resume_service(self, service: str, index: int = 0) -> None:
        self._alive_container(service, index, "resume").unpause()

    def partition_service(self, service: str, index: int = 0) -> None:
        """Disconnect the container from the run's network: nothing reaches it, it reaches nothing."""
        container = self._alive_container(service, index, "partition")
        reconnection = self._reconnection(container)
        self._docker.networks.get(self._network_name).disconnect(container)
        self._partitioned[container.id] = reconnection

    def heal_partition(self, service: str, index: int = 0) -> None:
        self._reconnect(self._container(service, index))

    def _reconnect(self, container: Container) -> None:
        reconnection = self._partitioned.pop(container.id, None)
        if reconnection is not None:
            self._docker.networks.get(self._network_name).connect(container, **reconnection)

    # --- internals -----------------------------------------------------------------------------

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
            raise TargetError(REDIS, f"a redis container of this {self.name} run, but there is none")
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
        # A container an orchestrator started by itself is learnt here, once its process has registered.
        instance_id = self._instance_ids.get(self._run_key(container)) or self._registered_id(service, container)
        return ServiceHandle(service, index, instance_id, self._endpoint(container))

    def _registered_id(self, service: str, container: Container) -> str:
        """The instance id the container's current process registered; "" until it has."""
        key = self._run_key(container)
        known = self._instance_ids.get(key)
        # An id another process registered under the same host is not this one's: a restarted container keeps its
        # host name, and swarm may give a new task an address a dead one had.
        claimed = {value for value in self._instance_ids.values() if value != known}
        host = self._advertised_host(container)
        assert self._client is not None
        try:
            entries = lookup_sync(self._client, service)
        except Exception:
            return ""
        mine = [e for e in entries if e.host == host and e.instance_id not in claimed]
        if known is not None:
            return known if any(e.instance_id == known for e in mine) else ""
        if not mine:
            return ""
        newest = max(mine, key=lambda e: e.started_at_ms)
        self._instance_ids[key] = newest.instance_id
        return newest.instance_id

    def _readiness_problem(self, service: str, container: Container) -> str:
        """What keeps the container's process from being registered in Redis and SERVING on its published port."""
        if not self._registered_id(service, container):
            return f"not registered in Redis under host {self._advertised_host(container) or '(none)'}"
        endpoint = self._endpoint(container)
        if not endpoint:
            return "no published port"
        try:
            status = health.check(endpoint, GRPC_SERVICES[service], timeout=1.0, transport=self.transport,
                                  server=service)
        except health.HealthCheckError as exc:
            return str(exc)
        return "" if status == health.SERVING else f"health Check answers {status} on {endpoint}"

    def _wait_ready(self, service: str, container: Container, deadline: float) -> None:
        """The container's process is registered in Redis and answers SERVING through its published port."""
        self._await(
            f"{service} container {container.name}", container,
            lambda: self._readiness_problem(service, container), lambda problem: not problem, deadline,
            f"the process in {container.name} is registered in Redis and answers health Check SERVING for "
            f"{GRPC_SERVICES[service]} on its published port",
        )

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
        """Every container's whole log to log_dir, before the containers are removed."""
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            for container in self._run_containers():
                (self.log_dir / f"{container.name}.log").write_bytes(container.logs())
        except (APIError, OSError) as exc:
            print(f"{self.name} target: could not save the containers' logs to {self.log_dir}: {exc}", flush=True)

