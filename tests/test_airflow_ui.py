"""`make airflow`'s launcher (focuslake.airflow_ui) without starting Airflow: the login password
(never in the repository), the banner; and docker-compose.yml checked like `docker compose
config` would (no Docker engine runs here). The running UI is tested in test_airflow_server.py."""
from __future__ import annotations

import json
import re
import stat
import subprocess

import pytest
import yaml

from focuslake import airflow_ui
from focuslake.airflow_env import airflow_env
from focuslake.config import PROJECT_ROOT


@pytest.fixture
def env(tmp_path):
    return airflow_env(tmp_path / "home", environ={"FOCUSLAKE_DATA": str(tmp_path / "data"),
                                                   "FOCUSLAKE_AIRFLOW_PORT": "18080"})


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_generates_a_private_password_once(env):
    how, password = airflow_ui.ensure_admin_password(env, environ={})
    path = airflow_ui.password_file(env)
    assert how == "generated" and len(password) >= 20
    assert json.loads(path.read_text()) == {"admin": password} and _mode(path) == 0o600
    banner = airflow_ui.login_banner(env, how, password)
    assert password in banner and str(path) in banner and "http://127.0.0.1:18080" in banner
    # later starts: same password, not shown again
    how2, shown = airflow_ui.ensure_admin_password(env, environ={})
    assert (how2, shown) == ("existing", None) and json.loads(path.read_text()) == {"admin": password}
    assert password not in airflow_ui.login_banner(env, how2, shown)


def test_password_from_the_environment(env):
    airflow_ui.ensure_admin_password(env, environ={})
    how, shown = airflow_ui.ensure_admin_password(env, environ={"AIRFLOW_ADMIN_PASSWORD": "correct horse battery"})
    path = airflow_ui.password_file(env)
    assert (how, shown) == ("environment", None)
    assert json.loads(path.read_text()) == {"admin": "correct horse battery"} and _mode(path) == 0o600
    assert "correct horse battery" not in airflow_ui.login_banner(env, how, shown)
    with pytest.raises(SystemExit, match="at least 8"):
        airflow_ui.ensure_admin_password(env, environ={"AIRFLOW_ADMIN_PASSWORD": "short"})


def test_a_damaged_password_file_is_reported_not_overwritten(env):
    path = airflow_ui.password_file(env)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(SystemExit, match="not valid JSON"):
        airflow_ui.ensure_admin_password(env, environ={})
    assert path.read_text() == "{not json"


def test_every_airflow_process_reads_the_same_password_file_in_airflow_home(env):
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith(env["AIRFLOW_HOME"] + "/")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"


