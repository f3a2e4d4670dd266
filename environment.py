"""behave hooks: start the stack once per run, keep it healthy between scenarios, report failures fully.

    behave features/                                  # the best target here (docker, else local)
    behave -D target=local features/
    behave -D target=external -D redis_url=redis://127.0.0.1:6379/0 features/
    behave -D manifest=examples/manifest.toml -D target=external -D redis_url=... examples/features/

The stack manifest (-D manifest=..., default manifests/reference.toml) says which services to expect;
outlines tagged @manifest.examples run once per declared service, and scenarios needing a capability
the target lacks or a contract the manifest does not declare are skipped with the reason.

Every scenario starts on a healthy stack: after it, the suite undoes what its steps broke and
rebuilds the stack if that is not enough (acceptance/suite.py). Each scenario's outcome, its failing
step and what was done after it go to reports/scenarios.jsonl, in the order they ran, so the
sign-off can open with the first failure; hook errors go to reports/hook-errors.jsonl, so the
sign-off is never GO when one happened, whatever the formatters show.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from behave.model import Feature, Scenario, Step
from behave.model_core import Status
from behave.runner import Context

import acceptance.behave_fixes  # noqa: F401  (a correction to behave, applied on import)
from acceptance import evidence
from acceptance.applicability import fill_manifest_examples, not_applicable
from acceptance.hooks import REPORTS_OPTION, explain_step_errors, recorded, refuse_shared_names, reports_dir
from acceptance.manifest import load_manifest
from acceptance.otlp_receiver import OtlpReceiver
from acceptance.plan import CLAIMS_OPTION, UNITS_OPTION, Claims, keep_units, unit_of
from acceptance.signoff import ScenarioRecord, record_hook_error, record_scenario, record_stack
from acceptance.suite import Suite
from acceptance.targets import default_target_name, make_target
from acceptance.targets.base import run_log_dir

# What the suite can do to a stack it started itself: receive its traces, inject faults into it.
OWNED_STACK_CAPABILITIES = {"tracing", "chaos"}
FAILED = (Status.failed, Status.error, Status.hook_error, Status.undefined)


def _terminate_on_sigterm() -> None:
    """behave dies on SIGTERM without cleanups; as KeyboardInterrupt, after_all still stops the stack."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


@recorded
def before_all(context: Context) -> None:
    _terminate_on_sigterm()
    # The registry the runner matches steps with (not always the module-level one: behave imports it twice).
    explain_step_errors(context._runner.step_registry)
    userdata = context.config.userdata
    manifest = load_manifest(userdata.get("manifest"))
    name = userdata.get("target")
    if name:
        reason = "chosen with -D target"
    elif not manifest.is_reference:
        name, reason = "local", "the docker target starts only the reference ecosystem"
    else:
        name, reason = default_target_name()
    print(f"stack target: {name} ({reason}); manifest: {os.path.relpath(manifest.path)} ({manifest.name})")
    fill_manifest_examples(context._runner.features, manifest)
    refuse_shared_names(context._runner.features)  # all of them: a worker keeps only its own below
    if UNITS_OPTION in userdata:  # one worker of a parallel or sharded run (acceptance/plan.py)
        keep_units(context._runner.features, userdata[UNITS_OPTION])
    options: dict[str, Any] = {}
    # The suite starts, owns and may break every stack but an external one; it can have the reference
    # services it starts send their traces to it and inject faults through their test coordinator.
    owned = name != "external"
    reference = owned and manifest.is_reference
    if not owned:
        options["redis_url"] = userdata.get("redis_url", "redis://127.0.0.1:6379/0")
        options["pki_dir"] = userdata.get("pki_dir")  # the stack's certificates; none: plaintext
    else:
        if "security" in userdata:
            options["security"] = userdata["security"]
        if userdata.get("reflection") == "off":  # as in production
            options["env"] = {"ECOSYSTEM_REFLECTION": "off"}
        if REPORTS_OPTION in userdata:  # a worker, a shard, a re-run: the services' logs beside its reports
            options["log_dir"] = reports_dir(context) / "logs" / run_log_dir(f"-{name}").name
    stack = make_target(name, manifest, **options)
    otlp = None
    if reference:
        # The target says where its services can reach the receiver (containers cannot reach loopback).
        otlp = OtlpReceiver(bind_host=stack.otlp_bind_host).start()
        stack.export_traces_to(otlp.endpoint)
    context.capabilities = set(stack.capabilities) | (OWNED_STACK_CAPABILITIES if reference else set())
    if userdata.get("reflection") != "off":
        context.capabilities.add("reflection")
    print(f"security: {stack.transport.mode}; reflection: {userdata.get('reflection', 'on')}")
    record_stack(reports_dir(context), {"target": name, "security": stack.transport.mode,
                                        "reflection": userdata.get("reflection", "on"), **stack.tools()})
    context.suite = Suite(stack, manifest, otlp)
    stack.start()
    context.suite.verify_healthy()
    if CLAIMS_OPTION in userdata:  # the workers of a parallel run share the units as they go, once up
        context.claims = Claims(userdata[CLAIMS_OPTION], worker=reports_dir(context).name)
        context.claims.prepare(context._runner.features, context.config)


