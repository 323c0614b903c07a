"""The project's Airflow settings, in one place.

Airflow reads its configuration from ``AIRFLOW__SECTION__KEY`` environment variables, which win
over ``$AIRFLOW_HOME/airflow.cfg``. Everything the project needs is returned by
:func:`airflow_env` so the Makefile, the tests and a person's shell all run the same Airflow:

    eval "$(.venv/bin/python -m focuslake.airflow_env)"        # export the settings
    .venv/bin/python -m focuslake.airflow_env --setup            # db migrate + pool + dbt parse

Settings (see the values below for the exact keys):
- a project-local ``AIRFLOW_HOME`` (default ``<repo>/.airflow``, git-ignored) holding the SQLite
  metadata DB, logs, the generated ``airflow.cfg`` (with its JWT secret) and SimpleAuthManager's
  generated password file (plain text: local only, never committed);
- DAGs from ``<repo>/dags``; no example DAGs; LocalExecutor;
- the API server (UI) bound to 127.0.0.1, never 0.0.0.0;
- no telemetry from anything: :data:`focuslake.config.NO_TELEMETRY_ENV` plus OpenLineage off;
- ``FOCUSLAKE_DATA`` as an absolute path (Cosmos runs dbt from a temporary copy of the project,
  where the profile's relative default ``../data`` would point elsewhere), ``DBT_PROFILES_DIR``
  and ``DBT_PROJECT_DIR`` so ``dbt`` works from any directory.

This module must stay cheap to import and must not import Airflow: the environment has to be in
place before Airflow is first imported (Airflow reads its config once, at import).
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, PROJECT_ROOT, Paths

DEFAULT_AIRFLOW_HOME = PROJECT_ROOT / ".airflow"
DAGS_FOLDER = PROJECT_ROOT / "dags"
DBT_MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"

WAREHOUSE_POOL = "warehouse_writer"
WAREHOUSE_POOL_DESCRIPTION = "DuckDB allows one writer process"

# default_args of every project DAG. In Airflow 3.3 `retry_exponential_backoff` is a float
# multiplier (0 = off); `True` would count as 1.0, i.e. a constant delay.
DEFAULT_TASK_ARGS = {
    "owner": "focuslake",
    "retries": 2,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=5),
}

API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8080
# SQLite metadata (the embedded default): every Airflow process (scheduler, DAG processor, API
# server, task runners, the CLI) writes the one file, and sqlite3 gives up on a lock after 5 s by
# default -- an `airflow backfill create` beside a busy scheduler on a loaded 2-core machine failed
# with "database is locked". Wait up to 60 s instead (read by Airflow as
# [database] sql_alchemy_connect_args, an import path).
SQLITE_CONNECT_ARGS: dict = {"timeout": 60}


def dbt_executable() -> Path:
    """The dbt CLI of the interpreter running us (the project's virtualenv)."""
    return Path(sys.executable).parent / "dbt"


def airflow_env(home: Path | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment variables for the project's Airflow (and the dbt it runs).

    ``home`` defaults to ``<repo>/.airflow``. ``FOCUSLAKE_DATA`` is taken from the current
    environment (default ``<repo>/data``) and made absolute. ``FOCUSLAKE_AIRFLOW_PORT`` picks the
    API server's port (default 8080); ``FOCUSLAKE_AIRFLOW_DB`` a metadata database URL other than the
    SQLite file in ``home`` (e.g. PostgreSQL). ``environ`` (default ``os.environ``) is where those
    are read.
    """
    environ = os.environ if environ is None else environ
    home = Path(home or DEFAULT_AIRFLOW_HOME).resolve()
    port = int(environ.get("FOCUSLAKE_AIRFLOW_PORT", DEFAULT_API_PORT))
    base_url = f"http://{API_HOST}:{port}"
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
        # Metadata DB: SQLite in AIRFLOW_HOME (four slashes = absolute path), the embedded default;
        # FOCUSLAKE_AIRFLOW_DB=postgresql+psycopg2://user:password@host:port/db for PostgreSQL.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": environ.get("FOCUSLAKE_AIRFLOW_DB") or f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # Safe mode stays on (the default): DAG files must mention "airflow" and "dag".
        "AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE": "True",
        # The asset-chained DAGs only run when unpaused; this is a single-user local product.
        # (Tests of a running scheduler set it to True in the environment to run only what they test.)
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": environ.get("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # UI / API server: loopback only. Workers reach the execution API on the same address.
        "AIRFLOW__API__HOST": API_HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        # Login (SimpleAuthManager, user admin): the password file lives in AIRFLOW_HOME, mode
        # 0600, never committed; `python -m focuslake.airflow_ui` fills it (AIRFLOW_ADMIN_PASSWORD
        # or a generated one). Named explicitly so every Airflow process reads the same file.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "simple_auth_manager_passwords.json.generated"),
        # Re-parse an unchanged DAG file every 2 minutes instead of every 30 s: the Cosmos DAG files
        # cost about a second of CPU each, and the metrics DAGs change only when dbt models do.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "120",
        # Cosmos keeps its partial-parse / dbt ls caches here instead of the shared /tmp/cosmos.
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos_cache"),
        # No lineage events either (the openlineage client is installed as a Cosmos dependency).
        "OPENLINEAGE_DISABLED": "true",
        "AIRFLOW__OPENLINEAGE__DISABLED": "True",
        # Cosmos reads [openlineage] namespace at import and warns at every parse when unset.
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "focuslake",
        # `airflow dags ... -o json` prints this warning (graphviz is not installed) on stdout,
        # before the JSON: hide just this one so the CLI's output stays machine-readable.
        "PYTHONWARNINGS": "ignore:Could not import graphviz",
        # The project's data root and dbt.
        "FOCUSLAKE_DATA": str(Path(environ.get("FOCUSLAKE_DATA", PROJECT_ROOT / "data")).resolve()),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
    }
    if env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite"):
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = "focuslake.airflow_env.SQLITE_CONNECT_ARGS"
    # `airflow standalone` starts its components as `airflow ...` through PATH (FileNotFoundError
    # when the virtualenv is not activated); Cosmos also looks dbt up on PATH.
    venv_bin = str(Path(sys.executable).parent)
    path = environ.get("PATH", "")
    if path.split(os.pathsep)[0] != venv_bin:
        env["PATH"] = os.pathsep.join([venv_bin, path]) if path else venv_bin
    # Telemetry off: dbt, Great Expectations, Cosmos (its own flag + DO_NOT_TRACK +
    # SCARF_NO_ANALYTICS, all three checked by cosmos.telemetry.should_emit), Airflow.
    env.update(NO_TELEMETRY_ENV)
    return env


def apply_airflow_env(home: Path | None = None) -> dict[str, str]:
    """Set :func:`airflow_env` in ``os.environ`` (call before Airflow is first imported)."""
    env = airflow_env(home)
    os.environ.update(env)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def export_lines(env: dict[str, str]) -> str:
    """``export K=V`` lines, shell-quoted, for ``eval "$(python -m focuslake.airflow_env)"``."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())


# Runs inside a subprocess that has the project's Airflow environment (see setup_airflow).
_SETUP_SCRIPT = """
import sys
# What every `airflow` CLI command does first: write $AIRFLOW_HOME/airflow.cfg once, with the
# generated fernet key and JWT secret that all Airflow processes must share.
from airflow.configuration import write_default_airflow_configuration_if_needed
write_default_airflow_configuration_if_needed()
from airflow.utils import db
db.upgradedb()  # what `airflow db migrate` runs; idempotent
from airflow.models.pool import Pool
Pool.create_or_update_pool(name=sys.argv[1], slots=1, description=sys.argv[2], include_deferred=False)
"""


_DBT_SOURCES = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml", "selectors.yml",
                "models", "macros", "seeds", "snapshots", "tests", "analyses")


def dbt_manifest_is_fresh(project_dir: Path = DBT_PROJECT_DIR) -> bool:
    """True if ``target/manifest.json`` exists and is newer than every file dbt parses.

    The transform DAG renders from the manifest only when it is fresh: a stale one would
    silently leave new models out of Airflow. A stat() walk of the project: about a millisecond.
    """
    manifest = project_dir / "target" / "manifest.json"
    try:
        built = manifest.stat().st_mtime
    except FileNotFoundError:
        return False
    for name in _DBT_SOURCES:
        path = project_dir / name
        if not path.exists():
            continue
        files = [path] if path.is_file() else (p for p in path.rglob("*") if p.is_file())
        if any(f.stat().st_mtime > built for f in files):
            return False
    return True


def dbt_parse(env: dict[str, str] | None = None) -> Path:
    """Write ``dbt_project/target/manifest.json`` (what the transform DAG renders its tasks from)."""
    env = {**os.environ, **(env or airflow_env())}
    cmd = [str(dbt_executable()), "parse", "--project-dir", str(DBT_PROJECT_DIR),
           "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(DBT_MANIFEST.parent)]
    proc = subprocess.run(cmd, check=False, env=env, cwd=DBT_PROJECT_DIR, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dbt parse failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return DBT_MANIFEST


def setup_airflow(home: Path | None = None, *, parse_dbt: bool = True) -> dict[str, str]:
    """Make the project's Airflow ready to run, idempotently.

    Creates the data root's folders, migrates the metadata DB (``airflow db migrate``), creates or
    updates the one-slot pool ``warehouse_writer`` and, unless ``parse_dbt`` is False, runs
    ``dbt parse`` so the transform DAG can render from the manifest. Airflow runs in a subprocess
    with :func:`airflow_env`, so this works from Make and from a test process alike.
    """
    env = airflow_env(home)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    Paths(Path(env["FOCUSLAKE_DATA"])).ensure()
    full_env = {**os.environ, **env}
    proc = subprocess.run(
        [sys.executable, "-c", _SETUP_SCRIPT, WAREHOUSE_POOL, WAREHOUSE_POOL_DESCRIPTION],
        check=False, env=full_env, cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"Airflow setup failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    if parse_dbt:
        dbt_parse(env)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m focuslake.airflow_env", description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=None, help="AIRFLOW_HOME (default: <repo>/.airflow)")
    parser.add_argument("--setup", action="store_true",
                        help="migrate the metadata DB, create the warehouse_writer pool, run dbt parse")
    parser.add_argument("--no-dbt-parse", action="store_true", help="with --setup: skip dbt parse")
    args = parser.parse_args(argv)
    if args.setup:
        env = setup_airflow(args.home, parse_dbt=not args.no_dbt_parse)
        print(f"Airflow ready in {env['AIRFLOW_HOME']} (pool {WAREHOUSE_POOL}, data {env['FOCUSLAKE_DATA']})",
              file=sys.stderr)
        return 0
    sys.stdout.write(export_lines(airflow_env(args.home)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
