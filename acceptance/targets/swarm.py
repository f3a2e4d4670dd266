"""SwarmTarget: the ecosystem as a stack of replicated services on a Docker Swarm, broken through its tasks.

    behave -D target=swarm features/                     # make accept TARGET=swarm
    ECOSYSTEM_IMAGE=registry.example.com/ecosystem/services:1.4 REDIS_IMAGE=registry.example.com/redis:7 \\
        behave -D target=swarm features/                 # images the node pulls from a registry, none built here

Which swarm: when this engine is in none, the target makes a one-node swarm (`docker swarm init --advertise-addr
127.0.0.1`, its management port on loopback too) and leaves it (`docker swarm leave --force`) once no suite run uses
it. An active swarm (a real cluster; this node must be a manager) is used as it is and never left. Without
ECOSYSTEM_IMAGE the images are built here (acceptance/images.py), which only this node has: every task is placed on
this node anyway, since the suite kills, stops, pauses and disconnects tasks through this node's engine.

What runs: compose/docker-compose.yml rendered with compose/docker-compose.swarm.yml (`render_stack`, written to
log_dir/stack.yml) and deployed with `docker stack deploy` as stack `ecosystem-<random>`: every service a replicated
service of one task on an attachable overlay network the stack creates, the certificates and Redis users as swarm
secrets. A task registers its address on that network (the swarm file says why not its host name), so a task swarm
replaces comes back under a new instance id at a new address, and callers find it through the registry.

How the suite reaches the tasks: each task publishes its gRPC port in host mode on a port the engine picks, which the
suite calls on 127.0.0.1: one endpoint per instance, where the routing mesh would balance between instances. Redis
publishes a port the target picks, so its URL holds when its task is replaced. Swarm cannot publish on an address, so
these ports listen on every interface of the node while the stack runs: the stack's mTLS and Redis users guard them
(a `-D security=insecure` run exposes plaintext services and an open Redis on the node's network meanwhile). The
tasks reach the suite's OTLP receiver on the gateway of docker_gwbridge, their way out of the node (made here if no
task ever ran on the node; on a swarm the target did not make, it stays with that swarm).

Faults, under the restart policy `on-failure`:
- stop, SIGTERM: the task exits 0 and stays down; `start_service` and `scale` replace it by a new task (swarm fills a
  stopped slot only when its service is scaled: the target scales the stopped tasks away, then back).
- kill: swarm replaces the task `SuiteTimings.restart_delay_ms` later by a new instance, without the suite: the killed
  instance never comes back, its slot does (features/12_orchestrator.feature). No scenario needs it held down.
- pause: until resumed; a pause longer than the healthcheck's interval times its retries (15 s) gets the task replaced,
  which `unexpected_exits` reports (no scenario pauses that long).
- partition: the container is disconnected from the stack's network, which takes its published port away too, and
  connected again with its address; it answers on a new port then.
- Redis: stopped like a service; started again as a new task on the same port, with an empty registry.
- scale: the replica count through the service API; when it shrinks, swarm chooses which tasks go.

Crashes are not hidden: the restart policy and the healthcheck make swarm replace a task that exits non-zero or turns
unhealthy, and the replacement registers and serves, so the stack's instances alone would look healthy where the
docker target's would not. The target remembers which tasks it ended itself (the containers it stopped, killed or
sent SIGTERM, every fault and restore, the orchestrator scenario's kill included; the tasks swarm removes when the
target shrinks a service) and, each time stack health asks (`unexpected_exits`) and before it changes a service's
replicas (which deletes tasks), judges every task of the stack that ended since it last looked. Any other (failed,
exited, rejected, shut down) is reported with its service, slot, task id, exit code, swarm's message and its
container's last log lines, at every check until the stack is rebuilt. Tasks that failed while the stack was being
deployed are not judged: the services start before Redis answers, and swarm restarts those that fail for it.

Nothing leaks: `stop_all` (also after a failed start, and as a safety net at interpreter exit) saves the logs, removes
the stack (`docker stack rm`, then waits until its services, containers, network and secrets are gone) and leaves the
swarm if a suite run made it and no other live run uses it; the next run of a container target removes what a killed
run left (containers.sweep_leftovers). A removal is tried once: one that failed or timed out is not waited for again
at interpreter exit, where the safety net only says what is still there.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import subprocess
import time
import uuid
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import yaml
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.models.networks import Network

from acceptance.images import DEFAULT_REDIS_IMAGE, ensure_images
from acceptance.targets.base import REPO_ROOT, SUITE_TIMINGS, ServiceHandle, SuiteTimings, TargetError, run_log_dir
from acceptance.targets.containers import (
    ALIVE,
    COMPOSE_FILE,
    GWBRIDGE,
    GWBRIDGE_CAME_WITH_SWARM,
    NAMESPACE_LABEL,
    POLL_INTERVAL_S,
    REDIS,
    SWARM_GWBRIDGE_LABEL,
    SWARM_MAKER_LABEL,
    ContainerTarget,
    checked_service,
    hold_swarm,
    leave_swarm_if_idle,
    owner,
    remove_stack,
    stack_leftovers,
    swarm_lock,
    sweep_leftovers,
)
from acceptance.waits import WaitTimeout, wait_until
from ecosystem.names import ALL_SERVICES
from ecosystem.security import SECURE

SWARM_FILE = REPO_ROOT / "compose" / "docker-compose.swarm.yml"
# What a service of docker-compose.yml keeps in the stack, and what the stack does without (see the swarm file).
KEPT = frozenset({"image", "command", "environment", "init", "stop_grace_period", "healthcheck", "labels"})
LEFT_OUT = frozenset({"build", "depends_on", "ports", "volumes"})
# A bind mount of one of the stack's secrets folders: `${ECOSYSTEM_PKI_DIR...}/<folder>:<path in the container>:ro`.
SECRETS_MOUNT = re.compile(r"^\$\{ECOSYSTEM_PKI_DIR[^}]*\}/(?P<folder>[^/:]+):(?P<target>/[^:]+)(?::ro)?$")
# The states a task ends in: it never runs again (a replacement is a new task).
ENDED_STATES = frozenset({"complete", "shutdown", "failed", "rejected", "orphaned", "remove"})
# How many of its container's last log lines an unexpected exit is reported with.
EXIT_LOG_LINES = 10


@dataclass(frozen=True)
class Slot:
    """One slot of a replicated service, and the task that holds it now."""

    number: int
    task_id: str
    state: str  # the task's observed state: running, complete, failed, ...
    container_id: str  # "" until the task has a container
    error: str  # why the task failed, when it did

    def describe(self) -> str:
        return f"task {self.number} ({self.task_id[:12]}, {self.state}{': ' + self.error if self.error else ''})"


def current_slots(tasks: Iterable[Mapping[str, Any]]) -> list[Slot]:
    """The slots a replicated service has now, by number, each with the task that holds it: the newest task swarm runs
    or is about to start there, else one that completed there (it exited 0, and under `on-failure` swarm leaves the
    slot stopped). A slot with neither was scaled away: swarm keeps the tasks that failed there as history."""
    by_slot: dict[int, list[Mapping[str, Any]]] = {}
    for task in tasks:
        by_slot.setdefault(task["Slot"], []).append(task)
    slots = []
    for number, held in sorted(by_slot.items()):
        live = [task for task in held if task["DesiredState"] in ("ready", "running")]
        newest = max(live or held, key=_created)
        if live or (newest["DesiredState"] == "shutdown" and newest["Status"]["State"] == "complete"):
            status = newest["Status"]
            slots.append(Slot(number, newest["ID"], status["State"],
                              (status.get("ContainerStatus") or {}).get("ContainerID", ""), status.get("Err", "")))
    return slots


def _created(task: Mapping[str, Any]) -> str:
    """CreatedAt with its fraction padded to nanoseconds, so the text sorts as the time does (Go trims zeros)."""
    whole, _, fraction = task["CreatedAt"].rstrip("Z").partition(".")
    return f"{whole}.{fraction:0<9}"


@dataclass(frozen=True)
class TaskEnd:
    """A task of the stack that ended, as swarm tells it."""

    service: str
    slot: int
    task_id: str
    state: str  # complete (exited 0), failed, rejected, shutdown (replaced or removed), ...
    exit_code: int | None  # None when it had no container
    message: str  # swarm's error, else its status message
    container_id: str  # "" when it had no container

    def describe(self) -> str:
        code = "no container" if self.exit_code is None else f"exit code {self.exit_code}"
        return f"{self.service}: task {self.slot} ({self.task_id[:12]}) {self.state}, {code} ({self.message or '-'})"


def task_end(service: str, task: Mapping[str, Any]) -> TaskEnd | None:
    """How `task` of `service` ended; None while it has not."""
    status = task["Status"]
    if status["State"] not in ENDED_STATES:
        return None
    container = status.get("ContainerStatus") or {}
    container_id = container.get("ContainerID", "")
    return TaskEnd(service, task.get("Slot", 0), task["ID"], status["State"],
                   container.get("ExitCode") if container_id else None, status.get("Err") or status.get("Message", ""),
                   container_id)


def unexpected_ends(
    tasks: Iterable[tuple[str, Mapping[str, Any]]], judged: set[str], ended_by_suite: Collection[str],
    shrunk: Collection[str],
) -> list[TaskEnd]:
    """The (service, task) pairs that ended since the last look and that the suite did not end; each ended task's id
    is added to `judged`, so it is judged once. The suite ended a task whose container it stopped, killed or sent
    SIGTERM (`ended_by_suite`: container ids), and one swarm removes (desired state `remove`) from a service the suite
    scaled down (`shrunk`): swarm chooses which tasks go. Anything else, whether swarm replaced it or not, is not
    the suite's doing."""
    found = []
    for service, task in tasks:
        end = task_end(service, task)
        if end is None or end.task_id in judged:
            continue
        judged.add(end.task_id)
        scaled_away = task["DesiredState"] == "remove" and service in shrunk
        if not scaled_away and end.container_id not in ended_by_suite:
            found.append(end)
    return found


