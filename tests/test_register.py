"""`python -m acceptance.register` keeps a server that cannot register itself in the registry: registered while it
answers SERVING, DRAINING when it stops answering, deregistered on SIGTERM; and the launcher names a service that
exits before it registers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis

from acceptance.manifest import parse_manifest
from acceptance.redis_server import free_port
from acceptance.registry_contract import read_service
from acceptance.targets.base import TargetError
from acceptance.targets.launched import LaunchedTarget
from acceptance.waits import wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_the_registrar_follows_the_servers_health(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    port = free_port()
    server = spawn("examples.route_guide.server", "--port", str(port))
    registrar = spawn("acceptance.register", "--redis-url", redis_url, "--service", "route-guide", "--host",
                      "127.0.0.1", "--port", str(port), "--version", "2.0.0", "--health-service",
                      "routeguide.RouteGuide", "--ttl-ms", "1500")
    try:
        serving = wait_until(lambda: read_service(client, "route-guide").serving, timeout=10,
                             what="the registrar registers the route guide")
        assert serving[0].endpoint == f"127.0.0.1:{port}" and serving[0].version == "2.0.0"
        server.terminate()
        server.wait(timeout=10)
        wait_until(lambda: read_service(client, "route-guide").draining, timeout=5,
                   what="the entry goes DRAINING once the server no longer answers")
        wait_until(lambda: read_service(client, "route-guide"), lambda r: not (r.serving or r.draining or r.problems),
                   timeout=5, what="the entry is removed once the server has not answered SERVING for a TTL")
        registrar.terminate()
        assert registrar.wait(timeout=10) == 0
    finally:
        for process in (server, registrar):
            process.kill()
            process.wait()


def test_a_launched_service_that_exits_is_named_with_its_log(tmp_path: Path) -> None:
    manifest = parse_manifest({"stack": {"name": "broken"}, "services": [{
        "name": "crasher", "grpc_services": ["a.B"],
        "start": {"command": ["{python}", "-c", "import sys; print('no config'); sys.exit(3)", "{port}"]},
    }]}, tmp_path / "broken.toml")
    target = LaunchedTarget(manifest, log_dir=tmp_path, start_timeout=10)
    with pytest.raises(TargetError) as error:
        target.start()
    assert str(error.value).startswith("crasher: to keep running, but it exited with 3")
    assert "no config" in str(error.value)
