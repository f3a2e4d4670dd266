"""Tiny behave projects for the tests of the run wrapper: the repository's behave.ini, steps that pass, fail,
fail in a cleanup, wait for a signal or kill their process, and the environment.py a test gives."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

STEPS = """
import os
import time
from pathlib import Path

from behave import given


@given("a step that passes")
def passes(context):
    pass


@given("a step that fails")
def fails(context):
    assert 1 == 2, "expected one to be two"


@given("a step whose cleanup fails")
def cleanup_fails(context):
    def failing_cleanup():
        raise RuntimeError("scenario cleanup exploded")
    context.add_cleanup(failing_cleanup)


@given("a step that kills its worker")
def dies(context):
    os._exit(3)


@given("a step that waits for a signal")
def waits(context):
    wait_for_signal(context, "")


@given("a step that waits for a signal in {name}")
def waits_in(context, name):
    wait_for_signal(context, f"-{name}")


def wait_for_signal(context, suffix):
    context.add_cleanup(lambda: Path(f"cleaned{suffix}").write_text(str(os.getpid())))
    Path(f"started{suffix}").write_text(str(os.getpid()))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # bounded: the test interrupts it long before
        time.sleep(0.05)
"""


def make_project(root: Path, features: dict[str, str], environment: str) -> Path:
    (root / "features").mkdir(parents=True)
    (root / "steps").mkdir()
    shutil.copy(REPO_ROOT / "behave.ini", root / "behave.ini")
    (root / "steps" / "steps.py").write_text(STEPS)
    (root / "environment.py").write_text(environment)
    for name, text in features.items():
        (root / "features" / f"{name}.feature").write_text(text)
    return root
