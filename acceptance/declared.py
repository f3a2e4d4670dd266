"""What the stack is declared to be: the settings it was started with, the configuration seed, the release.

Assertions compare the services' behaviour with these values, never with what a service says about
itself. The seed is read here with the standard library alone, not with the services' own parser,
so a defect in that parser cannot agree with itself.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from acceptance.targets.base import SuiteTimings

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED_FILE = REPO_ROOT / "config" / "seed.toml"
PYPROJECT = REPO_ROOT / "pyproject.toml"
# How much later than a declared time a reaction may be observed: the suite's own polling, a process
# being scheduled on a busy machine, a round trip to Redis.
REACTION_MARGIN_S = 1.0


@dataclass(frozen=True)
class SeededValue:
    value: str  # the text a GetConfiguration answer carries for it
    type: str  # string | number | boolean | json

    def matches(self, text: str) -> bool:
        """Whether `text` (from a Gherkin table or a response) is this value; JSON compares by content."""
        if self.type == "json":
            try:
                return json.loads(text) == json.loads(self.value)
            except ValueError:
                return False
        if self.type == "number":
            try:
                return float(text) == float(self.value)
            except ValueError:
                return False
        return text == self.value


@dataclass(frozen=True)
class Declared:
    timings: SuiteTimings
    environment: str
    version: str
    seed_file: Path = SEED_FILE

    @classmethod
    def of(cls, timings: SuiteTimings) -> Declared:
        project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
        return cls(timings=timings, environment=timings.environment_name, version=project["version"])

    @property
    def heartbeat_s(self) -> float:
        return self.timings.registry_ttl_ms / 3000

    @property
    def registry_ttl_s(self) -> float:
        return self.timings.registry_ttl_ms / 1000

    def expect(self, **stated: float) -> None:
        """What a feature states about the stack's settings is what the target started it with."""
        for name, value in stated.items():
            actual = getattr(self.timings, name)
            assert actual == value, (
                f"the feature states {name} = {value:g}, but the stack was started with {actual:g} "
                "(acceptance/targets/base.py SuiteTimings)"
            )

    def seeded(self, key: str, environment: str | None = None) -> SeededValue:
        """The seed's value of `key` in `environment` (default: the stack's); AssertionError if it has none."""
        environment = environment or self.environment
        document = tomllib.loads(self.seed_file.read_text(encoding="utf-8"))
        overrides = document.get("environments", {}).get(environment, {})
        for table in (overrides, document.get("defaults", {})):
            if key in table:
                return _seeded_value(table[key])
        raise AssertionError(f"{self.seed_file.name} declares no {key!r} for environment {environment!r}")


def _seeded_value(raw: object) -> SeededValue:
    if isinstance(raw, bool):
        return SeededValue("true" if raw else "false", "boolean")
    if isinstance(raw, int | float):
        return SeededValue(str(raw), "number")
    if isinstance(raw, str):
        return SeededValue(raw, "string")
    return SeededValue(json.dumps(raw), "json")
