"""The Suite between scenarios, on a real local stack: restores act, an unhealthy stack is rebuilt and
the rebuild is reported, a stack that cannot be made healthy fails later scenarios at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from acceptance.manifest import load_manifest
from acceptance.suite import MAX_REBUILDS, Suite
from acceptance.targets.local import LocalTarget
from ecosystem.names import ALL_SERVICES, RISK_MONITOR, TRADING_SYSTEM_ENGINE


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory):
    stack = LocalTarget(log_dir=tmp_path_factory.mktemp("suite-logs"))
    stack.start()
    suite = Suite(stack, load_manifest())
    yield suite
    suite.close()
    stack.stop_all()


@pytest.fixture
def fresh(suite: Suite):
    """The suite with its rebuild count and broken flag reset, on a healthy stack."""
    suite.rebuilds.clear()
    suite.broken = ""
    suite.verify_healthy()
    yield suite


def instance_ids(suite: Suite) -> dict[str, str]:
    return {service: suite.stack.instances(service)[0].instance_id for service in ALL_SERVICES}


def test_a_scenario_that_broke_nothing_leaves_the_stack_as_it_was(fresh: Suite) -> None:
    before = instance_ids(fresh)
    fresh.begin("reads only")
    fresh.orders.submit(1, "BTC-USD", 100)

    end = fresh.end(failed=False)

    assert (end.restored, end.rebuilt) == ([], "")
    assert instance_ids(fresh) == before


def test_restores_run_newest_first_and_act(fresh: Suite) -> None:
    order: list[str] = []
    fresh.begin("stops the risk monitor")
    fresh.faults.stop_every_instance(RISK_MONITOR)
    fresh.on_restore("second", lambda: order.append("second"))
    engine_before = fresh.stack.instances(TRADING_SYSTEM_ENGINE)[0].instance_id

    end = fresh.end(failed=False)

    assert order == ["second"]
    assert end.restored == ["second", "run risk-monitor again and replace its callers"]
    assert end.rebuilt == ""
    assert len(fresh.stack.instances(RISK_MONITOR)) == 1
    assert fresh.stack.instances(TRADING_SYSTEM_ENGINE)[0].instance_id != engine_before, "the engine is replaced"


def test_a_failed_restore_rebuilds_the_stack_and_says_why(fresh: Suite) -> None:
    before = instance_ids(fresh)
    fresh.begin("leaves a mess")

    def cannot() -> None:
        raise RuntimeError("the fault would not go away")

    fresh.on_restore("undo the mess", cannot)

    end = fresh.end(failed=True)

    assert "restore 'undo the mess' failed: RuntimeError: the fault would not go away" in end.rebuilt
    assert fresh.rebuilds == [f'stack rebuilt after scenario "leaves a mess": {end.rebuilt}']
    after = instance_ids(fresh)
    assert all(after[service] != before[service] for service in ALL_SERVICES), "every process is new"
    fresh.verify_healthy()


def test_damage_without_a_restore_is_found_and_rebuilt(fresh: Suite) -> None:
    fresh.begin("forgets to restore")
    fresh.stack.kill_service(RISK_MONITOR)

    end = fresh.end(failed=False)

    assert "risk-monitor runs 0 instances, expected 1" in end.rebuilt
    assert len(fresh.stack.instances(RISK_MONITOR)) == 1


def test_after_too_many_rebuilds_later_scenarios_fail_at_once_saying_why(fresh: Suite) -> None:
    for number in range(MAX_REBUILDS + 1):
        fresh.begin(f"breaks it again {number}")
        fresh.stack.kill_service(RISK_MONITOR)
        fresh.end(failed=True)

    assert len(fresh.rebuilds) == MAX_REBUILDS
    with pytest.raises(AssertionError, match=f"not run: the stack needed more than {MAX_REBUILDS} rebuilds"):
        fresh.begin("the next one")
    fresh.broken = ""
    fresh.stack.scale(RISK_MONITOR, 1)


def test_a_failed_scenario_leaves_its_logs_of_its_time_window(fresh: Suite, tmp_path: Path) -> None:
    fresh.begin("fails")
    fresh.orders.submit(5000, "BTC-USD", 100)

    logs = fresh.stack.logs(lines=50, since=fresh.scenario.started_at)
    fresh.end(failed=False)

    assert "order_checked" in logs["risk-monitor#0"], "decisions are logged at the debug level the suite sets"
    assert "registered" not in logs["risk-monitor#0"], "lines from before the scenario are left out"
