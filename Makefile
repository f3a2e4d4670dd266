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
ACCEPT_ARGS := $(if $(TARGET),--target $(TARGET)) $(if $(MANIFEST),--manifest $(MANIFEST)) \
	$(if $(JOBS),--jobs $(JOBS)) $(if $(SHARD),--shard $(SHARD)) $(if $(REPORTS_DIR),--reports-dir $(REPORTS_DIR)) \
	$(if $(TAGS),--tags '$(TAGS)') $(if $(REDIS_URL),-D redis_url=$(REDIS_URL)) $(if $(PKI_DIR),-D pki_dir=$(PKI_DIR)) \
	$(if $(SECURITY),-D security=$(SECURITY)) $(FEATURES)
EXAMPLES_STATE := .stack/examples
STACK := $(PY) -m acceptance.stack

.PHONY: setup proto proto-check lint unit accept merge shards test selftest images stack stack-down report clean examples steps soak

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-services.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

proto: $(VENV)/.installed
	$(PY) scripts/gen_proto.py

proto-check: $(VENV)/.installed
	$(PY) scripts/gen_proto.py --check

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

# Local with four workers, then docker (two workers) and swarm when an engine answers (they must run when
# CI=true); two local shards merged into one verdict; the example stack; the suite's sensitivity on the seeded
# defects marked `CI: yes` (each run ends at its first failure), and a 40 s soak.
test: setup proto-check lint unit
	$(PY) -m acceptance.run --target local --jobs 4 --keep-as local $(if $(TAGS),--tags '$(TAGS)')
	@if docker info >/dev/null 2>&1; then \
	  $(PY) -m acceptance.run --target docker --jobs 2 --keep-as docker $(if $(TAGS),--tags '$(TAGS)') && \
	  $(PY) -m acceptance.run --target swarm --keep-as swarm $(if $(TAGS),--tags '$(TAGS)'); \
	elif [ "$${CI:-}" = true ]; then \
	  echo "make test: CI=true but no docker engine answers \`docker info\`: the docker and swarm targets did not run" >&2; exit 1; \
	else \
	  echo "make test: no docker engine answers \`docker info\`: the docker and swarm targets were NOT run"; \
	fi
	$(MAKE) --no-print-directory shards
	$(MAKE) --no-print-directory examples
	$(PY) -m acceptance.selftest --subset ci --stop-at-first
	$(MAKE) --no-print-directory soak SOAK_S=40

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
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m benchmarks.run

SOAK_S ?= 120
# A bounded soak of a local stack under load, chaos, a rolling restart of every service, a Redis restart and registry
# damage: fails on a lost order, a growing service or a leak; table on stdout, reports/soak.json.
soak: $(VENV)/.installed
	$(PY) -m benchmarks.soak --duration $(SOAK_S)

clean:
	rm -rf reports/allure-results reports/allure-report reports/junit reports/signoff.* reports/logs reports/workers \
	  reports/rerun reports/shards
