"""docker-compose.yml, the Dockerfile and the compose Dagster instance, checked without Docker.

CI has no Docker engine, so these tests pin what can be read from the files: the compose file
is valid Compose Specification (before and after interpolation), secrets have no defaults,
every variable is documented, ports bind loopback only, long-running services have health
checks, and every command, file and config the containers rely on exists in the project.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"
INSTANCE = ROOT / "deploy" / "dagster.compose.yaml"
WORKSPACE = ROOT / "deploy" / "workspace.compose.yaml"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt};
# `$$` is a literal dollar sign.
_VAR = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|ROOT_USER|ACCESS_KEY")
# Required in .env for compose, i.e. written as ${NAME:?...}.
REQUIRED_SECRETS = {
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}
# Images of this project; the others are upstream images (Kafka, MinIO, PostgreSQL, Metabase).
APP_IMAGE_PREFIX = "spotify-dagster:"


class MissingVariable(ValueError):
    pass


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution, enough of it for this file."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["plain"]:
            return env.get(match["plain"], "")
        parsed = _BRACED.match(match["braced"])
        assert parsed, f"unsupported substitution ${{{match['braced']}}}"
        name, op, arg = parsed["name"], parsed["op"], parsed["arg"] or ""
        current = env.get(name)
        unset_or_empty = not current
        missing = unset_or_empty if op and op.startswith(":") else current is None
        if op in (":-", "-"):
            return arg if missing else str(current)
        if op in (":?", "?"):
            if missing:
                raise MissingVariable(f"{name}: {arg}")
            return str(current)
        if op in (":+", "+"):
            return "" if missing else arg
        return current or ""

    return _VAR.sub(substitute, value)


def walk(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, value) of every string scalar in a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, env) for value in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def substitutions(text: str) -> Iterator[tuple[str, str | None, str]]:
    """(name, operator, argument) of each ${...} or $NAME in ``text``."""
    for match in _VAR.finditer(text):
        if match["plain"]:
            yield match["plain"], None, ""
        elif match["braced"] is not None:
            parsed = _BRACED.match(match["braced"])
            assert parsed, f"unsupported substitution ${{{match['braced']}}}"
            yield parsed["name"], parsed["op"], parsed["arg"] or ""


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            pairs[name.strip()] = value.strip()
    return pairs


def readme_settings() -> set[str]:
    """Variable names in the first column of README.md's settings table."""
    section = README.read_text().split("## Settings", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    return names


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def compose_spec() -> jsonschema.protocols.Validator:
    # The Compose Specification schema as vendored by check-jsonschema (dev extra), which
    # updates it from compose-spec/compose-spec; license in its vendor/licenses directory.
    vendor = files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())
    assert schema["title"] == "Compose Specification"
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    return validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)


def sample_env() -> dict[str, str]:
    """.env.example with the required secrets filled in, as a user's .env would be."""
    env = env_example()
    env.update({name: f"not-a-real-{name.lower()}" for name in REQUIRED_SECRETS})
    return env


def one_shot(service: Mapping[str, Any]) -> bool:
    return service.get("restart") == "no"


