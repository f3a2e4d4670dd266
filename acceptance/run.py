"""`make accept`: run the behave suite, build the Allure report and write the release sign-off.

    python -m acceptance.run [--target local|docker|swarm|external] [--manifest TOML] [--tags EXPR]
                             [--jobs N] [--shard I/N] [--reports-dir DIR] [--no-html] [--no-rerun]
                             [feature paths and other behave args]

Exit status 0 means GO, 1 means NO-GO. Failed scenarios are re-run once, in a second behave run on a
freshly started stack, and marked reproduced or not; the verdict stays NO-GO either way.

`--jobs N` runs N behave processes, each on a stack of its own, which share the scenarios as they go
(acceptance/plan.py); their reports (reports/workers/wK/) are merged into one JUnit set, one Allure
report and one sign-off. `--shard I/N` runs the I-th of N slices balanced by the scenario times of
earlier runs, for N CI machines; `python -m acceptance.merge` makes their reports one verdict.

behave runs as a child in its own process group; SIGINT and SIGTERM reach it once, from here, so its
cleanups and after_all run (a terminal's Ctrl-C would otherwise reach it twice). A third signal kills it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from acceptance import allure_report
from acceptance.hooks import REPORTS_OPTION
from acceptance.images import ensure_images
from acceptance.manifest import DEFAULT_MANIFEST, Manifest, ManifestError, load_manifest
from acceptance.plan import (
    CLAIMS_OPTION,
    UNITS_OPTION,
    PlanError,
    Shard,
    Unit,
    collect_units,
    digest,
    read_durations,
    record_durations,
    shard_slices,
    unreported,
    worker_order,
    write_units,
)
from acceptance.redis_acl import redact
from acceptance.report_folders import ALLURE_RESULTS, BEHAVE_LOG, JUNIT, merge_folders
from acceptance.signoff import (
    HOOK_ERRORS_FILE,
    NAMES_SHOWN,
    NOT_REPRODUCED,
    REPRODUCED,
    SCENARIOS_FILE,
    STACK_FILE,
    ScenarioRecord,
    Verdict,
    apply_skip_reasons,
    decide,
    explain_junit_skips,
    read_hook_errors,
    read_junit,
    read_scenario_records,
    read_stack,
    scan_behave_output,
    unexplained_output_errors,
    write_signoff,
)
from acceptance.targets import default_target_name

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("local", "docker", "swarm", "external")
# Display name -> distribution name.
VERSIONED_PACKAGES = {
    "behave": "behave",
    "allure-behave": "allure-behave",
    "grpcio": "grpcio",
    "protobuf": "protobuf",
    "redis-py": "redis",
}
_SIGNALS_BEFORE_KILL = 3
RERUN_DIR = "rerun"
WORKERS_DIR = "workers"
CLAIMS_DIR = "claims"
# A shard's place in the plan, which the merge checks.
SHARD_FILE = "shard.json"
# A release that fails more scenarios than this is re-run in part: the first failures say enough.
MAX_RERUN = 10
# After behave exits, how long processes it left behind may keep its output open before we stop reading.
_OUTPUT_DRAIN_S = 10.0


@dataclass(frozen=True)
class BehaveJob:
    """One behave process: a whole run, a parallel worker or the re-run of failures."""

    name: str
    command: list[str]
    log: Path
    echo: bool = True  # copy its output to the console (one process at a time only)


@dataclass(frozen=True)
class BehaveRun:
    exit_code: int  # the first non-zero exit status of its processes, else 0
    interrupted_by: str | None
    log: Path
    workers: int = 1


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m acceptance.run",
        description="Run the acceptance suite and write reports/signoff.md (exit 0 = GO, 1 = NO-GO).",
        epilog="Other arguments go to behave unchanged (e.g. features/discovery.feature, --stop, -n NAME).",
        allow_abbrev=False,
    )
    parser.add_argument("--target", choices=TARGETS, help="stack to test (default: environment.py decides)")
    parser.add_argument(
        "--manifest", type=Path, help=f"the stack manifest (default: {DEFAULT_MANIFEST.relative_to(REPO_ROOT)})"
    )
    parser.add_argument("--tags", action="append", default=[], metavar="EXPR", help="behave tag expression")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="behave processes, each on a stack of its own (default 1)")
    parser.add_argument("--shard", metavar="I/N", help="run only the I-th of N balanced slices of the scenarios")
    parser.add_argument("--reports-dir", type=Path, metavar="DIR", help="where the reports go (default reports/)")
    parser.add_argument("--no-html", action="store_true", help="skip the Allure HTML report")
    parser.add_argument(
        "--no-rerun", action="store_true", help="do not re-run failed scenarios on a rebuilt stack"
    )
    parser.add_argument(
        "--keep-as", metavar="NAME", help="also copy this run's sign-off and reports to reports/NAME/"
    )
    return parser.parse_known_args(argv)


def behave_command(target: str | None, manifest: Path | None, tags: list[str], extra: list[str]) -> list[str]:
    # No feature path: behave.ini's `paths = features` applies unless `extra` names feature files itself.
    command = [sys.executable, "-m", "behave", *_stack_args(target, manifest)]
    for expression in tags:
        command += ["--tags", expression]
    return command + extra


def folder_args(folder: Path) -> list[str]:
    """behave arguments that put a run's records, JUnit and Allure results into `folder`."""
    return ["-D", f"{REPORTS_OPTION}={folder}", "--junit-directory", str(folder / JUNIT)]


