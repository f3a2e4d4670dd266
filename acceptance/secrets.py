"""A containerised stack's secrets, made fresh per stack: the CA and certificates, Redis users, and the variables
compose/docker-compose.yml reads to use them.

    python -m acceptance.secrets .secrets                  # then:
    docker compose --env-file .secrets/compose.env -f compose/docker-compose.yml up

The folder is bind-mounted read-only into every container at /run/ecosystem/pki; nothing is baked into an
image. Keys are readable by the containers' unprivileged user (0644 in a folder of their own).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from acceptance.pki import Pki
from acceptance.redis_acl import RedisUsers
from acceptance.transport import PLAINTEXT, Transport
from ecosystem.names import ALL_SERVICES
from ecosystem.security import ADMIN, INSECURE, MODES, SECURE, SUITE

IN_CONTAINER = "/run/ecosystem/pki"
ACL_FILE = "users.acl"
COMPOSE_ENV = "compose.env"
REDIS_IN_NETWORK = "redis:6379"


@dataclass(frozen=True)
class StackSecrets:
    directory: Path
    mode: str
    users: RedisUsers | None

    @property
    def transport(self) -> Transport:
        return PLAINTEXT if self.mode == INSECURE else Transport.secure(Pki(self.directory))

    def redis_url(self, host_and_port: str) -> str:
        """The suite's URL of the stack's Redis at `host_and_port`."""
        plain = f"redis://{host_and_port}/0"
        return self.users.url(plain, SUITE) if self.users else plain

    def compose_env(self) -> dict[str, str]:
        """What compose/docker-compose.yml reads: the mode, the folder, each service's Redis URL, redis-cli's login."""
        env = {"ECOSYSTEM_SECURITY": self.mode, "ECOSYSTEM_PKI_DIR": str(self.directory.resolve())}
        plain = f"redis://{REDIS_IN_NETWORK}/0"
        for service in ALL_SERVICES:
            variable = service.upper().replace("-", "_") + "_REDIS_URL"
            env[variable] = self.users.url(plain, service) if self.users else plain
        if self.users is None:
            env["REDIS_PROTECTED_MODE"] = "no"  # plaintext, no users: containers reach Redis over the network
        else:
            env["REDIS_CLI_AUTH"] = f"--no-auth-warning --user {SUITE} --pass {self.users.passwords[SUITE]}"
        return env


def create(directory: Path, mode: str = SECURE) -> StackSecrets:
    if mode not in MODES:
        raise ValueError(f"security mode {mode!r} is not one of {', '.join(MODES)}")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    users = None
    if mode == SECURE:
        Pki.create(directory, [*ALL_SERVICES, SUITE, ADMIN], readable_keys=True)
        users = RedisUsers.create(list(ALL_SERVICES))
        acl = users.acl_lines()
    else:
        acl = ["user default on nopass ~* &* +@all"]
    (directory / ACL_FILE).write_text("\n".join(acl) + "\n", encoding="utf-8")
    (directory / ACL_FILE).chmod(0o644)
    return StackSecrets(directory, mode, users)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acceptance.secrets", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="where to write them (keep it out of git)")
    parser.add_argument("--mode", choices=MODES, default=SECURE)
    args = parser.parse_args(argv)
    secrets = create(args.directory, args.mode)
    env_file = args.directory / COMPOSE_ENV
    env_file.write_text("".join(f"{k}={v}\n" for k, v in secrets.compose_env().items()), encoding="utf-8")
    env_file.chmod(0o600)
    print(f"{args.mode} stack secrets in {args.directory}; use them with:\n"
          f"  docker compose --env-file {env_file} -f compose/docker-compose.yml up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
