"""Parallel workers, shards and their merge, on real behave runs of a tiny project.

The project's environment.py does what the suite's does for a parallel run (keep only the worker's units,
record each scenario with its unit in the run's reports folder, SIGTERM as KeyboardInterrupt); its steps
pass, fail or wait for a signal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from acceptance import merge, run
from acceptance.plan import PlanError, Shard, Unit, balance, digest
from acceptance.signoff import read_junit
from acceptance.waits import wait_until
from tests import behave_projects

REPO_ROOT = behave_projects.REPO_ROOT
pytestmark = pytest.mark.usefixtures("importable_suite_library")

ENVIRONMENT = """
import signal
import time
from pathlib import Path

from acceptance.plan import CLAIMS_OPTION, UNITS_OPTION, Claims, keep_units, unit_of
from acceptance.signoff import ScenarioRecord, record_scenario


def _reports(context):
    return Path(context.config.userdata.get("reports_dir", "reports"))


def before_all(context):
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)
    userdata = context.config.userdata
    if UNITS_OPTION in userdata:
        keep_units(context._runner.features, userdata[UNITS_OPTION])
    context.claims = Claims(userdata[CLAIMS_OPTION], "worker") if CLAIMS_OPTION in userdata else None
    if context.claims:
        context.claims.prepare(context._runner.features, context.config)


def before_feature(context, feature):
    if context.claims:
        context.claims.wrap(feature)


def after_feature(context, feature):
    if context.claims:
        context.claims.settle(feature)


def before_scenario(context, scenario):
    context.started_at = time.time()


def after_scenario(context, scenario):
    if scenario.status.name == "skipped":
        return
    record_scenario(_reports(context), ScenarioRecord(
        feature=scenario.feature.name, scenario=scenario.name, location=str(scenario.location),
        status=scenario.status.name, started_at=context.started_at, duration_s=time.time() - context.started_at,
        unit=unit_of(scenario)))
"""

ORDERS = """
Feature: Orders
  Scenario: an order is accepted
    Given a step that passes

  Scenario: an order is rejected
    Given a step that passes

  @slow
  Scenario: a burst of orders
    Given a step that passes
"""
RISK = """
Feature: Risk
  Scenario Outline: a limit of <limit>
    Given a step that passes

    Examples:
      | limit |
      | 1     |
      | 2     |
      | 3     |

  Scenario: a check times out
    Given a step that passes
"""
FAILING = """
Feature: Discovery
  Scenario: an instance registers
    Given a step that passes

  Scenario: an instance expires
    Given a step that fails
"""


def make_project(root: Path, features: dict[str, str]) -> Path:
    return behave_projects.make_project(root, features, ENVIRONMENT)


def outcomes(reports: Path) -> set[tuple[str, str, str]]:
    """(feature, scenario, status) of every testcase in the run's JUnit files."""
    return {(feature.name, scenario.name, scenario.status)
            for feature in read_junit(reports / "junit") for scenario in feature.scenarios}


def signoff(reports: Path) -> dict:
    return json.loads((reports / "signoff.json").read_text())


def test_balance_puts_every_unit_in_one_bin_and_evens_out_measured_time() -> None:
    units = [Unit(f"features/a.feature:{line}") for line in range(1, 11)]
    durations = {units[0].key: 9.0, units[1].key: 5.0, units[2].key: 4.0}

    bins = balance(units, durations, 3)

    assert sorted(unit.key for chosen in bins for unit in chosen) == sorted(unit.key for unit in units)
    # The unmeasured count as the median of the measured, 5 s: 53 s in all, no bin a whole unit above another.
    loads = [sum(durations.get(unit.key, 5.0) for unit in chosen) for chosen in bins]
    assert sum(loads) == 53.0 and max(loads) - min(loads) <= 5.0, loads
    assert bins == balance(list(units), dict(durations), 3), "the same inputs must give the same plan"
    assert digest(bins) != digest(balance(units, {}, 3))


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_shard_must_be_i_of_n(text: str) -> None:
    with pytest.raises(PlanError, match=f"--shard {text!r}"):
        Shard.parse(text)


