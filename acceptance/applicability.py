"""Which scenarios apply to the stack under test, and the examples the manifest gives the generic ones.

    @manifest.examples
    Scenario Outline: <service> is SERVING for <health_service>
      ...
      Examples: every service the manifest declares
        | service | health_service |

An outline tagged `@manifest.examples` gets one example row per declared service (or per declared
gRPC service, when its table has a `grpc_service` column), filled in before the run, so a new
service in the manifest is checked by the same scenarios without editing a feature. A scenario
whose tags need a capability the target lacks (`@needs.<capability>`) or a contract the manifest
does not declare (`@contract.<name>`) is skipped with that reason.
"""

from __future__ import annotations

from collections.abc import Iterable

from behave.model import Feature, ScenarioOutline, Table

from acceptance.manifest import Manifest

MANIFEST_EXAMPLES_TAG = "manifest.examples"
NEEDS_PREFIX = "needs."
# Capabilities that are a state of the stack rather than something a target can do to it.
STACK_STATES = {
    "security": "the stack runs plaintext (security mode insecure): there is no mTLS or authorization to check",
    "reflection": "reflection is off on this stack (-D reflection=off, as in production)",
    "orchestrator": "no orchestrator replaces a failed instance of this stack by itself (TARGET=swarm runs one)",
}
# The columns a @manifest.examples table may have, and where each value comes from.
COLUMNS = ("service", "health_service", "grpc_service")


def fill_manifest_examples(features: Iterable[Feature], manifest: Manifest) -> None:
    """Give every @manifest.examples outline one row per declared service (or gRPC service)."""
    for feature in features:
        for outline in feature.walk_scenarios(with_outlines=True):
            if isinstance(outline, ScenarioOutline) and MANIFEST_EXAMPLES_TAG in outline.effective_tags:
                for examples in outline.examples:
                    _fill(examples.table, manifest, f"{outline.location}")


def _fill(table: Table, manifest: Manifest, where: str) -> None:
    headings = list(table.headings)
    unknown = sorted(set(headings) - set(COLUMNS))
    if unknown:
        raise ValueError(f"{where}: @{MANIFEST_EXAMPLES_TAG} examples can have columns {', '.join(COLUMNS)}, "
                         f"not {', '.join(unknown)}")
    table.rows.clear()
    for service in manifest.services:
        grpc_services = service.grpc_services if "grpc_service" in headings else (service.grpc_services[0],)
        for grpc_service in grpc_services:
            values = {"service": service.name, "health_service": service.health_service, "grpc_service": grpc_service}
            table.add_row([values[heading] for heading in headings])


def not_applicable(tags: Iterable[str], capabilities: set[str], manifest: Manifest, target: str) -> str:
    """Why a scenario with these tags cannot run on this stack, or "" when it can."""
    tags = set(tags)
    contracts = manifest.missing_contracts(tags)
    if contracts:  # the first reason is enough: without the contract nothing else of the scenario applies
        declared = ", ".join(sorted(manifest.contracts)) or "none"
        return (f"the stack manifest {manifest.path.name} ({manifest.name}) declares no contract "
                f"{', '.join(contracts)} (it declares: {declared})")
    missing = sorted(tag[len(NEEDS_PREFIX):] for tag in tags if tag.startswith(NEEDS_PREFIX)
                     and tag[len(NEEDS_PREFIX):] not in capabilities)
    stated = [STACK_STATES[name] for name in missing if name in STACK_STATES]
    actions = [name for name in missing if name not in STACK_STATES]
    return "; ".join(stated + ([f"target {target!r} cannot {', '.join(actions)}"] if actions else []))
