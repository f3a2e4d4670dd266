"""`make selftest`: the suite proves its own sensitivity on defects seeded into the services.

    python -m acceptance.selftest [--jobs N] [--only ID ...] [--subset ci] [--stop-at-first]

Each file in selftest/defects/ is a realistic bug a developer could write, as a patch with a header:

    Defect: the breaker never lets a probe through once it opened
    Area: breaker
    Expect-first: Back up, the breaker lets a probe through and closes
    CI: yes

applied to a scratch copy of the repository (never a flag in the services' code). The suite runs on
the local target in each copy; a defect is caught when the verdict is NO-GO and the sign-off's first
failure names the expected scenario (`Expect-first: the stack start` for a release that cannot even
start healthy). A clean copy must give GO. The table goes to the console and to
reports/selftest/results.json, each run's sign-off and behave output to reports/selftest/<defect>/
(with the services' logs when the outcome was not the expected one); the exit status is 0 only when
every defect is caught as expected and the baseline is GO.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFECTS_DIR = REPO_ROOT / "selftest" / "defects"
RESULTS_DIR = REPO_ROOT / "reports" / "selftest"
BASELINE = "baseline"
STACK_START = "the stack start"
# A run that takes longer than this is stuck: the suite's own bounds keep a broken release well below it.
RUN_TIMEOUT_S = 600
_HEADER = re.compile(r"^(?P<name>[A-Za-z-]+):\s*(?P<value>.*)$")


@dataclass(frozen=True)
class Defect:
    id: str
    summary: str
    area: str
    expect_first: str
    in_ci: bool
    patch: Path | None

    @classmethod
    def load(cls, path: Path) -> Defect:
        """Read the header (lines before the diff); ValueError names the file and the missing field."""
        fields: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith(("diff ", "--- ")):
                break
            match = _HEADER.match(line)
            if match:
                fields[match["name"].lower()] = match["value"].strip()
        missing = [name for name in ("defect", "area", "expect-first") if not fields.get(name)]
        if missing:
            raise ValueError(f"{path}: header field(s) {', '.join(missing)} missing")
        return cls(path.stem, fields["defect"], fields["area"], fields["expect-first"],
                   fields.get("ci", "no").lower() == "yes", path)


@dataclass
class Outcome:
    defect: str
    area: str
    expected_first: str
    verdict: str
    first_failure: str
    failed_scenarios: int
    duration_s: float
    caught: bool
    problem: str = ""

    @property
    def status(self) -> str:
        if self.defect == BASELINE:
            return "GO as it must be" if self.caught else "NOT GO"
        if self.caught:
            return "caught"
        return "SURVIVED" if self.verdict == "GO" else "caught, other scenario first"


def load_defects(only: list[str] | None = None, subset: str = "") -> list[Defect]:
    defects = [Defect.load(path) for path in sorted(DEFECTS_DIR.glob("*.patch"))]
    if only:
        unknown = sorted(set(only) - {defect.id for defect in defects})
        if unknown:
            raise SystemExit(f"selftest: no defect {', '.join(unknown)} in {DEFECTS_DIR}")
        defects = [defect for defect in defects if defect.id in only]
    if subset == "ci":
        defects = [defect for defect in defects if defect.in_ci]
    return defects


def snapshot(into: Path) -> Path:
    """The repository's files as git sees them (tracked, and new ones not ignored), without .git and the venv:
    taken once, so every run tests the same code however the working tree changes meanwhile."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


