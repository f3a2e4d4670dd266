"""The swarm target's pure parts: the stack file rendered from the compose files, which task holds each slot of a
service and which ended tasks the suite did not end, read from tasks as the engine's API returns them; and a stack
removal that failed is not waited for again at interpreter exit."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from acceptance.secrets import create as create_secrets
from acceptance.targets import swarm
from acceptance.targets.base import TargetError
from acceptance.targets.swarm import (
    COMPOSE_FILE,
    SWARM_FILE,
    Slot,
    TaskEnd,
    _Deployment,
    current_slots,
    render_stack,
    unexpected_ends,
)
from ecosystem.names import ALL_SERVICES
from ecosystem.security import INSECURE, SECURE

SERVICES = ("redis", *ALL_SERVICES)


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    return create_secrets(tmp_path / "secrets", SECURE).directory


def test_each_service_keeps_what_it_runs_in_compose_and_gets_the_swarm_settings(secrets_dir: Path) -> None:
    compose = _load(COMPOSE_FILE)
    stack = render_stack(compose, _load(SWARM_FILE), secrets_dir)

    assert sorted(stack["services"]) == sorted(SERVICES)
    for name in SERVICES:
        service, source = stack["services"][name], compose["services"][name]
        for kept in ("image", "command", "environment", "healthcheck", "stop_grace_period", "init"):
            assert service[kept] == source[kept], f"{name}: {kept}"
        assert not {"build", "depends_on", "volumes"} & set(service), name
        assert service["labels"]["org.ecosystem.stack"] == source["labels"]["org.ecosystem.stack"]
        assert "org.ecosystem.suite.owner" in service["labels"]
        assert service["deploy"]["restart_policy"]["condition"] == "on-failure"
        assert service["deploy"]["endpoint_mode"] == "dnsrr"
        assert [port["mode"] for port in service["ports"]] == ["host"]
    assert stack["networks"]["default"]["attachable"] is True


def test_every_file_of_a_mounted_secrets_folder_is_a_swarm_secret_at_the_same_path(secrets_dir: Path) -> None:
    stack = render_stack(_load(COMPOSE_FILE), _load(SWARM_FILE), secrets_dir)

    engine = stack["services"]["trading-system-engine"]["secrets"]
    assert sorted(secret["target"] for secret in engine) == [
        "/run/ecosystem/pki/ca.pem",
        "/run/ecosystem/pki/trading-system-engine.key",
        "/run/ecosystem/pki/trading-system-engine.pem",
    ]
    acl = {"source": "users.acl", "target": "/run/ecosystem/redis/users.acl"}
    assert stack["services"]["redis"]["secrets"] == [acl]
    # One secret per file name: the CA every folder holds a copy of is one secret; no service gets another's key.
    assert sorted(stack["secrets"]) == sorted(
        ["ca.pem", "users.acl", *(f"{service}.{kind}" for service in ALL_SERVICES for kind in ("pem", "key"))]
    )
    for service in ALL_SERVICES:
        mounted = {secret["source"] for secret in stack["services"][service]["secrets"]}
        assert mounted == {"ca.pem", f"{service}.pem", f"{service}.key"}
    for secret in stack["secrets"].values():
        assert Path(secret["file"]).is_file()


def test_an_insecure_stack_has_only_the_redis_users_as_secret(tmp_path: Path) -> None:
    secrets_dir = create_secrets(tmp_path / "secrets", INSECURE).directory

    stack = render_stack(_load(COMPOSE_FILE), _load(SWARM_FILE), secrets_dir)

    assert list(stack["secrets"]) == ["users.acl"]
    assert all("secrets" not in stack["services"][service] for service in ALL_SERVICES)


def test_a_compose_setting_the_stack_does_not_know_is_refused(secrets_dir: Path) -> None:
    compose = _load(COMPOSE_FILE)
    compose["services"]["risk-monitor"]["privileged"] = True

    with pytest.raises(ValueError, match=r"risk-monitor of docker-compose\.yml has privileged"):
        render_stack(compose, _load(SWARM_FILE), secrets_dir)


def test_a_mount_other_than_a_secrets_folder_is_refused(secrets_dir: Path) -> None:
    compose = _load(COMPOSE_FILE)
    compose["services"]["risk-monitor"]["volumes"] = ["/etc:/host-etc:ro"]

    with pytest.raises(ValueError, match="risk-monitor mounts '/etc:/host-etc:ro'"):
        render_stack(compose, _load(SWARM_FILE), secrets_dir)


@pytest.mark.skipif(shutil.which("docker") is None
                    or subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0,
                    reason="no docker engine answers `docker info`")
def test_docker_stack_deploy_reads_the_rendered_stack(secrets_dir: Path, tmp_path: Path) -> None:
    stack_file = tmp_path / "stack.yml"
    stack_file.write_text(yaml.safe_dump(render_stack(_load(COMPOSE_FILE), _load(SWARM_FILE), secrets_dir)))
    variables = {"ECOSYSTEM_SUITE_OWNER": "host:1", "ECOSYSTEM_RESTART_DELAY": "1000ms",
                 "ECOSYSTEM_SWARM_NODE": "node", "ECOSYSTEM_REDIS_HOST_PORT": "16379"}

    read = subprocess.run(["docker", "stack", "config", "--compose-file", str(stack_file)], capture_output=True,
                          text=True, env={**os.environ, **variables}, check=False)

    assert read.returncode == 0, read.stderr
    config = yaml.safe_load(read.stdout)
    assert config["services"]["redis"]["ports"][0]["published"] == 16379
    assert config["services"]["risk-monitor"]["deploy"]["placement"]["constraints"] == ["node.id == node"]


def _task(slot: int, task_id: str, created: str, desired: str, state: str, container: str = "",
          error: str = "", exit_code: int = 0, message: str = "") -> dict[str, Any]:
    """A task as GET /tasks returns it, with the fields the target reads."""
    status: dict[str, Any] = {
        "State": state, "Message": message,
        "ContainerStatus": {"ContainerID": container, "ExitCode": exit_code} if container else {},
    }
    if error:
        status["Err"] = error
    return {"ID": task_id, "Slot": slot, "CreatedAt": created, "DesiredState": desired, "Status": status}


def test_each_slot_is_held_by_its_newest_live_task_else_by_one_that_completed() -> None:
    tasks = [
        # Slot 1: killed, its replacement waiting out the restart delay (desired state ready).
        _task(1, "killed", "2026-12-02T00:09:19.70Z", "shutdown", "failed", "c-killed", "task: non-zero exit (137)"),
        _task(1, "replacement", "2026-12-02T00:09:20.1Z", "ready", "ready"),
        # Slot 2: stopped gracefully; under on-failure it stays stopped.
        _task(2, "stopped", "2026-12-02T00:08:23.436712343Z", "shutdown", "complete", "c-stopped"),
        # Slot 3: scaled away; swarm keeps the task that failed there before as history.
        _task(3, "history", "2026-12-02T00:08:20Z", "shutdown", "failed", "c-history", "task: non-zero exit (1)"),
        # Slot 4: being scaled away.
        _task(4, "leaving", "2026-12-02T00:08:21Z", "remove", "running", "c-leaving"),
    ]

    assert current_slots(tasks) == [
        Slot(1, "replacement", "ready", "", ""),
        Slot(2, "stopped", "complete", "c-stopped", ""),
    ]


def test_the_newest_task_is_found_whatever_digits_its_creation_time_has() -> None:
    # Go trims trailing zeros from the fraction: "23.4Z" is earlier than "23.43Z" though it sorts last as text.
    tasks = [
        _task(1, "older", "2026-12-02T00:08:23.4Z", "running", "running", "c-older"),
        _task(1, "newer", "2026-12-02T00:08:23.43Z", "running", "starting", "c-newer"),
    ]

    assert [slot.task_id for slot in current_slots(tasks)] == ["newer"]


def test_an_ended_task_the_suite_did_not_end_is_reported_once_whether_swarm_replaced_it_or_not() -> None:
    t = "2026-12-02T00:09:19Z"
    tasks = [
        ("risk-monitor", _task(1, "crashed", t, "shutdown", "failed", "c-crashed", "task: non-zero exit (1)", 1)),
        ("risk-monitor", _task(1, "replacement", t, "running", "running", "c-replacement")),
        ("configuration-service", _task(1, "exited", t, "shutdown", "complete", "c-exited", message="finished")),
        ("test-coordinator", _task(1, "rejected", t, "shutdown", "rejected", error="no suitable node")),
        ("trading-system-engine", _task(1, "replaced", t, "shutdown", "shutdown", "c-replaced", exit_code=143,
                                        message="shutdown")),
    ]
    judged: set[str] = set()

    found = unexpected_ends(tasks, judged, ended_by_suite=(), shrunk=())

    assert found == [
        TaskEnd("risk-monitor", 1, "crashed", "failed", 1, "task: non-zero exit (1)", "c-crashed"),
        TaskEnd("configuration-service", 1, "exited", "complete", 0, "finished", "c-exited"),
        TaskEnd("test-coordinator", 1, "rejected", "rejected", None, "no suitable node", ""),
        TaskEnd("trading-system-engine", 1, "replaced", "shutdown", 143, "shutdown", "c-replaced"),
    ]
    assert found[0].describe() == "risk-monitor: task 1 (crashed) failed, exit code 1 (task: non-zero exit (1))"
    assert judged == {"crashed", "exited", "rejected", "replaced"}
    assert unexpected_ends(tasks, judged, ended_by_suite=(), shrunk=()) == []


def test_tasks_the_suite_stopped_killed_or_scaled_away_are_not_reported() -> None:
    t = "2026-12-02T00:09:19Z"
    tasks = [
        # Killed by the suite (the orchestrator scenario, a kill fault): failed, replaced by swarm.
        ("risk-monitor", _task(1, "killed", t, "shutdown", "failed", "c-killed", "task: non-zero exit (137)", 137)),
        # Stopped by the suite: exited 0.
        ("configuration-service", _task(1, "stopped", t, "shutdown", "complete", "c-stopped")),
        # Removed by swarm from a service the suite scaled down.
        ("test-coordinator", _task(2, "scaled-away", t, "remove", "shutdown", "c-scaled-away")),
        # Removed by swarm from a service the suite never scaled down: not the suite's doing.
        ("trading-system-engine", _task(2, "removed", t, "remove", "shutdown", "c-removed")),
    ]

    found = unexpected_ends(tasks, set(), ended_by_suite={"c-killed", "c-stopped"}, shrunk={"test-coordinator"})

    assert [end.task_id for end in found] == ["removed"]


def test_a_stack_removal_that_failed_is_not_waited_for_again_at_exit(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    removals: list[str] = []

    def remove_stack(client: object, namespace: str) -> None:
        removals.append(namespace)
        raise TargetError(f"stack {namespace}", "stack ecosystem-x is removed within 120s, but it was not")

    monkeypatch.setattr(swarm, "remove_stack", remove_stack)
    monkeypatch.setattr(swarm, "stack_leftovers", lambda client, namespace: [f"service {namespace}_redis"])
    deployment = _Deployment("ecosystem-x")
    deployment.deployed = True

    with pytest.raises(TargetError):
        deployment.remove(client=None)  # stop_all: the removal times out
    deployment.safety_net(client=None)  # interpreter exit

    assert removals == ["ecosystem-x"]
    assert "stack ecosystem-x could not be removed; left: service ecosystem-x_redis" in capsys.readouterr().out