def test_no_password_is_in_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert not [f for f in tracked if "passwords.json" in f or f.startswith(".airflow/") or f == ".env"]
    ignored = subprocess.run(["git", "check-ignore", ".airflow/simple_auth_manager_passwords.json.generated"],
                             check=False, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert ignored.returncode == 0, ".airflow/ must be git-ignored"


def test_make_airflow_runs_the_launcher():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    recipe = re.search(r"^airflow:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe and "focuslake.airflow_ui" in recipe.group(1)


# docker-compose.yml -----------------------------------------------------------------------------
COMPOSE_SERVICES = {"postgres", "redis", "airflow-init", "airflow-apiserver", "airflow-scheduler",
                    "airflow-dag-processor", "airflow-worker", "airflow-triggerer"}
AIRFLOW_COMMANDS = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                    "airflow-dag-processor": "dag-processor", "airflow-worker": "celery worker",
                    "airflow-triggerer": "triggerer"}
# Compose interpolation: $$ (a literal $), ${VAR}, ${VAR:-default}, ${VAR:?message}, ${VAR-d}, ${VAR?m}
_INTERP = re.compile(r"\$\$|\$\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?+])[^}]*)?\}|\$[A-Za-z_][A-Za-z0-9_]*")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def _strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def test_compose_services_are_the_documented_ones(compose):
    assert COMPOSE_SERVICES <= set(compose["services"])
    docs = (PROJECT_ROOT / "docs" / "airflow.md").read_text()
    for name in COMPOSE_SERVICES:
        assert f"`{name}`" in docs, f"docs/airflow.md does not name service {name}"
    all_docs = "\n".join(p.read_text() for p in (PROJECT_ROOT / "docs").glob("*.md"))
    for name in set(compose["services"]) - COMPOSE_SERVICES:  # other components' services (receiver...)
        assert f"`{name}`" in all_docs or f"compose exec {name}" in all_docs or f" {name} " in all_docs, name
    for name, command in AIRFLOW_COMMANDS.items():
        service = compose["services"][name]
        assert service["command"] == command
        assert service["image"] == "apache/airflow:3.3.2-python3.11"
        assert service["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_compose_runs_celery_with_postgres_and_redis_and_the_project_mounted(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:${POSTGRES_PASSWORD")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/focuslake/dags"
    assert env["FOCUSLAKE_DATA"] == "/opt/focuslake/data"
    assert "./:/opt/focuslake" in compose["services"]["airflow-worker"]["volumes"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")  # a real auth manager
    init = " ".join(compose["services"]["airflow-init"]["command"])
    assert "airflow db migrate" in init and "airflow pools set warehouse_writer 1" in init
    for key in ("AIRFLOW__USAGE_DATA_COLLECTION__ENABLED", "AIRFLOW__COSMOS__ENABLE_TELEMETRY"):
        assert env[key] == "False"
    assert env["DO_NOT_TRACK"] == "1" and env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"


def test_compose_binds_loopback_and_keeps_no_secret(compose):
    for service in compose["services"].values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port
    secret_keys = ("PASSWORD", "SECRET", "FERNET")
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(s in key for s in secret_keys):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), f"{name}.{key} must come from .env"
    conn = compose["services"]["airflow-worker"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "${POSTGRES_PASSWORD:?" in conn


def test_compose_interpolations_are_well_formed(compose):
    """What `docker compose config` rejects first: a malformed ${...}."""
    for text in _strings(compose):
        leftover = _INTERP.sub("", text)
        assert "$" not in leftover, f"malformed interpolation in {text!r}"



_WRITE_THROUGH_AIRFLOW = r"""
import sys, time
from airflow import settings
settings.configure_orm()
print("ready", flush=True)
sys.stdin.readline()  # the test holds the write lock now
t = time.monotonic()
with settings.engine.begin() as c:
    c.exec_driver_sql("INSERT INTO held (x) VALUES (1)")
print(round(time.monotonic() - t, 1), flush=True)
"""


@pytest.mark.parametrize("project_setting", [True, False], ids=["project-settings", "sqlite-default"])
def test_sqlite_metadata_waits_for_a_writer_instead_of_failing(tmp_path, project_setting):
    """Another process holding the SQLite metadata's write lock for 13 s (a busy scheduler): with
    the project's connect args an Airflow process waits and writes; with sqlite3's default it fails
    with "database is locked" (the positive control). (The default is 5 s per statement: a new
    connection's `PRAGMA journal_mode=WAL` waits 5 s, gives up quietly, then the INSERT waits 5 s
    more -- hence a hold longer than 10 s.)"""
    import os
    import sqlite3
    import sys
    import time

    env = airflow_env(tmp_path / "home", environ={"FOCUSLAKE_DATA": str(tmp_path / "data")})
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] == "focuslake.airflow_env.SQLITE_CONNECT_ARGS"
    env = {**os.environ, **env}
    if not project_setting:
        del env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"]
    (tmp_path / "home").mkdir()
    db = sqlite3.connect(tmp_path / "home" / "airflow.db", isolation_level=None)
    db.execute("CREATE TABLE held (x INTEGER)")
    proc = subprocess.Popen([sys.executable, "-c", _WRITE_THROUGH_AIRFLOW], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-2000:]
        db.execute("BEGIN EXCLUSIVE")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(13.0)
        db.execute("COMMIT")
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    rows = db.execute("SELECT count(*) FROM held").fetchone()[0]
    if project_setting:
        assert proc.returncode == 0, err[-2000:]
        assert rows == 1 and float(out.strip()) >= 12.5  # it waited for the lock
    else:
        assert proc.returncode != 0 and "database is locked" in err and rows == 0, (out, err[-1500:])
