"""The release sign-off: a GO / NO-GO verdict from behave's exit status, JUnit XML and recorded hook errors,
opening with the first failure.

Allure is not trusted for the verdict: it shows a `before_scenario` error as skipped and a cleanup error
as passed. behave's JUnit XML and exit status are the evidence; hook and cleanup errors that JUnit does
not show (feature cleanups, `after_all`) arrive through `reports/hook-errors.jsonl`, written by
`record_hook_error` from environment.py, and through the HOOK-ERROR / CLEANUP-ERROR lines behave prints.
`reports/scenarios.jsonl` (`record_scenario`) gives each scenario's failing step and message in the order
the scenarios ran, and the stack rebuilds that followed them, so the root cause comes first.
"""

from __future__ import annotations

import json
import re
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

HOOK_ERRORS_FILE = "hook-errors.jsonl"
SCENARIOS_FILE = "scenarios.jsonl"
STACK_FILE = "stack.json"
REPRODUCED = "reproduced"
NOT_REPRODUCED = "did not reproduce"
# How many names a reason lists before it only counts the rest.
NAMES_SHOWN = 5

# behave's scenario statuses, as JUnit's `status` attribute carries them.
PASSED = "passed"
FAILED_STATUSES = frozenset({"failed"})
ERROR_STATUSES = frozenset({"error", "hook_error", "cleanup_error", "pending", "undefined"})
SKIPPED = "skipped"
# Selected but never run: a before_all/before_feature hook failed, or the run stopped early.
UNTESTED = "untested"
# Selected, but skipped by environment.py with a reason: the target or the manifest cannot serve it.
NOT_APPLICABLE = "not applicable"

_BEHAVE_ERROR_LINE = re.compile(r"^\s*(?P<kind>HOOK|CLEANUP)-ERROR in (?P<hook>[^:\s]+): (?P<error>.+)$")
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_UNDEFINED_STEP = re.compile(r"^\s*(?P<step>.+?) \.\.\. undefined\b", re.MULTILINE)


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    status: str
    message: str = ""


@dataclass
class FeatureResult:
    name: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0  # left out by tag or name selection
    errors: int = 0
    untested: int = 0
    not_applicable: int = 0  # selected, but the target lacks a capability or the manifest a contract
    file: str = ""
    scenarios: list[ScenarioResult] = field(default_factory=list)

    @property
    def selected(self) -> int:
        """Scenarios the tag/name selection kept, whether or not they got to run."""
        return self.passed + self.failed + self.errors + self.untested


@dataclass(frozen=True)
class ScenarioRecord:
    """One scenario as environment.py saw it end: its failing step and message, and what followed it."""

    feature: str
    scenario: str
    location: str
    status: str
    step: str = ""
    message: str = ""
    started_at: float = 0.0
    duration_s: float = 0.0
    restored: list[str] = field(default_factory=list)
    rebuilt: str = ""  # why the stack had to be rebuilt after it; "" when the restores were enough
    unit: str = ""  # what a parallel run plans with: the scenario's location, or its outline's (acceptance.plan)

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES | ERROR_STATUSES

    def describe(self) -> str:
        at = f' at step "{self.step}"' if self.step else ""
        return f'scenario "{self.scenario}" ({self.location}) {self.status}{at}: {self.message or "no message"}'


@dataclass(frozen=True)
class HookError:
    hook: str
    where: str
    error: str
    trace: str = ""

    def describe(self) -> str:
        return f"{self.hook} in {self.where}: {self.error}"


