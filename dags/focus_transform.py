"""focus_transform: dbt (bronze -> silver -> gold) over the lake, one Airflow task per dbt node.

Configuration only: Astronomer Cosmos renders dbt_project/ as a DbtTaskGroup built by
focuslake.orchestration.dbt_task_group (its docstring explains the Cosmos settings).
"""
from __future__ import annotations

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from cosmos.constants import TestBehavior

from focuslake.airflow_env import DEFAULT_TASK_ARGS
from focuslake.assets import LAKE, WAREHOUSE
from focuslake.orchestration import dbt_task_group, document_dbt_tasks

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
(`FOCUSLAKE_DATA/warehouse/focus.duckdb`): bronze views, silver and gold tables (all periods).
Each dbt model is one task (`dbt build` of the model: the model, then its tests; a test with
several parents runs as a task of its own once they are all built). Every dbt task runs in pool
`warehouse_writer` (one slot). When all succeeded, `warehouse_built` updates the
**focus_warehouse** asset, which schedules `focus_quality`.

The task graph comes from `dbt_project/target/manifest.json`: after changing models, run
`python -m focuslake.airflow_env --setup` (it runs `dbt parse`).
""",
) as dag:
    transform = dbt_task_group("dbt", test_behavior=TestBehavior.BUILD)
    warehouse_built = EmptyOperator(
        task_id="warehouse_built",
        outlets=[WAREHOUSE],
        doc_md="Marks the working warehouse as rebuilt (all dbt models and tests passed): updates "
        "the **focus_warehouse** asset. Does not open DuckDB.",
    )
    transform >> warehouse_built
    document_dbt_tasks(dag)
