"""Service log lines: JSON with time, level and event; decisions only at debug."""

from __future__ import annotations

import json

import pytest

from ecosystem import logs


@pytest.fixture(autouse=True)
def info_level() -> None:
    logs.configure("info")
    yield
    logs.configure("info")


def lines(captured: str) -> list[dict]:
    return [json.loads(line) for line in captured.splitlines()]


def test_a_line_carries_time_level_event_fields_and_the_bound_names(capsys: pytest.CaptureFixture[str]) -> None:
    logs.bind(service="risk-monitor", instance_id="abc")

    logs.log_event("registered", level="info", endpoint="127.0.0.1:1", service="overridden")

    [line] = lines(capsys.readouterr().err)
    assert line["level"] == "info" and line["event"] == "registered" and line["endpoint"] == "127.0.0.1:1"
    assert line["service"] == "risk-monitor", "the bound fields win"
    assert isinstance(line["ts"], float)


def test_decisions_are_written_only_at_debug(capsys: pytest.CaptureFixture[str]) -> None:
    logs.log_decision("order_checked", decision="REJECTED")
    assert capsys.readouterr().err == ""

    logs.configure("debug")
    logs.log_decision("order_checked", decision="REJECTED")

    [line] = lines(capsys.readouterr().err)
    assert (line["level"], line["event"], line["decision"]) == ("debug", "order_checked", "REJECTED")


def test_a_level_below_the_threshold_is_not_written(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("warning")

    logs.log_event("listening")
    logs.log_event("heartbeat_failed", level="warning")

    assert [line["event"] for line in lines(capsys.readouterr().err)] == ["heartbeat_failed"]


def test_an_unknown_level_names_the_levels_there_are() -> None:
    with pytest.raises(ValueError, match="log level 'loud' is not one of debug, info, warning, error"):
        logs.configure("loud")
