"""Building blocks of the project's DAG files (imported by dags/*.py at parse time).

DAG files stay configuration: the dag id, schedule, tags and docs are in the file; how dbt is
rendered with Astronomer Cosmos and which pipeline function each task calls is here, once.

Cosmos settings, chosen for these versions (Cosmos 1.15.1, dbt-core 1.11.16, Airflow 3.3.2):
- LoadMode.DBT_MANIFEST: the task graph is read from dbt_project/target/manifest.json, written
  by `dbt parse` at setup (`python -m focuslake.airflow_env --setup`, run again after editing
  models). Reading a JSON file keeps parsing cheap; DBT_LS starts dbt at parse time (seconds,
  a dbt process in the DAG processor). If the manifest is missing or older than any project
  file (fresh checkout, models edited since) we fall back to DBT_LS, so the DAG still loads with
  the current models instead of silently rendering stale ones.
- ExecutionMode.LOCAL: dbt runs inside the Airflow worker process; DuckDB is a local file, so
  there is nothing to gain from containers or a virtualenv per task.
- InvocationMode.DBT_RUNNER: dbt is called in-process (dbtRunner) instead of a `dbt` subprocess:
  no interpreter start and dbt import per task.
- TestBehavior.BUILD: one task per model runs `dbt build` on it (the model, then its tests);
  tests with several parents run detached, once all their parents are built. AFTER_EACH would
  put each model's tests in a task of their own: twice the tasks, and every task costs seconds
  of process start, DAG parse and dbt parse (measured: 5-10 s on a busy 2-core machine) while
  the one-slot pool runs them one at a time anyway.
- The metric DAGs use one `DbtBuildLocalOperator` (`dbt build --select tag:<cadence>`): they
  rebuild a few small rollups every hour/day, where per-model tasks would multiply that
  overhead by the number of models for no parallelism (one DuckDB writer).
- emit_datasets=False: the DAGs publish warehouse-level assets (focuslake.assets); per-model
  Cosmos datasets (OpenLineage-derived URIs) would only add noise.
- install_dbt_deps=False: the project has no dbt packages and no network to fetch them from.
- Every dbt task runs in pool `warehouse_writer` (one slot): DuckDB allows one writer process.
- Telemetry: off through the environment (AIRFLOW__COSMOS__ENABLE_TELEMETRY=False, DO_NOT_TRACK,
  SCARF_NO_ANALYTICS; Cosmos checks all three) and dbt's send_anonymous_usage_stats flag.
- FOCUSLAKE_DATA is passed to dbt as an absolute path: Cosmos runs dbt in a temporary copy of
  the project, where profiles.yml's relative default (../data) would point somewhere else.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from airflow.sdk import CronDataIntervalTimetable, task
from cosmos.airflow.task_group import DbtTaskGroup
from cosmos.config import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from cosmos.operators.local import DbtBuildLocalOperator

from focuslake.airflow_env import DBT_MANIFEST, WAREHOUSE_POOL, dbt_executable, dbt_manifest_is_fresh
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


def load_method() -> LoadMode:
    return LoadMode.DBT_MANIFEST if dbt_manifest_is_fresh(DBT_PROJECT_DIR) else LoadMode.DBT_LS


def _dbt_env() -> dict[str, str]:
    return {**NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(Paths.from_env().root), "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)}


def _profile_config() -> ProfileConfig:
    return ProfileConfig(profile_name="focuslake", target_name="dev",
                         profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml")


def dbt_task_group(group_id: str = "dbt", *, select: list[str] | None = None,
                   test_behavior: TestBehavior = TestBehavior.BUILD) -> DbtTaskGroup:
    """The dbt project (or the ``select``ed part of it) as Cosmos tasks, one per dbt node."""
    method = load_method()
    dbt = str(dbt_executable())
    project = ProjectConfig(
        dbt_project_path=DBT_PROJECT_DIR,
        manifest_path=DBT_MANIFEST if method == LoadMode.DBT_MANIFEST else None,
        install_dbt_deps=False,
        env_vars=_dbt_env(),
    )
    if project.manifest_path is not None:
        # ProjectConfig wraps every manifest path in an ObjectStoragePath (for remote manifests),
        # whose open() makes Airflow load all its plugins -- Cosmos' own imports FastAPI: about
        # 0.35 s of every parse of this DAG file. Ours is a local file: a pathlib.Path (one of the
        # types Cosmos declares for it) reads it without that.
        project.manifest_path = Path(DBT_MANIFEST)
    return DbtTaskGroup(
        group_id=group_id,
        project_config=project,
        profile_config=_profile_config(),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
            dbt_executable_path=dbt,
        ),
        render_config=RenderConfig(
            load_method=method,
            select=list(select or []),
            test_behavior=test_behavior,
            # A test with several parents (e.g. `relationships` from a bronze model to a seed) gets
            # its own task after all its parents; otherwise it runs inside the first parent's test
            # task (dbt's eager indirect selection), before the other parent exists, and fails.
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,
            # Only used by the DBT_LS fallback: `dbt ls` as a subprocess of the DAG processor.
            # (Cosmos rejects a render dbt_executable_path with DBT_RUNNER unless it equals
            # `which dbt`, which depends on PATH.)
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=dbt,
        ),
        operator_args={"pool": WAREHOUSE_POOL},
    )


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


def document_dbt_tasks(dag, extra: str = "") -> None:
    """Cosmos sets no doc_md on the tasks it renders: say what each one runs (shown in the UI)."""
    for t in dag.tasks:
        if t.doc_md is None and t.task_id.startswith("dbt."):
            node = getattr(t, "extra_context", {}).get("dbt_node_config", {})
            kind = type(t).__name__  # DbtRunLocalOperator, DbtBuildLocalOperator, EmptyOperator...
            what = (f"`dbt {kind[3:-len('LocalOperator')].lower()}`" if kind.endswith("LocalOperator")
                    else "No-op placeholder (e.g. an ephemeral model)")
            t.doc_md = (f"{what} for `{node.get('unique_id', t.task_id)}` "
                        f"(`{node.get('original_file_path', 'dbt_project')}`); pool `{t.pool}`.{extra}")


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