@dataclass
class Verdict:
    go: bool
    reasons: list[str]
    features: list[FeatureResult]
    behave_exit_code: int
    hook_errors: list[str] = field(default_factory=list)
    # Facts that do not change the verdict but a reader must see (e.g. the HTML report is missing).
    notes: list[str] = field(default_factory=list)
    # The root cause to read first: the earliest failure, "" for a GO; `headline` is its few words.
    first_failure: str = ""
    headline: str = ""
    # The failed scenarios in the order they ran, each with whether a re-run on a rebuilt stack reproduced it.
    failures: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "GO" if self.go else "NO-GO"

    def totals(self) -> dict[str, int]:
        return {
            "selected": sum(f.selected for f in self.features),
            "passed": sum(f.passed for f in self.features),
            "failed": sum(f.failed for f in self.features),
            "errors": sum(f.errors for f in self.features),
            "untested": sum(f.untested for f in self.features),
            "skipped": sum(f.skipped for f in self.features),
            "not_applicable": sum(f.not_applicable for f in self.features),
        }

    def not_applicable(self) -> dict[str, list[str]]:
        """Reason -> the scenarios skipped for it."""
        found: dict[str, list[str]] = {}
        for feature in self.features:
            for scenario in feature.scenarios:
                if scenario.status == NOT_APPLICABLE:
                    found.setdefault(scenario.message, []).append(scenario.name)
        return found


def read_junit(directory: Path) -> list[FeatureResult]:
    """Parse behave's JUnit reports: one `TESTS-<file>.xml` per feature file, one testcase per scenario."""
    return [_read_junit_file(path) for path in sorted(directory.glob("*.xml"))]


def _read_junit_file(path: Path) -> FeatureResult:
    suite = ET.parse(path).getroot()
    # behave names the suite "<file>.<feature name>" and the file "TESTS-<file>.xml"; the feature name may
    # itself contain dots, so the file part comes from the file name.
    file_part = path.stem.removeprefix("TESTS-")
    suite_name = suite.get("name", "")
    name = suite_name.removeprefix(f"{file_part}.") if suite_name.startswith(f"{file_part}.") else suite_name
    feature = FeatureResult(name=name or file_part, file=file_part)
    for case in suite.iter("testcase"):
        scenario = ScenarioResult(name=case.get("name", ""), status=_case_status(case), message=_case_message(case))
        feature.scenarios.append(scenario)
        if scenario.status == PASSED:
            feature.passed += 1
        elif scenario.status in FAILED_STATUSES:
            feature.failed += 1
        elif scenario.status == UNTESTED:
            feature.untested += 1
        elif scenario.status == SKIPPED:
            feature.skipped += 1
        else:
            feature.errors += 1
    return feature


def _case_status(case: ET.Element) -> str:
    status = case.get("status")
    if status:
        return status
    # JUnit written by other tools has no status attribute: fall back on the child elements.
    if case.find("error") is not None:
        return "error"
    if case.find("failure") is not None:
        return "failed"
    if case.find("skipped") is not None:
        return SKIPPED
    return PASSED


def _case_message(case: ET.Element) -> str:
    problem = case.find("failure")
    if problem is None:
        problem = case.find("error")
    if problem is not None and problem.get("message") not in (None, "", "None"):
        return problem.get("message", "")
    # behave leaves the message of cleanup errors, undefined steps and interrupts empty; the output names them.
    output = "\n".join(element.text or "" for element in case.iter("system-out"))
    for line in output.splitlines():
        if _BEHAVE_ERROR_LINE.match(line):
            return line.strip()
    undefined = _UNDEFINED_STEP.search(output)
    if undefined:
        return f"undefined step: {undefined.group('step').strip()}"
    if problem is not None:
        detail = [line.strip() for line in (problem.text or "").splitlines() if line.strip()]
        return f"{problem.get('type', 'error')}: {detail[-1] if detail else 'no detail'}"
    return ""


def apply_skip_reasons(features: list[FeatureResult], records: list[ScenarioRecord]) -> None:
    """Skipped scenarios that environment.py recorded with a reason are not applicable, not deselected:
    they take the reason as their message and are counted apart."""
    reasons = {(record.feature, record.scenario): record.message for record in records if record.status == SKIPPED}
    for feature in features:
        for index, scenario in enumerate(feature.scenarios):
            reason = reasons.get((feature.name, scenario.name))
            if scenario.status == SKIPPED and reason:
                feature.scenarios[index] = ScenarioResult(scenario.name, NOT_APPLICABLE, reason)
                feature.skipped -= 1
                feature.not_applicable += 1


