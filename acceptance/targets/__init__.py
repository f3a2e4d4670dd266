"""Stack targets: where the ecosystem under test runs. Features use `StackTarget` and never know which one.

    target = make_target("local", log_dir="reports/logs/run-1")
    target.start()
    ...
    target.stop_all()

A new target is a module here with a `StackTarget` subclass, listed in `_TARGETS`; the docker target
is `acceptance/targets/docker.py` with class `DockerTarget`, picked by default once it exists and a
docker engine answers. The swarm target (`swarm.py`, chosen only by name) deploys the same compose file
as a stack on a Docker Swarm; both share `containers.py`.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
from typing import Any

from acceptance.manifest import Manifest, load_manifest
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
    "swarm": ("acceptance.targets.swarm", "SwarmTarget"),
}
TARGET_NAMES = tuple(_TARGETS)
DOCKER_INFO_TIMEOUT_S = 15.0


def make_target(name: str, manifest: Manifest | None = None, **options: Any) -> StackTarget:
    """A new, not yet started target for the stack `manifest` declares (default: the reference ecosystem);
    `options` go to its constructor."""
    manifest = manifest or load_manifest()
    if name not in _TARGETS:
        raise ValueError(f"unknown stack target {name!r}: one of {', '.join(TARGET_NAMES)}")
    if name == "external":
        return _target_class(name)(manifest=manifest, **options)
    if manifest.is_reference:
        return _target_class(name)(**options)
    if name == "local":
        from acceptance.targets.launched import LaunchedTarget

        return LaunchedTarget(manifest, **{k: v for k, v in options.items() if k in ("log_dir", "start_timeout")})
    raise ValueError(
        f"target {name!r} starts only the reference ecosystem; for the services of {manifest.path} use "
        "TARGET=local (their [services.start] commands) or TARGET=external REDIS_URL=..."
    )


def _target_class(name: str) -> type[StackTarget]:
    module_name, class_name = _TARGETS[name]
    return getattr(importlib.import_module(module_name), class_name)


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
