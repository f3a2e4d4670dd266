"""The sign-off verdict, the Allure fix-ups and the run wrapper, on output of real behave runs.

Every test writes a tiny behave project (the repository's own behave.ini, steps, environment.py) into a
temporary folder and runs behave there, so the parsing is tested on what behave 1.3 really writes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from acceptance import allure_report, run
from acceptance.signoff import (
    FeatureResult,
    HookError,
    ScenarioRecord,
    ScenarioResult,
    apply_skip_reasons,
    decide,
    explain_junit_skips,
    read_hook_errors,
    read_junit,
    read_scenario_records,
    record_hook_error,
    record_scenario,
    scan_behave_output,
    unexplained_output_errors,
    write_signoff,
)
from acceptance.waits import wait_until
from tests import behave_projects

REPO_ROOT = behave_projects.REPO_ROOT
pytestmark = pytest.mark.usefixtures("importable_suite_library")

# Mirrors what the suite's environment.py does: SIGTERM becomes KeyboardInterrupt, hook errors are recorded.
ENVIRONMENT = """
import os
import signal
from pathlib import Path

from acceptance.signoff import record_hook_error

REPORTS = Path("reports")


def before_all(context):
    Path("target.txt").write_text(context.config.userdata.get("target", "(none)"))

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


def after_all(context):
    if os.environ.get("FAIL_AFTER_ALL"):
        raise RuntimeError("after_all exploded")


def before_feature(context, feature):
    if "before_feature_error" in feature.tags:
        raise RuntimeError("before_feature exploded")
    if "feature_cleanup_error" in feature.tags:
        def failing_cleanup():
            try:
                raise RuntimeError("feature cleanup exploded")
            except RuntimeError as exc:
                record_hook_error(REPORTS, "cleanup", f"feature {feature.name}", exc)
                if "swallow" not in feature.tags:
                    raise
        context.add_cleanup(failing_cleanup)


def before_scenario(context, scenario):
    if "hook_error" in scenario.tags:
        raise RuntimeError("before_scenario exploded")
"""

PASSING = """
Feature: Orders
  Scenario: an order is accepted
    Given a step that passes
"""
FAILING = """
Feature: Risk
  Scenario: a limit is enforced
    Given a step that fails
  Scenario: a limit is read
    Given a step that passes
"""
HOOK_ERROR = """
Feature: Discovery
  @hook_error
  Scenario: an instance registers
    Given a step that passes
"""
SCENARIO_CLEANUP_ERROR = """
Feature: Configuration
  Scenario: a value is written
    Given a step whose cleanup fails
"""
FEATURE_CLEANUP_ERROR = """
@feature_cleanup_error
Feature: Chaos
  Scenario: a fault is injected
    Given a step that passes
"""
SWALLOWED_FEATURE_CLEANUP_ERROR = """
@feature_cleanup_error @swallow
Feature: Chaos
  Scenario: a fault is injected
    Given a step that passes
"""
BEFORE_FEATURE_ERROR = """
@before_feature_error
Feature: Tracing
  Scenario: a trace crosses services
    Given a step that passes
"""
SLOW = """
Feature: Soak
  Scenario: runs until interrupted
    Given a step that waits for a signal
  Scenario: never reached
    Given a step that passes