def explain_junit_skips(directory: Path, features: list[FeatureResult]) -> None:
    """Write each not-applicable scenario's reason into behave's JUnit `<skipped/>`, which has none."""
    reasons = {
        (feature.file, scenario.name): scenario.message
        for feature in features
        for scenario in feature.scenarios
        if scenario.status == NOT_APPLICABLE
    }
    for path in sorted(directory.glob("*.xml")):
        tree = ET.parse(path)
        changed = False
        for case in tree.getroot().iter("testcase"):
            reason = reasons.get((path.stem.removeprefix("TESTS-"), case.get("name", "")))
            skipped = case.find("skipped")
            if reason and skipped is not None:
                skipped.set("message", reason)
                changed = True
        if changed:
            tree.write(path, encoding="utf-8", xml_declaration=True)


def record_stack(reports_dir: Path, facts: dict[str, str]) -> None:
    """What environment.py learned of the stack (target, security mode, reflection) for the sign-off."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / STACK_FILE).write_text(json.dumps(facts), encoding="utf-8")


def read_stack(reports_dir: Path) -> dict[str, str]:
    try:
        return json.loads((reports_dir / STACK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def record_hook_error(reports_dir: Path, hook: str, where: str, error: BaseException) -> None:
    """Append one hook or cleanup error to `reports/hook-errors.jsonl`; environment.py calls it."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    entry = {
        "hook": hook,
        "where": where,
        "error": f"{type(error).__name__}: {error}",
        "trace": "".join(traceback.format_exception(error)),
    }
    with (reports_dir / HOOK_ERRORS_FILE).open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(entry) + "\n")


def read_hook_errors(reports_dir: Path) -> list[HookError]:
    path = reports_dir / HOOK_ERRORS_FILE
    if not path.exists():
        return []
    errors = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            errors.append(HookError(entry["hook"], entry["where"], entry["error"], entry.get("trace", "")))
        except (ValueError, KeyError, TypeError):
            # A torn line (the run was killed mid-write) is still a hook error the verdict must count.
            errors.append(HookError("unknown", f"{path.name} line {number}", f"unreadable entry: {line[:200]}"))
    return errors


