"""Allure results fix-ups and the Allure 3 HTML report (npm `allure`, pinned in package.json).

allure-behave shows a `before_scenario` error as skipped, a cleanup error as passed and drops
`after_all` errors entirely. So after a run, scenarios that behave's JUnit calls failed or errored are
marked broken, and every hook or cleanup error becomes a broken result of its own: the report is never
green where behave failed.

The report's first screen carries the verdict: its title starts with GO or NO-GO, each reason is one of
Allure's global errors (root cause first) and the sign-off is a global attachment. A failure whose re-run
on a rebuilt stack passed is marked flaky. The generated page is stripped of the analytics tag Allure 3
embeds, so opening the report makes no request to any outside host.

`python -m acceptance.allure_report` regenerates the HTML from reports/allure-results (`make report`).
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from acceptance import ci_environment
from acceptance.signoff import (
    ERROR_STATUSES,
    FAILED_STATUSES,
    NOT_APPLICABLE,
    UNTESTED,
    FeatureResult,
    HookError,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
ALLURE_CONFIG = REPO_ROOT / "allurerc.json"
HOOK_ERRORS_SUITE = "Hook and cleanup errors"
# Allure 3.18's awesome template adds Google Analytics to every report (allure3 issue 476).
_ANALYTICS = re.compile(
    r'\s*<script async src="https://www\.googletagmanager\.com/[^"]*"></script>\s*<script>.*?gtag\(.*?</script>',
    re.DOTALL,
)
_OUTSIDE_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)
_GENERATE_TIMEOUT_S = 300
_NPM_CI_TIMEOUT_S = 600


class ReportError(RuntimeError):
    """The HTML report could not be produced (node/npm missing, npm ci or allure generate failed)."""


def ensure_node_packages(repo_root: Path = REPO_ROOT) -> None:
    """Install the pinned Allure CLI from package-lock.json when node_modules lacks it."""
    if (repo_root / "node_modules" / "allure").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ReportError("npm is not on PATH: install Node.js 20+ to get the Allure HTML report")
    _run([npm, "ci", "--no-audit", "--no-fund"], cwd=repo_root, timeout=_NPM_CI_TIMEOUT_S, what="npm ci")


def generate_html(results: Path, out: Path, *, config: Path = ALLURE_CONFIG, repo_root: Path = REPO_ROOT) -> Path:
    """Generate the single-file Allure report from `results` into `out`; return its index.html."""
    npx = shutil.which("npx")
    if npx is None:
        raise ReportError("npx is not on PATH: install Node.js 20+ to get the Allure HTML report")
    if not any(results.glob("*-result.json")):
        raise ReportError(f"no Allure results in {results}: did the allure formatter run (behave.ini `format`)?")
    # Run from the repo root: npx finds node_modules there, and allurerc's historyPath is relative to it.
    command = [npx, "--no-install", "allure", "generate", str(results), "--config", str(config), "--output", str(out)]
    _run(command, cwd=repo_root, timeout=_GENERATE_TIMEOUT_S, what="allure generate")
    index = out / "index.html"
    if not index.is_file():
        raise ReportError(f"allure generate finished but wrote no {index}")
    keep_offline(index)
    return index


def keep_offline(index: Path) -> None:
    """Remove the analytics tag; ReportError if the page still loads anything from outside the file."""
    html = _ANALYTICS.sub("", index.read_text(encoding="utf-8"))
    outside = _OUTSIDE_REFERENCE.search(html)
    if outside:
        context = html[max(0, outside.start() - 80):outside.end() + 80]
        raise ReportError(f"{index} would load from an outside host: ...{context}...")
    index.write_text(html, encoding="utf-8")


def write_report_config(base: Path, reports: Path, verdict: str, headline: str = "", name: str = "") -> Path:
    """allurerc.json with the verdict (and for a NO-GO its first failure) leading the report's title; `name`
    (the manifest's stack) replaces the base config's."""
    config = json.loads(base.read_text(encoding="utf-8"))
    title = f"{verdict}: {name or config['name']}" + (f" · first failure: {headline}" if headline else "")
    config["name"] = title
    config["plugins"]["awesome"]["options"]["reportName"] = title
    path = reports / "allurerc.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def _run(command: list[str], *, cwd: Path, timeout: float, what: str) -> None:
    try:
        completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ReportError(f"{what} did not finish within {timeout:.0f} s: {' '.join(command)}") from exc
    except OSError as exc:
        raise ReportError(f"{what} could not start: {exc}") from exc
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip().splitlines()
        tail = "\n".join(output[-20:])
        raise ReportError(f"{what} exited with status {completed.returncode} in {cwd}:\n{tail}")


def _scenario_key(result: Mapping[str, Any]) -> str:
    """"<feature>: <scenario>" as behave names it, from the result's feature label and name (an outline row's name
    has its values in place: behave.ini's scenario_outline_annotation_schema)."""
    feature = next((label["value"] for label in result.get("labels", []) if label.get("name") == "feature"), "")
    return f"{feature}: {result.get('name', '')}"


def mark_failed_scenarios(results: Path, features: Iterable[FeatureResult]) -> int:
    """Mark broken the Allure results of scenarios behave failed but allure-behave shows passed or skipped.

    Returns how many changed.
    """
    problems = {
        f"{feature.name}: {scenario.name}": scenario
        for feature in features
        for scenario in feature.scenarios
        if scenario.status in ERROR_STATUSES | FAILED_STATUSES | {UNTESTED}
    }
    changed = 0
    for path in results.glob("*-result.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        scenario = problems.get(_scenario_key(result))
        if scenario is None or result.get("status") not in ("passed", "skipped"):
            continue
        result["status"] = "broken"
        details = result.setdefault("statusDetails", {})
        details["message"] = f"behave: {scenario.status}" + (f": {scenario.message}" if scenario.message else "")
        path.write_text(json.dumps(result), encoding="utf-8")
        changed += 1
    return changed


def mark_not_applicable(results: Path, features: Iterable[FeatureResult]) -> int:
    """Give the skipped results of scenarios that did not apply to this stack their reason (allure-behave
    leaves a skip without one). Returns how many changed."""
    reasons = {
        f"{feature.name}: {scenario.name}": scenario.message
        for feature in features
        for scenario in feature.scenarios
        if scenario.status == NOT_APPLICABLE
    }
    changed = 0
    for path in results.glob("*-result.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        reason = reasons.get(_scenario_key(result))
        if reason is None or result.get("status") != "skipped":
            continue
        result.setdefault("statusDetails", {})["message"] = reason
        path.write_text(json.dumps(result), encoding="utf-8")
        changed += 1
    return changed


def mark_reproduction(results: Path, failures: Iterable[Mapping[str, object]]) -> int:
    """Say on each failed scenario's result whether its re-run on a rebuilt stack reproduced it.

    A failure that did not reproduce is marked flaky (Allure's own filter), never passed: the verdict
    stays NO-GO. Returns how many results changed.
    """
    by_name = {f"{f['feature']}: {f['scenario']}": str(f.get("reproduction", "")) for f in failures}
    changed = 0
    for path in results.glob("*-result.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        reproduction = by_name.get(_scenario_key(result))
        if not reproduction:
            continue
        details = result.setdefault("statusDetails", {})
        details["message"] = f"[re-run on a rebuilt stack: {reproduction}] {details.get('message', '')}"
        details["flaky"] = reproduction != "reproduced"
        result.setdefault("labels", []).append({"name": "tag", "value": f"re-run: {reproduction}"})
        path.write_text(json.dumps(result), encoding="utf-8")
        changed += 1
    return changed


def write_verdict(results: Path, verdict: str, reasons: Iterable[str], signoff_md: Path) -> Path:
    """Allure global errors (one per reason, root cause first) and the sign-off as a global attachment."""
    now_ms = int(time.time() * 1000)
    source = f"{uuid.uuid4()}-attachment.md"
    shutil.copyfile(signoff_md, results / source)
    reason_list = list(reasons)
    errors = [{"message": f"{verdict} reason {n} of {len(reason_list)}: {reason}", "timestamp": now_ms}
              for n, reason in enumerate(reason_list, start=1)]
    globals_ = {
        "errors": errors,
        "attachments": [{"name": f"sign-off: {verdict}", "source": source, "type": "text/markdown",
                         "timestamp": now_ms}],
    }
    path = results / f"{uuid.uuid4()}-globals.json"
    path.write_text(json.dumps(globals_), encoding="utf-8")
    return path


def write_hook_error_results(results: Path, hook_errors: Iterable[HookError]) -> list[Path]:
    """One broken Allure result per hook or cleanup error, so the report shows what behave counted."""
    results.mkdir(parents=True, exist_ok=True)
    now_ms = int(time.time() * 1000)
    written = []
    for error in hook_errors:
        result_id = str(uuid.uuid4())
        # A stable id per hook and place lets the report's history follow the same error across runs.
        history_id = hashlib.md5(f"{error.hook}|{error.where}".encode(), usedforsecurity=False).hexdigest()
        result = {
            "uuid": result_id,
            "historyId": history_id,
            "testCaseId": history_id,
            "name": f"hook error: {error.hook} in {error.where}",
            "fullName": f"{HOOK_ERRORS_SUITE}: {error.hook} in {error.where}",
            "status": "broken",
            "statusDetails": {"message": error.error, "trace": error.trace},
            "stage": "finished",
            "start": now_ms,
            "stop": now_ms,
            "labels": [
                {"name": "feature", "value": HOOK_ERRORS_SUITE},
                {"name": "suite", "value": HOOK_ERRORS_SUITE},
                {"name": "framework", "value": "behave"},
                {"name": "tag", "value": "hook_error"},
            ],
        }
        path = results / f"{result_id}-result.json"
        path.write_text(json.dumps(result), encoding="utf-8")
        written.append(path)
    return written


def is_conclusion(path: Path) -> bool:
    """Whether a file in an Allure results folder was written by a run's conclusion (verdict, hook errors,
    environment, executor) rather than by allure-behave: a merge of several runs leaves those out and
    concludes anew."""
    if path.name in ("environment.properties", "executor.json") or path.name.endswith("-globals.json"):
        return True
    if not path.name.endswith("-result.json"):
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("fullName", "").startswith(f"{HOOK_ERRORS_SUITE}:")
    except (OSError, ValueError):
        return False


def write_environment(results: Path, properties: Mapping[str, object]) -> Path:
    """environment.properties: the report's Environment widget (target, tags, versions, revision)."""
    results.mkdir(parents=True, exist_ok=True)
    path = results / "environment.properties"
    lines = [f"{_property_key(key)}={_property_value(value)}" for key, value in properties.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def executor(env: Mapping[str, str], *, build_name: str, report: Path) -> dict[str, object]:
    """executor.json's fields: the CI system's run where there is one (acceptance/ci_environment.py), else this
    machine, with the local report's address."""
    ci = ci_environment.detect(env)
    if ci is None:
        return {"name": platform.node() or "local", "type": "local", "buildName": build_name,
                "reportUrl": report.as_uri()}
    fields = ci.executor(env)
    fields["buildName"] = f"{fields['buildName']}: {build_name}" if "buildName" in fields else build_name
    return fields


def write_executor(results: Path, executor: Mapping[str, object]) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    path = results / "executor.json"
    path.write_text(json.dumps(executor), encoding="utf-8")
    return path


def _property_key(key: str) -> str:
    return key.replace(" ", "_").replace("=", "_").replace(":", "_")


def _property_value(value: object) -> str:
    text = " ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
    # .properties values are one line; a backslash starts an escape.
    return text.replace("\\", "\\\\").replace("\n", " ")


def main() -> int:
    reports = REPO_ROOT / "reports"
    results = reports / "allure-results"
    out = reports / "allure-report"
    config = reports / "allurerc.json"  # the last run's, with its verdict in the title
    try:
        ensure_node_packages()
        index = generate_html(results, out, config=config if config.is_file() else ALLURE_CONFIG)
    except ReportError as exc:
        print(f"Allure report NOT generated: {exc}", file=sys.stderr)
        return 1
    print(f"Allure report: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
