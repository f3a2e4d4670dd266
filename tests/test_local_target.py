"""LocalTarget against the real services: readiness through grpc.health.v1, endpoints from the registry,
breaking and restoring instances, and nothing left running afterwards. ExternalTarget attaches to it."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis

from acceptance import health
from acceptance.targets import TargetError, make_target
from acceptance.targets.local import LocalTarget
from acceptance.waits import wait_until
from ecosystem.discovery import lookup_sync
from ecosystem.names import ALL_SERVICES, GRPC_SERVICES, RISK_MONITOR, TRADING_SYSTEM_ENGINE

REGISTRY_WAIT_S = 5.0  # several registry TTLs of 1.5 s


def _children_of(pid: int) -> set[int]:
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            children.add(int(stat.parent.name))
    return children


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def serving_status(target: LocalTarget, endpoint: str, service: str) -> str:
    """What `endpoint` answers for the service's gRPC name, over the stack's mTLS, checking the server is `service`."""
    return health.check(endpoint, GRPC_SERVICES[service], transport=target.transport, server=service)


def _registered(redis_url: str, service: str) -> dict[str, str]:
    """instance_id -> endpoint, as the registry lists them now."""
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        return {instance.instance_id: instance.endpoint for instance in lookup_sync(client, service)}
    finally:
        client.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    target = LocalTarget(log_dir=tmp_path_factory.mktemp("stack-logs"))
    target.start()
    yield target
    target.stop_all()


@pytest.fixture
def target(stack: LocalTarget):
    yield stack
    stack.restore()


def test_every_service_answers_serving_on_its_own_loopback_port(target: LocalTarget) -> None:
    endpoints = [target.endpoint(service) for service in ALL_SERVICES]

    assert len(set(endpoints)) == len(ALL_SERVICES)
    for service, endpoint in zip(ALL_SERVICES, endpoints, strict=True):
        host, port = endpoint.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        assert serving_status(target, endpoint, service) == "SERVING"


def test_each_endpoint_is_the_one_registered_under_its_instance_id(target: LocalTarget) -> None:
    for service in ALL_SERVICES:
        [handle] = target.instances(service)
        assert _registered(target.redis_url, service) == {handle.instance_id: handle.endpoint}


def test_a_service_unknown_to_an_instance_is_reported_as_such(target: LocalTarget) -> None:
    assert health.check(target.endpoint(RISK_MONITOR), "ecosystem.nothing.v1.Missing", transport=target.transport,
                        server=RISK_MONITOR) == "SERVICE_UNKNOWN"


def test_a_killed_instance_leaves_the_registry_and_start_service_brings_a_new_one(target: LocalTarget) -> None:
    [old] = target.instances(RISK_MONITOR)
    old_pid = target.pids()["risk-monitor#0"]

    target.kill_service(RISK_MONITOR)

    assert target.exit_code(RISK_MONITOR) == -signal.SIGKILL
    assert not _pid_alive(old_pid)
    assert target.instances(RISK_MONITOR) == []
    wait_until(
        lambda: _registered(target.redis_url, RISK_MONITOR),
        lambda registered: old.instance_id not in registered,
        timeout=REGISTRY_WAIT_S,
        what=f"killed risk-monitor instance {old.instance_id} expires from the registry",
    )

    new = target.start_service(RISK_MONITOR)

    assert new.instance_id != old.instance_id
    assert target.instances(RISK_MONITOR) == [new]
    assert _registered(target.redis_url, RISK_MONITOR) == {new.instance_id: new.endpoint}
    assert serving_status(target, new.endpoint, RISK_MONITOR) == "SERVING"


def test_a_stopped_instance_exits_cleanly_and_deregisters(target: LocalTarget) -> None:
    [handle] = target.instances(TRADING_SYSTEM_ENGINE)

    target.stop_service(TRADING_SYSTEM_ENGINE)

    assert target.exit_code(TRADING_SYSTEM_ENGINE) == 0
    assert handle.instance_id not in _registered(target.redis_url, TRADING_SYSTEM_ENGINE)
    with pytest.raises(TargetError, match="trading-system-engine"):
        target.endpoint(TRADING_SYSTEM_ENGINE)


def test_scaling_risk_monitor_to_two_runs_two_registered_serving_instances(target: LocalTarget) -> None:
    handles = target.scale(RISK_MONITOR, 2)

    assert [handle.index for handle in handles] == [0, 1]
    assert len({handle.instance_id for handle in handles}) == 2
    assert _registered(target.redis_url, RISK_MONITOR) == {handle.instance_id: handle.endpoint for handle in handles}
    for handle in handles:
        assert serving_status(target, handle.endpoint, RISK_MONITOR) == "SERVING"

    [remaining] = target.scale(RISK_MONITOR, 1)

    assert remaining == handles[0]
    assert _registered(target.redis_url, RISK_MONITOR) == {remaining.instance_id: remaining.endpoint}


def test_a_paused_instance_does_not_answer_until_resumed(target: LocalTarget) -> None:
    endpoint = target.endpoint(RISK_MONITOR)
    target.pause_service(RISK_MONITOR)

    with pytest.raises(health.HealthCheckError, match="DEADLINE_EXCEEDED"):
        health.check(endpoint, GRPC_SERVICES[RISK_MONITOR], timeout=0.5, transport=target.transport,
                     server=RISK_MONITOR)

    target.resume_service(RISK_MONITOR)
    health.wait_serving(endpoint, [GRPC_SERVICES[RISK_MONITOR]], timeout=5.0, transport=target.transport,
                        server=RISK_MONITOR)


def test_redis_comes_back_on_the_same_port_and_the_services_register_again(target: LocalTarget) -> None:
    url = target.redis_url
    target.stop_redis()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()

    target.start_redis()

    assert target.redis_url == url
    for service in ALL_SERVICES:
        [handle] = target.instances(service)
        wait_until(
            lambda service=service: _registered(url, service),
            lambda registered, handle=handle: registered == {handle.instance_id: handle.endpoint},
            timeout=REGISTRY_WAIT_S,
            what=f"{service} instance {handle.instance_id} registers again after the Redis restart",
        )


def test_restore_brings_back_one_running_instance_of_each(target: LocalTarget) -> None:
    target.scale(RISK_MONITOR, 2)
    target.kill_service(TRADING_SYSTEM_ENGINE)
    target.pause_service(ALL_SERVICES[0])
    target.stop_redis()

    target.restore()

    for service in ALL_SERVICES:
        [handle] = target.instances(service)
        assert _registered(target.redis_url, service) == {handle.instance_id: handle.endpoint}
        assert serving_status(target, handle.endpoint, service) == "SERVING"


def test_an_external_target_finds_the_same_stack_and_cannot_break_it(target: LocalTarget) -> None:
    assert target.transport.pki is not None
    external = make_target("external", redis_url=target.redis_url, pki_dir=target.transport.pki.directory)
    external.start()
    try:
        for service in ALL_SERVICES:
            assert external.endpoint(service) == target.endpoint(service)
        assert external.capabilities == frozenset()
        with pytest.raises(NotImplementedError, match="'external' does not support kill_service"):
            external.kill_service(RISK_MONITOR)
    finally:
        external.stop_all()
    target.wait_healthy()


def test_stop_all_leaves_no_child_process_and_closes_the_redis_port(tmp_path: Path) -> None:
    children_before = _children_of(os.getpid())
    target = LocalTarget(log_dir=tmp_path)
    target.start()
    pids = target.pids()
    redis_port = urlparse(target.redis_url).port
    assert redis_port is not None and len(pids) == len(ALL_SERVICES)

    target.stop_all()
    target.stop_all()

    assert [label for label, pid in pids.items() if _pid_alive(pid)] == []
    assert not _port_open(redis_port)
    assert _children_of(os.getpid()) == children_before


def test_a_service_exiting_at_start_fails_start_with_its_exit_and_logs_and_leaves_nothing(tmp_path: Path) -> None:
    children_before = _children_of(os.getpid())
    target = LocalTarget(log_dir=tmp_path, env={"ECOSYSTEM_ENVIRONMENT": "staging"})

    with pytest.raises(TargetError) as failure:
        target.start()

    assert failure.value.service == "configuration-service#0"
    assert "exited with exit code" in str(failure.value)
    assert "staging" in failure.value.log_tail
    assert target.pids() == {}
    assert _children_of(os.getpid()) == children_before


def test_an_unknown_target_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'kubernetes'.*local, external, docker"):
        make_target("kubernetes")
