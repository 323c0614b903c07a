"""Building blocks of the project's DAG files (imported by dags/*.py at parse time).

DAG files stay configuration: the dag id, schedule, tags and docs are in the file; how dbt is
rendered with Astronomer Cosmos and which pipeline function each task calls is here, once.

Cosmos settings, chosen for these versions (Cosmos 1.15.1, dbt-core 1.11.16, Airflow 3.3.2):
- Every dbt task is one Cosmos `DbtBuildLocalOperator` running `dbt build` (each model, then its
  tests, in dependency order): the transform builds the whole project, each metric DAG the
  models tagged with its cadence (`--select tag:<cadence>`). Not a DbtTaskGroup with one task per
  dbt node (TestBehavior.BUILD): that is how the transform ran until 2026-12-02, and it made
  landing -> published gold take more than 10 minutes. The one-slot writer pool runs the ~60 node
  tasks one at a time, and every task pays process start, DAG parse and a dbt invocation
  (5-10 s on a busy 2-core machine) for a model that builds in well under a second
  incrementally. One build keeps dbt's own ordering, threads and its single DuckDB connection;
  freshness is measured by `python -m focuslake.bench_airflow` (benchmarks/RESULTS.md).
  ExecutionMode.WATCHER (one producer build, one sensor task per node) would keep per-node tasks
  in the UI, but it is experimental in Cosmos 1.15 (its docs: retries of the producer can drop a
  first attempt's model failures) and still starts one Airflow task per node.
- ExecutionMode.LOCAL with InvocationMode.DBT_RUNNER: dbt runs in-process (dbtRunner) inside the
  Airflow worker; DuckDB is a local file, so there is nothing to gain from containers or a
  virtualenv per task, and no interpreter start or dbt import per task.
- Parse time: the operators are plain, so the DAG files read no dbt manifest (the dbt project is
  parsed by dbt when the task runs; `python -m focuslake.airflow_env --setup` keeps
  `target/manifest.json` fresh for partial parsing and the privacy tooling).
- emit_datasets=False: the DAGs publish warehouse-level assets (focuslake.assets); per-model
  Cosmos datasets (OpenLineage-derived URIs) would only add noise.
- install_deps=False: the project has no dbt packages and no network to fetch them from.
- Every dbt task runs in pool `warehouse_writer` (one slot): DuckDB allows one writer process.
- Telemetry: off through the environment (AIRFLOW__COSMOS__ENABLE_TELEMETRY=False, DO_NOT_TRACK,
  SCARF_NO_ANALYTICS; Cosmos checks all three) and dbt's send_anonymous_usage_stats flag.
- FOCUSLAKE_DATA is passed to dbt as an absolute path: Cosmos runs dbt in a temporary copy of
  the project, where profiles.yml's relative default (../data) would point somewhere else.
"""
from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import CronDataIntervalTimetable, task
from cosmos.config import ProfileConfig
from cosmos.constants import InvocationMode
from cosmos.operators.local import DbtBuildLocalOperator

from focuslake.airflow_env import WAREHOUSE_POOL, dbt_executable
from focuslake.assets import PUBLISHED_WAREHOUSE
from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, Paths
from focuslake.schedules import cadence

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
"""start_date of the scheduled DAGs (no catch-up: history is filled with `airflow backfill`)."""

FULL_QUALITY_CADENCES = ("weekly",)
"""Metric DAGs whose quality task validates every partition with GX (the others validate the
partitions touched since the last passing audit: docs/quality.md)."""

REPORT_CADENCES = ("daily", "weekly")
"""Metric DAGs that render the per-user reports of their period after publishing (focuslake.reports)."""

DBT_INTERVAL_VARS = {
    "interval_start": "{{ metric_interval(dag_run)['interval_start'] }}",
    "interval_end": "{{ metric_interval(dag_run)['interval_end'] }}",
}
"""dbt vars of a metric DAG's dbt task, rendered per run by the DAG's ``metric_interval`` macro
(:func:`focuslake.schedules.resolve_interval`: exactly one period, or the task fails)."""


