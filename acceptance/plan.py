"""Spreading a run over workers and CI shards: the units of work, a balanced plan, and each worker's filter.

A unit is a run item of a feature file: a Scenario, or a Scenario Outline with all its rows (they share
their set-up and their steps), named by its location, `features/02_discovery.feature:14`. A plan puts
units into n bins, longest first into the bin with the least work (LPT), by the durations measured in
earlier runs (`reports/history/durations.json`; a unit never measured counts as the median of the
others). The same units and history give the same plan on every machine, so n CI shards each run a
different bin and together run every unit once; a shard records the plan's digest and the merge
refuses shards planned differently.

The workers of one run share their units dynamically: each is given every unit (`-D units=FILE`, the
feature files in an order of its own) and a folder of claims (`-D claims=DIR`); a unit runs in the first
worker to reach it, which creates its claim file. So a worker whose stack started late, or whose units
ran slow, simply takes fewer, with or without measured history. environment.py's hooks call
`keep_units` (before_all) and a `Claims`' `prepare` (before_all), `wrap` (before_feature) and `settle`
(after_feature): a unit another worker ran is neither run nor reported here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from behave.configuration import Configuration
from behave.model import Feature, Rule, Scenario, ScenarioOutline
from behave.model_core import Status
from behave.runner import Runner
from behave.runner_util import collect_feature_locations, parse_features

from acceptance.hooks import REPO_ROOT
from acceptance.signoff import ScenarioRecord

DURATIONS_FILE = Path("history") / "durations.json"
UNITS_OPTION = "units"
CLAIMS_OPTION = "claims"
# What a unit costs when no run has measured any.
UNMEASURED_S = 1.0


class PlanError(ValueError):
    """The run cannot be planned: a bad --jobs/--shard value, or behave arguments naming no scenario."""


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as users write it
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`i/n`, 1 <= i <= n."""
        index, _, count = text.partition("/")
        try:
            shard = cls(int(index), int(count))
        except ValueError:
            raise PlanError(f"--shard {text!r}: expected i/n, e.g. 1/4") from None
        if not 1 <= shard.index <= shard.count:
            raise PlanError(f"--shard {text!r}: i must be between 1 and n")
        return shard

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class Unit:
    key: str  # "features/02_discovery.feature:14"
    selected: bool = True  # by the run's tags; a unit left out is still reported, as skipped, by one worker

    @property
    def feature_file(self) -> str:
        return self.key.rsplit(":", 1)[0]

    @property
    def line(self) -> int:
        return int(self.key.rsplit(":", 1)[1])


def unit_key(item: Scenario | ScenarioOutline) -> str:
    """The location of a run item relative to the folder behave runs in, as the parent and the workers see it."""
    filename = os.path.relpath(os.path.abspath(item.location.filename))
    return f"{filename}:{item.location.line}"


def unit_of(scenario: Scenario) -> str:
    """The unit a scenario that ran belongs to: its outline for an outline's row, else itself."""
    parent = scenario.parent
    return unit_key(parent if isinstance(parent, ScenarioOutline) else scenario)


def _run_items(container: Feature | Rule) -> Iterable[Scenario | ScenarioOutline]:
    for item in container.run_items:
        if isinstance(item, Rule):
            yield from _run_items(item)
        else:
            yield item


