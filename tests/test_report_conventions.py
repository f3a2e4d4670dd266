"""The report's conventions on real behave runs: links, readable names, the CI executor, and a dry run that is clean
and writes nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from behave.model import ScenarioOutline
from behave.parser import parse_feature

from acceptance import allure_report, ci_environment
from acceptance.hooks import refuse_shared_names
from acceptance.manifest import load_manifest
from tests import behave_projects

REPO_ROOT = behave_projects.REPO_ROOT
pytestmark = pytest.mark.usefixtures("importable_suite_library")

LINKED = """@allure.epic:Service_communication @allure.story:Order_flow
Feature: Orders
  @allure.issue:42 @allure.tms:TC-7
  Scenario: an order is linked to its tracker
    Given a step that passes

  @allure.issue:https://tracker.example/browse/OLD-1
  Scenario: an order linked by its full address
    Given a step that passes

  Scenario Outline: an order of <quantity> is named by its row
    Given a step that passes

    Examples:
      | quantity |
      | 1        |
      | 1000     |
"""


def run_behave(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("ALLURE_", "GITHUB_"))}
    return subprocess.run(
        [sys.executable, "-m", "behave", *args], cwd=project, env={**environment, **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )


def allure_results(project: Path) -> dict[str, dict]:
    results = project / "reports" / "allure-results"
    return {result["name"]: result for result in map(json.loads, map(Path.read_text, results.glob("*-result.json")))}


def test_issue_and_tms_tags_link_by_their_patterns_and_names_read_as_written(tmp_path: Path) -> None:
    project = behave_projects.make_project(tmp_path, {"orders": LINKED}, "")

    completed = run_behave(project, "-D", "AllureFormatter.issue_pattern=https://tracker.example/browse/{}",
                           env={"ALLURE_TMS_PATTERN": "https://tms.example/case/{}"})

    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = allure_results(project)
    assert sorted(results) == sorted(["an order is linked to its tracker", "an order linked by its full address",
                                      "an order of 1 is named by its row", "an order of 1000 is named by its row"])
    linked = results["an order is linked to its tracker"]
    assert {(link["type"], link["url"]) for link in linked["links"]} == {
        ("issue", "https://tracker.example/browse/42"), ("tms", "https://tms.example/case/TC-7")}
    assert [link["url"] for link in results["an order linked by its full address"]["links"]] == [
        "https://tracker.example/browse/OLD-1"]
    labels = {(label["name"], label["value"]) for label in linked["labels"]}
    assert {("epic", "Service communication"), ("story", "Order flow")} <= labels


def test_issues_link_to_the_ci_repository_and_a_tag_no_pattern_resolves_is_named_once(tmp_path: Path) -> None:
    project = behave_projects.make_project(tmp_path, {"orders": LINKED}, "")

    completed = run_behave(project, env={"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com",
                                         "GITHUB_REPOSITORY": "team/trading"})

    linked = allure_results(project)["an order is linked to its tracker"]
    assert {(link["type"], link["url"]) for link in linked["links"]} == {
        ("issue", "https://github.com/team/trading/issues/42"), ("tms", "TC-7")}
    unresolved = [line for line in completed.stderr.splitlines() if line.startswith("allure:")]
    assert unresolved == ["allure: @allure.tms:TC-7 of 'Orders: an order is linked to its tracker' links nowhere: "
                          "set AllureFormatter.tms_pattern in behave.ini's [behave.userdata] or ALLURE_TMS_PATTERN"]


def test_a_dry_run_of_the_suite_is_clean_and_leaves_the_reports_as_they_were() -> None:
    """As the README has it: the virtual environment's own `behave` script, from the repository root."""
    before = _report_files()

    completed = subprocess.run(
        [str(Path(sys.executable).parent / "behave"), "--dry-run", "features/"], cwd=REPO_ROOT,
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
        capture_output=True, text=True, timeout=120, check=False,
    )

    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    summary = [line for line in completed.stdout.splitlines() if re.match(r"\d+ (features?|scenarios) passed", line)]
    assert len(summary) == 2 and all(" 0 failed" in line for line in summary), completed.stdout[-500:]
    assert _report_files() == before
    # The rows before_all gives @manifest.examples outlines are listed too, one per service the manifest declares.
    listed = re.findall(r"Scenario Outline: (\S+) is registered by the registry contract", completed.stdout)
    assert listed == [service.name for service in load_manifest(None).services], completed.stdout[:2000]


