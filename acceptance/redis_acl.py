"""Redis users per stack: each service may write only its own registry keys, the configuration service also
`cfg:*`, every service may read the registry; the suite is the one user with every right; the default user
is off. Passwords are random per stack and live only in the ACL file and the URLs handed to each process.

    users = RedisUsers.create(["risk-monitor", "configuration-service"])
    users.write_aclfile(Path("pki/users.acl"))
    users.url("redis://127.0.0.1:6379/0", "risk-monitor")   # redis://risk-monitor:<password>@127.0.0.1:6379/0
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from ecosystem.names import CONFIGURATION_SERVICE
from ecosystem.security import SUITE

# Every service: its own registry keys, the shared services set and events stream; read the whole registry.
# No @dangerous command (FLUSHALL, DEBUG, SHUTDOWN, CONFIG, KEYS, ...).
_SERVICE_RULES = (
    "resetkeys ~reg:v1:svc:{service}:* ~reg:v1:services ~reg:v1:events %R~reg:* resetchannels +@all -@dangerous"
)
_CONFIGURATION_RULES = " ~cfg:*"
_SUITE_RULES = "~* &* +@all"


_CREDENTIALS = re.compile(r"(rediss?://[^:/@\s]+):[^@\s]+@")


def redact(text: str) -> str:
    """`text` with the password of every Redis URL in it replaced by ***, for messages and reports."""
    return _CREDENTIALS.sub(r"\1:***@", text)


@dataclass(frozen=True)
class RedisUsers:
    passwords: dict[str, str]  # user -> password; the suite's user is SUITE

    @classmethod
    def create(cls, services: list[str]) -> RedisUsers:
        return cls({user: secrets.token_urlsafe(24) for user in [*services, SUITE]})

    def acl_lines(self) -> list[str]:
        lines = ["user default off"]
        for user, password in self.passwords.items():
            digest = hashlib.sha256(password.encode()).hexdigest()
            if user == SUITE:
                rules = _SUITE_RULES
            else:
                rules = _SERVICE_RULES.format(service=user)
                if user == CONFIGURATION_SERVICE:
                    rules += _CONFIGURATION_RULES
            lines.append(f"user {user} on #{digest} {rules}")
        return lines

    def write_aclfile(self, path: Path) -> Path:
        path.touch(mode=0o600)
        path.write_text("\n".join(self.acl_lines()) + "\n", encoding="utf-8")
        return path

    def url(self, base_url: str, user: str) -> str:
        """`base_url` (redis://host:port/db) with `user`'s name and password."""
        parts = urlsplit(base_url)
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{quote(user, safe='')}:{quote(self.passwords[user], safe='')}@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
