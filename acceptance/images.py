"""The container images of the docker target, built offline when no registry answers.

    python -m acceptance.images          # `make images`: build what is missing, print what to run

The services' image is compose/Dockerfile on BASE_IMAGE (default python:3.11-slim); Redis runs from
REDIS_IMAGE (default redis:7). An image that is neither present nor pullable is replaced by a Debian
base this module builds once with debootstrap (python3, python3-venv, redis-server) from the mirror
in the machine's apt sources. Python dependencies come from a wheelhouse downloaded on the host, so
the build itself needs no network. Everything is reused: the base image, the wheelhouse while
requirements/services.lock is unchanged, and Docker's layer cache.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE = REPO_ROOT / ".cache"
WHEELHOUSE = CACHE / "wheelhouse"
LOCK = REPO_ROOT / "requirements" / "services.lock"
DOCKERFILE = REPO_ROOT / "compose" / "Dockerfile"

DEFAULT_BASE_IMAGE = "python:3.11-slim"
DEFAULT_REDIS_IMAGE = "redis:7"
LOCAL_BASE_IMAGE = "ecosystem-local/base:bookworm"
SERVICES_IMAGE = "ecosystem/services:latest"
IMAGE_LABEL = "org.ecosystem.stack=reference-ecosystem"
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = "python3,python3-venv,redis-server,ca-certificates"
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
# The image's Python, whatever Python runs this module.
PYTHON_VERSION = "3.11"
# The Pythons the image may run: Debian bookworm's 3.11.2 (the offline base) or python:3.11-slim's latest 3.11. pip
# evaluates a lock's markers with the Python that runs it, not --python-version, so the wheelhouse is chosen here.
IMAGE_PYTHONS = ("3.11.2", "3.11.99")
PULL_TIMEOUT_S = 300.0


class ImageError(RuntimeError):
    """An image could not be had: names the image, the command and its output."""


@dataclass(frozen=True)
class Images:
    services: str
    redis: str
    base: str

    def compose_env(self) -> dict[str, str]:
        """The variables compose/docker-compose.yml reads its images from."""
        return {"ECOSYSTEM_IMAGE": self.services, "REDIS_IMAGE": self.redis, "BASE_IMAGE": self.base}


def ensure_images(log: Callable[[str], None] = print) -> Images:
    """Build or reuse every image the stack needs; BASE_IMAGE and REDIS_IMAGE in the environment override defaults."""
    base = _usable(os.environ.get("BASE_IMAGE"), DEFAULT_BASE_IMAGE, log)
    redis_image = _usable(os.environ.get("REDIS_IMAGE"), DEFAULT_REDIS_IMAGE, log)
    ensure_wheelhouse(log)
    started = time.monotonic()
    _run(
        ["docker", "build", "--quiet", "--force-rm", "--file", str(DOCKERFILE), "--build-arg", f"BASE_IMAGE={base}",
         "--label", IMAGE_LABEL, "--tag", SERVICES_IMAGE, str(REPO_ROOT)],
        what=f"build {SERVICES_IMAGE} from {DOCKERFILE.relative_to(REPO_ROOT)} on {base}",
    )
    log(f"images: {SERVICES_IMAGE} built on {base} in {time.monotonic() - started:.1f}s")
    # Each change of the code leaves the previous build untagged: remove those, keep the layer cache.
    _run(["docker", "image", "prune", "--force", "--filter", f"label={IMAGE_LABEL}"], what="prune replaced images")
    return Images(services=SERVICES_IMAGE, redis=redis_image, base=base)


def ensure_local_base(log: Callable[[str], None] = print) -> str:
    """The Debian base image, built by debootstrap + `docker import` unless it exists already."""
    if _present(LOCAL_BASE_IMAGE):
        return LOCAL_BASE_IMAGE
    if shutil.which("debootstrap") is None:
        raise ImageError(f"{LOCAL_BASE_IMAGE} is needed and missing, and there is no debootstrap to build it")
    mirror = debian_mirror()
    started = time.monotonic()
    log(f"images: building {LOCAL_BASE_IMAGE} with debootstrap from {mirror} (about a minute, once)")
    CACHE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=CACHE) as rootfs:
        _run(
            ["debootstrap", "--variant=minbase", f"--include={DEBIAN_PACKAGES}", DEBIAN_SUITE, rootfs, mirror],
            what=f"debootstrap {DEBIAN_SUITE} into {rootfs}",
        )
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        try:
            _run(
                ["docker", "import", "--change", "ENV LANG=C.UTF-8", "--change", f"LABEL {IMAGE_LABEL}",
                 "-", LOCAL_BASE_IMAGE],
                what=f"docker import {LOCAL_BASE_IMAGE}",
                stdin=tar.stdout,
            )
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar.wait()
    log(f"images: {LOCAL_BASE_IMAGE} built in {time.monotonic() - started:.0f}s")
    return LOCAL_BASE_IMAGE


def debian_mirror() -> str:
    """The first Debian archive URI of this machine's apt sources (never the security archive)."""
    for sources in APT_SOURCES:
        if not sources.is_file():
            continue
        text = sources.read_text()
        uris = re.findall(r"^URIs:\s*(\S+)", text, flags=re.MULTILINE)
        uris += re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, flags=re.MULTILINE)
        for uri in uris:
            if "security" not in uri:
                return uri
    raise ImageError(f"no Debian mirror found in {', '.join(str(s) for s in APT_SOURCES)}")


