"""The swarm target on a live swarm: a task that exits by itself is reported by stack health even once swarm has
replaced it and the replacement serves, while the tasks the suite ends itself (kill, stop, scale down, Redis) are not.

Deploys one stack (a one-node swarm is made and left if this engine is in none); about a minute and a half on two
cores. Skipped without a docker engine, or on one that is a swarm worker."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import docker
import pytest
import redis
from docker.models.containers import Container

from acceptance.declared import Declared
from acceptance.manifest import load_manifest
from acceptance.rpc import RpcClient
from acceptance.stack_health import stack_problems
from acceptance.targets.containers import stack_leftovers
from acceptance.targets.swarm import SwarmTarget
from acceptance.waits import wait_until
from ecosystem.names import CONFIGURATION_SERVICE, RISK_MONITOR, TEST_COORDINATOR


def _swarm_usable() -> bool:
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"],
                              capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return info.returncode == 0 and info.stdout.split() in (["inactive", "false"], ["active", "true"])


pytestmark = [
    pytest.mark.skipif(not _swarm_usable(), reason="no docker engine that is in no swarm or a swarm manager"),
    pytest.mark.timeout(600),
]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmTarget]:
    stack = SwarmTarget(log_dir=tmp_path_factory.mktemp("swarm-logs"), start_timeout=90.0)
    stack.start()
    yield stack
    stack.stop_all()
    assert stack_leftovers(docker.from_env(), stack.stack) == []


def _task_container(target: SwarmTarget, service: str) -> Container:
    """The running container of `service`'s task, found through docker, not through the target."""
    found = docker.from_env().containers.list(
        filters={"label": f"com.docker.swarm.service.name={target.stack}_{service}", "status": "running"})
    assert len(found) == 1, [container.name for container in found]
    return found[0]


def _signal_from_inside(container: Container, *command: str) -> None:
    """Run `command`, which signals the container's service, detached: the container may end, and the command with
    it (exit 137), before its own exit is read. The waits after it check what the signal did."""
    container.exec_run(list(command), detach=True)


def _replaced(target: SwarmTarget, service: str, before: str) -> str:
    """The id of the registered instance that runs in place of `before`."""
    return wait_until(
        lambda: [handle.instance_id for handle in target.instances(service)],
        lambda ids: len(ids) == 1 and ids[0] not in ("", before), timeout=target.start_timeout,
        what=f"swarm runs a new registered {service} instance in place of {before}", interval=0.2,
    )[0]


def test_the_tasks_the_suite_ends_itself_are_not_reported(target: SwarmTarget) -> None:
    killed = target.instances(RISK_MONITOR)[0].instance_id
    target.kill_service(RISK_MONITOR)  # what the orchestrator scenario and a kill fault do; swarm replaces it
    _replaced(target, RISK_MONITOR, killed)
    target.stop_service(CONFIGURATION_SERVICE)
    target.start_service(CONFIGURATION_SERVICE)
    target.scale(TEST_COORDINATOR, 2)
    target.scale(TEST_COORDINATOR, 1)  # swarm chooses which task goes
    target.stop_redis()
    target.start_redis()

    assert target.unexpected_exits() == []


def test_a_task_that_crashes_by_itself_is_reported_after_swarm_replaced_it(target: SwarmTarget) -> None:
    manifest = load_manifest()
    registry = redis.Redis.from_url(target.redis_url, decode_responses=True, socket_timeout=2)
    rpc = RpcClient(transport=target.transport)
    shape = dict.fromkeys(manifest.service_names, 1)

    def problems() -> list[str]:
        return stack_problems(target, manifest, rpc, registry, Declared.of(target.timings), shape)

    try:
        wait_until(problems, lambda found: not found, timeout=30, what="the stack is healthy", interval=0.5)
        before = target.instances(RISK_MONITOR)[0].instance_id
        # The service's process aborts (exit code 134), by itself as far as the target knows.
        _signal_from_inside(_task_container(target, RISK_MONITOR), "python", "-c",
                      "import os, signal; os.kill(int(open('/proc/1/task/1/children').read().split()[0]), "
                      "signal.SIGABRT)")
        _replaced(target, RISK_MONITOR, before)

        # Everything else is healthy again (swarm's new instance serves and is registered): only the crash is left.
        reports = wait_until(problems, lambda found: len(found) == 1, timeout=30,
                             what="the only problem of the stack is the crash", interval=0.5)
    finally:
        rpc.close()
        registry.close()

    report = reports[0]
    assert report.startswith(f"{RISK_MONITOR}: task 1 (")
    assert "failed, exit code 134 (task: non-zero exit (134))" in report
    assert f"--- last log lines of container {target.stack}_{RISK_MONITOR}.1." in report
    assert target.unexpected_exits() == reports  # reported at every check until the stack is rebuilt


def test_a_task_that_exits_0_by_itself_is_reported(target: SwarmTarget) -> None:
    # SIGTERM to the container's init: the service drains and exits 0, and swarm (on-failure) leaves it down.
    _signal_from_inside(_task_container(target, TEST_COORDINATOR), "sh", "-c", "kill -TERM 1")

    exits = wait_until(target.unexpected_exits, lambda found: len(found) == 2, timeout=30,
                       what="the exit of test-coordinator is reported", interval=0.2)

    assert exits[1].startswith(f"{TEST_COORDINATOR}: task 1 (")
    assert "complete, exit code 0" in exits[1]
    assert [report.split(":")[0] for report in exits] == [RISK_MONITOR, TEST_COORDINATOR]


def test_nothing_is_reported_of_a_rebuilt_stack(target: SwarmTarget) -> None:
    target.rebuild()

    assert target.unexpected_exits() == []