def collect_units(behave_args: Sequence[str], tags: Sequence[str] = (),
                  root: Path = REPO_ROOT) -> tuple[list[Unit], list[str]]:
    """The units behave would run with these arguments (tags included), in file order, and the arguments
    without their feature paths (each worker names its own files). A `file:line` path keeps only the unit
    at that line; a unit the tags leave out is kept, not selected."""
    with contextlib.chdir(root):  # behave reads behave.ini (`paths`) from the current folder
        try:
            config = Configuration([arg for expression in tags for arg in ("--tags", expression)] + list(behave_args))
        except SystemExit as exc:  # argparse already printed the usage error
            raise PlanError(f"behave arguments not understood: {' '.join(behave_args)}") from exc
        paths = [os.path.normpath(path) for path in config.paths]
        locations = collect_feature_locations(config.paths)
        lines: dict[str, set[int]] = {}
        for location in locations:
            if location.line:
                lines.setdefault(os.path.relpath(os.path.abspath(location.filename)), set()).add(location.line)
        units = [Unit(unit_key(item), item.should_run_with_tags(config.tag_expression))
                 for feature in parse_features(locations) if feature for item in _run_items(feature)]
    units = [unit for unit in units if unit.line in lines.get(unit.feature_file, {unit.line})]
    if not units:
        raise PlanError(f"no scenario found in {', '.join(paths) or 'the configured paths'}")
    options = [arg for arg in behave_args if os.path.normpath(arg) not in paths]
    return units, options


def balance(units: Sequence[Unit], durations: dict[str, float], bins: int) -> list[list[Unit]]:
    """`units` in `bins` bins of about equal measured work, each bin in file order. Deterministic."""
    known = [durations[unit.key] for unit in units if unit.key in durations]
    default = statistics.median(known) if known else UNMEASURED_S
    planned: list[list[Unit]] = [[] for _ in range(bins)]
    load = [0.0] * bins
    for unit in sorted(units, key=lambda unit: (-durations.get(unit.key, default), unit.key)):
        lightest = min(range(bins), key=lambda index: (load[index], index))
        planned[lightest].append(unit)
        load[lightest] += durations.get(unit.key, default)
    order = {unit.key: position for position, unit in enumerate(units)}
    return [sorted(chosen, key=lambda unit: order[unit.key]) for chosen in planned]


def shard_slices(units: Sequence[Unit], durations: dict[str, float], count: int) -> list[list[Unit]]:
    """`count` balanced slices of the selected units; the units the tags leave out go to the first slice,
    which reports them as skipped once (they cost nothing)."""
    slices = balance([unit for unit in units if unit.selected], durations, count)
    slices[0] = [unit for unit in units if not unit.selected or unit in slices[0]]
    return slices


