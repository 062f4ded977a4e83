-- Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d).
-- Dagster uses $POSTGRES_DB; Metabase keeps its own application data in a separate database;
-- the DuckLake lakehouse keeps its catalog in `lake` (docs/decisions/0011).
CREATE DATABASE metabase;
CREATE DATABASE lake;
