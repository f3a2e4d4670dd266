"""Service log lines: JSON with time, level and event; decisions only at debug."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from pathlib import Path

import grpc
import pytest

from ecosystem import logs
from ecosystem.breaker import CircuitBreaker
from ecosystem.settings import BreakerSettings


@pytest.fixture(autouse=True)
def info_level() -> None:
    logs.configure("info")
    yield
    logs.configure("info")


def lines(captured: str) -> list[dict]:
    return [json.loads(line) for line in captured.splitlines()]


def test_a_line_carries_time_level_event_fields_and_the_bound_names(capsys: pytest.CaptureFixture[str]) -> None:
    def log() -> None:
        logs.bind(service="risk-monitor", instance_id="abc")
        logs.log_event("registered", level="info", endpoint="127.0.0.1:1", service="overridden")

    contextvars.copy_context().run(log)

    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, "one JSON object per line"
    [line] = lines(err)
    assert list(line) == ["ts", "level", "event", "endpoint", "service", "instance_id"]
    assert line["level"] == "info" and line["event"] == "registered" and line["endpoint"] == "127.0.0.1:1"
    assert line["service"] == "risk-monitor", "the bound fields win"
    assert isinstance(line["ts"], float) and abs(line["ts"] - time.time()) < 5
    assert round(line["ts"], 3) == line["ts"], "milliseconds"


def test_a_field_json_cannot_encode_is_written_as_its_text(capsys: pytest.CaptureFixture[str]) -> None:
    logs.log_event("stopping", path=Path("/tmp/x"))

    [line] = lines(capsys.readouterr().err)
    assert line["path"] == "/tmp/x"


async def test_services_in_one_process_each_name_themselves_in_their_own_tasks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def host(service: str) -> None:
        logs.bind(service=service, instance_id=f"{service}-1")
        await asyncio.sleep(0)  # the other host binds meanwhile
        logs.log_event("listening")
        await asyncio.create_task(handle())

    async def handle() -> None:
        logs.log_event("handled")

    await asyncio.gather(host("risk-monitor"), host("trading-system-engine"))

    written = {(line["event"], line["service"], line["instance_id"]) for line in lines(capsys.readouterr().err)}
    assert written == {
        ("listening", "risk-monitor", "risk-monitor-1"),
        ("handled", "risk-monitor", "risk-monitor-1"),
        ("listening", "trading-system-engine", "trading-system-engine-1"),
        ("handled", "trading-system-engine", "trading-system-engine-1"),
    }, "a task started by a host inherits its names"


def test_each_module_writes_to_its_own_logger_under_ecosystem(caplog: pytest.LogCaptureFixture) -> None:
    breaker = CircuitBreaker("risk-monitor", BreakerSettings(failure_threshold=1))
    breaker.record_failure(grpc.StatusCode.UNAVAILABLE)
    logs.log_event("from_a_test")

    names = {record.getMessage(): record.name for record in caplog.records}
    assert names["breaker_transition"] == "ecosystem.breaker"
    assert names["from_a_test"] == f"ecosystem.{__name__}", "a caller outside the package still logs under it"


def test_configuring_again_changes_the_level_but_adds_no_second_handler(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("debug")
    logs.configure("info")

    logs.log_event("listening")

    assert len(capsys.readouterr().err.splitlines()) == 1
    ours = [h for h in logging.getLogger("ecosystem").handlers if isinstance(h.formatter, logs.JsonFormatter)]
    assert len(ours) == 1
    assert logs.enabled("info") and not logs.enabled("debug")


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