def record_scenario(reports_dir: Path, record: ScenarioRecord) -> None:
    """Append one finished scenario to `reports/scenarios.jsonl`; environment.py calls it."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    with (reports_dir / SCENARIOS_FILE).open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(asdict(record)) + "\n")


def read_scenario_records(reports_dir: Path) -> list[ScenarioRecord]:
    """The scenarios of a run in the order they ran; a torn last line (a killed run) is left out."""
    path = reports_dir / SCENARIOS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(ScenarioRecord(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return records


def scan_behave_output(text: str) -> list[HookError]:
    """The HOOK-ERROR / CLEANUP-ERROR lines behave printed, once each (they repeat in captured output)."""
    found: dict[str, HookError] = {}
    for raw in text.splitlines():
        line = _ANSI_ESCAPE.sub("", raw)
        match = _BEHAVE_ERROR_LINE.match(line)
        if match and line.strip() not in found:
            kind = "cleanup" if match["kind"] == "CLEANUP" else "hook"
            hook = match["hook"] if kind == "hook" else f"cleanup {match['hook']}"
            found[line.strip()] = HookError(hook, "behave output", match["error"].strip())
    return list(found.values())


def unexplained_output_errors(
    scanned: list[HookError], recorded: list[HookError], features: list[FeatureResult]
) -> list[HookError]:
    """Errors behave printed that neither JUnit nor hook-errors.jsonl already accounts for."""
    known_messages = {s.message for f in features for s in f.scenarios if s.message}
    unexplained = []
    for error in scanned:
        line_hook = error.hook.removeprefix("cleanup ")
        in_junit = any(error.error in message and line_hook in message for message in known_messages)
        in_record = any(error.error == r.error or r.error in error.error for r in recorded)
        if not (in_junit or in_record):
            unexplained.append(error)
    return unexplained


def decide(
    features: list[FeatureResult],
    *,
    behave_exit_code: int,
    hook_errors: list[HookError],
    records: list[ScenarioRecord] = (),  # type: ignore[assignment]
    reproduction: dict[str, str] | None = None,
    interrupted_by: str | None = None,
    incomplete: Sequence[str] = (),
) -> Verdict:
    """GO only if behave exited 0, every selected scenario passed, no hook or cleanup error was recorded,
    the stack never had to be rebuilt, at least one scenario ran, and no part of the run is missing
    (`incomplete`: e.g. a shard whose results never arrived).

    The reasons come root cause first: set-up errors, then failed scenarios and stack rebuilds in the order
    they arose (each failure marked with whether its re-run on a rebuilt stack reproduced it), then what
    followed from them.
    """
    reproduction = reproduction or {}
    setup = [error.describe() for error in hook_errors if error.hook == "before_all"]
    failed = [record for record in records if record.failed]
    failures = [
        asdict(record) | {"reproduction": reproduction.get(record.location, "")} for record in failed
    ]
    # In the order they arose: a scenario's failure, then the rebuild its end needed, then the next scenario.
    scenario_reasons, headlines = [], []
    for record in records:
        if record.failed:
            scenario_reasons.append(_with_reproduction(record.describe(), reproduction.get(record.location, "")))
            headlines.append(f'"{record.scenario}" {record.status}')
        if record.rebuilt:
            scenario_reasons.append(f'stack rebuilt after scenario "{record.scenario}": {record.rebuilt}')
            headlines.append(f'the stack had to be rebuilt after "{record.scenario}"')
    recorded = {(record.feature, record.scenario) for record in records}
    scenario_reasons += [
        _describe_scenario(feature, scenario)
        for feature in features
        for scenario in feature.scenarios
        if scenario.status not in (PASSED, SKIPPED, UNTESTED, NOT_APPLICABLE)
        and (feature.name, scenario.name) not in recorded
    ]
    untested = [scenario.name for feature in features for scenario in feature.scenarios if scenario.status == UNTESTED]
    others = [f"hook or cleanup error: {error.describe()}" for error in hook_errors if error.hook != "before_all"]

    reasons: list[str] = []
    if interrupted_by:
        reasons.append(f"the run was interrupted by {interrupted_by}")
    reasons += incomplete
    if sum(feature.selected for feature in features) == 0:
        reasons.append("nothing was tested: no scenario was selected (check --tags and the feature paths)")
    reasons += [f"the run could not start: {error}" for error in setup]
    reasons += scenario_reasons
    if untested:
        reasons.append(
            f"{len(untested)} selected scenario(s) never ran (a before_all/before_feature hook failed or the run "
            f"stopped): {_names(untested)}"
        )
    reasons += others
    if behave_exit_code != 0 and not reasons:
        reasons.append(_describe_exit(behave_exit_code))
    root_causes = [*incomplete, *(f"the run could not start: {error}" for error in setup), *scenario_reasons,
                   *reasons]
    headlines = ([reason[:120] for reason in incomplete] + ["the stack could not start"] * bool(setup) + headlines
                 + [reason[:120] for reason in reasons])
    return Verdict(
        go=not reasons,
        reasons=reasons,
        features=features,
        behave_exit_code=behave_exit_code,
        hook_errors=[error.describe() for error in hook_errors],
        first_failure=root_causes[0] if root_causes else "",
        headline=headlines[0] if headlines and reasons else "",
        failures=failures,
    )


def _with_reproduction(reason: str, reproduction: str) -> str:
    return f"{reason} [re-run on a rebuilt stack: {reproduction}]" if reproduction else reason


def _names(names: list[str]) -> str:
    shown = ", ".join(f'"{name}"' for name in names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")


def _describe_scenario(feature: FeatureResult, scenario: ScenarioResult) -> str:
    if scenario.status == UNTESTED:
        detail = "selected but never run (a before_all/before_feature hook failed or the run stopped)"
    else:
        detail = scenario.message or "no message"
    return f'scenario "{scenario.name}" in feature "{feature.name}" {scenario.status}: {detail}'


def _describe_exit(code: int) -> str:
    """behave's non-zero exit when nothing else explains it."""
    if code < 0:
        return f"behave was killed by signal {-code}"
    return (
        f"behave exited with status {code} although JUnit shows no failing scenario "
        "(an error loading environment.py or steps, an after_all hook, a usage error?): see reports/behave.log"
    )


