"""focus_transform: dbt (bronze -> silver -> gold) over the lake, one `dbt build`. Configuration only.

The task is a Cosmos DbtBuildLocalOperator made by focuslake.orchestration.dbt_build_task (its
module docstring explains the Cosmos settings and why the scheduled transform is one dbt build).
"""
from __future__ import annotations

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from focuslake.airflow_env import DEFAULT_TASK_ARGS
from focuslake.assets import LAKE, WAREHOUSE
from focuslake.orchestration import TRANSFORM_BUILD_DOC, dbt_build_task

with DAG(
    dag_id="focus_transform",
    schedule=LAKE,
    catchup=False,
    max_active_runs=1,  # one dbt build at a time: DuckDB allows one writer process
    default_args=DEFAULT_TASK_ARGS,
    tags=["focuslake", "dbt", "warehouse"],
    doc_md="""
### focus_transform
Scheduled on the **focus_lake** asset (updated by `focus_ingest`). `dbt_build` runs the dbt
project `dbt_project/` over the Parquet lake into the working DuckDB warehouse
(`FOCUSLAKE_DATA/warehouse/focus.duckdb`) as one `dbt build`: seeds, bronze views, silver and
gold tables, each model followed by its tests, in dependency order. The event-derived models are
incremental: a build rebuilds only what the newly ingested segments reach (docs/incremental.md).
Pool `warehouse_writer` (one slot). When it succeeded, `warehouse_built` updates the
**focus_warehouse** asset, which schedules `focus_quality`.

Per-model results: the task log lists every model and test with its status and time (dbt's
own output). A failed model or test fails the task; its retry builds again, and a model whose
tests failed is rebuilt and tested again (its build is not counted as consumed). To rebuild one
model by hand: `cd dbt_project && ../.venv/bin/dbt build --select <model>` (docs/airflow.md).
""",
) as dag:
    transform = dbt_build_task("dbt_build", select=[], doc_md=TRANSFORM_BUILD_DOC)
    warehouse_built = EmptyOperator(
        task_id="warehouse_built",
        outlets=[WAREHOUSE],
        doc_md="Marks the working warehouse as rebuilt (all dbt models and tests passed): updates "
        "the **focus_warehouse** asset. Does not open DuckDB.",
    )
    transform >> warehouse_built
