#!/usr/bin/env bash
# The hashed locks in requirements/*.lock, made from requirements.txt and requirements/*.txt with uv:
#   scripts/lock.sh            # `make lock`: write them (pins already in a lock are kept; edit a .txt to change one)
#   scripts/lock.sh --check    # `make lock-check`: fail, with the difference, when a lock no longer matches its .txt
# Every lock resolves for CPython 3.11 and later on any platform (markers kept: the image's Python 3.11.2 needs
# async-timeout), and the services', bench and compose locks take the versions of requirements/dev.lock, so images,
# `make setup` and `make bench` run the same releases. The index is read as it was at requirements/resolved-at (which
# `make lock` sets to now): a file uploaded later to a pinned release would change its hashes, not the repository.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
uv=${UV:-$root/.venv/bin/uv}
LOCKS=(dev.lock services.lock bench.lock compose.lock)

compile() {  # compile IN LOCK [uv arguments], in a requirements folder
  local input=$1 lock=$2
  shift 2
  local as_of
  as_of=$(cat resolved-at)
  if ! "$uv" pip compile --quiet --generate-hashes --universal --python-version 3.11 --custom-compile-command "make lock" \
      --exclude-newer "$as_of" "$@" "$input" -o "$lock"; then
    echo "lock: uv could not resolve requirements/$input as of $as_of (is the package index reachable?)" >&2
    exit 1
  fi
}

lock() {  # in the requirements folder
  compile dev.txt dev.lock
  compile services.txt services.lock -c dev.lock
  compile bench.txt bench.lock -c dev.lock
  compile compose.txt compose.lock
}

if [ "${1:-}" != --check ]; then
  cd "$root/requirements"
  date -u +%Y-%m-%dT%H:%M:%SZ > resolved-at
  lock
  exit
fi
# A copy of the inputs and locks, locked again: the same paths, so only a real change differs.
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
cp "$root/requirements.txt" "$copy/"
cp -r "$root/requirements" "$copy/"
(cd "$copy/requirements" && lock)
for name in "${LOCKS[@]}"; do
  if ! diff -u "$root/requirements/$name" "$copy/requirements/$name"; then
    echo "lock-check: requirements/$name does not match what its .txt resolves to: run \`make lock\` and commit it" >&2
    exit 1
  fi
done
