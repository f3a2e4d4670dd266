"""What a scenario leaves in the Allure report: one record of each step's calls and waits, and for a
failed scenario the services' logs of its time window, its trace as a waterfall and the registry.

Everything here is bounded: a report must stay readable, and a failed run's report small.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import allure
import grpc

from acceptance.otlp_receiver import ReceivedSpan

MAX_LOG_LINES = 200  # per instance and scenario
WATERFALL_WIDTH = 40
MAX_SPANS = 200
# Fields every service log line carries; the attachment's name already says them.
_BOUND_FIELDS = ("ts", "level", "event", "service", "instance_id")


def attach_step_calls(records: list[dict[str, Any]]) -> None:
    """One attachment for a step's calls and waits (a wait stands for all its polls)."""
    if not records:
        return
    calls = sum(1 for record in records if "method" in record)
    waits = sum(1 for record in records if "wait" in record)
    parts = [f"{calls} call{'s' * (calls != 1)}"] * bool(calls) + [f"{waits} wait{'s' * (waits != 1)}"] * bool(waits)
    allure.attach(
        json.dumps(records, indent=1, default=str),
        name="gRPC: " + ", ".join(parts),
        attachment_type=allure.attachment_type.JSON,
    )


def attach_logs(logs: dict[str, str]) -> None:
    """Each instance's log lines of the scenario's time window, human-readable; instances with none are left out."""
    for label, text in logs.items():
        readable = readable_log(text.splitlines())
        if readable:
            allure.attach(readable, name=f"log {label}", attachment_type=allure.attachment_type.TEXT)


def attach_registry(snapshot: object) -> None:
    text = json.dumps(snapshot, indent=1, default=str)
    allure.attach(text, name="registry snapshot", attachment_type=allure.attachment_type.JSON)


def attach_trace(trace_id: str, spans: list[ReceivedSpan]) -> None:
    allure.attach(waterfall(trace_id, spans), name=f"trace {trace_id}", attachment_type=allure.attachment_type.TEXT)


def readable_log(lines: Iterable[str], limit: int = MAX_LOG_LINES) -> str:
    """Service JSON log lines as `ISO-time LEVEL event key=value ...`; other lines (tracebacks) as they are."""
    rendered = [_readable_line(line) for line in lines if line.strip()]
    if len(rendered) > limit:
        rendered = [f"... {len(rendered) - limit} earlier lines left out", *rendered[-limit:]]
    return "\n".join(rendered)


def _readable_line(line: str) -> str:
    try:
        entry = json.loads(line)
        at = dt.datetime.fromtimestamp(float(entry["ts"]), dt.UTC).isoformat(timespec="milliseconds")
    except (ValueError, KeyError, TypeError):
        return "    " + line
    fields = " ".join(
        f"{key}={json.dumps(value) if not isinstance(value, str) else value}"
        for key, value in entry.items()
        if key not in _BOUND_FIELDS
    )
    level = str(entry.get("level", "info")).upper()
    return f"{at.replace('+00:00', 'Z')} {level:<7} {entry.get('event', '?')} {fields}"


def _code_name(code: object) -> str:
    names = {status.value[0]: status.name for status in grpc.StatusCode}
    return names.get(code, "") if isinstance(code, int) else ""


def waterfall(trace_id: str, spans: list[ReceivedSpan]) -> str:
    """The spans of one trace as an indented timeline: offset, bar, duration, kind, service, name, status."""
    if not spans:
        return f"trace {trace_id}: no span arrived (is tracing on for this stack?)"
    spans = sorted(spans, key=lambda span: span.start_ns)[:MAX_SPANS]
    origin = spans[0].start_ns
    total_ns = max(max(span.end_ns for span in spans) - origin, 1)
    known = {span.span_id for span in spans}
    children: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in known else ""
        children.setdefault(parent, []).append(span)

    lines = [f"trace {trace_id}: {len(spans)} spans over {total_ns / 1e6:.1f} ms"]

    def emit(parent: str, depth: int) -> None:
        for span in children.get(parent, []):
            start = (span.start_ns - origin) / total_ns
            end = (span.end_ns - origin) / total_ns
            left = round(start * WATERFALL_WIDTH)
            width = max(1, round(end * WATERFALL_WIDTH) - left)
            bar = " " * left + "#" * width
            outcome = f"{span.status} {_code_name(span.attributes.get('rpc.grpc.status_code'))}".rstrip()
            offset_ms, duration_ms = (span.start_ns - origin) / 1e6, (span.end_ns - span.start_ns) / 1e6
            lines.append(
                f"{offset_ms:8.1f} ms |{bar:<{WATERFALL_WIDTH}}| {duration_ms:8.1f} ms "
                f"{'  ' * depth}{span.kind:<6} {span.service} {span.name} {outcome}"
            )
            emit(span.span_id, depth + 1)

    emit("", 0)
    return "\n".join(lines)