def clear_previous_run(reports: Path) -> None:
    """Remove the last run's outputs; keep reports/history (the Allure trend, the scenario times)."""
    for folder in (ALLURE_RESULTS, "allure-report", JUNIT, RERUN_DIR, WORKERS_DIR):
        shutil.rmtree(reports / folder, ignore_errors=True)
    for name in (HOOK_ERRORS_FILE, SCENARIOS_FILE, STACK_FILE, SHARD_FILE, "signoff.md", "signoff.json", BEHAVE_LOG):
        (reports / name).unlink(missing_ok=True)
    (reports / ALLURE_RESULTS).mkdir(parents=True)


def run_behave(jobs: list[BehaveJob], *, cwd: Path) -> BehaveRun:
    """Run behave processes side by side, each writing its output to its log (and the console when it
    echoes); forward SIGINT/SIGTERM to all of them."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    received: list[int] = []
    processes: list[subprocess.Popen[bytes]] = []
    readers: list[tuple[_OutputCopy, IO[bytes]]] = []
    started = time.monotonic()

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        running = [process for process in processes if process.poll() is None]
        name = signal.Signals(signum).name
        if len(received) >= _SIGNALS_BEFORE_KILL:
            print(f"\nrun: {name} again: killing behave (pids {_pids(running)}) and its process groups", flush=True)
            for process in running:
                os.killpg(process.pid, signal.SIGKILL)
            return
        if running:
            print(
                f"\nrun: {name}: passed to behave (pids {_pids(running)}), waiting for its cleanups "
                f"({_SIGNALS_BEFORE_KILL - len(received)} more to kill it)",
                flush=True,
            )
        for process in running:
            process.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        for job in jobs:
            if received:  # interrupted while starting: the workers not yet started never start
                break
            job.log.parent.mkdir(parents=True, exist_ok=True)
            log = job.log.open("wb")
            process = subprocess.Popen(
                job.command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, process_group=0,
            )
            processes.append(process)
            reader = _OutputCopy(process.stdout, log, echo=job.echo, name=f"{job.name}-output")
            reader.start()
            readers.append((reader, log))
        exit_codes = []
        for (reader, _log), job, process in zip(readers, jobs, processes, strict=False):
            exit_codes.append(process.wait())
            reader.join(timeout=_OUTPUT_DRAIN_S)  # its end of output is when the worker finished
            if not job.echo:
                after = f"after {reader.ended - started:.1f} s" if reader.ended else "(its output is still open)"
                print(f"run: {job.name} finished: exit {exit_codes[-1]} {after}", flush=True)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for process in processes:  # only when this process itself is failing: its children must not outlive it
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    for (reader, log), job in zip(readers, jobs, strict=False):
        reader.join(timeout=_OUTPUT_DRAIN_S)
        if reader.is_alive():
            print(
                f"run: {job.name} exited but processes it started still hold its output open after "
                f"{_OUTPUT_DRAIN_S:.0f} s: they were not stopped by the suite's cleanups",
                file=sys.stderr,
            )
        log.close()
    interrupted_by = signal.Signals(received[0]).name if received else None
    exit_code = next((code for code in exit_codes if code != 0), 0)
    return BehaveRun(exit_code=exit_code, interrupted_by=interrupted_by, log=jobs[0].log, workers=len(processes))


def _pids(processes: list[subprocess.Popen[bytes]]) -> str:
    return ", ".join(str(process.pid) for process in processes)


class _OutputCopy(threading.Thread):
    """Copies a behave process's output to its log (and the console when it echoes); notes when it ended."""

    def __init__(self, source: IO[bytes], log: IO[bytes], *, echo: bool, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.source, self.log, self.echo = source, log, echo
        self.ended: float | None = None

    def run(self) -> None:
        for line in self.source:
            self.log.write(line)
            self.log.flush()
            if self.echo:
                sys.stdout.write(line.decode("utf-8", errors="replace"))
                sys.stdout.flush()
        self.ended = time.monotonic()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name, distribution in VERSIONED_PACKAGES.items():
        try:
            versions[name] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_revision(cwd: Path) -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def main(argv: list[str] | None = None, *, root: Path = REPO_ROOT) -> int:
    args, extra = parse_args(argv)
    reports = (args.reports_dir or root / "reports").resolve()
    try:
        manifest = load_manifest(args.manifest)
        manifest_path = manifest.path.resolve() if args.manifest else None
        plan = None if args.jobs == 1 and not args.shard else plan_run(args, extra, manifest, reports, root)
    except (ManifestError, PlanError) as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 2
    clear_previous_run(reports)

    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    incomplete: list[str] = []
    if plan is None:
        own_folder = [] if reports == root / "reports" else folder_args(reports)
        command = behave_command(args.target, manifest_path, args.tags, extra + own_folder)
        print("run:", redact(" ".join(command)), flush=True)
        run = run_behave([BehaveJob("behave", command, reports / BEHAVE_LOG)], cwd=root)
        shown_command = command
    else:
        jobs = start_plan(plan, args, manifest_path, reports)
        run = run_behave(jobs, cwd=root)
        merge_folders([job.log.parent for job in jobs], reports)
        run = dataclasses.replace(run, log=reports / BEHAVE_LOG)
        shown_command = jobs[0].command
        if run.interrupted_by is None:
            incomplete = [f"worker {worker} stopped before reporting {len(units)} scenario(s) it took: "
                          + ", ".join(units[:NAMES_SHOWN]) + (" ..." if len(units) > NAMES_SHOWN else "")
                          for worker, units in unreported(reports / WORKERS_DIR / CLAIMS_DIR).items()]

    run_info = {
        "name": f"{manifest.name} acceptance",
        "target": (plan.target if plan else args.target) or "default (environment.py decides)",
        "manifest": _manifest_summary(manifest, root),
        **{f"stack {key}": value for key, value in read_stack(reports).items()},
        "workers": run.workers,
        **({"shard": str(plan.shard)} if plan and plan.shard else {}),
        "tags": args.tags,
        "behave_args": [redact(arg) for arg in extra],
        "command": redact(" ".join(shown_command)) + (f" (one of {run.workers} workers)" if run.workers > 1 else ""),
        "versions": package_versions(),
        "git_revision": git_revision(root),
        "started_at": started.isoformat(timespec="seconds"),
    }
    rerun_args = None if args.no_rerun else _stack_args(args.target, manifest_path) + _userdata_args(extra)
    # A shard keeps the history it planned with: every shard of a pipeline must plan with the same one.
    verdict = conclude(reports, run, run_info, clock=clock, rerun_args=rerun_args, html=not args.no_html, root=root,
                       incomplete=incomplete, history=not (plan and plan.shard))
    if args.keep_as:
        keep(reports, reports / args.keep_as)
    return 0 if verdict.go else 1


@dataclass(frozen=True)
class RunPlan:
    """What the workers of a parallel or sharded run get: the units (this shard's), the target they all use."""

    target: str | None
    units: list[Unit]
    options: list[str]  # the behave arguments without feature paths
    durations: dict[str, float]
    shard: Shard | None
    shard_record: dict


def plan_run(args: argparse.Namespace, extra: list[str], manifest: Manifest, reports: Path, root: Path) -> RunPlan:
    """Plan before anything is cleared: a usage error leaves the last run's reports as they were."""
    if args.jobs < 1:
        raise PlanError(f"--jobs {args.jobs}: at least 1")
    shard = Shard.parse(args.shard) if args.shard else None
    target = args.target
    if args.jobs > 1 and target is None:  # every worker must start the same kind of stack
        target = default_target_name()[0] if manifest.is_reference else "local"
    if args.jobs > 1 and target == "external":
        raise PlanError("--jobs with --target external: the workers would share one stack and break each "
                        "other's scenarios; each worker needs a stack of its own (local, docker or swarm)")
    units, options = collect_units(extra, args.tags, root)
    durations = read_durations(reports)
    record: dict = {}
    if shard:
        context = [str(target), str(manifest.path.name), *args.tags, *options]
        slices = shard_slices(units, durations, shard.count)
        units = slices[shard.index - 1]
        if not units:
            raise PlanError(f"shard {shard} has no scenario: the {sum(map(len, slices))} scenarios and outlines "
                            f"selected make fewer than {shard.count} shards")
        record = {"shard": shard.index, "of": shard.count, "plan": digest(slices, context),
                  "units": [unit.key for unit in units]}
    return RunPlan(target, units, options, durations, shard, record)


def start_plan(plan: RunPlan, args: argparse.Namespace, manifest: Path | None, reports: Path) -> list[BehaveJob]:
    """The behave processes of a parallel or sharded run, each with its reports folder; the workers of a
    parallel run share the units through claims (acceptance/plan.py)."""
    if plan.shard:
        (reports / SHARD_FILE).write_text(json.dumps(plan.shard_record, indent=1) + "\n", encoding="utf-8")
        print(f"run: shard {plan.shard}: {len(plan.units)} scenarios and outlines (plan {plan.shard_record['plan']})",
              flush=True)
    shared = reports / WORKERS_DIR
    write_units(shared / "units.json", plan.units)
    count = min(args.jobs, len(plan.units))
    if count > 1 and plan.target in ("docker", "swarm"):
        ensure_images(log=lambda line: print(f"run: {line}", flush=True))  # once, not in every worker at once
    sharing = ["-D", f"{CLAIMS_OPTION}={shared / CLAIMS_DIR}"] if count > 1 else []
    jobs = []
    for index in range(count):
        folder = shared / f"w{index + 1}"
        command = behave_command(plan.target, manifest, args.tags, [
            *plan.options, *folder_args(folder), "-D", f"{UNITS_OPTION}={shared / 'units.json'}", *sharing,
            *worker_order(plan.units, plan.durations, index)])
        jobs.append(BehaveJob(f"w{index + 1}", command, folder / BEHAVE_LOG, echo=count == 1))
    if count == 1:
        print("run:", redact(" ".join(jobs[0].command)), flush=True)
    else:
        print(f"run: {count} workers share {len(plan.units)} scenarios and outlines, each on a stack of its own; "
              f"their output: {_shown(shared)}/w<N>/behave.log", flush=True)
    return jobs


def conclude(reports: Path, run: BehaveRun, run_info: dict, *, clock: float, rerun_args: list[str] | None,
             html: bool, root: Path, reproduction: dict[str, str] | None = None, incomplete: Sequence[str] = (),
             history: bool = True) -> Verdict:
    """From what the run left in `reports`: the verdict, the sign-off, the marked Allure results and the HTML
    report. `rerun_args` (None: no re-run) are the behave arguments a re-run of the failures needs."""
    results = reports / ALLURE_RESULTS
    features = read_junit(reports / JUNIT)
    records = read_scenario_records(reports)
    apply_skip_reasons(features, records)
    explain_junit_skips(reports / JUNIT, features)
    recorded = read_hook_errors(reports)
    printed = scan_behave_output(run.log.read_text(encoding="utf-8", errors="replace"))
    hook_errors = recorded + unexplained_output_errors(printed, recorded, features)
    if history:
        record_durations(reports, records)

    reproduction = dict(reproduction or {})
    notes: list[str] = []
    failed = [record for record in records if record.failed]
    if failed and rerun_args is not None and run.interrupted_by is None:
        reproduction, note = rerun_failures(failed, rerun_args, reports=reports, root=root)
        notes.append(note)
    run_info["duration_s"] = round(time.monotonic() - clock, 1)
    verdict = decide(
        features,
        behave_exit_code=run.exit_code,
        hook_errors=hook_errors,
        records=records,
        reproduction=reproduction,
        interrupted_by=run.interrupted_by,
        incomplete=incomplete,
    )
    verdict.notes += notes
    if not html:
        verdict.notes.append("HTML report not generated (--no-html)")
    md_path, json_path = write_signoff(verdict, run_info, reports)

    allure_report.mark_failed_scenarios(results, features)
    allure_report.mark_not_applicable(results, features)
    allure_report.mark_reproduction(results, verdict.failures)
    allure_report.write_hook_error_results(results, hook_errors)
    allure_report.write_verdict(results, verdict.label, verdict.reasons, md_path)
    allure_report.write_environment(results, _environment_properties(run_info))
    allure_report.write_executor(results, allure_report.executor(
        os.environ, build_name=f"{run_info.get('stack target', run_info['target'])} {run_info['started_at']}",
        report=reports / "allure-report" / "index.html",
    ))
    if html and not _generate_html(verdict, run_info["name"], results, reports, root):
        write_signoff(verdict, run_info, reports)  # with the note that the report is missing
    print_verdict(verdict, run_info, reports, md_path, json_path)
    return verdict


def _stack_args(target: str | None, manifest: Path | None) -> list[str]:
    return (["-D", f"target={target}"] if target else []) + (["-D", f"manifest={manifest}"] if manifest else [])


def _manifest_summary(manifest: Manifest, root: Path) -> str:
    path = manifest.path.resolve()
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    return f"{shown}: {', '.join(manifest.service_names)}"


def rerun_failures(failed: list[ScenarioRecord], behave_args: list[str], *, reports: Path,
                   root: Path) -> tuple[dict[str, str], str]:
    """Run the failed scenarios once more, in a behave run of their own on a freshly started stack.

    Returns location -> REPRODUCED / NOT_REPRODUCED, and a note for the sign-off. The re-run writes its
    reports, Allure results included, to reports/rerun/, so the report shows the run that decided the verdict.
    """
    rerun_dir = reports / RERUN_DIR
    chosen = failed[:MAX_RERUN]
    command = [sys.executable, "-m", "behave", *folder_args(rerun_dir), *behave_args]
    # By file and exact name: rows of @manifest.examples outlines are made at run time and have no line.
    command += sorted({record.location.rsplit(":", 1)[0] for record in chosen})
    for record in chosen:
        command += ["--name", f"^{re.escape(record.scenario)}$"]
    print(f"\nrun: re-running {len(chosen)} failed scenario(s) on a rebuilt stack:", redact(" ".join(command)),
          flush=True)
    run = run_behave([BehaveJob("re-run", command, rerun_dir / BEHAVE_LOG)], cwd=root)
    outcomes = {(record.feature, record.scenario): record for record in read_scenario_records(rerun_dir)}
    reproduction = {
        record.location: REPRODUCED if outcomes[(record.feature, record.scenario)].failed else NOT_REPRODUCED
        for record in chosen
        if (record.feature, record.scenario) in outcomes
    }
    note = (
        f"failed scenarios re-run once on a rebuilt stack: {sum(v == REPRODUCED for v in reproduction.values())} "
        f"reproduced, {sum(v == NOT_REPRODUCED for v in reproduction.values())} did not"
    )
    if len(failed) > len(chosen):
        note += f"; {len(failed) - len(chosen)} more failure(s) were not re-run (at most {MAX_RERUN} are)"
    if run.exit_code != 0 and not outcomes:
        note += f"; the re-run itself failed (exit {run.exit_code}): see {_shown(rerun_dir / BEHAVE_LOG)}"
    return reproduction, note


def _userdata_args(extra: list[str]) -> list[str]:
    """The `-D name=value` arguments among behave's extra arguments (e.g. the external target's redis_url)."""
    found = []
    for index, arg in enumerate(extra):
        if arg == "-D" and index + 1 < len(extra):
            found += ["-D", extra[index + 1]]
        elif arg.startswith("-D") and len(arg) > 2:
            found.append(arg)
    return found


def keep(reports: Path, into: Path) -> None:
    """Copy the run's outputs aside, so the next run (another target) does not replace them."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    for name in ("signoff.md", "signoff.json", "behave.log", "junit", "allure-report"):
        source = reports / name
        if source.is_dir():
            shutil.copytree(source, into / name)
        elif source.is_file():
            shutil.copy2(source, into / name)
    print(f"kept:     {_shown(into)}", flush=True)


def _environment_properties(run_info: dict) -> dict[str, object]:
    properties: dict[str, object] = {
        "target": run_info["target"],
        "security": "unknown",
        # What environment.py recorded of the stack: target, security, reflection, the engine and Compose it ran on.
        **{key.removeprefix("stack "): value for key, value in run_info.items() if key.startswith("stack ")},
        "tags": run_info["tags"] or "(all)",
        "workers": run_info.get("workers", 1),
        **({"shard": run_info["shard"]} if "shard" in run_info else {}),
        **({"shards": len(run_info["shards"])} if "shards" in run_info else {}),
        "git.revision": run_info["git_revision"],
        "started_at": run_info["started_at"],
    }
    properties.update({f"version.{name}": version for name, version in run_info["versions"].items()})
    return properties


def _generate_html(verdict: Verdict, name: str, results: Path, reports: Path, root: Path) -> bool:
    """The HTML report, titled with the verdict; False (and a note) when it could not be made."""
    try:
        allure_report.ensure_node_packages(root)
        config = allure_report.write_report_config(
            root / "allurerc.json", reports, verdict.label, verdict.headline, name
        )
        allure_report.generate_html(results, reports / "allure-report", config=config, repo_root=root)
    except allure_report.ReportError as exc:
        banner = "!" * 78
        print(f"\n{banner}\nALLURE HTML REPORT MISSING: {exc}\n{banner}\n", file=sys.stderr, flush=True)
        verdict.notes.append(f"Allure HTML report missing: {exc}")
        return False
    return True


def _shown(path: Path) -> str:
    """`path` relative to the current folder when it lies below it, as a user would type it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_verdict(verdict: Verdict, run_info: dict, reports: Path, md_path: Path, json_path: Path) -> None:
    totals = verdict.totals()
    rule = "=" * 78
    lines = [
        rule,
        f"SIGN-OFF: {verdict.label}",
        *([f"first failure: {verdict.first_failure}"] if verdict.first_failure else []),
        # The plain "N passed, N failed" line CI tools read as a test summary.
        f"acceptance: {totals['passed']} passed, {totals['failed'] + totals['errors']} failed",
        f"scenarios: {totals['selected']} selected, {totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['errors']} errors, {totals['untested']} not run, {totals['not_applicable']} not applicable, "
        f"{totals['skipped']} skipped by selection",
        f"behave exit status: {verdict.behave_exit_code}",
        "stack: " + ", ".join(f"{key} {value}" for key, value in read_stack(reports).items())
        + (f"; {run_info['workers']} workers" if run_info.get("workers", 1) > 1 else "")
        + (f"; shard {run_info['shard']}" if "shard" in run_info else "")
        + (f"; {len(run_info['shards'])} shards merged" if "shards" in run_info else ""),
    ]
    lines += [f"  not applicable ({len(names)}): {reason}" for reason, names in verdict.not_applicable().items()]
    lines += [f"  - {reason}" for reason in verdict.reasons if reason != verdict.first_failure]
    lines += [f"  note: {note}" for note in verdict.notes]
    index = reports / "allure-report" / "index.html"
    lines += [
        f"sign-off: {_shown(md_path)}  {_shown(json_path)}",
        f"report:   {_shown(index) if index.is_file() else '(missing)'}",
        f"junit:    {_shown(reports / JUNIT)}",
        rule,
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
