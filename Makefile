# Every target creates the virtual environment it needs; `make dev` and `make test` are
# the only commands a fresh machine needs (Python 3.11 and network access to PyPI).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EVENTS ?= 20000
RATE ?= 5000
STAMP  := $(VENV)/.installed-stamp
# dagster-dbt's manifest state (dg utils refresh-defs-state), rebuilt when dbt files change.
DEFS_STATE := $(VENV)/.defs-state-stamp
DBT_FILES  := $(shell find dbt_spotify/models dbt_spotify/macros dbt_spotify/tests -type f) \
              dbt_spotify/dbt_project.yml dbt_spotify/profiles.yml

.PHONY: install dev dev-reset demo test test-fast lint typecheck format bench bench-throughput clean

$(STAMP): pyproject.toml uv.lock Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# uv installs the locked versions CI tested, in seconds (docs/decisions/0002).
	# A venv made by another tool may lack pip: bootstrap it from the standard library.
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"
	# --compile-bytecode: uv does not write .pyc files by default, and Python cannot write
	# them either where PYTHONDONTWRITEBYTECODE is set (CI images, Docker); every process
	# (each dbt build, each run worker) then compiled dbt and Dagster from source again
	# (docs/decisions/0022).
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --quiet --locked --all-extras --compile-bytecode --python $(BIN)/python
	touch $(STAMP)

$(DEFS_STATE): $(STAMP) $(DBT_FILES)
	$(BIN)/dg utils refresh-defs-state
	touch $(DEFS_STATE)

install: $(STAMP) $(DEFS_STATE)

dev: install ## the whole stack with the Dagster UI on http://127.0.0.1:3000
	$(BIN)/python -m spotify_local dev

dev-reset: install ## wipe the durable state of make dev (.local/dev), saying what goes
	$(BIN)/python -m spotify_local reset

demo: install ## push EVENTS events at RATE/s through the whole path, print a JSON summary
	$(BIN)/python -m spotify_local demo --events $(EVENTS) --rate $(RATE)

test: install ## unit, integration and end-to-end tests (they start their own services)
	$(BIN)/pytest

test-fast: install ## unit tests only, in seconds (no services, no dbt)
	$(BIN)/pytest -m "not integration and not reliability" -q

lint: install typecheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint dbt_spotify/models dbt_spotify/tests dbt_spotify/macros
	$(BIN)/dg check defs
	$(BIN)/dagster definitions validate -w workspace.yaml

typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/sqlfluff fix dbt_spotify/models

bench: install ## on-demand benchmarks; writes bench/results/report.md
	$(BIN)/python -m bench.run

bench-throughput: install ## issue #12's stages only (produce, land, Bronze, sensor; ~11 min)
	$(BIN)/python -m bench.run --stages produce,consume,bronze,sensor

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache dbt_spotify/target dbt_spotify/logs .local data \
		spotify_dagster/defs/.local_defs_state
