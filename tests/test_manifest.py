"""The stack manifest: the shipped ones load, mistakes are one line naming the field, and the manifest fills
the generic outlines and decides what is not applicable."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from behave.parser import parse_feature

from acceptance.applicability import fill_manifest_examples, not_applicable
from acceptance.manifest import ManifestError, load_manifest, parse_manifest
from ecosystem.names import ALL_SERVICES, GRPC_SERVICES

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_the_reference_manifest_declares_the_reference_services_and_release() -> None:
    manifest = load_manifest()
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert manifest.is_reference and manifest.contracts == {"trading"}
    for service in manifest.services:
        assert service.health_service == GRPC_SERVICES[service.name]
        assert service.version == version
    assert manifest.service_names == ALL_SERVICES


def test_the_example_manifest_starts_a_service_that_does_not_register_itself() -> None:
    manifest = load_manifest(REPO_ROOT / "examples" / "manifest.toml")
    assert not manifest.is_reference and manifest.contracts == frozenset()
    starts = {service.name: service.start for service in manifest.services}
    assert starts["greeter"].registers_itself and not starts["route-guide"].registers_itself


@pytest.mark.parametrize(("document", "message"), [
    ({"services": []}, "expected a [stack] table"),
    ({"stack": {"name": "s"}}, "expected at least one [[services]] entry"),
    ({"stack": {"name": "s", "contract": []}, "services": [{}]}, "unknown field 'contract'; expected one of"),
    ({"stack": {"name": "s"}, "services": [{"name": "Greeter", "grpc_services": ["a.B"]}]},
     "name 'Greeter' is not a registry service name"),
    ({"stack": {"name": "s"}, "services": [{"name": "g", "grpc_services": ["a B"]}]},
     "'a B' is not a fully qualified gRPC service name"),
    ({"stack": {"name": "s"}, "services": [{"name": "g", "grpc_services": ["a.B"], "start": {"command": ["x"]}}]},
     "expected a {port} placeholder"),
    ({"stack": {"name": "s"}, "services": [{"name": "g", "grpc_services": ["a.B"]}] * 2},
     "service 'g' is declared twice"),
])
def test_a_mistake_names_the_file_the_entry_and_the_field(document: dict, message: str) -> None:
    with pytest.raises(ManifestError) as error:
        parse_manifest(document, Path("my.toml"))
    assert str(error.value).startswith("stack manifest my.toml")
    assert message in str(error.value)


def test_manifest_examples_get_a_row_per_declared_service_and_grpc_service() -> None:
    feature = parse_feature("""
Feature: f
  @manifest.examples
  Scenario Outline: <service> serves <grpc_service>
    Then reflection on "<service>" lists "<grpc_service>"
    Examples:
      | service | grpc_service |
""")
    fill_manifest_examples([feature], load_manifest())
    names = [scenario.name for scenario in feature.walk_scenarios()]
    assert len(names) == 2 * len(ALL_SERVICES)
    assert names[0].startswith("configuration-service serves ecosystem.config.v1.ConfigurationService")


def test_not_applicable_names_the_missing_contract_before_a_missing_capability() -> None:
    examples = load_manifest(REPO_ROOT / "examples" / "manifest.toml")
    reason = not_applicable({"contract.trading", "needs.stop"}, set(), examples, "external")
    assert reason == (
        "the stack manifest manifest.toml (Example greeter and route guide) declares no contract trading "
        "(it declares: none)"
    )
    assert not_applicable({"contract.trading", "needs.stop"}, set(), load_manifest(), "external") == (
        "target 'external' cannot stop"
    )
    assert not_applicable({"contract.trading", "needs.stop"}, {"stop"}, load_manifest(), "local") == ""


def test_a_plaintext_stack_or_reflection_off_say_so() -> None:
    reference = load_manifest()
    assert not_applicable({"needs.security"}, set(), reference, "local").startswith("the stack runs plaintext")
    assert not_applicable({"needs.reflection"}, set(), reference, "local").startswith("reflection is off")