def test_jobs_give_the_verdict_and_scenarios_of_one_run(tmp_path: Path) -> None:
    left_out = "@slow\nFeature: Load\n  Scenario: a load\n    Given a step that passes\n"
    features = {"orders": ORDERS, "risk": RISK, "discovery": FAILING, "load": left_out}
    single = make_project(tmp_path / "single", features)
    parallel = make_project(tmp_path / "parallel", features)

    one = run.main(["--no-html", "--tags", "not @slow"], root=single)
    three = run.main(["--no-html", "--tags", "not @slow", "--jobs", "3"], root=parallel)

    reports = parallel / "reports"
    assert (one, three) == (1, 1)
    assert outcomes(reports) == outcomes(single / "reports")
    assert {("Orders", "a burst of orders", "skipped"), ("Load", "a load", "skipped")} <= outcomes(reports)
    assert sum(f.skipped for f in read_junit(reports / "junit")) == 2, "deselected once, not once per worker"
    assert signoff(reports)["totals"] == signoff(single / "reports")["totals"]
    assert signoff(reports)["run"]["workers"] == 3
    assert signoff(reports)["first_failure"].startswith('scenario "an instance expires"')
    assert signoff(reports)["failures"][0]["reproduction"] == "reproduced"
    assert {path.name for path in (reports / "workers").glob("w*")} == {"w1", "w2", "w3"}
    claimed = {json.loads(path.read_text())["unit"] for path in (reports / "workers" / "claims" / "taken").iterdir()}
    planned = json.loads((reports / "workers" / "units.json").read_text())
    assert claimed == {unit for unit in planned if "load" not in unit} | {"feature features/load.feature:2"}
    assert all((reports / "workers" / name / "behave.log").stat().st_size for name in ("w1", "w2", "w3"))
    measured = json.loads((reports / "history" / "durations.json").read_text())
    assert set(measured) == {"features/orders.feature:3", "features/orders.feature:6", "features/risk.feature:3",
                             "features/risk.feature:12", "features/discovery.feature:3",
                             "features/discovery.feature:6"}, "an outline is one unit, a deselected one none"