def ensure_wheelhouse(log: Callable[[str], None] = print) -> Path:
    """The wheels of requirements/services.lock, hashes checked, for the image's CPython 3.11 on this machine's
    architecture; downloaded again when the lock changes."""
    arch = platform.machine()
    stamp = WHEELHOUSE / ".requirements.sha256"
    digest = hashlib.sha256(LOCK.read_bytes() + f"{PYTHON_VERSION} {arch}".encode()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return WHEELHOUSE
    shutil.rmtree(WHEELHOUSE, ignore_errors=True)
    WHEELHOUSE.mkdir(parents=True)
    for_the_image = WHEELHOUSE / ".download.lock"
    for_the_image.write_text(image_requirements(LOCK.read_text(), arch))
    started = time.monotonic()
    _run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--dest", str(WHEELHOUSE),
         "--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON_VERSION,
         "--platform", f"manylinux2014_{arch}", "--platform", f"manylinux_2_28_{arch}",
         "--require-hashes", "--no-deps", "--requirement", str(for_the_image)],
        what=f"download the wheels of {LOCK.relative_to(REPO_ROOT)} for CPython {PYTHON_VERSION} {arch}",
    )
    for_the_image.unlink()
    stamp.write_text(digest + "\n")
    log(f"images: wheelhouse {WHEELHOUSE} filled in {time.monotonic() - started:.1f}s")
    return WHEELHOUSE


def image_requirements(lock: str, arch: str) -> str:
    """The entries of a hashed lock (`name==version ; marker \\` and its `--hash` lines) that some Python of
    IMAGE_PYTHONS on Linux `arch` needs, without their markers: what the wheelhouse must hold for pip in the image,
    which evaluates the markers again itself."""
    environments = [_linux(arch, version) for version in IMAGE_PYTHONS]
    kept: list[str] = []
    keep = False
    for line in lock.splitlines():
        if not line or line.startswith("#") or line.startswith(" "):
            if keep and line.lstrip().startswith("--hash"):
                kept.append(line)
            continue
        head, _, marker = line.removesuffix("\\").partition(";")
        keep = not marker.strip() or any(Marker(marker).evaluate(environment) for environment in environments)
        if keep:
            kept.append(f"{head.strip()} \\")
    return "\n".join(kept) + "\n"


def _linux(arch: str, python: str) -> dict[str, str]:
    return {
        "python_version": python.rsplit(".", 1)[0], "python_full_version": python, "sys_platform": "linux",
        "platform_system": "Linux", "platform_machine": arch, "os_name": "posix", "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


def _usable(chosen: str | None, default: str, log: Callable[[str], None]) -> str:
    """The image to run: the one chosen in the environment, else the default, else the local base.

    A default that is not here is pulled only while there is no local base yet: once the registry
    has failed and the base is built, later runs do not ask the registry again.
    """
    image = chosen or default
    if _present(image):
        return image
    if not chosen and _present(LOCAL_BASE_IMAGE):
        log(f"images: {image} is not here; using {LOCAL_BASE_IMAGE} (`docker pull {image}` to use it instead)")
        return LOCAL_BASE_IMAGE
    if _pulled(image, log):
        return image
    log(f"images: {image} cannot be pulled; using the local Debian base {LOCAL_BASE_IMAGE}")
    return ensure_local_base(log)


def _present(image: str) -> bool:
    inspect = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    return inspect.returncode == 0


def _pulled(image: str, log: Callable[[str], None]) -> bool:
    try:
        pull = subprocess.run(["docker", "pull", image], capture_output=True, text=True, timeout=PULL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log(f"images: docker pull {image} did not finish within {PULL_TIMEOUT_S:g}s")
        return False
    if pull.returncode != 0:
        lines = (pull.stderr or pull.stdout).strip().splitlines()
        log(f"images: docker pull {image} failed: {lines[-1] if lines else f'exit {pull.returncode}'}")
    return pull.returncode == 0


def _run(command: list[str], *, what: str, stdin: object = None) -> str:
    completed = subprocess.run(
        command, cwd=REPO_ROOT, stdin=stdin, capture_output=True, text=True, check=False  # type: ignore[arg-type]
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip().splitlines()
        raise ImageError(
            f"could not {what}: `{' '.join(command)}` exited {completed.returncode}\n" + "\n".join(output[-40:])
        )
    return completed.stdout


def main() -> int:
    try:
        images = ensure_images()
    except ImageError as exc:
        print(f"images: {exc}", file=sys.stderr)
        return 1
    for name, value in images.compose_env().items():
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
