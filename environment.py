"""behave hooks: start the stack once per run, skip what the target cannot do, report failures fully.

    behave features/                                  # the best target here (docker, else local)
    behave -D target=local features/
    behave -D target=external -D redis_url=redis://127.0.0.1:6379/0 features/

A hook or cleanup error is written to reports/hook-errors.jsonl, so the sign-off can never be GO
when one happened, whatever the formatters show.
"""

from __future__ import annotations

import json
import signal
from typing import Any

import allure
from behave.model import Scenario
from behave.runner import Context

from acceptance.driver import EcosystemDriver
from acceptance.hooks import REPORTS, recorded
from acceptance.otlp_receiver import OtlpReceiver
from acceptance.rpc import RpcClient
from acceptance.signoff import record_hook_error
from acceptance.targets import default_target_name, make_target
from ecosystem.discovery import RegistryError

NEEDS_PREFIX = "needs."
# What the suite can do to a stack it started itself: receive its traces, inject faults into it.
OWNED_STACK_CAPABILITIES = {"tracing", "chaos"}


def _terminate_on_sigterm() -> None:
    """behave dies on SIGTERM without cleanups; as KeyboardInterrupt, after_all still stops the stack."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


@recorded
def before_all(context: Context) -> None:
    _terminate_on_sigterm()
    userdata = context.config.userdata
    name = userdata.get("target")
    if name:
        reason = "chosen with -D target"
    else:
        name, reason = default_target_name()
    print(f"stack target: {name} ({reason})")
    context.otlp = None
    options: dict[str, Any] = {}
    # The suite starts, owns and may break every stack but an external one.
    owned = name != "external"
    if not owned:
        options["redis_url"] = userdata.get("redis_url", "redis://127.0.0.1:6379/0")
    context.stack = make_target(name, **options)
    if owned:
        # The target says where its services can reach the receiver (containers cannot reach loopback).
        context.otlp = OtlpReceiver(bind_host=context.stack.otlp_bind_host).start()
        context.stack.export_traces_to(context.otlp.endpoint)
    context.capabilities = set(context.stack.capabilities) | (OWNED_STACK_CAPABILITIES if owned else set())
    context.stack.start()
    context.ecosystem = EcosystemDriver(context.stack, RpcClient(), context.otlp)


@recorded
def before_scenario(context: Context, scenario: Scenario) -> None:
    missing = sorted(
        tag[len(NEEDS_PREFIX):]
        for tag in scenario.effective_tags
        if tag.startswith(NEEDS_PREFIX) and tag[len(NEEDS_PREFIX):] not in context.capabilities
    )
    if missing:
        scenario.skip(f"target {context.stack.name!r} cannot {', '.join(missing)}")
        return
    context.result = None
    context.results = []
    context.deadline_s = 5.0
    context.metadata = {}


@recorded
def after_scenario(context: Context, scenario: Scenario) -> None:
    if scenario.status.name in ("failed", "error", "hook_error"):
        for label, text in context.stack.logs(lines=200).items():
            allure.attach(text, name=f"log {label}", attachment_type=allure.attachment_type.TEXT)
        try:
            snapshot = json.dumps(context.ecosystem.registry_snapshot(), indent=2)
        except RegistryError as exc:
            snapshot = json.dumps({"error": str(exc)})
        allure.attach(snapshot, name="registry snapshot", attachment_type=allure.attachment_type.JSON)


def after_all(context: Context) -> None:
    errors = []
    for close in (
        lambda: context.ecosystem.close(),
        lambda: context.ecosystem.rpc.close(),
        lambda: context.stack.stop_all(),
        lambda: context.otlp and context.otlp.stop(),
    ):
        try:
            close()
        except AttributeError:
            pass  # before_all failed before creating it
        except Exception as exc:
            record_hook_error(REPORTS, "after_all", "run", exc)
            errors.append(exc)
    if errors:
        raise errors[0]
