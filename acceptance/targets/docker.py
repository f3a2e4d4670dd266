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
How instances are read, broken and awaited is shared with the swarm target (acceptance/targets/containers.py).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import time
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import NotFound
from docker.models.containers import Container
from docker.models.networks import Network

from acceptance.images import ensure_images
from acceptance.targets.base import REPO_ROOT, SUITE_TIMINGS, ServiceHandle, SuiteTimings, TargetError, run_log_dir
from acceptance.targets.containers import (
    ALIVE,
    COMPOSE_FILE,
    OWNER_LABEL,
    REDIS,
    STACK_LABEL,
    TEARDOWN_TIMEOUT_S,
    ContainerTarget,
    checked_service,
    sweep_leftovers,
    unpause_all,
)
from ecosystem.names import ALL_SERVICES
from ecosystem.security import SECURE

COMPOSE_FILES = (COMPOSE_FILE, REPO_ROOT / "compose" / "docker-compose.suite.yml")
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"


# Which Compose the docker target runs: "docker compose" (v2) or "docker-compose" (v1).
COMPOSE_VARIABLE = "DOCKER_COMPOSE"


@dataclass(frozen=True)
class Compose:
    command: tuple[str, ...]
    version: str

    def describe(self) -> str:
        return f"{' '.join(self.command)} {self.version}"


def find_compose() -> Compose:
    """The Compose $DOCKER_COMPOSE names; unset, `docker compose` (v2) where it answers, else `docker-compose` (v1)."""
    chosen = os.environ.get(COMPOSE_VARIABLE, "").strip()
    try:
        candidates = [tuple(shlex.split(chosen))] if chosen else [("docker", "compose"), ("docker-compose",)]
    except ValueError as exc:
        raise TargetError("docker target", f"{COMPOSE_VARIABLE}={chosen!r} to be a command line, but {exc}") from None
    answers = []
    for command in candidates:
        version, answer = _compose_version(command)
        if version:
            return Compose(command, version)
        answers.append(f"$ {' '.join(command)} version --short\n{answer}")
    asked = f"{COMPOSE_VARIABLE}={chosen!r}" if chosen else "`docker compose` or `docker-compose`"
    raise TargetError("docker target", f"{asked} to answer `version --short`, but none did (`make compose-plugin` "
                                       "installs Compose v2)", "\n".join(answers))


def _compose_version(command: tuple[str, ...]) -> tuple[str, str]:
    """The version `command` answers, or "" and what went wrong."""
    try:
        answer = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=30,
                                check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "", str(exc)
    if answer.returncode != 0:
        return "", f"exit status {answer.returncode}: {(answer.stderr or answer.stdout).strip()}"
    return answer.stdout.strip().removeprefix("v"), ""


class _Run:
    """What one DockerTarget created, kept apart from it so the safety net can remove it without the target."""

    def __init__(self, compose: tuple[str, ...], project: str, env: dict[str, str]) -> None:
        self.compose = compose
        self.project = project
        self.env = env
        self.network_name = ""
        self.composed = False

    def compose_args(self, *args: str) -> list[str]:
        files = [arg for path in COMPOSE_FILES for arg in ("-f", str(path))]
        return [*self.compose, "-p", self.project, *files, *args]

    def down(self, client: docker.DockerClient, *, keep_network: bool = False) -> None:
        if self.composed:
            # Tried once: a `down` that timed out is not waited for again (the safety net at interpreter exit only
            # removes by force what it left).
            self.composed = False
            unpause_all(client, f"{PROJECT_LABEL}={self.project}")
            subprocess.run(
                self.compose_args("down", "--volumes", "--remove-orphans", "--timeout", "10"),
                cwd=REPO_ROOT, env={**os.environ, **self.env}, capture_output=True, timeout=TEARDOWN_TIMEOUT_S,
                check=False,
            )
        # Whatever compose did not remove (a failed `up`, a container it no longer knows) goes too.
        for container in client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"}):
            with contextlib.suppress(NotFound):
                container.remove(force=True, v=True)
        if self.network_name and not keep_network:
            with contextlib.suppress(NotFound):
                client.networks.get(self.network_name).remove()
            self.network_name = ""