def command_of(service: Mapping[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


# --- the file is valid Compose ------------------------------------------------------------


def test_compose_file_is_valid_compose_spec_as_written(compose, compose_spec):
    errors = [f"{e.json_path}: {e.message}" for e in compose_spec.iter_errors(compose)]
    assert not errors, "\n".join(errors)


def test_compose_file_is_valid_compose_spec_after_interpolation(compose, compose_spec):
    resolved = interpolate_tree(compose, sample_env())
    errors = [f"{e.json_path}: {e.message}" for e in compose_spec.iter_errors(resolved)]
    assert not errors, "\n".join(errors)
    ports = resolved["services"]["webserver"]["ports"]
    assert ports == ["127.0.0.1:3000:3000"]


def test_compose_spec_validation_rejects_a_broken_file(compose, compose_spec):
    # The schema is strict enough to catch a misspelt key (guards against a no-op schema).
    broken = json.loads(json.dumps(compose))
    broken["services"]["kafka"]["helthcheck"] = broken["services"]["kafka"].pop("healthcheck")
    assert list(compose_spec.iter_errors(broken))


# --- settings and secrets -----------------------------------------------------------------


def test_compose_refuses_to_start_without_each_secret(compose):
    for name in sorted(REQUIRED_SECRETS):
        env = sample_env()
        env[name] = ""
        with pytest.raises(MissingVariable, match=name):
            interpolate_tree(compose, env)


def test_secrets_have_no_default_in_the_compose_file(compose_text):
    for name, op, arg in substitutions(compose_text):
        if _SECRET_NAME.search(name):
            assert op in (":?", "?") or (op in (":-", "-") and arg == ""), (
                f"${{{name}{op or ''}{arg}}}: a secret must be required or default to empty"
            )
    for name in REQUIRED_SECRETS:
        assert f"${{{name}:?" in compose_text, f"{name} should be required (${{{name}:?...}})"


def test_no_literal_secrets_in_environment_values(compose):
    for path, value in walk(compose):
        key = path.rsplit(".", 1)[-1]
        if _SECRET_NAME.search(key.upper()) or key.upper().endswith(("_PASS", "_PWD")):
            assert _VAR.fullmatch(value), f"{path} is a literal {value!r}; take it from .env"


def test_every_variable_is_documented_in_env_example(compose_text):
    documented = set(env_example())
    used = {name for name, _, _ in substitutions(compose_text)}
    assert used - documented == set()


def test_every_variable_is_in_the_readme_settings_table(compose_text):
    used = {name for name, _, _ in substitutions(compose_text)}
    missing = sorted(used - readme_settings())
    assert not missing, f"add to README.md's settings table: {missing}"


def test_in_stack_endpoints_are_fixed_not_taken_from_the_host_env(services):
    # .env.example's endpoints are the published ports on 127.0.0.1, wrong inside the stack.
    for name in ("producer", "consumer"):
        assert services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    for name in ("consumer", "code-location"):
        assert services[name]["environment"]["S3_ENDPOINT_URL"] == "http://minio:9000"


def test_lake_catalog_is_the_stacks_postgres_and_its_data_the_bucket(services):
    """WAREHOUSE=local in compose: the DuckLake catalog in the `lake` database that
    postgres-init.sql creates, the Parquet files in MinIO's bucket (docs/decisions/0011)."""
    env = services["code-location"]["environment"]
    assert env["WAREHOUSE"].startswith("${WAREHOUSE:-local}")
    dsn = dict(re.findall(r"(\w+)=(\$\{[^}]*\}|\S+)", env["LAKE_CATALOG"]))
    assert dsn["host"] == "postgres" and dsn["dbname"] == "lake"
    assert dsn["password"].startswith("${POSTGRES_PASSWORD:?")  # from .env, never literal
    assert env["LAKE_DATA_PATH"] == "s3://${S3_BUCKET:-spotify-landing}/lake/"
    init = (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert "CREATE DATABASE lake;" in init


# --- network, health and start order ------------------------------------------------------


def test_published_ports_bind_loopback_only(services):
    published = 0
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"
            published += 1
    assert published >= 4


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if one_shot(service):
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name}: no healthcheck"


def test_dependencies_wait_for_health_or_completion(services):
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for dep, spec in depends_on.items():
            wanted = (
                "service_completed_successfully" if one_shot(services[dep]) else "service_healthy"
            )
            assert spec.get("condition") == wanted, f"{name} -> {dep}"


def test_topic_and_bucket_exist_before_the_streaming_services_start(services):
    assert "kafka-init" in services["producer"]["depends_on"]
    assert {"kafka-init", "minio-init"} <= set(services["consumer"]["depends_on"])
    assert "minio-init" in services["code-location"]["depends_on"]
    init = " ".join(command_of(services["kafka-init"]))
    assert "--create" in init and "--if-not-exists" in init and "${KAFKA_PARTITIONS:-3}" in init


def test_kafka_runs_in_kraft_mode_without_zookeeper(services):
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert not any("zookeeper" in name for name in services)
    assert not any("ZOOKEEPER" in key for key in env)


def test_state_lives_on_named_volumes(compose, services):
    declared = set(compose["volumes"])
    wanted = {"kafka", "minio", "postgres", "code-location"}
    for name in wanted:
        named = {
            str(v).split(":", 1)[0]
            for v in services[name].get("volumes", [])
            if not str(v).startswith(".")
        }
        assert named and named <= declared, f"{name}: {named}"


def test_warehouse_file_is_on_the_volume_the_runs_write(services):
    code = services["code-location"]
    duckdb_dir = str(Path(code["environment"]["DUCKDB_PATH"]).parent)
    assert f"warehouse:{duckdb_dir}" in code["volumes"]
    # Nothing else may write the DuckDB file: one writer process at a time.
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if str(volume).startswith("warehouse:") and name != "code-location":
                assert str(volume).endswith(":ro"), f"{name} mounts the warehouse writable"


def test_bind_mounted_files_exist(services):
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).is_file(), f"{name}: {source} missing"


# --- commands exist in the project --------------------------------------------------------


def test_streaming_service_modules_have_a_main(services):
    for name in ("producer", "consumer"):
        argv = command_of(services[name])
        assert argv[:2] == ["python", "-m"], f"{name}: {argv}"
        module = importlib.import_module(argv[2])
        assert callable(getattr(module, "main", None)), f"{argv[2]} has no main()"


def test_dagster_console_scripts_are_installed(services):
    scripts = {ep.name for ep in importlib.metadata.entry_points(group="console_scripts")}
    for name, service in services.items():
        if not str(service.get("image", "")).startswith(APP_IMAGE_PREFIX):
            continue
        program = command_of(service)[0]
        assert program == "python" or program in scripts, f"{name}: {program} not installed"
        for part in service["healthcheck"]["test"][1:2]:
            assert part == "python" or part in scripts, f"{name}: healthcheck {part}"


def test_code_location_serves_the_definitions_module_the_workspace_points_at(services):
    argv = command_of(services["code-location"])
    assert argv[:3] == ["dagster", "code-server", "start"]
    module = argv[argv.index("-m") + 1]
    assert importlib.util.find_spec(module) is not None
    port = int(argv[argv.index("-p") + 1])
    (location,) = yaml.safe_load(WORKSPACE.read_text())["load_from"]
    grpc = location["grpc_server"]
    assert (grpc["host"], grpc["port"]) == ("code-location", port)
    assert str(port) in services["code-location"]["healthcheck"]["test"]


def test_app_services_share_one_image_built_from_the_dockerfile(services):
    app = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("spotify")}
    assert set(app) == {"code-location", "webserver", "daemon", "producer", "consumer"}
    for name, service in app.items():
        assert service["build"]["dockerfile"] == "Dockerfile", name


