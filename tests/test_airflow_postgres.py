"""The project's Airflow settings with PostgreSQL metadata (what docker-compose.yml runs, minus
Celery): Debian's PostgreSQL started for the test (initdb in a temp dir, loopback, free port),
`python -m focuslake.airflow_env --setup` (airflow db migrate + the warehouse_writer pool)
against it, then a DAG run (`airflow dags test`, which also serializes every DAG) recorded in it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from pg_server import PostgresServer, pg_bindir

from focuslake.airflow_env import airflow_env
from focuslake.config import PROJECT_ROOT, Paths

pytestmark = pytest.mark.slow
ALL_DAGS = {"focus_ingest", "focus_transform", "focus_quality", "focus_publish", "focus_maintenance", "focus_forget_user",
            "focus_export", "focus_metrics_hourly", "focus_metrics_daily", "focus_metrics_weekly", "focus_metrics_monthly"}


@pytest.fixture(scope="module")
def pg():
    if pg_bindir() is None:
        pytest.fail("Debian's postgresql package is required (Makefile APT_PACKAGES; make sysdeps)")
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pg_airflow(pg, tmp_path_factory):
    root = tmp_path_factory.mktemp("airflow-pg")
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    base.update(FOCUSLAKE_AIRFLOW_DB=pg.url, FOCUSLAKE_DATA=str(root / "data"))
    env = {**base, **airflow_env(root / "home", environ=base)}
    setup = subprocess.run([sys.executable, "-m", "focuslake.airflow_env", "--home", str(root / "home"), "--setup",
                            "--no-dbt-parse"], env=base, cwd=PROJECT_ROOT, capture_output=True, text=True,
                           timeout=600, check=False)
    assert setup.returncode == 0, setup.stderr[-4000:]
    return env


def _airflow(env, *args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_setup_migrates_postgres_and_creates_the_pool(pg, pg_airflow):
    assert pg_airflow["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == pg.url
    assert pg.psql("SELECT count(*) FROM alembic_version").strip() == "1"
    assert int(pg.psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")) > 40
    assert pg.psql("SELECT slots, description FROM slot_pool WHERE pool = 'warehouse_writer'").strip() == \
        "1|DuckDB allows one writer process"
    out = _airflow(pg_airflow, "config", "get-value", "core", "executor")
    assert out.stdout.strip() == "LocalExecutor", out.stderr[-2000:]


def test_a_dag_run_is_recorded_in_postgres(pg, pg_airflow):
    """`airflow dags test focus_maintenance` on a warehouse with mostly free blocks: compacted;
    every DAG serialized, and the run's task states and pools stored, in PostgreSQL."""
    paths = Paths(Path(pg_airflow["FOCUSLAKE_DATA"])).ensure()
    con = duckdb.connect(str(paths.warehouse))
    con.execute("CREATE SCHEMA gold; "
                "CREATE TABLE gold.t AS SELECT range AS i, repeat('y', 40) || range AS s FROM range(300000)")
    con.execute("DELETE FROM gold.t WHERE i >= 100; CHECKPOINT")
    con.close()
    size = paths.warehouse.stat().st_size
    run = _airflow(pg_airflow, "dags", "test", "focus_maintenance")
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    rows = pg.psql("SELECT task_id, state, pool FROM task_instance WHERE dag_id = 'focus_maintenance' ORDER BY 1")
    assert rows.split() == ["maintain_warehouse|success|warehouse_writer",
                            "remove_orphan_temp_files|success|default_pool",
                            "retention|success|warehouse_writer"]
    assert pg.psql("SELECT state FROM dag_run WHERE dag_id = 'focus_maintenance'").split() == ["success"]
    # `dags test` synced the whole DAG folder into PostgreSQL first: every DAG, no import error
    assert set(pg.psql("SELECT dag_id FROM serialized_dag").split()) == ALL_DAGS
    assert pg.psql("SELECT count(*) FROM import_error").strip() == "0"
    assert paths.warehouse.stat().st_size < size / 2
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    assert con.execute("SELECT count(*), sum(i) FROM gold.t").fetchone() == (100, 4950)
    con.close()
