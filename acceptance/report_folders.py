"""One reports folder from several: the parallel workers of a run, or the shards of a CI pipeline.

A reports folder holds what behave and environment.py wrote for one run: `junit/` (one TESTS-<file>.xml
per feature file), `allure-results/`, `scenarios.jsonl`, `hook-errors.jsonl`, `stack.json` and
`behave.log`. Merged, a feature file split over several folders is one JUnit suite again (its counts
recomputed), Allure results sit side by side (their names are UUIDs), records are in the order the
scenarios started, and each log keeps a header naming the folder it came from.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from acceptance.allure_report import is_conclusion
from acceptance.signoff import HOOK_ERRORS_FILE, SCENARIOS_FILE, STACK_FILE, read_scenario_records

JUNIT = "junit"
ALLURE_RESULTS = "allure-results"
BEHAVE_LOG = "behave.log"


def merge_folders(sources: Sequence[Path], into: Path) -> None:
    """Merge the reports folders `sources` into `into` (which may hold other outputs, e.g. history/)."""
    _merge_junit([source / JUNIT for source in sources], into / JUNIT)
    results = into / ALLURE_RESULTS
    results.mkdir(parents=True, exist_ok=True)
    for source in sources:
        if (source / ALLURE_RESULTS).is_dir():
            for path in (source / ALLURE_RESULTS).iterdir():
                if not is_conclusion(path):  # a shard's verdict and hook errors: the merge concludes anew
                    shutil.copy2(path, results / path.name)
    records = sorted((record for source in sources for record in read_scenario_records(source)),
                     key=lambda record: record.started_at)
    _write_lines(into / SCENARIOS_FILE, [json.dumps(asdict(record)) for record in records])
    _write_lines(into / HOOK_ERRORS_FILE, [line for source in sources for line in _lines(source / HOOK_ERRORS_FILE)])
    stack = next((source / STACK_FILE for source in sources if (source / STACK_FILE).is_file()), None)
    if stack is not None:
        shutil.copy2(stack, into / STACK_FILE)
    with (into / BEHAVE_LOG).open("w", encoding="utf-8") as log:
        for source in sources:
            log.write(f"===== {source / BEHAVE_LOG} =====\n")
            log.writelines(line + "\n" for line in _lines(source / BEHAVE_LOG))


def _merge_junit(sources: Sequence[Path], into: Path) -> None:
    """behave writes one suite per feature file; a file whose scenarios ran in several folders gets one suite
    with all their testcases and counts that add up. A scenario that several folders report (a worker that
    stopped early reports the rest as untested) is kept once, as it ran."""
    suites: dict[str, ET.ElementTree] = {}
    cases: dict[str, dict[tuple[str, str], ET.Element]] = {}
    for source in sources:
        for path in sorted(source.glob("*.xml")):
            tree = ET.parse(path)
            suites.setdefault(path.name, tree)
            kept = cases.setdefault(path.name, {})
            for case in tree.getroot().findall("testcase"):
                key = (case.get("classname", ""), case.get("name", ""))
                if key not in kept or _rank(case) > _rank(kept[key]):
                    kept[key] = case
    into.mkdir(parents=True, exist_ok=True)
    for name, tree in suites.items():
        suite = tree.getroot()
        for case in suite.findall("testcase"):
            suite.remove(case)
        suite.extend(cases[name].values())
        cases_kept = list(cases[name].values())
        suite.set("tests", str(len(cases_kept)))
        for attribute, child in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
            suite.set(attribute, str(sum(case.find(child) is not None for case in cases_kept)))
        suite.set("time", f"{sum(float(case.get('time', 0) or 0) for case in cases_kept):.6f}")
        tree.write(into / name, encoding="utf-8", xml_declaration=True)


def _rank(case: ET.Element) -> int:
    """Ran (passed, failed, error) > skipped > never run."""
    return {"untested": 0, "skipped": 1}.get(case.get("status", ""), 2)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []


def _write_lines(path: Path, lines: list[str]) -> None:
    if lines:
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