def test_a_dry_run_with_a_manifest_that_cannot_be_read_says_so_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "manifest.toml"
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "behave"), "--dry-run", "-D", f"manifest={missing}", "features/"],
        cwd=REPO_ROOT, env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
        capture_output=True, text=True, timeout=120, check=False,
    )

    assert completed.returncode != 0
    assert f"ConfigError: stack manifest {missing}: no such file" in completed.stdout, completed.stdout
    assert "Traceback" not in completed.stdout + completed.stderr


def _report_files() -> dict[Path, int]:
    """The repository's JUnit and Allure result files, with when each was last written."""
    reports = REPO_ROOT / "reports"
    return {path: path.stat().st_mtime_ns for folder in ("junit", "allure-results")
            for path in (reports / folder).glob("*")}


def test_rows_of_an_outline_without_placeholders_in_its_name_are_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ScenarioOutline, "annotation_schema", "{name}")  # as behave.ini sets it
    feature = parse_feature(
        "Feature: Orders\n  Scenario Outline: an order\n    Given a step that passes\n\n    Examples:\n"
        "      | quantity |\n      | 1        |\n      | 2        |\n", filename="features/orders.feature")

    with pytest.raises(ValueError, match=r"features/orders.feature:8 is named 'an order', as "
                                         r"features/orders.feature:7 is: put the outline's <placeholders>"):
        refuse_shared_names([feature])


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "team/trading",
          "GITHUB_RUN_ID": "981", "GITHUB_RUN_NUMBER": "17", "GITHUB_WORKFLOW": "acceptance", "GITHUB_JOB": "docker",
          "ALLURE_REPORT_URL": "https://team.example/reports/17/"},
         {"name": "GitHub Actions", "type": "github", "url": "https://github.com/team/trading", "buildOrder": 17,
          "buildName": "acceptance #17 (docker): docker 2026-12-02T03:00:00+00:00", "buildUrl": "https://github.com/team/trading/actions/runs/981",
          "reportUrl": "https://team.example/reports/17/"}),
        ({"GITLAB_CI": "true", "CI": "true", "CI_PROJECT_URL": "https://gitlab.example/team/trading",
          "CI_PIPELINE_IID": "5", "CI_JOB_NAME": "accept", "CI_JOB_URL": "https://gitlab.example/team/trading/-/jobs/9"},
         {"name": "GitLab CI", "type": "gitlab", "url": "https://gitlab.example/team/trading", "buildOrder": 5,
          "buildName": "pipeline #5 (accept): docker 2026-12-02T03:00:00+00:00", "buildUrl": "https://gitlab.example/team/trading/-/jobs/9"}),
        ({"JENKINS_URL": "https://ci.example/", "BUILD_NUMBER": "3", "BUILD_TAG": "jenkins-accept-3",
          "BUILD_URL": "https://ci.example/job/accept/3/"},
         {"name": "Jenkins", "type": "jenkins", "url": "https://ci.example/", "buildOrder": 3,
          "buildName": "jenkins-accept-3: docker 2026-12-02T03:00:00+00:00", "buildUrl": "https://ci.example/job/accept/3/"}),
        ({"CI": "true"}, {"name": "CI", "type": "ci", "buildName": "docker 2026-12-02T03:00:00+00:00"}),
    ],
)
def test_the_executor_is_the_ci_run_where_there_is_one(env: dict[str, str], expected: dict[str, object]) -> None:
    report = Path("/work/reports/allure-report/index.html")

    assert allure_report.executor(env, build_name="docker 2026-12-02T03:00:00+00:00", report=report) == expected


def test_outside_ci_the_executor_is_this_machine_with_the_local_report() -> None:
    report = Path("/work/reports/allure-report/index.html")

    executor = allure_report.executor({}, build_name="local run", report=report)

    assert executor["type"] == "local"
    assert executor["reportUrl"] == "file:///work/reports/allure-report/index.html"
    assert ci_environment.detect({"CI": "false"}) is None
