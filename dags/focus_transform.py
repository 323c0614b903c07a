"""focus_transform: dbt (bronze -> silver -> gold) over the lake, one Airflow task per dbt node.

Configuration only: Astronomer Cosmos renders dbt_project/ as a DbtTaskGroup.

Cosmos settings, chosen for these versions (Cosmos 1.15.1, dbt-core 1.11.16, Airflow 3.3.2):
- LoadMode.DBT_MANIFEST: the task graph is read from dbt_project/target/manifest.json, written
  by `dbt parse` at setup (`python -m focuslake.airflow_env --setup`, run again after editing
  models). Reading a JSON file keeps parsing this file cheap (~0.5 s for ~70 nodes); DBT_LS starts
  dbt at parse time (seconds, a dbt process in the DAG processor). If the manifest is missing or
  older than any project file (fresh checkout, models edited since) we fall back to DBT_LS, so
  the DAG still loads with the current models instead of silently rendering stale ones.
- ExecutionMode.LOCAL: dbt runs inside the Airflow worker process; DuckDB is a local file, so
  there is nothing to gain from containers or a virtualenv per task.
- InvocationMode.DBT_RUNNER: dbt is called in-process (dbtRunner) instead of a `dbt` subprocess:
  no interpreter start and dbt import per task. Measured on a 2-model project with dag.test()
  (see the report in tests/test_dags.py's docstring): faster than SUBPROCESS, same results.
- TestBehavior.AFTER_EACH: each model's dbt tests run right after it, before its children;
  tests with several parents run detached, once all their parents are built.
- emit_datasets=False: this DAG publishes one warehouse-level asset (focus_warehouse) from its
  last task; per-model Cosmos datasets (OpenLineage-derived URIs) would only add noise.
- install_dbt_deps=False: the project has no dbt packages and no network to fetch them from.
- Telemetry: off through the environment (AIRFLOW__COSMOS__ENABLE_TELEMETRY=False, DO_NOT_TRACK,
  SCARF_NO_ANALYTICS; Cosmos checks all three) and dbt's send_anonymous_usage_stats flag.
- FOCUSLAKE_DATA is passed to dbt as an absolute path: Cosmos runs dbt in a temporary copy of
  the project, where profiles.yml's relative default (../data) would point somewhere else.
"""
from __future__ import annotations

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from cosmos.airflow.task_group import DbtTaskGroup
from cosmos.config import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from focuslake.airflow_env import (
    DBT_MANIFEST,
    DEFAULT_TASK_ARGS,
    WAREHOUSE_POOL,
    dbt_executable,
    dbt_manifest_is_fresh,
)
from focuslake.assets import LAKE, WAREHOUSE
from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, Paths

DBT = str(dbt_executable())
LOAD_METHOD = LoadMode.DBT_MANIFEST if dbt_manifest_is_fresh(DBT_PROJECT_DIR) else LoadMode.DBT_LS
INVOCATION_MODE = InvocationMode.DBT_RUNNER

with DAG(
    dag_id="focus_transform",
    schedule=LAKE,
    catchup=False,
    max_active_runs=1,  # one dbt build at a time: DuckDB allows one writer process
    default_args=DEFAULT_TASK_ARGS,
    tags=["focuslake", "dbt", "warehouse"],
    doc_md="""
### focus_transform
Scheduled on the **focus_lake** asset (updated by `focus_ingest`). Runs the dbt project
`dbt_project/` over the Parquet lake into the working DuckDB warehouse
(`FOCUSLAKE_DATA/warehouse/focus.duckdb`): bronze views, silver and gold tables. Each dbt model
is one task, followed by a task with its dbt tests. Every dbt task runs in pool
`warehouse_writer` (one slot). When all succeeded, `warehouse_built` updates the
**focus_warehouse** asset, which schedules `focus_quality`.

The task graph comes from `dbt_project/target/manifest.json`: after changing models, run
`python -m focuslake.airflow_env --setup` (it runs `dbt parse`).
""",
) as dag:
    transform = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR,
            manifest_path=DBT_MANIFEST if LOAD_METHOD == LoadMode.DBT_MANIFEST else None,
            install_dbt_deps=False,
            env_vars={
                **NO_TELEMETRY_ENV,
                "FOCUSLAKE_DATA": str(Paths.from_env().root),
                "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
            },
        ),
        profile_config=ProfileConfig(
            profile_name="focuslake",
            target_name="dev",
            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=INVOCATION_MODE,
            dbt_executable_path=DBT,
        ),
        render_config=RenderConfig(
            load_method=LOAD_METHOD,
            test_behavior=TestBehavior.AFTER_EACH,
            # A test with several parents (e.g. `relationships` from a bronze model to a seed) gets
            # its own task after all its parents; otherwise it runs inside the first parent's test
            # task (dbt's eager indirect selection), before the other parent exists, and fails.
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,
            # Only used by the DBT_LS fallback: `dbt ls` as a subprocess of the DAG processor.
            # (Cosmos rejects a render dbt_executable_path with DBT_RUNNER unless it equals
            # `which dbt`, which depends on PATH.)
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=DBT,
        ),
        operator_args={"pool": WAREHOUSE_POOL},
        default_args=DEFAULT_TASK_ARGS,
    )

    warehouse_built = EmptyOperator(
        task_id="warehouse_built",
        outlets=[WAREHOUSE],
        doc_md="Marks the working warehouse as rebuilt (all dbt models and tests passed): updates "
        "the **focus_warehouse** asset. Does not open DuckDB.",
    )
    transform >> warehouse_built

    # Cosmos sets no doc_md on the tasks it renders: say what each one runs.
    for _task in dag.tasks:
        if _task.doc_md is None and _task.task_id.startswith("dbt."):
            _node = getattr(_task, "extra_context", {}).get("dbt_node_config", {})
            _kind = type(_task).__name__  # DbtRunLocalOperator, DbtTestLocalOperator, EmptyOperator...
            _what = (f"`dbt {_kind[3:-len('LocalOperator')].lower()}`" if _kind.endswith("LocalOperator")
                     else "No-op placeholder (e.g. an ephemeral model)")
            _task.doc_md = (f"{_what} for `{_node.get('unique_id', _task.task_id)}` "
                            f"(`{_node.get('original_file_path', 'dbt_project')}`); pool `{_task.pool}`.")