def render_stack(compose: Mapping[str, Any], swarm: Mapping[str, Any], secrets_dir: Path) -> dict[str, Any]:
    """The stack file for `docker stack deploy`: each service of `compose` as it runs there, with what `swarm` says of
    it merged in; each secrets folder it bind-mounts becomes one swarm secret per file of `secrets_dir`/<folder>, at
    the same path. Variables (`${...}`) are left for `docker stack deploy` to fill in."""
    services: dict[str, Any] = {}
    secrets: dict[str, dict[str, str]] = {}
    for name, service in compose["services"].items():
        unknown = sorted(set(service) - KEPT - LEFT_OUT)
        if unknown:
            raise ValueError(f"service {name} of {COMPOSE_FILE.name} has {', '.join(unknown)}: say in "
                             "acceptance/targets/swarm.py (KEPT or LEFT_OUT) whether a stack keeps it")
        if name not in swarm["services"]:
            raise ValueError(f"{SWARM_FILE.name} says nothing of service {name}")
        rendered = _merged({key: value for key, value in service.items() if key in KEPT}, swarm["services"][name])
        mounted = [mount for volume in service.get("volumes", []) for mount in _secret_files(name, volume, secrets_dir)]
        for path, _ in mounted:
            known = secrets.setdefault(path.name, {"file": str(path)})
            if Path(known["file"]).read_bytes() != path.read_bytes():
                raise ValueError(f"two secrets folders hold different files named {path.name}: {known['file']}, {path}")
        if mounted:
            rendered["secrets"] = [{"source": path.name, "target": target} for path, target in mounted]
        services[name] = rendered
    return {"services": services, "networks": copy.deepcopy(swarm["networks"]), "secrets": secrets}


