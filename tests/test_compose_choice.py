"""Which Compose the docker target runs: the one DOCKER_COMPOSE names, else v2 where its plugin answers, else v1.

The Compose commands here are scripts that answer `version --short` as each Compose does; nothing else is run."""

from __future__ import annotations

from pathlib import Path

import pytest

from acceptance.targets.base import TargetError
from acceptance.targets.docker import Compose, find_compose


def command(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("DOCKER_COMPOSE", raising=False)
    command(tmp_path, "docker-compose", 'echo "1.29.2"')
    return tmp_path


def test_v2_is_chosen_where_its_plugin_answers(bin_dir: Path) -> None:
    command(bin_dir, "docker", '[ "$1 $2 $3" = "compose version --short" ] && echo "v5.6.1"')

    assert find_compose() == Compose(("docker", "compose"), "5.6.1")


def test_v1_is_the_fallback_where_docker_has_no_compose_plugin(bin_dir: Path) -> None:
    command(bin_dir, "docker", 'echo "docker: \'compose\' is not a docker command." >&2; exit 1')

    assert find_compose().describe() == "docker-compose 1.29.2"


def test_docker_compose_names_the_one_to_run_even_where_v2_answers(
    bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command(bin_dir, "docker", 'echo "5.6.1"')
    monkeypatch.setenv("DOCKER_COMPOSE", "docker-compose")

    assert find_compose() == Compose(("docker-compose",), "1.29.2")


def test_a_docker_compose_that_does_not_answer_is_one_clear_error(
    bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_COMPOSE", "docker compose")  # no `docker` on PATH at all

    with pytest.raises(TargetError, match=r"DOCKER_COMPOSE='docker compose' to answer `version --short`, but none "
                                          r"did") as raised:
        find_compose()
    assert "No such file or directory: 'docker'" in raised.value.log_tail


def test_where_no_compose_answers_the_error_shows_what_each_said(bin_dir: Path) -> None:
    command(bin_dir, "docker", 'echo "docker: \'compose\' is not a docker command." >&2; exit 1')
    command(bin_dir, "docker-compose", 'echo "docker-compose: broken install" >&2; exit 2')

    with pytest.raises(TargetError, match="`docker compose` or `docker-compose` to answer") as raised:
        find_compose()
    assert raised.value.log_tail.splitlines() == [
        "$ docker compose version --short", "exit status 1: docker: 'compose' is not a docker command.",
        "$ docker-compose version --short", "exit status 2: docker-compose: broken install",
    ]