# --- Dockerfile ---------------------------------------------------------------------------


def dockerfile_copies() -> list[tuple[list[str], str]]:
    copies = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY "):
            parts = [p for p in shlex.split(line)[1:] if not p.startswith("--")]
            copies.append((parts[:-1], parts[-1]))
    return copies


def dockerignored(path: str) -> bool:
    """Approximates Docker's rule: the last pattern matching the path or a parent wins."""
    excluded = False
    candidates = [path.rstrip("/")]
    while "/" in candidates[-1]:
        candidates.append(candidates[-1].rsplit("/", 1)[0])
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/").removeprefix("**/")
        if any(
            fnmatch.fnmatch(c, pattern) or fnmatch.fnmatch(c, f"*/{pattern}") for c in candidates
        ):
            excluded = not include
    return excluded


def test_dockerfile_copy_sources_exist_and_reach_the_build_context():
    copies = dockerfile_copies()
    assert copies
    for sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repo"
            assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    for path in (".env", ".venv", ".git", "data/warehouse.duckdb", "dbt_spotify/target", ".local"):
        assert dockerignored(path), path


def test_dockerfile_runs_as_non_root_installs_the_lock_and_bakes_the_dbt_state():
    text = DOCKERFILE.read_text()
    assert text.startswith("# syntax=") and "FROM python:3.11-slim" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "--extra snowflake" in text and "refresh-defs-state" in text and "--locked" in text
    assert "dagster.compose.yaml ${DAGSTER_HOME}/dagster.yaml" in text