def before_feature(context: Context, feature: Feature) -> None:
    claims = getattr(context, "claims", None)  # none: not a worker of a parallel run, or before_all failed
    if claims:
        claims.wrap(feature)


def after_feature(context: Context, feature: Feature) -> None:
    claims = getattr(context, "claims", None)
    if claims:
        claims.settle(feature)


def before_scenario(context: Context, scenario: Scenario) -> None:
    suite = context.suite
    reason = not_applicable(scenario.effective_tags, context.capabilities, suite.manifest, suite.stack.name)
    if reason:
        scenario.skip(reason)
        # behave's formatters print no skip reason; this line comes right before the skipped scenario's block.
        print(f'  SKIPPED "{scenario.name}": not applicable: {reason}', file=sys.__stdout__, flush=True)
        record_scenario(reports_dir(context), _record(scenario, status="skipped", message=scenario.skip_reason))
        return
    # Raises when the stack is broken beyond rebuilding: the scenario fails at once, saying why.
    context.suite.begin(scenario.name)


def after_step(context: Context, step: Step) -> None:
    evidence.attach_step_calls(context.suite.scenario.calls.take_unreported())


def after_scenario(context: Context, scenario: Scenario) -> None:
    if scenario.status == Status.skipped:
        return
    suite = context.suite
    failed = scenario.status in FAILED
    try:
        end = suite.end(failed=failed)
    except Exception as exc:  # the suite's own bug: recorded, and the run goes on
        record_hook_error(reports_dir(context), "after_scenario", scenario.name, exc)
        raise
    failing = next((step for step in scenario.all_steps if step.status in FAILED), None)
    record_scenario(reports_dir(context), _record(
        scenario,
        status=scenario.status.name,
        step=f"{failing.keyword} {failing.name}" if failing else "",
        message=_first_line((failing.error_message if failing else "") or scenario.error_message or ""),
        started_at=suite.scenario.started_at,
        duration_s=round(time.time() - suite.scenario.started_at, 3),
        restored=end.restored,
        rebuilt=end.rebuilt,
    ))


def _record(scenario: Scenario, **outcome: Any) -> ScenarioRecord:
    return ScenarioRecord(feature=scenario.feature.name, scenario=scenario.name, location=str(scenario.location),
                          unit=unit_of(scenario), **outcome)


def after_all(context: Context) -> None:
    suite = getattr(context, "suite", None)
    if suite is None:
        return  # before_all failed before the suite existed
    errors = []
    for close in (suite.close, suite.stack.stop_all, lambda: suite.otlp and suite.otlp.stop()):
        try:
            close()
        except Exception as exc:
            record_hook_error(reports_dir(context), "after_all", "run", exc)
            errors.append(exc)
    if errors:
        raise errors[0]


def _first_line(message: str) -> str:
    """The assertion's own message: behave appends a traceback to errors, which the record does not need."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Traceback"):
        return lines[-1]
    return "\n".join(lines[:20]).removeprefix("ASSERT FAILED: ")
