"""Wall time of the acceptance run per target and number of workers (`--jobs`), and per feature at one worker.

Each run writes into a folder of its own under reports/bench/suite/ (`acceptance.run --reports-dir`), so a
benchmark never replaces the reports of the last real acceptance run; its scenario times are the history
the next run plans with, copied in from reports/history/ first.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from acceptance.plan import DURATIONS_FILE
from acceptance.targets.local import REPO_ROOT

REPORTS = REPO_ROOT / "reports"
JOBS = (1, 2, 4)
SUITE_TIMEOUT_S = 900.0


def feature_times(junit: Path) -> list[dict[str, object]]:
    features = []
    for path in sorted(junit.glob("*.xml")):
        suite = ET.parse(path).getroot()
        features.append(
            {
                "feature": path.stem.removeprefix("TESTS-"),
                "time_s": float(suite.get("time", 0.0)),
                "scenarios": int(suite.get("tests", 0)),
                "failures": int(suite.get("failures", 0)) + int(suite.get("errors", 0)),
                "skipped": int(suite.get("skipped", 0)),
            }
        )
    return features


def measure_run(target: str, jobs: int, reports: Path) -> dict[str, object]:
    """One `acceptance.run` (no HTML, no re-run) and its wall time."""
    shutil.rmtree(reports, ignore_errors=True)
    if (REPORTS / DURATIONS_FILE).is_file():
        (reports / DURATIONS_FILE).parent.mkdir(parents=True)
        shutil.copy2(REPORTS / DURATIONS_FILE, reports / DURATIONS_FILE)
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "acceptance.run", "--target", target, "--jobs", str(jobs), "--no-html", "--no-rerun",
         "--reports-dir", str(reports)],
        cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=SUITE_TIMEOUT_S, check=False,
    )
    wall_s = time.perf_counter() - started
    verdict = next((line for line in run.stdout.decode(errors="replace").splitlines()
                    if line.startswith("SIGN-OFF:")), "SIGN-OFF: (none printed)")
    return {"target": target, "jobs": jobs, "wall_s": wall_s, "exit_code": run.returncode,
            "verdict": verdict.removeprefix("SIGN-OFF:").strip()}


def measure_suite(targets: Iterable[str], out: Path) -> dict[str, object]:
    """Every target at JOBS 1, 2 and 4; per-feature times from the first target's one-worker run."""
    runs = []
    features: list[dict[str, object]] = []
    for target in targets:
        for jobs in JOBS:
            print(f"bench:   {target} --jobs {jobs}", flush=True)
            reports = out / "suite" / f"{target}-jobs{jobs}"
            runs.append(measure_run(target, jobs, reports))
            if jobs == 1 and not features:
                features = feature_times(reports / "junit")
    return {"runs": runs, "features": features}
