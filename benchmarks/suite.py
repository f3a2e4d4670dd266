"""Wall time of the acceptance run on the local target, whole and per feature (from behave's JUnit files).

`acceptance.run` always writes to reports/ and clears the last run's results first. So that a benchmark
does not replace the reports of the last real acceptance run, those are moved aside before and put back
after; the benchmark's own JUnit files are kept in reports/bench/acceptance-junit/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from acceptance.targets.local import REPO_ROOT

REPORTS = REPO_ROOT / "reports"
# Everything acceptance.run clears or writes (see acceptance.run.clear_previous_run).
RUN_OUTPUTS = ("allure-results", "allure-report", "junit", "hook-errors.jsonl", "signoff.md", "signoff.json",
               "behave.log")
SUITE_TIMEOUT_S = 600.0


def _move_outputs(source: Path, destination: Path) -> None:
    for name in RUN_OUTPUTS:
        if (source / name).exists():
            shutil.move(source / name, destination / name)


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


def measure_suite(target: str, keep_junit: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-reports-", dir=REPORTS) as saved:
        _move_outputs(REPORTS, Path(saved))
        try:
            started = time.perf_counter()
            run = subprocess.run(
                [sys.executable, "-m", "acceptance.run", "--target", target, "--no-html"],
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=SUITE_TIMEOUT_S,
                check=False,
            )
            wall_s = time.perf_counter() - started
            shutil.rmtree(keep_junit, ignore_errors=True)
            if (REPORTS / "junit").exists():
                shutil.copytree(REPORTS / "junit", keep_junit)
            verdict = next((line for line in run.stdout.decode(errors="replace").splitlines()
                            if line.startswith("SIGN-OFF:")), "SIGN-OFF: (none printed)")
        finally:
            for name in RUN_OUTPUTS:
                path = REPORTS / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            _move_outputs(Path(saved), REPORTS)
    features = feature_times(keep_junit)
    return {
        "target": target,
        "wall_s": wall_s,
        "exit_code": run.returncode,
        "verdict": verdict.removeprefix("SIGN-OFF:").strip(),
        "features": features,
        "features_total_s": sum(float(f["time_s"]) for f in features),
    }
