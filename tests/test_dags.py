"""The Airflow DAGs: they load, are wired by assets, compute exactly their data interval, respect
the warehouse's single writer, keep every telemetry off, and really run.

Airflow is configured for the whole test session by tests/conftest.py (tmp AIRFLOW_HOME and
FOCUSLAKE_DATA, set before Airflow is imported); see tests/airflow_harness.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from airflow_harness import dags_folder, last_run, load_dagbag, run_dag

from focuslake.airflow_env import WAREHOUSE_POOL
from focuslake.config import DBT_PROJECT_DIR, PROJECT_ROOT, Paths

PIPELINE_DAGS = {"focus_ingest", "focus_transform", "focus_quality", "focus_publish"}
METRIC_DAGS = {f"focus_metrics_{c}": c for c in ("hourly", "daily", "weekly", "monthly")}
EXPECTED_DAGS = PIPELINE_DAGS | set(METRIC_DAGS) | {"focus_maintenance", "focus_forget_user", "focus_export"}
# upstream DAG -> the DAG its outlet asset schedules
CHAIN = [("focus_ingest", "focus_transform"), ("focus_transform", "focus_quality"),
         ("focus_quality", "focus_publish")]
REPORT_DAGS = {"focus_metrics_daily": "daily", "focus_metrics_weekly": "weekly"}  # render reports after publish
WAREHOUSE_DAGS = ("focus_transform", "focus_quality", "focus_publish", *METRIC_DAGS, "focus_maintenance",
                  "focus_forget_user")


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


def test_transform_is_one_dbt_build_of_the_whole_project(dagbag):
    """One Cosmos `dbt build` (every model, then its tests, in dbt's order) in the writer pool,
    then the outlet: not one task per node (the one-slot pool would run them one at a time, each
    paying an Airflow task and a dbt invocation; orchestration.py)."""
    from cosmos.operators.local import DbtBuildLocalOperator

    dag = dagbag.dags["focus_transform"]
    assert sorted(t.task_id for t in dag.tasks) == ["dbt_build", "warehouse_built"]
    build = dag.get_task("dbt_build")
    assert isinstance(build, DbtBuildLocalOperator)
    assert build.base_cmd == ["build"] and not build.select and not build.exclude  # the whole project
    assert build.pool == WAREHOUSE_POOL
    assert build.downstream_task_ids == {"warehouse_built"}
    assert [o.name for o in dag.get_task("warehouse_built").outlets] == ["focus_warehouse"]


def test_every_dag_and_task_is_documented_tagged_and_retried(dagbag):
    for dag in dagbag.dags.values():
        assert dag.doc_md and dag.doc_md.strip(), dag.dag_id
        assert "focuslake" in dag.tags, dag.dag_id
        for task in dag.tasks:
            assert task.doc_md and task.doc_md.strip(), f"{dag.dag_id}.{task.task_id} has no doc_md"
            assert task.retries == 2, f"{dag.dag_id}.{task.task_id}"
            # Airflow 3.3: a float multiplier; True (== 1.0) would mean a constant delay
            assert task.retry_exponential_backoff >= 2, f"{dag.dag_id}.{task.task_id}"


def test_ingest_runs_when_segments_land_and_every_five_minutes(dagbag):
    """Event-driven: the focus_landing asset's watcher (LandingTrigger) schedules the ingest when
    sealed segments land; the 5-minute cron is the backstop."""
    from airflow.sdk import AssetOrTimeSchedule

    dag = dagbag.dags["focus_ingest"]
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert dag.timetable.timetable.expression == "*/5 * * * *"
    landing = dag.timetable.asset_condition
    assert landing.name == "focus_landing"
    (watcher,) = landing.watchers
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "focuslake.landing_watch.LandingTrigger" and kwargs["poke_interval"] <= 10
    assert dag.catchup is False


# (a2) metric DAGs: exactly their data interval ---------------------------------------------------
CRONS = {"hourly": "0 * * * *", "daily": "0 0 * * *", "weekly": "0 0 * * 1", "monthly": "0 0 1 * *"}
# (cadence, logical date of a scheduled/backfilled run, the interval it must compute)
INTERVALS = [
    ("hourly", datetime(2026, 11, 18, 13, tzinfo=UTC), datetime(2026, 11, 18, 14, tzinfo=UTC)),
    ("hourly", datetime(2026, 12, 31, 23, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
    ("daily", datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC)),
    ("daily", datetime(2028, 2, 28, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
    ("weekly", datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)),  # Mon..Mon
    ("weekly", datetime(2026, 12, 28, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC)),  # ISO week 53
    ("monthly", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
    ("monthly", datetime(2028, 2, 1, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC)),  # leap February
]


def _serialized(dag):
    """The DAG as the scheduler and `airflow backfill create` see it."""
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))


def _render_vars(dag, dag_run) -> dict:
    """The dbt vars of the metric DAG's dbt task as rendered for ``dag_run`` (its template
    environment, with the DAG's user_defined_macros)."""
    task = dag.get_task("dbt_build")
    env = dag.get_template_env()
    return {k: env.from_string(v).render(dag_run=dag_run, **dag.user_defined_macros)
            for k, v in task.vars.items()}


@pytest.mark.parametrize(("cadence", "start", "end"), INTERVALS, ids=lambda v: str(v)[:13])
def test_metric_dag_computes_exactly_its_interval(dagbag, cadence, start, end):
    from types import SimpleNamespace

    from airflow.sdk import CronDataIntervalTimetable

    dag = dagbag.dags[f"focus_metrics_{cadence}"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)  # a cron string: zero-length interval
    assert dag.timetable.expression == CRONS[cadence] and str(dag.timetable.timezone) == "UTC"
    # what a scheduled run and `airflow backfill create` get for this logical date
    infos = list(_serialized(dag).iter_dagrun_infos_between(start, start))
    assert [(i.logical_date, i.data_interval.start, i.data_interval.end) for i in infos] == [(start, start, end)]
    assert infos[0].run_after == end  # it runs right after its period ends
    # ... and what its dbt task renders from that run: the contract's ISO-8601 UTC strings
    run = SimpleNamespace(data_interval_start=start, data_interval_end=end, run_after=end)
    assert _render_vars(dag, run) == {"interval_start": start.isoformat(), "interval_end": end.isoformat()}
    # a run triggered without a logical date computes the last complete period before it
    later = SimpleNamespace(data_interval_start=None, data_interval_end=None, run_after=end + timedelta(minutes=7))
    assert _render_vars(dag, later) == {"interval_start": start.isoformat(), "interval_end": end.isoformat()}


def test_backfill_range_gives_one_run_per_day(dagbag):
    dag = _serialized(dagbag.dags["focus_metrics_daily"])
    infos = list(dag.iter_dagrun_infos_between(datetime(2026, 11, 17, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC)))
    assert [(i.data_interval.start.day, i.data_interval.end.day) for i in infos] == [(17, 18), (18, 19), (19, 20)]


def test_a_zero_length_or_misaligned_interval_fails_the_dbt_task(dagbag):
    from types import SimpleNamespace

    dag = dagbag.dags["focus_metrics_daily"]
    t = datetime(2026, 11, 20, tzinfo=UTC)
    for start, end in [(t, t), (t, t + timedelta(hours=1)), (t + timedelta(hours=3), t + timedelta(days=1, hours=3))]:
        with pytest.raises(ValueError, match="not exactly one daily period"):
            _render_vars(dag, SimpleNamespace(data_interval_start=start, data_interval_end=end, run_after=end))


@pytest.mark.parametrize("dag_id", sorted(METRIC_DAGS))
def test_metric_dag_builds_its_tag_then_audits_and_publishes(dagbag, dag_id):
    from cosmos.operators.local import DbtBuildLocalOperator

    from focuslake.assets import PUBLISHED_WAREHOUSE

    dag, cadence = dagbag.dags[dag_id], METRIC_DAGS[dag_id]
    expected = ["dbt_build", "check_quality", "publish"] + (["render_reports"] if dag_id in REPORT_DAGS else [])
    assert [t.task_id for t in dag.topological_sort()] == expected
    build = dag.get_task("dbt_build")
    assert isinstance(build, DbtBuildLocalOperator)
    assert build.select == [f"tag:{cadence}"] and set(build.vars) == {"interval_start", "interval_end"}
    assert "vars" in build.template_fields  # rendered per run
    assert build.env["FOCUSLAKE_DATA"] == os.environ["FOCUSLAKE_DATA"]
    assert dag.get_task("publish").outlets == [PUBLISHED_WAREHOUSE]
    assert dag.catchup is False and dag.max_active_runs == 1


@pytest.mark.parametrize(("cadence", "start", "end", "label"), [
    ("daily", datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC), "2026-11-18"),
    ("daily", datetime(2028, 2, 29, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC), "2028-02-29"),
    ("weekly", datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC), "2026-W47"),
    ("weekly", datetime(2026, 12, 28, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC), "2026-W53"),
])
def test_report_task_renders_the_period_of_its_interval(dagbag, cadence, start, end, label):
    """render_reports runs after publish, outside the writer pool, and gets the run's checked
    interval: the day of a daily run, the ISO week of a weekly one."""
    from types import SimpleNamespace

    from focuslake.reports import from_interval

    dag = dagbag.dags[f"focus_metrics_{cadence}"]
    task = dag.get_task("render_reports")
    assert task.upstream_task_ids == {"publish"} and task.trigger_rule == "all_success"
    assert task.pool != WAREHOUSE_POOL and task.outlets == []
    env = dag.get_template_env()
    run = SimpleNamespace(data_interval_start=start, data_interval_end=end, run_after=end)
    kwargs = {k: env.from_string(v).render(dag_run=run, **dag.user_defined_macros) for k, v in task.op_kwargs.items()}
    assert kwargs == {"interval_start": start.isoformat(), "interval_end": end.isoformat()}
    period = from_interval(cadence, **kwargs)
    assert (period.kind, period.label, period.start_ts, period.end_ts) == (cadence, label, start, end)
    # a manual run without a logical date: the last complete period, as for the dbt task
    later = SimpleNamespace(data_interval_start=None, data_interval_end=None, run_after=end + timedelta(hours=5))
    assert {k: env.from_string(v).render(dag_run=later, **dag.user_defined_macros)
            for k, v in task.op_kwargs.items()} == kwargs