def run_one(defect: Defect | None, source: Path, *, stop_at_first: bool) -> Outcome:
    name = defect.id if defect else BASELINE
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"selftest-{name}-") as scratch:
        root = Path(scratch) / "repo"
        shutil.copytree(source, root, symlinks=True)
        if defect is not None and defect.patch is not None:
            applied = subprocess.run(["git", "apply", str(defect.patch)], cwd=root, capture_output=True, text=True)
            if applied.returncode != 0:
                return Outcome(name, defect.area, defect.expect_first, "-", "", 0, 0.0, False,
                               f"the patch does not apply: {applied.stderr.strip()}")
        command = [sys.executable, "-m", "acceptance.run", "--target", "local", "--no-html", "--no-rerun"]
        if stop_at_first:
            command.append("--stop")
        try:
            subprocess.run(command, cwd=root, capture_output=True, timeout=RUN_TIMEOUT_S, check=False,
                           env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        except subprocess.TimeoutExpired:
            return Outcome(name, defect.area if defect else "-", defect.expect_first if defect else "",
                           "-", "", 0, time.monotonic() - started, False, f"no verdict within {RUN_TIMEOUT_S}s")
        keep = RESULTS_DIR / name
        shutil.rmtree(keep, ignore_errors=True)
        keep.mkdir(parents=True)
        for kept in ("signoff.json", "signoff.md", "behave.log", "scenarios.jsonl"):
            if (root / "reports" / kept).is_file():
                shutil.copy2(root / "reports" / kept, keep / kept)
        outcome = _judge(name, defect, keep / "signoff.json", time.monotonic() - started)
        if not outcome.caught and (root / "reports" / "logs").is_dir():
            # The services' logs explain an unexpected outcome; kept only then, they are large at debug level.
            shutil.copytree(root / "reports" / "logs", keep / "logs")
        return outcome


def _judge(name: str, defect: Defect | None, signoff_path: Path, duration_s: float) -> Outcome:
    try:
        signoff = json.loads(signoff_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return Outcome(name, defect.area if defect else "-", defect.expect_first if defect else "", "-", "", 0,
                       duration_s, False, f"no sign-off: {exc}")
    verdict, first = signoff["verdict"], signoff.get("first_failure", "")
    failed = signoff["totals"]["failed"] + signoff["totals"]["errors"]
    if defect is None:
        return Outcome(name, "-", "", verdict, first, failed, duration_s, verdict == "GO")
    caught = verdict == "NO-GO" and _names(first, defect.expect_first)
    return Outcome(name, defect.area, defect.expect_first, verdict, first, failed, duration_s, caught)


def _names(first_failure: str, scenario: str) -> bool:
    """Whether the first failure is about `scenario` (an outline's row names start with it): it failed, or
    the stack had to be rebuilt after it; or, for STACK_START, the run could not start."""
    if scenario == STACK_START:
        return first_failure.startswith("the run could not start")
    return f'scenario "{scenario}' in first_failure


def print_table(outcomes: list[Outcome]) -> None:
    width = max(len(outcome.defect) for outcome in outcomes)
    print(f"\n{'defect':<{width}}  {'area':<13} {'verdict':<6} {'failed':>6} {'time':>6}  result / first failure")
    for outcome in outcomes:
        first = outcome.problem or outcome.first_failure
        print(f"{outcome.defect:<{width}}  {outcome.area:<13} {outcome.verdict:<6} {outcome.failed_scenarios:>6} "
              f"{outcome.duration_s:>5.0f}s  {outcome.status}: {first[:160]}")
        if outcome.defect != BASELINE and not outcome.caught:
            print(f"{'':<{width}}  expected first: {outcome.expected_first}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acceptance.selftest", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (each is a whole stack; default 2)")
    parser.add_argument("--only", nargs="+", metavar="ID", help="these defects only (file names without .patch)")
    parser.add_argument("--subset", choices=("ci",), help="the defects marked `CI: yes`")
    parser.add_argument("--stop-at-first", action="store_true", help="end each run at its first failure (faster)")
    args = parser.parse_args(argv)
    defects = load_defects(args.only, args.subset or "")
    shutil.rmtree(RESULTS_DIR, ignore_errors=True)  # the results of this invocation only
    RESULTS_DIR.mkdir(parents=True)
    print(f"selftest: a baseline and {len(defects)} seeded defect(s), {args.jobs} at a time, on the local target")
    runs: list[Defect | None] = [None, *defects]
    with tempfile.TemporaryDirectory(prefix="selftest-source-") as source, \
            ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        snapshot(Path(source))
        outcomes = list(pool.map(lambda defect: run_one(defect, Path(source), stop_at_first=args.stop_at_first), runs))
    print_table(outcomes)
    baseline, seeded = outcomes[0], outcomes[1:]
    caught = sum(outcome.caught for outcome in seeded)
    print(f"\nkill rate: {caught} of {len(seeded)} defects caught with their expected scenario first"
          f" ({100 * caught / len(seeded) if seeded else 100:.0f}%); baseline {baseline.verdict}")
    (RESULTS_DIR / "results.json").write_text(
        json.dumps([asdict(outcome) | {"status": outcome.status} for outcome in outcomes], indent=2) + "\n",
        encoding="utf-8",
    )
    return 0 if baseline.caught and caught == len(seeded) else 1


if __name__ == "__main__":
    sys.exit(main())
