"""What a failed scenario leaves in the report: readable service logs, its trace as a waterfall, and one
summary per wait; and the step errors the suite turns into failures that say what went wrong."""

from __future__ import annotations

import json

import pytest

from acceptance.evidence import readable_log, waterfall
from acceptance.hooks import explain
from acceptance.otlp_receiver import ReceivedSpan
from acceptance.scenario import CallLog, WaitRecord
from acceptance.targets.base import lines_since
from acceptance.waits import WaitTimeout, holds_for, poll


def span(span_id: str, parent: str, start_ms: float, end_ms: float, **fields: str) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id="ab" * 16, span_id=span_id, parent_span_id=parent, name=fields.get("name", f"op{span_id}"),
        kind=fields.get("kind", "SERVER"), service=fields.get("service", "svc"), status=fields.get("status", "UNSET"),
        start_ns=int(start_ms * 1e6), end_ns=int(end_ms * 1e6),
    )


def test_a_waterfall_nests_children_under_parents_in_time_order() -> None:
    spans = [
        span("c2", "p", 6, 9, kind="CLIENT", name="second"),
        span("p", "", 0, 10, name="root"),
        span("c1", "p", 1, 4, kind="CLIENT", name="first"),
        span("g", "c1", 2, 3, name="grandchild", status="ERROR"),
    ]

    lines = waterfall("ab" * 16, spans).splitlines()

    assert lines[0] == f"trace {'ab' * 16}: 4 spans over 10.0 ms"
    assert [line.split()[-2] for line in lines[1:]] == ["root", "first", "grandchild", "second"]
    assert "|" + "#" * 40 + "|" in lines[1], "the root spans the whole trace"
    assert lines[3].rstrip().endswith("grandchild ERROR")
    assert "    SERVER" in lines[3], "a grandchild is indented twice"


def test_a_span_whose_parent_never_arrived_is_shown_as_a_root() -> None:
    lines = waterfall("cd" * 16, [span("x", "missing", 0, 1, name="orphan")]).splitlines()

    assert lines[1].split()[-2] == "orphan"


def test_no_span_says_so() -> None:
    assert "no span arrived" in waterfall("ef" * 16, [])


def test_service_log_lines_read_as_time_level_event_and_fields() -> None:
    lines = [
        json.dumps({"ts": 1796139638.467, "level": "debug", "event": "order_checked", "decision": "REJECTED",
                    "reasons": ["quantity 5000 exceeds"], "service": "risk-monitor", "instance_id": "abc"}),
        "Traceback (most recent call last):",
    ]

    text = readable_log(lines)

    assert text.splitlines() == [
        '2026-12-01T15:40:38.467Z DEBUG   order_checked decision=REJECTED reasons=["quantity 5000 exceeds"]',
        "    Traceback (most recent call last):",
    ]


def test_a_long_log_keeps_its_last_lines_and_says_how_many_it_left_out() -> None:
    lines = [json.dumps({"ts": 1.0 + n, "level": "info", "event": f"e{n}"}) for n in range(250)]

    text = readable_log(lines, limit=200).splitlines()

    assert text[0] == "... 50 earlier lines left out"
    assert text[-1].split()[2] == "e249"


def test_log_lines_since_a_time_keep_the_tracebacks_of_kept_lines() -> None:
    lines = [
        json.dumps({"ts": 10.0, "event": "before"}),
        "    an old traceback line",
        json.dumps({"ts": 20.0, "event": "after"}),
        "    its traceback line",
    ]

    assert lines_since(lines, 15.0) == lines[2:]


def test_a_wait_is_one_record_with_its_polls_however_many_calls_they_made() -> None:
    log = CallLog()
    log.begin_wait()
    for _ in range(7):
        log.record_call(object())  # type: ignore[arg-type]
    log.end_wait(WaitRecord("the order is ACCEPTED", polls=7, elapsed_s=0.14, outcome="met", last="OK", calls=0))

    [record] = log.take_unreported()

    assert record == {
        "wait": "the order is ACCEPTED", "outcome": "met", "polls": 7, "elapsed_ms": 140.0, "rpc_calls": 7,
        "last_observed": "OK",
    }
    assert log.take_unreported() == []


def test_a_timed_out_wait_says_what_it_awaited_how_often_and_the_last_answer() -> None:
    answers = iter(range(100))

    with pytest.raises(WaitTimeout) as caught:
        poll(lambda: next(answers), lambda n: n < 0, timeout=0.05, what="a negative number", interval=0.01)

    assert caught.value.polls >= 2
    assert "waiting until a negative number; last observed:" in str(caught.value)


def test_a_condition_that_stops_holding_fails_at_once_with_what_was_seen() -> None:
    seen = iter([1, 1, 0, 1])

    with pytest.raises(AssertionError, match=r"stays positive stopped holding after .*; observed: 0"):
        holds_for(lambda: next(seen), lambda n: n > 0, duration=5.0, what="stays positive", interval=0.001)


def test_a_python_error_in_a_step_becomes_one_line_naming_what_was_missing() -> None:
    try:
        {"status": "ACCEPTED"}["reasons"]
    except KeyError as exc:
        message = explain(exc)

    assert message.startswith("the step could not go on: 'reasons' was missing from an answer or a table (KeyError)")
    assert "(at tests/" not in message, "only the suite's own code (acceptance/, steps/) is named"