"""


def make_project(root: Path, features: dict[str, str]) -> Path:
    return behave_projects.make_project(root, features, ENVIRONMENT)


def child_env(**extra: str) -> dict[str, str]:
    return dict(os.environ, **extra)


def run_behave(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "behave", *args],
        cwd=project,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def verdict_for(project: Path, completed: subprocess.CompletedProcess[str]):
    features = read_junit(project / "reports" / "junit")
    recorded = read_hook_errors(project / "reports")
    printed = unexplained_output_errors(scan_behave_output(completed.stdout), recorded, features)
    return decide(features, behave_exit_code=completed.returncode, hook_errors=recorded + printed)


def test_all_passing_is_go(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"orders": PASSING})
    completed = run_behave(project)

    verdict = verdict_for(project, completed)

    assert completed.returncode == 0
    assert [(f.name, f.passed, f.failed, f.errors, f.skipped) for f in verdict.features] == [("Orders", 1, 0, 0, 0)]
    assert verdict.go
    assert verdict.reasons == []


def test_failing_scenario_is_no_go_naming_scenario_and_assertion(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"orders": PASSING, "risk": FAILING})

    verdict = verdict_for(project, run_behave(project))

    risk = next(f for f in verdict.features if f.name == "Risk")
    assert (risk.passed, risk.failed) == (1, 1)
    assert not verdict.go
    assert any('"a limit is enforced"' in r and "expected one to be two" in r for r in verdict.reasons)


def test_before_scenario_hook_error_is_no_go_naming_hook_and_scenario(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"discovery": HOOK_ERROR})

    verdict = verdict_for(project, run_behave(project))

    assert verdict.features[0].errors == 1
    assert not verdict.go
    assert any('"an instance registers"' in r and "before_scenario exploded" in r for r in verdict.reasons)
    # JUnit already names this hook error: the same line in behave's output is not a second reason.
    assert not any(r.startswith("hook or cleanup error") for r in verdict.reasons)


def test_scenario_cleanup_error_is_an_error_in_junit(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"configuration": SCENARIO_CLEANUP_ERROR})
    completed = run_behave(project)

    verdict = verdict_for(project, completed)

    assert completed.returncode == 1
    assert [s.status for s in verdict.features[0].scenarios] == ["cleanup_error"]
    assert not verdict.go
    assert any('"a value is written"' in r and "scenario cleanup exploded" in r for r in verdict.reasons)


def test_feature_cleanup_error_is_invisible_in_junit_and_caught_by_the_hook_errors_file(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"chaos": FEATURE_CLEANUP_ERROR})
    completed = run_behave(project)

    features = read_junit(project / "reports" / "junit")
    recorded = read_hook_errors(project / "reports")
    verdict = verdict_for(project, completed)

    assert [s.status for s in features[0].scenarios] == ["passed"]
    assert completed.returncode == 1
    assert [(e.hook, e.where, e.error) for e in recorded] == [
        ("cleanup", "feature Chaos", "RuntimeError: feature cleanup exploded")
    ]
    assert "feature cleanup exploded" in recorded[0].trace
    assert not verdict.go
    assert "hook or cleanup error: cleanup in feature Chaos: RuntimeError: feature cleanup exploded" in verdict.reasons


def test_recorded_hook_error_is_no_go_even_when_behave_exits_zero(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"chaos": SWALLOWED_FEATURE_CLEANUP_ERROR})
    completed = run_behave(project)

    verdict = verdict_for(project, completed)

    assert completed.returncode == 0
    assert not verdict.go
    assert verdict.reasons == [
        "hook or cleanup error: cleanup in feature Chaos: RuntimeError: feature cleanup exploded"
    ]


def test_after_all_error_is_found_in_behave_output(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"orders": PASSING})
    completed = run_behave(project, FAIL_AFTER_ALL="1")

    verdict = verdict_for(project, completed)

    assert completed.returncode == 1
    assert verdict.features[0].passed == 1
    assert not verdict.go
    assert "hook or cleanup error: after_all in behave output: RuntimeError: after_all exploded" in verdict.reasons


def test_before_feature_error_leaves_scenarios_not_run(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"tracing": BEFORE_FEATURE_ERROR})

    verdict = verdict_for(project, run_behave(project))

    assert verdict.features[0].untested == 1
    assert verdict.totals()["selected"] == 1
    assert not verdict.go
    assert any('"a trace crosses services"' in r and "never ran" in r for r in verdict.reasons)


def test_nothing_selected_is_no_go(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"orders": PASSING})
    completed = run_behave(project, "--tags", "@no_such_tag")

    verdict = verdict_for(project, completed)

    assert completed.returncode == 0
    assert verdict.features[0].skipped == 1
    assert not verdict.go
    assert any(r.startswith("nothing was tested") for r in verdict.reasons)


def test_nonzero_exit_without_any_other_evidence_is_no_go() -> None:
    verdict = decide([FeatureResult("Orders", passed=1)], behave_exit_code=2, hook_errors=[])

    assert not verdict.go
    assert "behave exited with status 2 although JUnit shows no failing scenario" in verdict.reasons[0]


def test_torn_hook_errors_line_still_counts(tmp_path: Path) -> None:
    record_hook_error(tmp_path, "after_feature", "feature Orders", ValueError("bad state"))
    with (tmp_path / "hook-errors.jsonl").open("a") as stream:
        stream.write('{"hook": "after_all", "whe')

    errors = read_hook_errors(tmp_path)

    assert [e.describe() for e in errors] == [
        "after_feature in feature Orders: ValueError: bad state",
        'unknown in hook-errors.jsonl line 2: unreadable entry: {"hook": "after_all", "whe',
    ]


def test_signoff_files_put_the_verdict_first_and_count_per_feature(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", {"orders": PASSING, "risk": FAILING})
    verdict = verdict_for(project, run_behave(project))
    verdict.notes.append("Allure HTML report missing: npx is not on PATH")
    run_info = {
        "name": "Trading ecosystem acceptance",
        "target": "local",
        "tags": ["@smoke"],
        "versions": {"behave": "1.3.3"},
        "git_revision": "abc123",
        "duration_s": 1.5,
    }

    md_path, json_path = write_signoff(verdict, run_info, tmp_path / "reports")

    markdown = md_path.read_text()
    assert markdown.splitlines()[0] == "# NO-GO: Trading ecosystem acceptance"
    assert "| Risk | risk | 1 | 1 | 0 | 0 | 0 | 0 |" in markdown
    assert "- Allure HTML report missing: npx is not on PATH" in markdown
    assert "[allure-report/index.html](allure-report/index.html)" in markdown
    document = json.loads(json_path.read_text())
    assert document["verdict"] == "NO-GO"
    assert document["totals"] == {
        "selected": 3, "passed": 2, "failed": 1, "errors": 0, "untested": 0, "skipped": 0, "not_applicable": 0
    }
    assert document["run"]["git_revision"] == "abc123"


def test_allure_results_are_not_green_where_behave_failed(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"discovery": HOOK_ERROR, "configuration": SCENARIO_CLEANUP_ERROR})
    run_behave(project)
    results = project / "reports" / "allure-results"
    before = {r["fullName"]: r["status"] for r in allure_results(results)}

    changed = allure_report.mark_failed_scenarios(results, read_junit(project / "reports" / "junit"))
    allure_report.write_hook_error_results(
        results, [HookError("after_all", "run", "RuntimeError: after_all exploded", "Traceback ...")]
    )

    after = {r["fullName"]: r for r in allure_results(results)}
    # The trap this guards against: allure-behave's own statuses for these two scenarios.
    assert before == {"Discovery: an instance registers": "skipped", "Configuration: a value is written": "passed"}
    assert changed == 2
    assert after["Discovery: an instance registers"]["status"] == "broken"
    assert "before_scenario exploded" in after["Discovery: an instance registers"]["statusDetails"]["message"]
    assert "scenario cleanup exploded" in after["Configuration: a value is written"]["statusDetails"]["message"]
    hook_result = after["Hook and cleanup errors: after_all in run"]
    assert (hook_result["name"], hook_result["status"]) == ("hook error: after_all in run", "broken")
    assert hook_result["statusDetails"]["message"] == "RuntimeError: after_all exploded"


def test_the_report_environment_names_what_the_stack_ran_on() -> None:
    """What environment.py recorded of the stack (signoff.record_stack: target, security, the engine and Compose)."""
    run_info = {
        "target": "default (environment.py decides)", "stack target": "docker", "stack security": "secure",
        "stack reflection": "on", "stack engine": "docker 20.10.24+dfsg1", "stack compose": "docker compose 5.6.1",
        "tags": None, "workers": 2, "git_revision": "abc", "started_at": "2026-12-02T04:00:00+00:00",
        "versions": {"behave": "1.3.3"},
    }

    properties = run._environment_properties(run_info)

    assert {key: properties[key] for key in ("target", "security", "engine", "compose", "workers")} == {
        "target": "docker", "security": "secure", "engine": "docker 20.10.24+dfsg1",
        "compose": "docker compose 5.6.1", "workers": 2,
    }


def test_environment_and_executor_files(tmp_path: Path) -> None:
    allure_report.write_environment(
        tmp_path, {"target": "docker", "tags": ["@smoke", "not @slow"], "git.revision": "a"}
    )
    executor = {"name": "GitHub Actions", "type": "github", "buildOrder": 17, "buildName": "acceptance #17 (docker)"}
    allure_report.write_executor(tmp_path, executor)

    assert (tmp_path / "environment.properties").read_text() == "target=docker\ntags=@smoke not @slow\ngit.revision=a\n"
    assert json.loads((tmp_path / "executor.json").read_text()) == executor


def test_generate_html_without_results_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(allure_report.ReportError, match="no Allure results in"):
        allure_report.generate_html(tmp_path, tmp_path / "out")


def test_run_wrapper_go_on_passing_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path, {"orders": PASSING})
    (project / "reports" / "history").mkdir(parents=True)
    (project / "reports" / "history" / "history.jsonl").write_text("{}\n")
    (project / "reports" / "hook-errors.jsonl").write_text('{"hook": "stale", "where": "last run", "error": "x"}\n')

    exit_code = run.main(["--no-html", "--tags", "not @wip"], root=project)

    signoff = json.loads((project / "reports" / "signoff.json").read_text())
    assert exit_code == 0
    assert signoff["verdict"] == "GO"
    assert signoff["run"]["tags"] == ["not @wip"]
    assert (project / "target.txt").read_text() == "(none)", "without --target, environment.py picks the target"
    assert signoff["notes"] == ["HTML report not generated (--no-html)"]
    assert (project / "reports" / "history" / "history.jsonl").read_text() == "{}\n"
    assert "an order is accepted" in (project / "reports" / "behave.log").read_text()
    assert "SIGN-OFF: GO" in capsys.readouterr().out


def test_run_wrapper_passes_target_to_behave_userdata(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"risk": FAILING})

    exit_code = run.main(["--no-html", "--target", "docker", "--no-capture"], root=project)

    signoff = json.loads((project / "reports" / "signoff.json").read_text())
    assert exit_code == 1
    assert signoff["verdict"] == "NO-GO"
    assert (project / "target.txt").read_text() == "docker"
    assert signoff["run"]["target"] == "docker"
    assert signoff["run"]["behave_args"] == ["--no-capture"]


def test_run_wrapper_says_report_missing_when_node_packages_are_absent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path, {"orders": PASSING})
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # a machine without node

    exit_code = run.main([], root=project)

    signoff = json.loads((project / "reports" / "signoff.json").read_text())
    assert exit_code == 0
    assert signoff["notes"] == [
        "Allure HTML report missing: npm is not on PATH: install Node.js 20+ to get the Allure HTML report"
    ]
    assert "ALLURE HTML REPORT MISSING" in capsys.readouterr().err


@pytest.mark.skipif(
    shutil.which("npx") is None or not (REPO_ROOT / "node_modules" / "allure").is_dir(),
    reason="needs Node.js and `npm ci` (node_modules/allure)",
)
def test_single_file_html_report_with_history(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"discovery": HOOK_ERROR, "orders": PASSING})
    (project / "node_modules").symlink_to(REPO_ROOT / "node_modules")
    shutil.copy(REPO_ROOT / "allurerc.json", project / "allurerc.json")

    first = run.main([], root=project)
    second = run.main([], root=project)

    out = project / "reports" / "allure-report"
    embedded = embedded_report_files(out / "index.html")
    statuses = {
        json.loads(data)["name"]: json.loads(data)["status"]
        for name, data in embedded.items()
        if name.startswith("data/test-results/")
    }
    history = (project / "reports" / "history" / "history.jsonl").read_text().splitlines()
    assert (first, second) == (1, 1)
    assert not (out / "data").exists(), "single-file report must not need a data folder beside index.html"
    assert statuses == {"an instance registers": "broken", "an order is accepted": "passed"}
    assert {"name": "target", "values": ["default (environment.py decides)"]} in json.loads(
        embedded["widgets/allure_environment.json"]
    )
    assert len(history) == 2
    assert json.loads(history[0])["name"].startswith("NO-GO: Reference trading ecosystem acceptance · first failure: ")
    html = (out / "index.html").read_text()
    assert "googletagmanager" not in html, "the offline report must not call an analytics host"
    assert json.loads(embedded["widgets/globals.json"])["errors"][0]["message"].startswith("NO-GO reason 1 of ")


@pytest.mark.timeout(90)
def test_sigterm_reaches_behave_once_and_its_cleanups_run(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"soak": SLOW})
    wrapper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys; from pathlib import Path; from acceptance.run import main; "
            f"sys.exit(main(['--no-html'], root=Path({str(project)!r})))",
        ],
        cwd=REPO_ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        behave_pid = int(
            wait_until(
                lambda: (project / "started").read_text(),
                timeout=30,
                what="the slow scenario started (file `started` in the project)",
            )
        )
        wrapper.send_signal(signal.SIGTERM)
        output, _ = wrapper.communicate(timeout=60)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()

    signoff = json.loads((project / "reports" / "signoff.json").read_text())
    assert wrapper.returncode == 1, output
    assert (project / "cleaned").read_text() == str(behave_pid), "the cleanup ran in behave"
    assert signoff["reasons"][0] == "the run was interrupted by SIGTERM"
    assert any('"never reached"' in r and "never ran" in r for r in signoff["reasons"])
    with pytest.raises(ProcessLookupError):
        os.kill(behave_pid, 0)


def failed_record(name: str, line: int, message: str, **fields: str) -> ScenarioRecord:
    return ScenarioRecord(feature="Orders", scenario=name, location=f"features/04_orders.feature:{line}",
                          status="failed", step="Then the order is ACCEPTED", message=message, **fields)


def test_the_first_failure_in_run_order_comes_first_with_its_step_and_reproduction(tmp_path: Path) -> None:
    # Run order differs from feature order: the sign-off follows the run.
    records = [
        ScenarioRecord("Orders", "an order is accepted", "features/04_orders.feature:20", "passed"),
        failed_record("the breaker closes", 40, "timed out after 4.5s waiting until an order is ACCEPTED",
                      rebuilt="trading-system-engine's breaker for risk-monitor is OPEN, expected CLOSED"),
        failed_record("a knock-on", 12, "UNAVAILABLE"),
    ]
    for record in records:
        record_scenario(tmp_path, record)
    features = [FeatureResult("Orders", passed=1, failed=2, scenarios=[
        ScenarioResult("a knock-on", "failed", "UNAVAILABLE"),
        ScenarioResult("an order is accepted", "passed"),
        ScenarioResult("the breaker closes", "failed", "timed out"),
    ])]

    verdict = decide(
        features, behave_exit_code=1, hook_errors=[], records=read_scenario_records(tmp_path),
        reproduction={
            "features/04_orders.feature:40": "reproduced", "features/04_orders.feature:12": "did not reproduce"
        },
    )

    assert not verdict.go
    assert verdict.first_failure == (
        'scenario "the breaker closes" (features/04_orders.feature:40) failed at step "Then the order is ACCEPTED": '
        "timed out after 4.5s waiting until an order is ACCEPTED [re-run on a rebuilt stack: reproduced]"
    )
    assert verdict.reasons[1] == (
        'stack rebuilt after scenario "the breaker closes": trading-system-engine\'s breaker for risk-monitor '
        "is OPEN, expected CLOSED"
    ), "a rebuild comes where it arose: after the scenario that needed it"
    assert verdict.reasons[2].endswith("UNAVAILABLE [re-run on a rebuilt stack: did not reproduce]")
    assert [f["reproduction"] for f in verdict.failures] == ["reproduced", "did not reproduce"]
    assert verdict.headline == '"the breaker closes" failed'


def test_a_rebuild_alone_is_no_go() -> None:
    records = [ScenarioRecord("Discovery", "a flush", "features/02_discovery.feature:70", "passed",
                              rebuilt="restore 'register every service again' failed: TargetError")]

    verdict = decide([FeatureResult("Discovery", passed=1)], behave_exit_code=0, hook_errors=[], records=records)

    assert not verdict.go
    assert verdict.first_failure.startswith('stack rebuilt after scenario "a flush": restore \'register every')


def test_a_stack_that_could_not_start_is_the_first_failure() -> None:
    start = HookError("before_all", "run", "AssertionError: the stack is not healthy after it started: x")

    never_ran = [ScenarioResult(f"order {n}", "untested") for n in range(3)]
    orders = FeatureResult("Orders", untested=3, scenarios=never_ran)
    verdict = decide([orders], behave_exit_code=1, hook_errors=[start])

    assert verdict.first_failure == "the run could not start: before_all in run: " + start.error
    assert "3 selected scenario(s) never ran" in verdict.reasons[1]


def test_the_markdown_sign_off_opens_with_the_first_failure(tmp_path: Path) -> None:
    verdict = decide([FeatureResult("Orders", failed=1)], behave_exit_code=1, hook_errors=[],
                     records=[failed_record("the breaker closes", 40, "timed out")])

    md_path, json_path = write_signoff(verdict, {"name": "Trading ecosystem acceptance"}, tmp_path)

    lines = md_path.read_text().splitlines()
    assert lines[0] == "# NO-GO: Trading ecosystem acceptance"
    assert lines[2].startswith('**First failure:** scenario "the breaker closes" (features/04_orders.feature:40)')
    assert json.loads(json_path.read_text())["first_failure"] == verdict.first_failure


def test_a_failure_that_did_not_reproduce_is_flaky_never_passed(tmp_path: Path) -> None:
    result = {"name": "the breaker closes", "fullName": "Orders: the breaker closes", "status": "failed",
              "labels": [{"name": "feature", "value": "Orders"}], "statusDetails": {"message": "timed out"}}
    (tmp_path / "1-result.json").write_text(json.dumps(result))

    changed = allure_report.mark_reproduction(
        tmp_path, [{"feature": "Orders", "scenario": "the breaker closes", "reproduction": "did not reproduce"}]
    )

    [marked] = allure_results(tmp_path)
    assert changed == 1
    assert marked["status"] == "failed"
    assert marked["statusDetails"] == {
        "message": "[re-run on a rebuilt stack: did not reproduce] timed out", "flaky": True
    }


def test_the_verdict_and_its_reasons_are_allure_globals(tmp_path: Path) -> None:
    signoff = tmp_path / "signoff.md"
    signoff.write_text("# NO-GO: x\n")

    path = allure_report.write_verdict(tmp_path, "NO-GO", ["first", "second"], signoff)

    globals_ = json.loads(path.read_text())
    assert [e["message"] for e in globals_["errors"]] == ["NO-GO reason 1 of 2: first", "NO-GO reason 2 of 2: second"]
    [attachment] = globals_["attachments"]
    assert attachment["name"] == "sign-off: NO-GO"
    assert (tmp_path / attachment["source"]).read_text() == "# NO-GO: x\n"


def test_the_report_title_leads_with_the_verdict(tmp_path: Path) -> None:
    config = json.loads(allure_report.write_report_config(REPO_ROOT / "allurerc.json", tmp_path, "GO").read_text())

    assert config["name"] == "GO: Trading ecosystem acceptance"
    assert config["plugins"]["awesome"]["options"]["reportName"] == "GO: Trading ecosystem acceptance"
    failed = allure_report.write_report_config(REPO_ROOT / "allurerc.json", tmp_path, "NO-GO", '"x" failed')
    assert json.loads(failed.read_text())["name"] == 'NO-GO: Trading ecosystem acceptance · first failure: "x" failed'


def test_a_report_that_would_call_an_outside_host_is_refused(tmp_path: Path) -> None:
    index = tmp_path / "index.html"
    index.write_text('<html><script async src="https://www.googletagmanager.com/gtag/js?id=G"></script>\n'
                     "<script>\n window.dataLayer = [];\n function gtag(){}\n gtag('js', new Date());\n</script>"
                     '<img src="https://example.org/pixel.png"></html>')

    with pytest.raises(allure_report.ReportError, match=r"example\.org"):
        allure_report.keep_offline(index)

    index.write_text('<html><script async src="https://www.googletagmanager.com/gtag/js?id=G"></script>\n'
                     "<script>\n function gtag(){}\n gtag('js', new Date());\n</script><p>report</p></html>")
    allure_report.keep_offline(index)
    assert index.read_text() == "<html><p>report</p></html>"


def allure_results(results: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in results.glob("*-result.json")]


def embedded_report_files(index: Path) -> dict[str, bytes]:
    """The data files Allure 3 embeds in a single-file index.html as base64 `d("name","...")` calls."""
    html = index.read_text()
    return {name: base64.b64decode(data) for name, data in re.findall(r'd\("([^"]+)","([A-Za-z0-9+/=]*)"\)', html)}


def test_not_applicable_scenarios_keep_their_reason_and_are_counted_apart(tmp_path: Path) -> None:
    reason = "the stack manifest manifest.toml (Examples) declares no contract trading"
    record_scenario(tmp_path, ScenarioRecord("Orders", "an order is accepted", "f:3", "skipped", message=reason))
    features = [FeatureResult("Orders", passed=1, skipped=2, file="f", scenarios=[
        ScenarioResult("greeter is SERVING", "passed"),
        ScenarioResult("an order is accepted", "skipped"),
        ScenarioResult("left out by --tags", "skipped"),
    ])]
    junit = tmp_path / "junit"
    junit.mkdir()
    (junit / "TESTS-f.xml").write_text(
        '<testsuite name="f.Orders"><testcase name="an order is accepted" status="skipped"><skipped /></testcase>'
        '<testcase name="left out by --tags" status="skipped"><skipped /></testcase></testsuite>'
    )

    apply_skip_reasons(features, read_scenario_records(tmp_path))
    explain_junit_skips(junit, features)
    verdict = decide(features, behave_exit_code=0, hook_errors=[], records=read_scenario_records(tmp_path))

    assert verdict.go, verdict.reasons
    assert verdict.totals()["not_applicable"] == 1 and verdict.totals()["skipped"] == 1
    assert verdict.not_applicable() == {reason: ["an order is accepted"]}
    skips = [case.find("skipped").get("message") for case in ET.parse(junit / "TESTS-f.xml").iter("testcase")]
    assert skips == [reason, None]
    md_path, _ = write_signoff(verdict, {"name": "Examples acceptance"}, tmp_path)
    assert f"- 1 scenario(s): {reason}: \"an order is accepted\"" in md_path.read_text()


def test_outline_rows_are_told_apart_in_allure_results(tmp_path: Path) -> None:
    # allure-behave gives every row of an outline one fullName; the name and feature label keep rows apart.
    reason = "target 'external' cannot stop"
    for row, status in (("a -- @1.1 rows", "skipped"), ("a -- @1.2 rows", "skipped")):
        (tmp_path / f"{row[-9:-5]}-result.json").write_text(json.dumps({
            "name": row, "fullName": "Orders: a", "status": status, "labels": [{"name": "feature", "value": "Orders"}],
        }))
    features = [FeatureResult("Orders", scenarios=[
        ScenarioResult("a -- @1.1 rows", "not applicable", reason), ScenarioResult("a -- @1.2 rows", "skipped"),
    ])]

    assert allure_report.mark_not_applicable(tmp_path, features) == 1
    details = {r["name"]: r.get("statusDetails", {}).get("message") for r in allure_results(tmp_path)}
    assert details == {"a -- @1.1 rows": reason, "a -- @1.2 rows": None}
