"""scripts/docker_targets.sh (`make test-containers`): which Compose versions the docker target runs on.

`docker`, `docker-compose` and the Python that would run the suite are scripts here that answer as each does and
record what they were asked; the script under test is the real one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from acceptance.selftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "docker_targets.sh"
V2 = '[ "$1 $2 $3" = "compose version --short" ] && echo "5.6.1"'
V1 = 'echo "1.29.2"'
MISSING = "exit 127"


def run(tmp_path: Path, *, docker: str, docker_compose: str, ci: bool = False, suite_exit: int = 0):
    for name, body in (("docker", docker), ("docker-compose", docker_compose)):
        (tmp_path / name).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / name).chmod(0o755)
    runs = tmp_path / "runs"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$DOCKER_COMPOSE|$*" >> {runs}\nexit {suite_exit}\n')
    python.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    env.pop("CI", None)
    if ci:
        env["CI"] = "true"
    done = subprocess.run(
        [str(SCRIPT), str(python), "--tags", "@critical and not @slow"], env=env, capture_output=True, text=True,
        check=False,
    )
    made = runs.read_text().splitlines() if runs.exists() else []
    return done, made


ON_V2 = "docker compose|-m acceptance.run --target docker --jobs 2 --keep-as docker --tags @critical and not @slow"
ON_V1 = "docker-compose|-m acceptance.run --target docker --jobs 2 --keep-as docker-v1 --tags @critical and not @slow"


def test_with_both_the_target_runs_on_v2_then_v1_with_the_callers_arguments(tmp_path: Path) -> None:
    done, made = run(tmp_path, docker=V2, docker_compose=V1)

    assert done.returncode == 0, done.stderr
    assert made == [ON_V2, ON_V1]


@pytest.mark.parametrize(
    ("docker", "docker_compose", "expected", "said"),
    [
        (V2, MISSING, [ON_V2], "no Compose v1: the docker target ran on v2 only"),
        (MISSING, V1, [ON_V1], "no Compose v2 (`make compose-plugin` installs it): the docker target ran on v1 only"),
        # A standalone docker-compose 2.x is v2 under the old name, not the v1 the compose file must keep working on.
        (V2, 'echo "2.26.1"', [ON_V2], "no Compose v1: the docker target ran on v2 only"),
    ],
    ids=["v2 only", "v1 only", "docker-compose is 2.x"],
)
def test_with_one_it_runs_on_that_one_and_says_which_did_not(
    tmp_path: Path, docker: str, docker_compose: str, expected: list[str], said: str
) -> None:
    done, made = run(tmp_path, docker=docker, docker_compose=docker_compose)

    assert done.returncode == 0, done.stderr
    assert made == expected
    assert said in done.stdout


def test_with_neither_it_fails_naming_both_commands(tmp_path: Path) -> None:
    done, made = run(tmp_path, docker=MISSING, docker_compose=MISSING)

    assert done.returncode == 1
    assert made == []
    assert "neither `docker compose` nor `docker-compose` (1.x) answers" in done.stderr


def test_in_ci_a_missing_version_fails_before_anything_runs(tmp_path: Path) -> None:
    done, made = run(tmp_path, docker=V2, docker_compose=MISSING, ci=True)

    assert done.returncode == 1
    assert made == []
    assert "CI=true needs Compose v2 and v1, found v2 '5.6.1' and v1 ''" in done.stderr


def test_a_failed_run_on_v2_fails_without_running_v1(tmp_path: Path) -> None:
    done, made = run(tmp_path, docker=V2, docker_compose=V1, suite_exit=3)

    assert done.returncode == 1
    assert made == [ON_V2]
