"""Hook and cleanup errors are recorded for the sign-off before behave sees them.

Allure shows a before_scenario error as skipped and a cleanup error as passed; the sign-off reads
reports/hook-errors.jsonl instead, so neither can ever look green.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from behave.runner import Context

from acceptance.signoff import record_hook_error

REPORTS = Path(__file__).resolve().parent.parent / "reports"


def recorded(hook: Callable[..., None]) -> Callable[..., None]:
    """Decorate a behave hook so its errors are recorded."""

    @functools.wraps(hook)
    def run(context: Context, *args: Any) -> None:
        try:
            hook(context, *args)
        except Exception as exc:
            record_hook_error(REPORTS, hook.__name__, getattr(args[0], "name", "") if args else "run", exc)
            raise

    return run


def add_cleanup(context: Context, cleanup: Callable[..., None], *args: Any) -> None:
    """`context.add_cleanup`, with the cleanup's errors recorded against the running scenario."""
    where = context.scenario.name if getattr(context, "scenario", None) else "run"

    def run() -> None:
        try:
            cleanup(*args)
        except Exception as exc:
            record_hook_error(REPORTS, f"cleanup {getattr(cleanup, '__name__', repr(cleanup))}", where, exc)
            raise

    context.add_cleanup(run)