def _secret_files(service: str, volume: str, secrets_dir: Path) -> list[tuple[Path, str]]:
    """(file, path in the container) of every file a secrets-folder mount of `service` shows."""
    mount = SECRETS_MOUNT.match(volume)
    if mount is None:
        raise ValueError(f"service {service} mounts {volume!r}: a stack can mount only the stack's secrets folders")
    folder = secrets_dir / mount["folder"]
    return [(path.resolve(), f"{mount['target']}/{path.name}") for path in sorted(folder.iterdir()) if path.is_file()]


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override` merged in: mappings key by key, anything else (lists included) replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


class _Deployment:
    """What one SwarmTarget set up, kept apart from it so the safety net can undo it without the target."""

    def __init__(self, stack: str) -> None:
        self.stack = stack
        self.deployed = False
        self.holds_swarm = False
        self.removal_failed = False

    def remove(self, client: docker.DockerClient, *, keep_swarm: bool = False) -> None:
        """Remove the stack, then (unless `keep_swarm`) stop using the swarm: it is left if nothing else uses it.
        The removal is tried once: one that failed or timed out is neither tried nor waited for again."""
        try:
            if self.deployed:
                self.deployed = False
                try:
                    remove_stack(client, self.stack)
                except BaseException:
                    self.removal_failed = True
                    raise
        finally:
            if self.holds_swarm and not keep_swarm:
                with swarm_lock():
                    hold_swarm(False)
                    leave_swarm_if_idle(client, log=lambda line: print(line, flush=True))
                self.holds_swarm = False

    def safety_net(self, client: docker.DockerClient) -> None:
        """At interpreter exit, or once the target is dropped: remove what is still deployed; of a stack whose
        removal already failed, only say what is left (the next run's sweep removes it once this process is gone)."""
        try:
            self.remove(client)
        finally:
            if self.removal_failed:
                with contextlib.suppress(Exception):  # the engine may be gone too
                    left = stack_leftovers(client, self.stack)
                    if left:
                        print(f"swarm target: stack {self.stack} could not be removed; left: {', '.join(left)}",
                              flush=True)


class SwarmTarget(ContainerTarget):
    """The ecosystem as a swarm stack; every capability of the docker target, and an orchestrator."""

    name = "swarm"
    capabilities = frozenset({"stop", "kill", "pause", "restart", "scale", "redis", "partition", "orchestrator"})

    def __init__(
        self,
        *,
        log_dir: Path | str | None = None,
        timings: SuiteTimings = SUITE_TIMINGS,
        start_timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
        security: str = SECURE,
    ) -> None:
        """`env` overrides the variables the compose files read (ECOSYSTEM_REGISTRY_TTL_MS, ...); the stack's secrets
        are made fresh in `log_dir`/secrets."""
        super().__init__(
            log_dir=Path(log_dir) if log_dir is not None else run_log_dir("-swarm"), timings=timings,
            start_timeout=start_timeout, security=security, env=env,
        )
        self._env["ECOSYSTEM_RESTART_DELAY"] = f"{timings.restart_delay_ms}ms"
        self._deployment = _Deployment(f"ecosystem-{uuid.uuid4().hex[:10]}")
        self._gateway = ""
        # The stack's services (id -> name), for its tasks; the ended tasks already judged, those that ended without
        # the suite (reported until the stack is rebuilt), and the services the suite scaled down.
        self._service_ids: dict[str, str] = {}
        self._judged: set[str] = set()
        self._exit_reports: list[str] = []
        self._shrunk: set[str] = set()
        # Safety net: a target dropped or left running at interpreter exit still removes its stack.
        weakref.finalize(self, self._deployment.safety_net, self._docker)

    @property
    def stack(self) -> str:
        return self._deployment.stack

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def otlp_bind_host(self) -> str:
        """The gateway of docker_gwbridge: the address of this host the tasks reach."""
        return self._ensure_swarm()

    def _prepare(self) -> None:
        self._ensure_swarm()
        self._env.update(self._images())

    def _take_down(self) -> None:
        """The stack removed; the swarm stays (the OTLP receiver listens on its docker_gwbridge gateway)."""
        self._deployment.remove(self._docker, keep_swarm=True)

    def stop_all(self) -> None:
        if self._deployment.deployed:
            self._save_logs()
        try:
            self._deployment.remove(self._docker)
        finally:
            self._forget_tasks()
            self._gateway = ""
            self._close_redis()

    def unexpected_exits(self) -> list[str]:
        self._judge_tasks()
        return list(self._exit_reports)

    # --- breaking and repairing ------------------------------------------------------------

    def start_service(self, service: str, index: int = 0) -> ServiceHandle:
        """A new task in place of the stopped instance at `index`, SERVING (any other stopped instance of the service
        is replaced too); the new instance's handle."""
        container = self._container(service, index)
        if container.status in ALIVE:
            raise TargetError(self._label(service, index), "a stopped instance to start, but it is running")
        before = {handle.instance_id for handle in self.instances(service)}
        self._scale(service, len(self._slots(service)))
        fresh = [handle for handle in self.instances(service) if handle.instance_id not in before]
        if not fresh:
            raise TargetError(self._label(service, index), f"a new instance in its place, but {service} runs "
                              f"only the instances it ran before: {sorted(before)}")
        return fresh[0]

    def scale(self, service: str, count: int) -> list[ServiceHandle]:
        self._scale(service, count)
        return self.instances(service)

    def start_redis(self) -> None:
        self._scale(REDIS, 1)

    # --- internals -------------------------------------------------------------------------

    def _ensure_swarm(self) -> str:
        """This engine in a swarm (one made here if it was in none), marked as used by this run; docker_gwbridge's
        gateway."""
        if not self._gateway:
            sweep_leftovers(self._docker, log=lambda line: print(line, flush=True))
            with swarm_lock():
                # Held before joining: an interrupt while a swarm is made here must still leave it.
                hold_swarm(True)
                self._deployment.holds_swarm = True
                self._join_swarm()
                self._gateway = self._gwbridge().attrs["IPAM"]["Config"][0]["Gateway"]
        return self._gateway

    def _join_swarm(self) -> None:
        state = self._docker.info()["Swarm"]
        if state["LocalNodeState"] == "inactive":
            labels = {SWARM_MAKER_LABEL: owner()}
            try:
                self._docker.networks.get(GWBRIDGE)
            except NotFound:
                labels[SWARM_GWBRIDGE_LABEL] = GWBRIDGE_CAME_WITH_SWARM
            self._docker.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377", labels=labels)
            print("swarm target: made a one-node swarm on 127.0.0.1; it is left once no suite run uses it", flush=True)
            state = self._docker.info()["Swarm"]
        if state["LocalNodeState"] != "active" or not state["ControlAvailable"]:
            role = "a worker" if state["LocalNodeState"] == "active" else state["LocalNodeState"]
            raise TargetError("swarm target", f"this engine in no swarm or a manager of one, but it is {role}"
                              + (f": {state['Error']}" if state.get("Error") else ""))
        self._env["ECOSYSTEM_SWARM_NODE"] = state["NodeID"]

    def _gwbridge(self) -> Network:
        """docker_gwbridge, the tasks' way to this host. Docker makes it when a swarm first needs it on this node;
        made here first (with docker's options) where it does not exist yet, so its gateway is known before the
        stack starts."""
        with contextlib.suppress(NotFound):
            return self._docker.networks.get(GWBRIDGE)
        options = {
            "com.docker.network.bridge.name": GWBRIDGE,
            "com.docker.network.bridge.enable_icc": "false",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
        }
        with contextlib.suppress(APIError):  # docker made it meanwhile, for the swarm's routing mesh
            self._docker.networks.create(GWBRIDGE, driver="bridge", options=options)
        return self._docker.networks.get(GWBRIDGE)

    @staticmethod
    def _images() -> dict[str, str]:
        """ECOSYSTEM_IMAGE (and REDIS_IMAGE, default redis:7) as the node pulls them, or the images built here."""
        named = os.environ.get("ECOSYSTEM_IMAGE")
        if named:
            return {"ECOSYSTEM_IMAGE": named, "REDIS_IMAGE": os.environ.get("REDIS_IMAGE", DEFAULT_REDIS_IMAGE)}
        return ensure_images(log=lambda line: print(line, flush=True)).compose_env()

    def _bring_up(self) -> None:
        """`docker stack deploy`, then every service runs one task, registered and SERVING (Redis answering)."""
        self._forget_tasks()
        self._publish_redis_port()
        started = time.monotonic()
        stack_file = self.log_dir / "stack.yml"
        stack = render_stack(_load(COMPOSE_FILE), _load(SWARM_FILE), self._secrets.directory)
        stack_file.write_text(yaml.safe_dump(stack, sort_keys=False), encoding="utf-8")
        self._deployment.deployed = True
        # --resolve-image never: the images are here or the node pulls them by name; no registry is asked for digests.
        command = ["docker", "stack", "deploy", "--compose-file", str(stack_file), "--resolve-image", "never",
                   "--with-registry-auth", self.stack]
        deployed = subprocess.run(command, env={**os.environ, **self._env}, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=self.start_timeout, check=False)
        if deployed.returncode != 0:
            raise TargetError("swarm", f"`{' '.join(command)}` to exit 0, but it exited {deployed.returncode}",
                              deployed.stdout + deployed.stderr)
        deadline = time.monotonic() + self.start_timeout
        for service in (REDIS, *ALL_SERVICES):
            self._converge(service, 1, deadline)
        print(f"swarm target: stack {self.stack} deployed and SERVING in {time.monotonic() - started:.1f}s", flush=True)
        self._service_ids = {found.id: found.name.removeprefix(f"{self.stack}_") for found in
                             self._docker.services.list(filters={"label": f"{NAMESPACE_LABEL}={self.stack}"})}
        started_up = unexpected_ends(self._stack_tasks(), self._judged, (), ())
        if started_up:
            ended = "; ".join(end.describe() for end in started_up)
            print(f"swarm target: {len(started_up)} tasks ended while the stack started (the services start before "
                  f"Redis answers; swarm restarted them; not judged): {ended}", flush=True)

    def _forget_tasks(self) -> None:
        """A new stack (or none): nothing of the tasks of the one before is judged or reported any more."""
        self._service_ids = {}
        self._judged.clear()
        self._exit_reports.clear()
        self._shrunk.clear()

    def _stack_tasks(self) -> list[tuple[str, dict[str, Any]]]:
        """Every task of the stack's services, with its service's name (none before the stack is deployed)."""
        if not self._service_ids:
            return []
        tasks = self._docker.api.tasks(filters={"service": list(self._service_ids)})
        return [(self._service_ids[task["ServiceID"]], task) for task in tasks
                if task["ServiceID"] in self._service_ids]

    def _judge_tasks(self) -> None:
        """Judge every task that ended since the last look: one the suite did not end is reported from now on, with
        its container's last log lines, read now (swarm deletes old tasks and their containers)."""
        for end in unexpected_ends(self._stack_tasks(), self._judged, self._ended_by_target, self._shrunk):
            report = f"{end.describe()}, though the suite did not end it"
            print(f"swarm target: {report}", flush=True)
            if end.container_id:
                container = self._container_by_id(end.container_id)
                tail = self._tail(container, EXIT_LOG_LINES).rstrip() if container is not None else ""
                name = container.name if container is not None else end.container_id[:12]
                report += (f"\n--- last log lines of container {name} ---\n{tail}" if tail
                           else f" (container {name}: no log lines left)")
            self._exit_reports.append(report)

    def _scale(self, service: str, count: int) -> None:
        """`count` tasks run, each ready. Swarm restarts no task that exited 0 and fills a stopped slot only when the
        service is scaled, and only once the task it scaled away there is deleted: so once swarm has seen the
        containers that exited, the service is scaled to the tasks that run (on one node swarm removes those that do
        not run first) until that has settled, then to `count`."""
        if count < 0:
            raise ValueError(f"cannot scale {service} to {count} instances")
        deadline = time.monotonic() + self.start_timeout
        self._wait_for(service, lambda: [f"{slot.describe()}: its container exited" for slot in self._slots(service)
                                         if slot.state in ("starting", "running") and self._exited(slot)],
                       deadline, "swarm has seen its containers that exited")
        slots = self._slots(service)
        alive = sum(1 for slot in slots if self._alive(slot))
        if alive < len(slots):
            self._set_replicas(service, alive)
            self._wait_for(service, lambda: self._unsettled(service, alive), deadline,
                           f"it runs {alive} tasks, the others deleted")
        if self._replicas(service) != count:
            self._set_replicas(service, count)
        self._converge(service, count, deadline)

    def _unsettled(self, service: str, count: int) -> list[str]:
        """What keeps `service` from running exactly `count` tasks with no task left to delete."""
        tasks = self._tasks(service)
        slots = current_slots(tasks)
        found = [f"task {task['Slot']} ({task['ID'][:12]}) is being deleted"
                 for task in tasks if task["DesiredState"] == "remove"]
        found += [] if len(slots) == count else [f"{len(slots)} tasks"]
        return found + [f"{slot.describe()} does not run" for slot in slots if not self._alive(slot)]

    def _replicas(self, service: str) -> int:
        return self._docker.services.get(self._service_name(service)).attrs["Spec"]["Mode"]["Replicated"]["Replicas"]

    def _set_replicas(self, service: str, replicas: int) -> None:
        """The replica count through the service API, the rest of the spec sent back as it is: the SDK's
        `Service.scale` adds the engine's defaults to it, which swarm takes for a new task spec: it would replace
        every task."""
        # Scaling down deletes tasks: those that ended are judged first, and those swarm now removes are the suite's.
        self._judge_tasks()
        found = self._docker.services.get(self._service_name(service))
        spec = found.attrs["Spec"]
        if replicas < spec["Mode"]["Replicated"]["Replicas"]:
            self._shrunk.add(service)
        self._docker.api.update_service(
            found.id, found.version, name=spec["Name"], labels=spec.get("Labels"),
            mode={"Replicated": {"Replicas": replicas}}, task_template=spec["TaskTemplate"],
            endpoint_spec=spec.get("EndpointSpec"), update_config=spec.get("UpdateConfig"),
            rollback_config=spec.get("RollbackConfig"),
        )

    def _converge(self, service: str, count: int, deadline: float) -> None:
        """`count` tasks of `service` run, each registered in Redis and SERVING; a task swarm replaces meanwhile is
        followed, not failed on. Redis must answer PING and be running in swarm's eyes too: swarm gives the services
        its address under its name only once its healthcheck passed."""

        def problems() -> list[str]:
            slots = self._slots(service)
            found = [] if len(slots) == count else [f"{len(slots)} tasks"]
            for slot in slots:
                container = self._task_container(slot)
                if container is None or container.status != "running":
                    status = container.status if container is not None else "not there"
                    found.append(f"{slot.describe()}: its container is {status}")
                    continue
                if service != REDIS:
                    problem = self._readiness_problem(service, container)
                else:
                    problem = self._redis_problem() or ("" if slot.state == "running" else "not healthy yet")
                if problem:
                    found.append(f"{slot.describe()}: {problem}")
            return found

        ready = "answering PING, healthy" if service == REDIS else "registered in Redis and SERVING"
        self._wait_for(service, problems, deadline, f"it runs {count} tasks, each {ready}")

    def _wait_for(self, service: str, problems: Callable[[], list[str]], deadline: float, what: str) -> None:
        """Poll `problems()` until there are none; else TargetError naming the service, what was awaited, its logs."""
        try:
            wait_until(problems, lambda found: not found, timeout=max(0.0, deadline - time.monotonic()),
                       what=f"{service} of stack {self.stack}: {what}", interval=POLL_INTERVAL_S)
        except WaitTimeout as exc:
            tails = [f"{container.name}:\n{self._tail(container)}" for container in self._containers(service)]
            raise TargetError(service, str(exc), "\n".join(tails)) from None

    def _service_name(self, service: str) -> str:
        return f"{self.stack}_{checked_service(service)}"

    def _tasks(self, service: str) -> list[dict[str, Any]]:
        return self._docker.api.tasks(filters={"service": self._service_name(service)})

    def _slots(self, service: str) -> list[Slot]:
        return current_slots(self._tasks(service))

    def _task_container(self, slot: Slot) -> Container | None:
        return self._container_by_id(slot.container_id)

    def _container_by_id(self, container_id: str) -> Container | None:
        """The container, if it has one that still exists."""
        if not container_id:
            return None
        try:
            return self._docker.containers.get(container_id)
        except NotFound:
            return None

    def _alive(self, slot: Slot) -> bool:
        container = self._task_container(slot)
        return container is not None and container.status in ALIVE

    def _exited(self, slot: Slot) -> bool:
        container = self._task_container(slot)
        return container is not None and container.status == "exited"

    def _containers(self, service: str) -> list[Container]:
        return [container for slot in self._slots(service) if (container := self._task_container(slot)) is not None]

    def _run_containers(self) -> list[Container]:
        return self._docker.containers.list(all=True, filters={"label": f"{NAMESPACE_LABEL}={self.stack}"})

    @property
    def _network_name(self) -> str:
        return f"{self.stack}_default"

    def _advertised_host(self, container: Container) -> str:
        """The task's address on the stack's network ("" while it is disconnected)."""
        return (container.attrs["NetworkSettings"]["Networks"].get(self._network_name) or {}).get("IPAddress", "")

    def _reconnection(self, container: Container) -> dict[str, Any]:
        """Its aliases and the address it registered (swarm keeps the address allocated to the task meanwhile)."""
        settings = container.attrs["NetworkSettings"]["Networks"][self._network_name]
        return {"aliases": settings.get("Aliases") or [], "ipv4_address": settings["IPAddress"]}
