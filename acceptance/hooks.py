"""What environment.py's hooks share: where the run's reports go, hook errors recorded before behave
sees them, and step errors that name what went wrong.

Allure shows a before_scenario error as skipped and a cleanup error as passed; the sign-off reads
reports/hook-errors.jsonl instead, so neither can ever look green.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from behave.api.pending_step import StepNotImplementedError
from behave.model import Feature
from behave.runner import Context
from behave.step_registry import StepRegistry

from acceptance.signoff import record_hook_error

REPO_ROOT = Path(__file__).resolve().parent.parent
REPORTS = REPO_ROOT / "reports"
# `-D reports_dir=DIR`: where a run writes its records, JUnit and Allure results instead of reports/.
REPORTS_OPTION = "reports_dir"


def reports_dir(context: Context) -> Path:
    """reports/ unless the run names another folder (a parallel worker, a shard, the re-run of failures)."""
    return REPO_ROOT / context.config.userdata.get(REPORTS_OPTION, "reports")


def recorded(hook: Callable[..., None]) -> Callable[..., None]:
    """Decorate a behave hook so its errors are recorded."""

    @functools.wraps(hook)
    def run(context: Context, *args: Any) -> None:
        try:
            hook(context, *args)
        except Exception as exc:
            where = getattr(args[0], "name", "") if args else "run"
            record_hook_error(reports_dir(context), hook.__name__, where, exc)
            raise

    return run


def explain_step_errors(registry: StepRegistry) -> None:
    """Every step turns a Python error into a failure that says what went wrong and where.

    behave reports an exception other than AssertionError as a bare traceback and Allure files it as a
    test error; a release manager needs "what was missing" instead.
    """
    for matchers in registry.steps.values():
        for matcher in matchers:
            if not getattr(matcher.func, "explains_errors", False):
                matcher.func = _explaining(matcher.func)


def _explaining(step: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(step)
    def run(context: Context, *args: Any, **kwargs: Any) -> None:
        try:
            step(context, *args, **kwargs)
        except (AssertionError, StepNotImplementedError):
            raise
        except Exception as exc:
            raise AssertionError(explain(exc)) from exc

    run.explains_errors = True  # type: ignore[attr-defined]
    return run


def explain(exc: Exception) -> str:
    """One line: what went wrong, and the innermost line of the suite's own code it went wrong in."""
    if isinstance(exc, KeyError):
        what = f"{exc.args[0]!r} was missing from an answer or a table (KeyError)"
    elif isinstance(exc, IndexError):
        what = f"an expected item was missing: {exc} (IndexError)"
    else:
        what = f"{type(exc).__name__}: {exc}"
    own = [frame for frame in traceback.extract_tb(exc.__traceback__) if _is_suite_code(frame.filename)]
    where = f" (at {Path(own[-1].filename).relative_to(REPO_ROOT)}:{own[-1].lineno})" if own else ""
    return f"the step could not go on: {what}{where}"


def _is_suite_code(filename: str) -> bool:
    path = Path(filename)
    return path.is_relative_to(REPO_ROOT) and path.parts[len(REPO_ROOT.parts)] in ("acceptance", "steps")


def refuse_shared_names(features: Iterable[Feature]) -> None:
    """Raise when two scenarios of a feature (outline rows included) share a name: the sign-off, JUnit and Allure tell
    scenarios apart by name, and behave.ini names an outline's rows by the outline's name with its values in place."""
    for feature in features:
        seen: dict[str, str] = {}
        for scenario in feature.walk_scenarios():
            if scenario.name in seen:
                raise ValueError(f"{scenario.location} is named {scenario.name!r}, as {seen[scenario.name]} is: put "
                                 "the outline's <placeholders> in its name, or rename one")
            seen[scenario.name] = str(scenario.location)
