# Every target creates the virtual environment it needs; `make dev` and `make test` are
# the only commands a fresh machine needs (Python 3.11 and network access to PyPI).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EVENTS ?= 20000
STAMP  := $(VENV)/.installed-stamp

.PHONY: install dev dev-reset demo test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# uv resolves this stack in seconds where pip takes minutes (docs/decisions/0002).
	# A venv made by another tool may lack pip: bootstrap it from the standard library.
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"
	$(BIN)/uv pip install --quiet -p $(BIN)/python -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

dev: install ## the whole stack with the Dagster UI on http://127.0.0.1:3000
	$(BIN)/python -m spotify_dagster.devstack dev

dev-reset: install ## wipe the durable state of make dev (.local/dev), saying what goes
	$(BIN)/python -m spotify_dagster.devstack reset

demo: install ## push EVENTS events through the whole path, print a JSON summary
	$(BIN)/python -m spotify_dagster.devstack demo --events $(EVENTS)

test: install ## unit, integration and end-to-end tests (they start their own services)
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint dbt_spotify/models dbt_spotify/tests dbt_spotify/macros

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/sqlfluff fix dbt_spotify/models

bench: install ## on-demand benchmarks; writes bench/results/report.md
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache dbt_spotify/target dbt_spotify/logs .local data
