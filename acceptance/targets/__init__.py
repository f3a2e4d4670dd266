"""Stack targets: where the ecosystem under test runs. Features use `StackTarget` and never know which one.

    target = make_target("local", log_dir="reports/logs/run-1")
    target.start()
    ...
    target.stop_all()

A new target is a module here with a `StackTarget` subclass, listed in `_TARGETS`; the docker target
is `acceptance/targets/docker.py` with class `DockerTarget`, picked by default once it exists and a
docker engine answers.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
from typing import Any

from acceptance.targets.base import CAPABILITIES, ServiceHandle, StackTarget, TargetError

__all__ = [
    "CAPABILITIES",
    "TARGET_NAMES",
    "ServiceHandle",
    "StackTarget",
    "TargetError",
    "default_target_name",
    "make_target",
]

# Imported on demand: a target's dependencies (the docker SDK, ...) load only when it is chosen.
_TARGETS = {
    "local": ("acceptance.targets.local", "LocalTarget"),
    "external": ("acceptance.targets.external", "ExternalTarget"),
    "docker": ("acceptance.targets.docker", "DockerTarget"),
}
TARGET_NAMES = tuple(_TARGETS)
DOCKER_INFO_TIMEOUT_S = 15.0


def make_target(name: str, **options: Any) -> StackTarget:
    """A new, not yet started target; `options` go to its constructor."""
    try:
        module_name, class_name = _TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown stack target {name!r}: one of {', '.join(TARGET_NAMES)}") from None
    target_class = getattr(importlib.import_module(module_name), class_name)
    return target_class(**options)


def default_target_name() -> tuple[str, str]:
    """("docker", why) when the docker target exists and an engine answers `docker info`, else ("local", why)."""
    if importlib.util.find_spec(_TARGETS["docker"][0]) is None:
        return "local", "there is no docker target module (acceptance/targets/docker.py)"
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=DOCKER_INFO_TIMEOUT_S, check=False,
        )
    except FileNotFoundError:
        return "local", "there is no docker CLI on PATH"
    except subprocess.TimeoutExpired:
        return "local", f"`docker info` did not answer within {DOCKER_INFO_TIMEOUT_S:g}s"
    if info.returncode != 0:
        lines = (info.stderr or info.stdout).strip().splitlines()
        return "local", f"no docker engine answers `docker info`: {lines[-1] if lines else f'exit {info.returncode}'}"
    return "docker", f"a docker engine {info.stdout.strip()} answers `docker info`"
