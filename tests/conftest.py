"""Fixtures shared by the pytest suite: one real redis-server per session, emptied before each test, the four
services as real processes, one stack per test module that asks for it, and the suite's library importable by the
behave projects tests run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio

from acceptance.redis_server import RedisServer
from acceptance.targets.local import LocalTarget
from tests.behave_projects import REPO_ROOT


@pytest.fixture
def importable_suite_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment.py of a behave project a test writes imports the suite's library, as the repository's does."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's redis-server; a test that must stop Redis starts its own RedisServer instead."""
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, with every database flushed so no test sees another's keys."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTarget]:
    """The four services as processes (LocalTarget, mTLS), one stack per module: what a module's tests do to
    its stack (configuration written, scenarios started, chaos injected) cannot reach another module's."""
    name = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    target = LocalTarget(log_dir=tmp_path_factory.mktemp(f"{name}-logs"))
    target.start()
    yield target
    target.stop_all()