def test_only_the_daily_and_weekly_dags_render_reports(dagbag):
    for dag_id in METRIC_DAGS:
        assert ("render_reports" in dagbag.dags[dag_id].task_ids) == (dag_id in REPORT_DAGS), dag_id


def test_maintenance_dag(dagbag):
    dag = dagbag.dags["focus_maintenance"]
    assert [t.task_id for t in dag.topological_sort()] == ["retention", "remove_orphan_temp_files",
                                                            "maintain_warehouse"]
    assert dag.timetable.expression == "30 3 * * *" and dag.catchup is False
    # a skipped retention (not installed yet) must not stop the housekeeping after it
    assert dag.get_task("remove_orphan_temp_files").trigger_rule == "none_failed"
    assert dag.get_task("maintain_warehouse").trigger_rule == "none_failed"


def test_export_dag_runs_daily_after_the_daily_metrics_and_exports_the_previous_day(dagbag):
    from airflow.sdk import CronDataIntervalTimetable

    from focuslake.export import export_day

    dag = dagbag.dags["focus_export"]
    assert [t.task_id for t in dag.tasks] == ["export"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable) and dag.timetable.expression == "0 2 * * *"
    assert dag.catchup is False and set(dag.params) == {"users", "format", "day"}
    daily = dagbag.dags["focus_metrics_daily"].timetable
    # the run for logical date 2026-11-18 02:00 starts after the daily metrics run of 2026-11-18 ...
    (info,) = _serialized(dag).iter_dagrun_infos_between(datetime(2026, 11, 18, 2, tzinfo=UTC),
                                                          datetime(2026, 11, 18, 2, tzinfo=UTC))
    (metrics,) = _serialized(dagbag.dags["focus_metrics_daily"]).iter_dagrun_infos_between(
        datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 18, tzinfo=UTC))
    assert isinstance(daily, CronDataIntervalTimetable)
    assert info.run_after - metrics.run_after == timedelta(hours=2)
    # ... and exports exactly the day those metrics computed
    assert export_day(info.data_interval.start, info.run_after) == metrics.data_interval.start.date()
    # triggered without a logical date: the UTC day before it; an explicit day wins
    assert export_day(None, datetime(2026, 11, 19, 9, 30, tzinfo=UTC)) == date(2026, 11, 18)
    assert export_day(info.data_interval.start, info.run_after, "2026-11-02") == date(2026, 11, 2)


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
    """Every task that opens the DuckDB warehouse runs in the one-slot pool; every writer DAG has
    max_active_runs=1. (Only ingest, the orphan cleanup, the no-op outlet marker, the report
    renderers and the export, which read the published read-only copy, do not.)"""
    not_touching = {("focus_ingest", "ingest"), ("focus_transform", "warehouse_built"),
                    ("focus_maintenance", "remove_orphan_temp_files"), ("focus_export", "export"),
                    *((dag_id, "render_reports") for dag_id in REPORT_DAGS)}  # read the published copy only
    seen = 0
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if (dag.dag_id, task.task_id) in not_touching:
                continue
            seen += 1
            assert task.pool == WAREHOUSE_POOL, f"{task.dag_id}.{task.task_id} runs in {task.pool}"
    assert seen >= 17
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

    n = 0
    for dag_id in ("focus_transform", *METRIC_DAGS):
        for task in dagbag.dags[dag_id].tasks:
            if isinstance(task, DbtLocalBaseOperator):
                n += 1
                data = task.env["FOCUSLAKE_DATA"]
                assert Path(data).is_absolute() and data == os.environ["FOCUSLAKE_DATA"]
    assert n > len(METRIC_DAGS)


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
    for dag_id in ("focus_transform", *METRIC_DAGS):
        for task in dagbag.dags[dag_id].tasks:
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


def test_forget_user_dag_forgets_by_keyed_hash(airflow_ready, tmp_path, monkeypatch):
    """Triggered with the hash (what the UI form should carry): every file of the user is gone,
    the receipt is written, and the other user's data stays."""
    from collectors.simulate import simulate
    from focuslake import pipeline
    from focuslake.privacy.forget import scan
    from focuslake.privacy.keys import user_hash

    data = tmp_path / "data"
    monkeypatch.setenv("FOCUSLAKE_DATA", str(data))
    simulate(data, users=2, days=1, hours=1, durable=False)
    paths = Paths(data)
    pipeline.ingest(paths)
    assert scan(paths, "user01") != []
    assert run_dag("focus_forget_user", conf={"user": user_hash(paths, "user01")}) == "success"
    assert scan(paths, "user01") == [] and scan(paths, "user02") != []
    (receipt,) = (paths.root / "privacy" / "receipts").glob("*.json")
    assert "user01" not in receipt.read_text()
    assert last_run("focus_forget_user")["tasks"] == {"forget": "success"}
