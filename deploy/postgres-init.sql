-- Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d).
-- Dagster uses $POSTGRES_DB; Metabase keeps its own application data in a separate database.
CREATE DATABASE metabase;