class DockerTarget(ContainerTarget):
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
        super().__init__(
            log_dir=Path(log_dir) if log_dir is not None else run_log_dir("-docker"), timings=timings,
            start_timeout=start_timeout, security=security, env=env,
        )
        self._compose_cli = find_compose()
        self._run = _Run(self._compose_cli.command, f"ecosystem-{uuid.uuid4().hex[:10]}", self._env)
        self._network: Network | None = None
        # Safety net: a target dropped or left running at interpreter exit still removes its containers.
        weakref.finalize(self, self._run.down, self._docker)

    def tools(self) -> dict[str, str]:
        return {**super().tools(), "compose": self._compose_cli.describe()}

    @property
    def project(self) -> str:
        return self._run.project

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def otlp_bind_host(self) -> str:
        """The gateway of the run's network: the host's address the containers can reach."""
        network = self._ensure_network()
        return network.attrs["IPAM"]["Config"][0]["Gateway"]

    def _prepare(self) -> None:
        self._ensure_network()
        self._env.update(ensure_images(log=lambda line: print(line, flush=True)).compose_env())

    def _take_down(self) -> None:
        """The project's containers removed; the network stays (the OTLP receiver listens on its gateway)."""
        self._run.down(self._docker, keep_network=True)

    def _bring_up(self) -> None:
        """`compose up`, then every container registered and SERVING."""
        self._publish_redis_port()
        started = time.monotonic()
        self._run.composed = True
        self._compose("up", "--detach", "--no-build")
        deadline = time.monotonic() + self.start_timeout
        for service in ALL_SERVICES:
            for container in self._containers(service):
                self._wait_ready(service, container, deadline)
        print(f"docker target: project {self.project} up and SERVING in {time.monotonic() - started:.1f}s", flush=True)

    def stop_all(self) -> None:
        if self._run.composed:
            self._save_logs()
        self._run.down(self._docker)
        self._network = None
        self._close_redis()

    # --- breaking and repairing ------------------------------------------------------------

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

    def start_redis(self) -> None:
        container = self._redis_container()
        if container.status != "running":
            container.start()
        self._await(REDIS, container, self._redis_problem, lambda problem: not problem,
                    time.monotonic() + self.start_timeout, "Redis answers PING on its published port")

    # --- internals -------------------------------------------------------------------------

    def _ensure_network(self) -> Network:
        if self._network is None:
            sweep_leftovers(self._docker, log=lambda line: print(line, flush=True))
            name = f"{self.project}_net"
            self._network = self._docker.networks.create(
                name,
                driver="bridge",
                labels={
                    OWNER_LABEL: self._env["ECOSYSTEM_SUITE_OWNER"],
                    STACK_LABEL: "reference-ecosystem",
                    PROJECT_LABEL: self.project,
                },
            )
            self._network.reload()
            self._run.network_name = name
            self._env["ECOSYSTEM_NETWORK"] = name
        return self._network

    @property
    def _network_name(self) -> str:
        return self._ensure_network().name

    def _reconnection(self, container: Container) -> dict[str, Any]:
        settings = container.attrs["NetworkSettings"]["Networks"].get(self._network_name, {})
        return {"aliases": settings.get("Aliases") or []}

    def _advertised_host(self, container: Container) -> str:
        """The container's host name, which every container on the run's network resolves."""
        return container.attrs["Config"]["Hostname"]

    def _compose(self, *args: str) -> None:
        command = self._run.compose_args(*args)
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env={**os.environ, **self._env},
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
        labels = [f"{PROJECT_LABEL}={self.project}", f"{SERVICE_LABEL}={checked_service(service)}"]
        found = self._docker.containers.list(all=True, filters={"label": labels})
        return sorted(found, key=lambda container: int(container.labels.get(NUMBER_LABEL, "0")))

    def _run_containers(self) -> list[Container]:
        return self._docker.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"})
