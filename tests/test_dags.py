"""The Airflow DAGs: they load, are wired by assets, respect the warehouse's single writer, keep
every telemetry off, and really run.

Airflow is configured for the whole test session by tests/conftest.py (tmp AIRFLOW_HOME and
FOCUSLAKE_DATA, set before Airflow is imported); see tests/airflow_harness.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from airflow_harness import dags_folder, last_run, load_dagbag, prepare_airflow, run_dag

from focuslake.airflow_env import DBT_MANIFEST, WAREHOUSE_POOL, airflow_env, dbt_manifest_is_fresh
from focuslake.config import DBT_PROJECT_DIR, PROJECT_ROOT, Paths

EXPECTED_DAGS = {"focus_ingest", "focus_transform", "focus_quality", "focus_publish"}
# upstream DAG -> the DAG its outlet asset schedules
CHAIN = [("focus_ingest", "focus_transform"), ("focus_transform", "focus_quality"),
         ("focus_quality", "focus_publish")]
WAREHOUSE_DAGS = ("focus_transform", "focus_quality", "focus_publish")


@pytest.fixture(scope="module")
def dagbag(airflow_ready):
    return load_dagbag()


def _outlets(dag) -> list:
    return [o for t in dag.tasks for o in (t.outlets or [])]


# (a) ------------------------------------------------------------------------------------------
def test_dagbag_loads_exactly_the_pipeline_dags(dagbag):
    assert dagbag.import_errors == {}
    # Exact set: the DAG processor's safe mode skips files lacking "airflow" and "dag" silently.
    assert set(dagbag.dag_ids) == EXPECTED_DAGS
    assert Path(dags_folder()) == PROJECT_ROOT / "dags"


def test_every_dag_file_imports_airflow_sdk():
    for path in (PROJECT_ROOT / "dags").glob("*.py"):
        text = path.read_text()
        assert "from airflow.sdk import" in text, f"{path.name} must import from airflow.sdk (safe mode)"


def test_transform_renders_from_the_manifest(dagbag):
    from cosmos.constants import LoadMode

    assert DBT_MANIFEST.exists() and dbt_manifest_is_fresh()
    group = dagbag.dags["focus_transform"].task_group_dict["dbt"]
    assert group.dbt_graph.load_method == LoadMode.DBT_MANIFEST


def test_transform_runs_tests_after_each_model(dagbag):
    dag = dagbag.dags["focus_transform"]
    runs = {t.task_id for t in dag.tasks if t.task_id.endswith(".run")}
    tests = [t for t in dag.tasks if t.task_id.endswith(".test")]
    assert runs, "no dbt model rendered"
    for test in tests:
        run_id = test.task_id.removesuffix(".test") + ".run"
        if run_id in runs:  # a model's tests come right after the model
            assert run_id in test.upstream_task_ids
    # warehouse_built (the outlet) waits for every dbt task
    built = dag.get_task("warehouse_built")
    assert {t.task_id for t in dag.tasks if t.task_id.startswith("dbt.")} <= built.get_flat_relative_ids(
        upstream=True)


def test_every_dag_and_task_is_documented_tagged_and_retried(dagbag):
    for dag in dagbag.dags.values():
        assert dag.doc_md and dag.doc_md.strip(), dag.dag_id
        assert "focuslake" in dag.tags, dag.dag_id
        for task in dag.tasks:
            assert task.doc_md and task.doc_md.strip(), f"{dag.dag_id}.{task.task_id} has no doc_md"
            assert task.retries == 2, f"{dag.dag_id}.{task.task_id}"
            # Airflow 3.3: a float multiplier; True (== 1.0) would mean a constant delay
            assert task.retry_exponential_backoff >= 2, f"{dag.dag_id}.{task.task_id}"


def test_ingest_schedule_every_five_minutes_without_catchup(dagbag):
    dag = dagbag.dags["focus_ingest"]
    assert dag.timetable.expression == "*/5 * * * *"
    assert dag.catchup is False


# (b) ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("upstream", "downstream"), CHAIN)
def test_downstream_is_scheduled_on_exactly_the_upstream_outlet(dagbag, upstream, downstream):
    from airflow.sdk import Asset

    outlets = _outlets(dagbag.dags[upstream])
    assert len(outlets) == 1 and isinstance(outlets[0], Asset), outlets
    condition = dagbag.dags[downstream].timetable.asset_condition
    assert isinstance(condition, Asset) and condition == outlets[0]


def test_publish_emits_the_published_asset(dagbag):
    from focuslake.assets import PUBLISHED_WAREHOUSE

    assert _outlets(dagbag.dags["focus_publish"]) == [PUBLISHED_WAREHOUSE]


# (c) ------------------------------------------------------------------------------------------
def test_warehouse_tasks_use_the_single_writer_pool(dagbag):
    from cosmos.operators.local import DbtLocalBaseOperator

    dbt_tasks = [t for t in dagbag.dags["focus_transform"].tasks if isinstance(t, DbtLocalBaseOperator)]
    assert dbt_tasks
    touching = dbt_tasks + dagbag.dags["focus_quality"].tasks + dagbag.dags["focus_publish"].tasks
    for task in touching:
        assert task.pool == WAREHOUSE_POOL, f"{task.dag_id}.{task.task_id} runs in {task.pool}"
    for dag_id in EXPECTED_DAGS:
        assert dagbag.dags[dag_id].max_active_runs == 1, dag_id


def test_the_pool_exists_with_one_slot(airflow_ready):
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    with create_session() as session:
        pool = session.query(Pool).filter(Pool.pool == WAREHOUSE_POOL).one()
        assert (pool.slots, pool.description) == (1, "DuckDB allows one writer process")


def test_dbt_tasks_get_an_absolute_data_root(dagbag):
    from cosmos.operators.local import DbtLocalBaseOperator

    for task in dagbag.dags["focus_transform"].tasks:
        if isinstance(task, DbtLocalBaseOperator):
            data = task.env["FOCUSLAKE_DATA"]
            assert Path(data).is_absolute() and data == os.environ["FOCUSLAKE_DATA"]


# (d) ------------------------------------------------------------------------------------------
def test_airflow_config_read_back_has_telemetry_off_and_binds_loopback(airflow_ready):
    from airflow.configuration import conf

    # Airflow 3.3.2 ships no usage-data collection (no [usage_data_collection] in its config.yml);
    # the project still sets it off, for any version that has it.
    assert conf.getboolean("usage_data_collection", "enabled", fallback=True) is False
    assert conf.getboolean("cosmos", "enable_telemetry") is False
    assert conf.get("api", "host") == "127.0.0.1"
    assert conf.get("api", "base_url").startswith("http://127.0.0.1:")
    assert conf.getboolean("core", "load_examples") is False
    assert conf.get("core", "executor") == "LocalExecutor"
    assert conf.get("database", "sql_alchemy_conn") == f"sqlite:///{Path(os.environ['AIRFLOW_HOME']) / 'airflow.db'}"
    assert conf.get("webserver", "analytical_tool", fallback="") in ("", None)


def test_cosmos_telemetry_is_off(dagbag):
    import cosmos.settings
    from cosmos import telemetry

    assert cosmos.settings.enable_telemetry is False
    assert cosmos.settings.do_not_track is True and cosmos.settings.no_analytics is True
    assert telemetry.should_emit() is False
    # With telemetry off Cosmos does not even store its metadata in the DAG's params.
    assert "__cosmos_telemetry_metadata__" not in dagbag.dags["focus_transform"].params


def test_dbt_and_gx_telemetry_are_off(dagbag):
    from cosmos.operators.local import DbtLocalBaseOperator

    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["flags"]["send_anonymous_usage_stats"] is False
    assert os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"
    assert os.environ["DO_NOT_TRACK"] == "1"
    for task in dagbag.dags["focus_transform"].tasks:
        if isinstance(task, DbtLocalBaseOperator):  # the env Cosmos hands to each dbt run
            assert task.env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
            assert task.env["DO_NOT_TRACK"] == "1"


def test_airflow_env_exports_are_shell_safe():
    out = subprocess.run([sys.executable, "-m", "focuslake.airflow_env"], capture_output=True, text=True,
                         check=True, env={**os.environ, "FOCUSLAKE_DATA": "/tmp/a dir/with 'quotes'"}).stdout
    env = subprocess.run(["bash", "-c", f'{out}\nenv -0'], capture_output=True, check=True).stdout
    parsed = dict(item.split("=", 1) for item in env.decode().split("\0") if "=" in item)
    assert parsed["FOCUSLAKE_DATA"] == "/tmp/a dir/with 'quotes'"
    assert parsed["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert parsed["AIRFLOW_HOME"] == str(PROJECT_ROOT / ".airflow")


# (e) ------------------------------------------------------------------------------------------
def test_focus_ingest_runs_on_an_empty_landing_zone(airflow_ready, tmp_path, monkeypatch):
    monkeypatch.setenv("FOCUSLAKE_DATA", str(tmp_path / "data"))  # read by the task at run time
    assert run_dag("focus_ingest") == "success"
    lake = Paths.from_env().lake
    # no data partitions (ingest may still write its ledger export and empty-stream schemas)
    assert [p for p in lake.rglob("*.parquet") if any(part.startswith("date=") for part in p.parts)] == []
    # nothing new: the task is skipped, so no focus_lake event and no dbt run downstream
    run = last_run("focus_ingest")
    assert run["tasks"] == {"ingest": "skipped"} and run["asset_events"] == []


def test_focus_ingest_updates_the_lake_asset_when_segments_arrive(airflow_ready, tmp_path, monkeypatch):
    simulate = pytest.importorskip("collectors.simulate")
    data = tmp_path / "data"
    monkeypatch.setenv("FOCUSLAKE_DATA", str(data))
    subprocess.run([sys.executable, "-m", simulate.__name__, "--users", "1", "--days", "1", "--hours", "1",
                    "--no-fsync", "--quiet", "--data", str(data)], check=True, cwd=PROJECT_ROOT)
    assert run_dag("focus_ingest") == "success"
    run = last_run("focus_ingest")
    assert run["tasks"] == {"ingest": "success"} and run["asset_events"] == ["focus_lake"]
    assert any(p for p in Paths.from_env().lake.rglob("*.parquet") if "date=" in str(p))


# (f) ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_lists_the_four_dags_without_import_errors(airflow_ready):
    env = {**os.environ, **airflow_env(Path(os.environ["AIRFLOW_HOME"]))}
    airflow = str(Path(sys.executable).parent / "airflow")

    def cli(*args: str):
        proc = subprocess.run([airflow, *args, "--local", "-o", "json"], check=False, env=env, cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    assert cli("dags", "list-import-errors") == []
    assert {d["dag_id"] for d in cli("dags", "list")} == EXPECTED_DAGS
