"""`make merge SHARDS="DIR ..."`: the reports of N shard runs (`make accept SHARD=i/N`, one per CI machine)
made into one JUnit set, one Allure report and one sign-off.

    python -m acceptance.merge [--into reports] [--no-html] shard-1/ shard-2/ ...

Each DIR is the reports folder of one shard (it holds shard.json). The verdict is NO-GO when a shard of
the plan is missing or given twice, when the shards planned differently (other scenario times, other
features) or tested different revisions, when one did not finish, and for every failure any shard had.
Exit status 0 means GO, 1 NO-GO, 2 a usage error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from acceptance.report_folders import BEHAVE_LOG, merge_folders
from acceptance.run import REPO_ROOT, SHARD_FILE, BehaveRun, clear_previous_run, conclude


@dataclass(frozen=True)
class ShardReports:
    folder: Path
    index: int
    count: int
    plan: str
    units: int
    signoff: dict  # its signoff.json; {} when the shard never finished


def read_shard(folder: Path) -> ShardReports | str:
    """The shard whose reports are in `folder`, or why they are not a shard's reports."""
    try:
        placed = json.loads((folder / SHARD_FILE).read_text(encoding="utf-8"))
        shard = ShardReports(folder, int(placed["shard"]), int(placed["of"]), str(placed["plan"]),
                             len(placed["units"]), {})
    except FileNotFoundError:
        return f"{folder} holds no {SHARD_FILE}: it is not the reports folder of a `make accept SHARD=i/n` run"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{folder / SHARD_FILE} is unreadable: {exc}"
    try:
        return ShardReports(**{**shard.__dict__, "signoff": json.loads((folder / "signoff.json").read_text())})
    except (OSError, ValueError):
        return shard


def check_shards(shards: list[ShardReports]) -> list[str]:
    """What makes the set of shards incomplete or inconsistent, one reason each."""
    problems = []
    plans = {(shard.count, shard.plan) for shard in shards}
    if len(plans) > 1:
        problems.append("the shards were planned differently (" + ", ".join(
            f"shard {shard.index}/{shard.count} plan {shard.plan}" for shard in shards)
            + "): give every shard the same features, arguments, tags and history/durations.json in its reports "
            "folder")
    count = max(shard.count for shard in shards)
    given = [shard.index for shard in shards]
    for index in range(1, count + 1):
        if given.count(index) == 0:
            problems.append(f"shard {index}/{count} is missing: its scenarios were not run or its reports did not "
                            "arrive")
        elif given.count(index) > 1:
            problems.append(f"shard {index}/{count} was given {given.count(index)} times")
    problems += [f"shard {shard.index}/{shard.count} ({shard.folder}) did not finish: it wrote no sign-off"
                 for shard in shards if not shard.signoff]
    revisions = {shard.signoff["run"].get("git_revision") for shard in shards if shard.signoff}
    if len(revisions) > 1:
        problems.append(f"the shards tested different revisions: {', '.join(sorted(map(str, revisions)))}")
    return problems


def main(argv: list[str] | None = None, *, root: Path = REPO_ROOT) -> int:
    parser = argparse.ArgumentParser(prog="python -m acceptance.merge", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="a shard's reports folder")
    parser.add_argument("--into", type=Path, default=root / "reports", help="where the merged reports go")
    parser.add_argument("--no-html", action="store_true", help="skip the Allure HTML report")
    args = parser.parse_args(argv)
    into = args.into.resolve()
    if any(folder.resolve() == into for folder in args.folders):
        print(f"merge: --into {into} is one of the shard folders: merge into another folder", file=sys.stderr)
        return 2
    clock = time.monotonic()
    read = [read_shard(folder) for folder in args.folders]
    unusable = [problem for problem in read if isinstance(problem, str)]
    shards = sorted((shard for shard in read if isinstance(shard, ShardReports)), key=lambda shard: shard.index)
    if not shards:
        print("merge: no shard reports among the folders:\n  " + "\n  ".join(unusable), file=sys.stderr)
        return 2
    clear_previous_run(into)
    merge_folders([shard.folder for shard in shards], into)

    finished = [shard.signoff for shard in shards if shard.signoff]
    first = finished[0]["run"] if finished else {}
    run_info = {
        "name": first.get("name", "acceptance"),
        "target": first.get("target", "unknown"),
        "manifest": first.get("manifest", "unknown"),
        **{key: value for key, value in first.items() if key.startswith("stack ")},
        "shards": [{"shard": f"{shard.index}/{shard.count}", "folder": str(shard.folder), "planned": shard.units,
                    "verdict": shard.signoff.get("verdict", "did not finish"),
                    "duration_s": shard.signoff.get("run", {}).get("duration_s")} for shard in shards],
        "workers": sum(signoff["run"].get("workers", 1) for signoff in finished),
        "tags": first.get("tags", []),
        "versions": first.get("versions", {}),
        "git_revision": first.get("git_revision", "unknown"),
        "started_at": first.get("started_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
    }
    exit_code = next((signoff["behave_exit_code"] for signoff in finished if signoff["behave_exit_code"]), 0)
    reproduction = {failure["location"]: failure["reproduction"] for signoff in finished
                    for failure in signoff.get("failures", []) if failure.get("reproduction")}
    verdict = conclude(into, BehaveRun(exit_code, None, into / BEHAVE_LOG, run_info["workers"]), run_info,
                       clock=clock, rerun_args=None, html=not args.no_html, root=root, reproduction=reproduction,
                       incomplete=unusable + check_shards(shards))
    return 0 if verdict.go else 1


if __name__ == "__main__":
    sys.exit(main())