# --- Dagster instance ---------------------------------------------------------------------


def test_compose_instance_config_is_a_valid_dagster_instance(tmp_path):
    from dagster._core.instance.config import dagster_instance_config

    shutil.copy(INSTANCE, tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    assert "run_launcher" not in config  # DefaultRunLauncher: runs in the code location
    # The default QueuedRunCoordinator, dequeuing every second (concurrency sets its limits).
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_coordinator"]["config"]["dequeue_interval_seconds"] == 1
    assert config["concurrency"]["runs"]["max_concurrent_runs"] >= 2


def test_compose_instance_stores_in_postgres_from_the_environment():
    from dagster._config import validate_config
    from dagster_postgres import DagsterPostgresStorage

    storage = yaml.safe_load(INSTANCE.read_text())["storage"]["postgres"]
    result = validate_config(DagsterPostgresStorage.config_type(), storage)
    assert result.success, result.errors
    db = storage["postgres_db"]
    for key in ("username", "password", "hostname", "db_name"):
        assert isinstance(db[key], dict) and "env" in db[key], f"{key} must come from env"


def test_compose_instance_queues_duckdb_file_runs_and_pools_dbt():
    """Runs on a DuckDB file queue one at a time; on the lake they run side by side and
    only the dbt step waits for the one slot of its pool."""
    from spotify_dagster.defs.bronze.jobs import WAREHOUSE_TAG

    config = yaml.safe_load(INSTANCE.read_text())
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert limits == [{"key": WAREHOUSE_TAG, "value": "duckdb", "limit": 1}]
    assert config["concurrency"]["pools"] == {"granularity": "op", "default_limit": 1}
    dbt_defs = ROOT / "spotify_dagster" / "defs" / "transform" / "dbt" / "defs.yaml"
    assert yaml.safe_load(dbt_defs.read_text())["attributes"]["op"]["pool"] == "dbt_spotify"
    # An orphaned run must not hold that one slot forever.
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["max_runtime_seconds"] > 0
    # Nor a pool slot its killed step claimed.
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


def test_instance_env_vars_are_set_in_every_dagster_container(services):
    wanted = {
        v["env"]
        for v in yaml.safe_load(INSTANCE.read_text())["storage"]["postgres"]["postgres_db"].values()
        if isinstance(v, dict)
    }
    for name in ("code-location", "webserver", "daemon"):
        assert wanted <= set(services[name]["environment"]), name


# --- helper scripts -----------------------------------------------------------------------


def test_minio_init_script_is_valid_sh():
    subprocess.run(["sh", "-n", str(ROOT / "deploy" / "minio-init.sh")], check=True)


def test_healthcheck_script_checks_http_and_rejects_unknown_checks():
    import http.server
    import threading

    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy" / "healthcheck.py")
    assert spec and spec.loader
    healthcheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(healthcheck)

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert healthcheck.main(["http", f"http://127.0.0.1:{port}/server_info"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    assert healthcheck.main(["http", f"http://127.0.0.1:{port}/"]) == 1  # closed now
    assert healthcheck.main(["nope"]) == 2
    assert healthcheck.main([]) == 2
