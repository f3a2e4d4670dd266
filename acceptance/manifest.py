"""The stack manifest: which services the suite expects, what each serves, and how to start it.

    manifest = load_manifest("examples/manifest.toml")
    for service in manifest.services:
        print(service.name, service.grpc_services, service.health_service)

The format is documented in docs/MANIFEST.md; manifests/reference.toml describes the reference trading
ecosystem and is the default. The generic features run once per declared service; a feature tagged
`@contract.<name>` runs only when the manifest's `contracts` list `<name>`. Errors name the file, the
entry and the field, and say what was expected.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecosystem.names import ALL_SERVICES

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = REPO_ROOT / "manifests" / "reference.toml"
CONTRACT_TAG_PREFIX = "contract."
# A registry service name: it becomes part of Redis keys (docs/REGISTRY.md).
SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
GRPC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
PLACEHOLDERS = ("{python}", "{port}", "{redis_url}", "{host}", "{manifest_dir}")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
MAX_SERVICES = 64


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class StartCommand:
    """How the local launcher starts a service: an argv with placeholders, and whether it registers itself."""

    command: tuple[str, ...]
    registers_itself: bool = True


@dataclass(frozen=True)
class DeclaredService:
    name: str
    grpc_services: tuple[str, ...]
    health_service: str
    version: str = ""  # when given, every instance must register with this version
    start: StartCommand | None = None


@dataclass(frozen=True)
class Manifest:
    path: Path
    name: str
    services: tuple[DeclaredService, ...]
    contracts: frozenset[str] = field(default_factory=frozenset)

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(service.name for service in self.services)

    def service(self, name: str) -> DeclaredService:
        """The declared service `name`; AssertionError naming the declared ones otherwise."""
        for service in self.services:
            if service.name == name:
                return service
        raise AssertionError(
            f"{name!r} is not a service of the manifest {self.path.name}: it declares {', '.join(self.service_names)}"
        )

    def missing_contracts(self, tags: set[str] | frozenset[str]) -> list[str]:
        """The `@contract.<name>` tags among `tags` whose contract this manifest does not declare."""
        wanted = {tag[len(CONTRACT_TAG_PREFIX):] for tag in tags if tag.startswith(CONTRACT_TAG_PREFIX)}
        return sorted(wanted - self.contracts)

    @property
    def is_reference(self) -> bool:
        """Whether these are the reference ecosystem's services, which the local and docker targets start."""
        return set(self.service_names) == set(ALL_SERVICES)


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read and check the manifest at `path` (default: the reference ecosystem's)."""
    path = Path(path) if path else DEFAULT_MANIFEST
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"stack manifest {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"stack manifest {path}: cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"stack manifest {path}: not TOML: {exc}") from None
    return parse_manifest(document, path)


def parse_manifest(document: dict[str, Any], path: Path) -> Manifest:
    where = f"stack manifest {path}"
    _only(document, {"stack", "services"}, where)
    stack = _table(document, "stack", where)
    _only(stack, {"name", "contracts"}, f"{where} [stack]")
    name = _string(stack, "name", f"{where} [stack]")
    contracts = _strings(stack, "contracts", f"{where} [stack]", required=False)
    entries = document.get("services")
    if not isinstance(entries, list) or not entries:
        raise ManifestError(f"{where}: expected at least one [[services]] entry")
    if len(entries) > MAX_SERVICES:
        raise ManifestError(f"{where}: {len(entries)} services, at most {MAX_SERVICES}")
    services = tuple(_service(entry, f"{where} [[services]] #{number}") for number, entry in enumerate(entries, 1))
    seen: set[str] = set()
    for service in services:
        if service.name in seen:
            raise ManifestError(f"{where}: service {service.name!r} is declared twice")
        seen.add(service.name)
    return Manifest(path=path, name=name, services=services, contracts=frozenset(contracts))


def _service(entry: Any, where: str) -> DeclaredService:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected a table")
    _only(entry, {"name", "grpc_services", "health_service", "version", "start"}, where)
    name = _string(entry, "name", where)
    if not SERVICE_NAME.match(name):
        raise ManifestError(
            f"{where}: name {name!r} is not a registry service name (lower case letters, digits, '.', '_', '-'; "
            "at most 63 characters)"
        )
    where = f"{where} ({name})"
    grpc_services = _strings(entry, "grpc_services", where)
    if not grpc_services:
        raise ManifestError(f"{where}: grpc_services: expected at least one fully qualified gRPC service name")
    for grpc_name in grpc_services:
        if not GRPC_NAME.match(grpc_name):
            raise ManifestError(f"{where}: grpc_services: {grpc_name!r} is not a fully qualified gRPC service name")
    health_service = entry.get("health_service", grpc_services[0])
    if not isinstance(health_service, str):
        raise ManifestError(f"{where}: health_service: expected a string, got {health_service!r}")
    version = entry.get("version", "")
    if not isinstance(version, str):
        raise ManifestError(f"{where}: version: expected a string, got {version!r}")
    start = _start(entry["start"], f"{where} start") if "start" in entry else None
    return DeclaredService(name, tuple(grpc_services), health_service, version, start)


def _start(entry: Any, where: str) -> StartCommand:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected a table")
    _only(entry, {"command", "registers_itself"}, where)
    command = _strings(entry, "command", where)
    if not command:
        raise ManifestError(f"{where}: command: expected a non-empty list of arguments")
    unknown = sorted({found for argument in command for found in _PLACEHOLDER.findall(argument)} - set(PLACEHOLDERS))
    if unknown:
        raise ManifestError(f"{where}: command: unknown placeholder {unknown[0]}; expected {', '.join(PLACEHOLDERS)}")
    if not any("{port}" in argument for argument in command):
        raise ManifestError(f"{where}: command: expected a {{port}} placeholder for the port the launcher picks")
    registers_itself = entry.get("registers_itself", True)
    if not isinstance(registers_itself, bool):
        raise ManifestError(f"{where}: registers_itself: expected true or false, got {registers_itself!r}")
    return StartCommand(tuple(command), registers_itself)


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ManifestError(f"{where}: unknown field {unknown[0]!r}; expected one of {', '.join(sorted(allowed))}")


def _table(document: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = document.get(key)
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: expected a [{key}] table")
    return value


def _string(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{where}: {key}: expected a non-empty string, got {value!r}")
    return value


def _strings(table: dict[str, Any], key: str, where: str, *, required: bool = True) -> list[str]:
    if key not in table and not required:
        return []
    value = table.get(key)
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ManifestError(f"{where}: {key}: expected a list of non-empty strings, got {value!r}")
    return value
