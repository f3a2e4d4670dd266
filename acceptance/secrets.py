"""A containerised stack's secrets, made fresh per stack: the CA and certificates, Redis users, and the variables
compose/docker-compose.yml reads to use them.

    python -m acceptance.secrets .secrets                  # then:
    docker compose --env-file .secrets/compose.env -f compose/docker-compose.yml up

Each container gets only its own: a service the folder `<service>/` (the CA, its certificate and key, 0644 so
the container's unprivileged user can read them) bind-mounted read-only at /run/ecosystem/pki, Redis the
folder `redis/` (users.acl). The suite's and admin's keys stay in the top folder, 0600, never mounted.
Nothing is baked into an image.
"""

from __future__ import annotations

import argparse
import os
import shutil
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
REDIS_FOLDER = "redis"
COMPOSE_ENV = "compose.env"
REDIS_IN_NETWORK = "redis:6379"


@dataclass(frozen=True)
class StackSecrets:
    directory: Path
    mode: str
    users: RedisUsers | None

    @property
    def transport(self) -> Transport:
        return PLAINTEXT if self.mode == INSECURE else Transport(Pki(self.directory))

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
    directory.chmod(0o711)  # the containers' folders below are reachable; the top folder cannot be listed
    users = None
    for name in (*ALL_SERVICES, REDIS_FOLDER):
        _own_folder(directory / name)
    if mode == SECURE:
        pki = Pki.create(directory, [*ALL_SERVICES, SUITE, ADMIN])
        for service in ALL_SERVICES:
            files = pki.files(service)
            for source in (files.ca, files.cert, files.key):
                copy = directory / service / source.name
                shutil.copyfile(source, copy)
                copy.chmod(0o644)
        users = RedisUsers.create(list(ALL_SERVICES))
        acl = users.acl_lines()
    else:
        acl = ["user default on nopass ~* &* +@all"]
    acl_file = directory / REDIS_FOLDER / ACL_FILE
    acl_file.write_text("\n".join(acl) + "\n", encoding="utf-8")
    acl_file.chmod(0o644)
    return StackSecrets(directory, mode, users)


def _own_folder(path: Path) -> None:
    path.mkdir(exist_ok=True)
    path.chmod(0o755)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acceptance.secrets", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="where to write them (keep it out of git)")
    parser.add_argument("--mode", choices=MODES, default=SECURE)
    args = parser.parse_args(argv)
    secrets = create(args.directory, args.mode)
    env_file = args.directory / COMPOSE_ENV
    # Created 0600 before anything is written: it holds every Redis password.
    descriptor = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write("".join(f"{k}={v}\n" for k, v in secrets.compose_env().items()))
    print(f"{args.mode} stack secrets in {args.directory}; use them with:\n"
          f"  docker compose --env-file {env_file} -f compose/docker-compose.yml up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