def write_signoff(verdict: Verdict, run_info: dict, reports_dir: Path) -> tuple[Path, Path]:
    """Write reports/signoff.md (the verdict on its first line) and reports/signoff.json."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    md_path = reports_dir / "signoff.md"
    json_path = reports_dir / "signoff.json"
    md_path.write_text(_render_markdown(verdict, run_info), encoding="utf-8")
    document = {
        "verdict": verdict.label,
        "go": verdict.go,
        "first_failure": verdict.first_failure,
        "reasons": verdict.reasons,
        "failures": verdict.failures,
        "notes": verdict.notes,
        "totals": verdict.totals(),
        "behave_exit_code": verdict.behave_exit_code,
        "hook_errors": verdict.hook_errors,
        "features": [asdict(feature) | {"selected": feature.selected} for feature in verdict.features],
        "run": run_info,
        "links": {"allure_report": "allure-report/index.html", "junit": "junit/"},
    }
    json_path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return md_path, json_path


def _render_markdown(verdict: Verdict, run_info: dict) -> str:
    totals = verdict.totals()
    lines = [f"# {verdict.label}: {run_info.get('name', 'acceptance run')}", ""]
    if verdict.first_failure:
        lines += [f"**First failure:** {_md_escape(verdict.first_failure)}", ""]
    lines += [
        f"{totals['passed']} of {totals['selected']} selected scenarios passed, {totals['failed']} failed, "
        f"{totals['errors']} errored, {totals['untested']} not run; {totals['not_applicable']} not applicable to "
        f"this stack; {totals['skipped']} skipped by selection; behave exit status {verdict.behave_exit_code}.",
        "",
        "## Reasons, in the order they arose",
        "",
    ]
    lines += [f"- {_md_escape(reason)}" for reason in verdict.reasons] or ["- every selected scenario passed"]
    skipped = verdict.not_applicable()
    if skipped:
        lines += ["", "## Not applicable to this stack", ""]
        lines += [f"- {len(names)} scenario(s): {_md_escape(reason)}: {_names(names)}"
                  for reason, names in skipped.items()]
    if verdict.notes:
        lines += ["", "## Notes", ""] + [f"- {_md_escape(note)}" for note in verdict.notes]
    lines += [
        "",
        "## Features",
        "",
        "| feature | file | passed | failed | errors | not run | not applicable | skipped |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {_md_cell(f.name)} | {_md_cell(f.file)} | {f.passed} | {f.failed} | {f.errors} | {f.untested} "
        f"| {f.not_applicable} | {f.skipped} |"
        for f in verdict.features
    ]
    lines += ["", "## What ran", ""]
    lines += [f"- {key}: {_md_escape(_format_value(value))}" for key, value in run_info.items()]
    lines += [
        "",
        "## Evidence",
        "",
        "- Allure report: [allure-report/index.html](allure-report/index.html)",
        "- JUnit XML: [junit/](junit/)",
        "- behave output: [behave.log](behave.log)",
        "",
    ]
    return "\n".join(lines)


def _format_value(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value) or "(none)"
    return str(value)


def _md_escape(text: str) -> str:
    return text.replace("\n", " ")


def _md_cell(text: str) -> str:
    return _md_escape(text).replace("|", "\\|")
