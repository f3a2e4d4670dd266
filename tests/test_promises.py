"""docs/PROMISES.md points only at scenarios and tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

from behave.parser import parse_file

REPO_ROOT = Path(__file__).resolve().parent.parent
PROMISES = REPO_ROOT / "docs" / "PROMISES.md"
_CHECKER = re.compile(r"(scenarios?|test) ((?:`[^`]+`(?:, )?)+)")


def scenario_names() -> set[str]:
    names = set()
    for path in (REPO_ROOT / "features").glob("*.feature"):
        names |= {scenario.name for scenario in parse_file(str(path)).walk_scenarios(with_outlines=True)}
    return names


def checkers(kind: str) -> list[str]:
    found = []
    for match in _CHECKER.finditer(PROMISES.read_text(encoding="utf-8")):
        if match[1].startswith(kind):
            found += re.findall(r"`([^`]+)`", match[2])
    return found


def test_every_scenario_the_promises_name_exists() -> None:
    named = checkers("scenario")
    missing = sorted(set(named) - scenario_names())

    assert len(named) > 40
    assert not missing, f"docs/PROMISES.md names scenarios that do not exist: {missing}"


def test_every_test_the_promises_name_exists() -> None:
    missing = []
    for test in checkers("test"):
        path, _, name = test.partition("::")
        text = (REPO_ROOT / path).read_text(encoding="utf-8") if (REPO_ROOT / path).is_file() else ""
        if not text or (name and f"def {name}(" not in text):
            missing.append(test)

    assert not missing, f"docs/PROMISES.md names tests that do not exist: {missing}"
