# syntax=docker/dockerfile:1
# One image for every project service in docker-compose.yml: producer, consumer, the Dagster
# code location, webserver and daemon. Only the command and the environment differ.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home

# uv resolves this stack in seconds where pip takes minutes (docs/decisions/0002).
RUN pip install --no-cache-dir "uv>=0.5,<1" \
 && uv venv /opt/venv \
 && useradd --uid 10001 --create-home --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, in their own layer: code edits do not reinstall them.
# dagster-postgres: the compose instance keeps runs and the sensor cursor in PostgreSQL.
COPY pyproject.toml uv.lock README.md LICENSE NOTICE ./
# The locked versions CI tested (uv.lock), exported for the system interpreter.
RUN uv export --locked --no-hashes --no-emit-project --extra snowflake -o /tmp/requirements.txt \
 && uv pip install -r /tmp/requirements.txt "dagster-postgres>=0.29,<0.30"

COPY streaming/ streaming/
COPY spotify_dagster/ spotify_dagster/
COPY dbt_spotify/ dbt_spotify/
COPY deploy/healthcheck.py deploy/healthcheck.py
# Editable, so spotify_dagster finds dbt_spotify/ beside it (environment.REPO_ROOT = /app).
RUN uv pip install --no-deps --editable .

# Bake the dbt component's state (the parsed manifest): the code server builds the asset
# graph from it without parsing at start. Parsing opens no connection.
RUN DBT_TARGET=local DUCKDB_PATH=/tmp/parse.duckdb dg utils refresh-defs-state \
 && test -s dbt_spotify/target/manifest.json

COPY deploy/dagster.compose.yaml ${DAGSTER_HOME}/dagster.yaml
COPY deploy/workspace.compose.yaml /opt/dagster/workspace.yaml

# Mount points exist and belong to the app user, so named volumes start out writable by it.
# dbt writes run artifacts and logs into its project directory.
RUN mkdir -p /data/warehouse "${DAGSTER_HOME}/storage" \
 && chown -R app:app /data "${DAGSTER_HOME}" /app/dbt_spotify

USER app
EXPOSE 3000 4000
CMD ["dagster", "code-server", "start", "-m", "spotify_dagster.definitions", "-h", "0.0.0.0", "-p", "4000"]
