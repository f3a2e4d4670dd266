#!/bin/sh
# The docker target (two workers) on Compose v2 and on v1, where each is installed; both are required when CI=true.
# Most users have v2; Debian 12 packages only v1, and the compose file must keep working there.
#
#   scripts/docker_targets.sh PYTHON [acceptance.run arguments...]
set -u
python=$1
shift
v2=$(docker compose version --short 2>/dev/null)
v1=$(docker-compose version --short 2>/dev/null | grep '^1\.')
if [ "${CI:-}" = true ] && { [ -z "$v2" ] || [ -z "$v1" ]; }; then
  echo "make test: CI=true needs Compose v2 and v1, found v2 '$v2' and v1 '$v1' (\`make compose-plugin\` installs v2, Debian's docker-compose v1)" >&2
  exit 1
fi
if [ -z "$v2$v1" ]; then
  echo "make test: neither \`docker compose\` nor \`docker-compose\` (1.x) answers" >&2
  exit 1
fi
if [ -n "$v2" ]; then
  DOCKER_COMPOSE="docker compose" "$python" -m acceptance.run --target docker --jobs 2 --keep-as docker "$@" || exit 1
else
  echo "make test: no Compose v2 (\`make compose-plugin\` installs it): the docker target ran on v1 only"
fi
if [ -n "$v1" ]; then
  DOCKER_COMPOSE=docker-compose "$python" -m acceptance.run --target docker --jobs 2 --keep-as docker-v1 "$@" || exit 1
else
  echo "make test: no Compose v1: the docker target ran on v2 only"
fi