def test_merged_shards_give_the_verdict_of_one_run_and_a_missing_shard_is_no_go(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", {"orders": ORDERS, "risk": RISK})
    full = run.main(["--no-html", "--reports-dir", str(tmp_path / "full")], root=project)
    shards = [tmp_path / "shard-1", tmp_path / "shard-2"]
    for index, folder in enumerate(shards, 1):
        run.main(["--no-html", "--shard", f"{index}/2", "--reports-dir", str(folder)], root=project)

    merged = merge.main([*map(str, shards), "--no-html", "--into", str(tmp_path / "merged")], root=project)
    partial = merge.main([str(shards[0]), "--no-html", "--into", str(tmp_path / "partial")], root=project)

    assert (full, merged, partial) == (0, 0, 1)
    assert outcomes(tmp_path / "merged") == outcomes(tmp_path / "full")
    assert not outcomes(tmp_path / "shard-1") & outcomes(tmp_path / "shard-2"), "a scenario ran in both shards"
    assert signoff(tmp_path / "merged")["totals"] == signoff(tmp_path / "full")["totals"]
    assert signoff(tmp_path / "partial")["reasons"][0] == (
        "shard 2/2 is missing: its scenarios were not run or its reports did not arrive")


def test_shards_planned_differently_are_no_go(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", {"orders": ORDERS, "risk": RISK})
    run.main(["--no-html", "--shard", "1/2", "--reports-dir", str(tmp_path / "shard-1")], root=project)
    history = tmp_path / "shard-2" / "history"
    history.mkdir(parents=True)
    measured = {"features/orders.feature:3": 60.0, "features/orders.feature:6": 1.0}
    (history / "durations.json").write_text(json.dumps(measured))
    run.main(["--no-html", "--shard", "2/2", "--reports-dir", str(tmp_path / "shard-2")], root=project)

    merged = merge.main([str(tmp_path / "shard-1"), str(tmp_path / "shard-2"), "--no-html", "--into",
                         str(tmp_path / "merged")], root=project)

    assert merged == 1
    assert signoff(tmp_path / "merged")["reasons"][0].startswith("the shards were planned differently")


def test_merge_refuses_a_folder_that_is_no_shard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "reports").mkdir()

    assert merge.main([str(tmp_path / "reports"), "--into", str(tmp_path / "out")], root=tmp_path) == 2
    assert "holds no shard.json" in capsys.readouterr().err


def test_a_feature_split_over_workers_is_one_junit_suite_with_its_counts(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", {"discovery": FAILING})

    run.main(["--no-html", "--no-rerun", "--jobs", "2"], root=project)

    reports = project / "reports"
    junit = "TESTS-features.discovery.xml"
    assert all((reports / "workers" / name / "junit" / junit).is_file() for name in ("w1", "w2"))
    (feature,) = read_junit(reports / "junit")
    assert (feature.passed, feature.failed, feature.skipped) == (1, 1, 0)
    suite = (reports / "junit" / junit).read_text()
    assert 'tests="2"' in suite and 'failures="1"' in suite
    assert len(list((reports / "allure-results").glob("*-result.json"))) == 2


@pytest.mark.timeout(90)
def test_sigterm_reaches_every_worker_once_and_their_cleanups_run(tmp_path: Path) -> None:
    waiting = {name: f"Feature: {name}\n  Scenario: soaks\n    Given a step that waits for a signal in {name}\n"
               for name in ("soak", "load")}
    project = make_project(tmp_path, waiting)
    wrapper = subprocess.Popen(
        [sys.executable, "-c", f"import sys; from pathlib import Path; from acceptance.run import main; "
                               f"sys.exit(main(['--no-html', '--jobs', '2'], root=Path({str(project)!r})))"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        workers = [int(wait_until(lambda name=name: (project / f"started-{name}").read_text(), timeout=30,
                                  what=f"the worker running {name} started its scenario")) for name in waiting]
        wrapper.send_signal(signal.SIGTERM)
        output, _ = wrapper.communicate(timeout=60)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()

    assert wrapper.returncode == 1, output
    assert len(set(workers)) == 2, "each scenario ran in a worker of its own"
    assert {(project / f"cleaned-{name}").read_text() for name in waiting} == set(map(str, workers))
    assert signoff(project / "reports")["reasons"][0] == "the run was interrupted by SIGTERM"
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_worker_that_dies_is_no_go_naming_what_it_took(tmp_path: Path) -> None:
    dying = "Feature: Crash\n  Scenario: the worker dies\n    Given a step that kills its worker\n"
    project = make_project(tmp_path, {"orders": ORDERS, "crash": dying})

    exit_code = run.main(["--no-html", "--no-rerun", "--jobs", "2"], root=project)

    reasons = signoff(project / "reports")["reasons"]
    assert exit_code == 1
    assert any(reason.startswith("worker w") and "stopped before reporting 1 scenario(s) it took: "
               "features/crash.feature:2" in reason for reason in reasons), reasons


def test_stop_ends_every_worker_at_the_first_failure(tmp_path: Path) -> None:
    failing_first = FAILING.replace("an instance registers\n    Given a step that passes",
                                    "an instance registers\n    Given a step that fails")
    project = make_project(tmp_path, {"discovery": failing_first, "orders": ORDERS, "risk": RISK})

    run.main(["--no-html", "--no-rerun", "--jobs", "2", "--stop", "features/discovery.feature",
              "features/orders.feature", "features/risk.feature"], root=project)

    assert (project / "reports" / "workers" / "claims" / "stop").is_file()
    assert signoff(project / "reports")["totals"]["passed"] < 6, "the workers went on after the failure"


def test_a_line_selects_one_scenario_in_parallel_as_alone(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"orders": ORDERS})

    run.main(["--no-html", "--jobs", "2", "features/orders.feature:6"], root=project)

    assert outcomes(project / "reports") == {("Orders", "an order is rejected", "passed")}


def test_shards_plan_with_the_tags_and_report_the_deselected_once(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", {"orders": ORDERS, "risk": RISK})
    shards = [tmp_path / "shard-1", tmp_path / "shard-2"]
    codes = [run.main(["--no-html", "--tags", "@slow or @wip", "--shard", f"{index}/2", "--reports-dir", str(folder)],
                      root=project) for index, folder in enumerate(shards, 1)]
    merged = merge.main([*map(str, shards), "--no-html", "--into", str(tmp_path / "merged")], root=project)

    assert codes[0] == 0, "the one selected scenario runs in the first shard"
    assert codes[1] == 2, "the second shard has nothing selected: a usage error, not a run"
    assert signoff(shards[0])["totals"] | {"passed": 1, "skipped": 6} == signoff(shards[0])["totals"]
    assert merged == 1
    assert any("shard 2/2 is missing" in reason for reason in signoff(tmp_path / "merged")["reasons"])


def test_the_merge_concludes_once(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", {"orders": ORDERS, "risk": RISK})
    shards = [tmp_path / "shard-1", tmp_path / "shard-2"]
    for index, folder in enumerate(shards, 1):
        run.main(["--no-html", "--shard", f"{index}/2", "--reports-dir", str(folder)], root=project)

    merge.main([*map(str, shards), "--no-html", "--into", str(tmp_path / "merged")], root=project)

    verdicts = [json.loads(path.read_text())["attachments"][0]["name"]
                for path in (tmp_path / "merged" / "allure-results").glob("*-globals.json")]
    assert verdicts == ["sign-off: GO"]


def test_jobs_on_an_external_stack_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path, {"orders": ORDERS})

    assert run.main(["--jobs", "2", "--target", "external"], root=project) == 2
    assert "each worker needs a stack of its own" in capsys.readouterr().err