def _dbt_env() -> dict[str, str]:
    return {**NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(Paths.from_env().root), "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)}


def _profile_config() -> ProfileConfig:
    return ProfileConfig(profile_name="focuslake", target_name="dev",
                         profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml")


TRANSFORM_BUILD_DOC = (
    "`dbt build` of the whole project (Cosmos `DbtBuildLocalOperator`, in-process dbtRunner): seeds, bronze "
    "views, silver and gold tables, each model then its tests, in dependency order; the incremental models "
    "rebuild only what the new segments reach (docs/incremental.md). The log lists every model and test with "
    "its status and time. Pool `warehouse_writer`: DuckDB allows one writer process.")


def dbt_build_task(task_id: str, *, select: list[str], dbt_vars: dict | None = None, doc_md: str | None = None
                   ) -> DbtBuildLocalOperator:
    """One Cosmos task running ``dbt build --select ...`` (each model, then its tests, in DAG order)."""
    return DbtBuildLocalOperator(
        task_id=task_id,
        project_dir=str(DBT_PROJECT_DIR),
        profile_config=_profile_config(),
        select=list(select),
        vars=dict(dbt_vars or {}),  # a templated field: rendered per run
        env=_dbt_env(),
        install_deps=False,
        emit_datasets=False,
        invocation_mode=InvocationMode.DBT_RUNNER,
        dbt_executable_path=str(dbt_executable()),
        pool=WAREHOUSE_POOL,
        doc_md=doc_md,
    )


def metric_timetable(name: str) -> CronDataIntervalTimetable:
    """Runs right after each period of cadence ``name``, with that period as its data interval."""
    return CronDataIntervalTimetable(cadence(name).cron, timezone="UTC")


def metric_macros(name: str) -> dict:
    """``user_defined_macros`` of metric DAG ``name``: ``metric_interval(dag_run)``, the run's period.

    Reads the run's data interval (absent for a run triggered without a logical date: then the
    last complete period before its ``run_after``) through
    :func:`focuslake.schedules.resolve_interval`, which raises unless it is exactly one period.
    """
    cadence(name)

    def metric_interval(dag_run) -> dict[str, str]:
        from focuslake.schedules import resolve_interval

        return resolve_interval(name, getattr(dag_run, "data_interval_start", None),
                                getattr(dag_run, "data_interval_end", None), getattr(dag_run, "run_after", None))

    return {"metric_interval": metric_interval}


def metric_doc(name: str) -> str:
    c = cadence(name)
    return f"""
### focus_metrics_{name}
Recomputes the **{name}** gold rollups (dbt models tagged `{name}`) for exactly one period:
{c.description}. Schedule: `CronDataIntervalTimetable("{c.cron}", timezone="UTC")`, so every
scheduled or backfilled run's `data_interval_start`/`data_interval_end` is that period (a plain
cron string would give a zero-length interval in Airflow 3).

1. `dbt_build` (Cosmos `DbtBuildLocalOperator`): `dbt build --select tag:{name}
   --vars {{interval_start: ..., interval_end: ...}}` -- each tagged model, then its tests. The
   models delete and re-insert the periods starting in that interval, so rerunning any run
   changes nothing. The vars come from `focuslake.schedules.resolve_interval`, which fails the
   task unless the run's interval is exactly one {name} period (a run triggered without a
   logical date takes the last complete period before it).
2. `check_quality` then `publish` (write-audit-publish): the analysts' read-only copy is
   swapped only when every check passed.
{_report_doc(name)}
The dbt, quality and publish tasks open the DuckDB warehouse, so they run in pool
`warehouse_writer` (one slot), and
the DAG has `max_active_runs=1`: runs triggered together queue instead of failing on DuckDB's
lock. History: `airflow backfill create --dag-id focus_metrics_{name} --from-date ...
--to-date ...` (see docs/airflow.md).
"""


def _report_doc(name: str) -> str:
    if name not in REPORT_CADENCES:
        return ""
    period = "day" if name == "daily" else "ISO week"
    return f"""3. `render_reports`: each user's {name} report of that {period} (HTML page, PNG charts,
   report.json) from the published read-only copy into `<data>/reports/<user>/{name}/`
   (`focuslake.reports.render_interval`, docs/reports.md). It only reads the published copy,
   so it runs outside pool `warehouse_writer`.
"""


def metric_tasks(name: str) -> None:
    """The tasks of metric DAG ``focus_metrics_<name>``; call inside its ``with DAG(...)`` block
    (created with ``user_defined_macros=metric_macros(name)``). The daily and weekly DAGs end with
    ``render_reports`` (:data:`REPORT_CADENCES`)."""
    cadence(name)

    build = dbt_build_task(
        "dbt_build", select=[f"tag:{name}"], dbt_vars=DBT_INTERVAL_VARS,
        doc_md=f"`dbt build --select tag:{name}` (Cosmos, in-process dbtRunner) with `--vars` "
        "`interval_start`/`interval_end` = this run's data interval, checked to be exactly one "
        f"{name} period (`focuslake.schedules.resolve_interval`). Pool `warehouse_writer`. The rendered "
        "vars are shown under *Rendered Templates*.")

    full = True if name in FULL_QUALITY_CADENCES else None

    @task(pool=WAREHOUSE_POOL, doc_md=f"Calls `focuslake.pipeline.check_quality(full={full})` (raises naming the "
          "failed checks; nothing is published then): "
          + ("GX validates every partition (the weekly full validation)." if full else
             "GX validates the partitions touched since the last passing audit.")
          + " Pool `warehouse_writer`: DuckDB allows one writer process.")
    def check_quality() -> dict:
        from focuslake import pipeline

        return pipeline.check_quality(full=full)

    @task(pool=WAREHOUSE_POOL, outlets=[PUBLISHED_WAREHOUSE],
          doc_md="Calls `focuslake.pipeline.publish()`: atomically swaps the analysts' read-only copy to the "
          "audited working warehouse; updates **focus_warehouse_published**. Pool `warehouse_writer`.")
    def publish() -> dict:
        from focuslake import pipeline

        return pipeline.publish()

    published = publish()
    build >> check_quality() >> published

    if name in REPORT_CADENCES:
        @task(doc_md=f"Calls `focuslake.reports.render_interval('{name}', ...)` with this run's data interval "
              "(the same checked interval as the dbt task): every user's report of that period from the published "
              "read-only warehouse into `<data>/reports/` (docs/reports.md). Reads only the published copy, so it "
              "runs in the default pool, not `warehouse_writer`.")
        def render_reports(interval_start: str, interval_end: str) -> dict:
            from focuslake import reports

            return reports.render_interval(name, interval_start, interval_end)

        published >> render_reports(**DBT_INTERVAL_VARS)  # templated per run by metric_interval()