def digest(bins: Sequence[Sequence[Unit]], context: Sequence[str] = ()) -> str:
    """Names a plan: equal for shards that split the same units the same way for the same run (`context`:
    target, manifest, tags and behave arguments)."""
    text = json.dumps([[unit.key for unit in chosen] for chosen in bins] + [list(context)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_units(path: Path, units: Iterable[Unit]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([unit.key for unit in units], indent=1) + "\n", encoding="utf-8")


def keep_units(features: Iterable[Feature], units_file: str) -> None:
    """In a worker: drop every run item not listed in `units_file`, so it neither runs nor is reported."""
    kept = set(json.loads(Path(units_file).read_text(encoding="utf-8")))
    for feature in features:
        _keep(feature, kept)


def _keep(container: Feature | Rule, kept: set[str]) -> None:
    items = []
    for item in container.run_items:
        if isinstance(item, Rule):
            _keep(item, kept)
            if item.run_items:
                items.append(item)
        elif unit_key(item) in kept:
            items.append(item)
    container.run_items = items
    container.scenarios = [item for item in container.scenarios if any(item is kept_item for kept_item in items)]


def worker_order(units: Sequence[Unit], durations: dict[str, float], worker: int) -> list[str]:
    """The feature files as worker `worker` (0-based) should take them: the longest first, each worker
    starting at another, so the workers begin on different files and meet on the long ones."""
    load: dict[str, float] = {}
    for unit in units:
        load[unit.feature_file] = load.get(unit.feature_file, 0.0) + durations.get(unit.key, UNMEASURED_S)
    files = sorted(load, key=lambda name: (-load[name], name))
    start = worker % len(files)
    return files[start:] + files[:start]


class Claims:
    """The units the workers of one run have taken, as files in a folder they share: the first worker to
    create a unit's file in `taken/` runs it; what a worker reported (its features' ends) is listed in
    `reported/<worker>`, so a worker that dies leaves a trace of what it took and never reported; a `stop`
    file (behave --stop, after a failure) makes every worker take nothing more."""

    def __init__(self, folder: str | Path, worker: str) -> None:
        self.folder = Path(folder)
        self.worker = worker
        self.mine: set[str] = set()
        for part in ("taken", "reported"):
            (self.folder / part).mkdir(parents=True, exist_ok=True)

    def take(self, key: str) -> bool:
        if (self.folder / "stop").exists():
            return False
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        try:
            descriptor = os.open(self.folder / "taken" / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w", encoding="utf-8") as claim:
            claim.write(json.dumps({"unit": key, "worker": self.worker}))
        self.mine.add(key)
        return True

    def prepare(self, features: Iterable[Feature], config: Configuration) -> None:
        """before_all, once the stack is up: a feature the tags leave out entirely runs no hook, so it is
        claimed whole, here: one worker reports its scenarios as skipped, the others drop them."""
        for feature in features:
            if not feature.should_run(config):
                key = f"feature {unit_key(feature)}"
                if self.take(key):
                    self._reported([key])
                else:
                    _keep(feature, set())

    def wrap(self, feature: Feature) -> None:
        """before_feature (after the formatters saw the feature, so this wrapper is the outermost): each unit
        runs only once this worker has claimed it."""
        for item in _run_items(feature):
            item.run = self._claiming(item, item.run)

    def settle(self, feature: Feature) -> None:
        """after_feature, before the reporters: keep what this worker ran, and the units behave skipped
        without running them (deselected by name) that no other worker reported yet."""
        for item in _run_items(feature):
            key = unit_key(item)
            if key not in self.mine and item.status == Status.skipped:
                self.take(key)
        _keep(feature, self.mine)
        self._reported([unit_key(item) for item in _run_items(feature)])

    def _reported(self, keys: list[str]) -> None:
        with (self.folder / "reported" / self.worker).open("a", encoding="utf-8") as reported:
            reported.writelines(key + "\n" for key in keys)

    def _claiming(self, item: Scenario | ScenarioOutline, run: Callable[[Runner], bool]) -> Callable[[Runner], bool]:
        key = unit_key(item)

        def run_when_claimed(runner: Runner) -> bool:
            if not self.take(key):
                return False
            failed = run(runner)
            if failed and runner.config.stop:
                (self.folder / "stop").touch()
            return failed

        return run_when_claimed


def unreported(folder: Path) -> dict[str, list[str]]:
    """Worker -> the units it took and never reported (it died, or was stopped, before its feature ended)."""
    reported = {line for path in (folder / "reported").glob("*")
                for line in path.read_text(encoding="utf-8").splitlines()}
    missing: dict[str, list[str]] = {}
    for path in sorted((folder / "taken").glob("*")):
        try:
            claim = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:  # the worker died between creating the file and writing it
            claim = {"unit": f"(unknown: {path.name})", "worker": "(unknown)"}
        if claim["unit"] not in reported:
            missing.setdefault(claim["worker"], []).append(claim["unit"])
    return missing


def read_durations(reports: Path) -> dict[str, float]:
    try:
        found = json.loads((reports / DURATIONS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {key: float(value) for key, value in found.items()} if isinstance(found, dict) else {}


def record_durations(reports: Path, records: Iterable[ScenarioRecord]) -> None:
    """Keep each unit's latest measured time (its scenarios' sum) for the next plan."""
    measured: dict[str, float] = {}
    for record in records:
        if record.unit and record.status != "skipped":
            measured[record.unit] = measured.get(record.unit, 0.0) + record.duration_s
    if not measured:
        return
    durations = read_durations(reports) | {key: round(value, 3) for key, value in measured.items()}
    path = reports / DURATIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(durations.items())), indent=1) + "\n", encoding="utf-8")
