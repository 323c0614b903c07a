"""focus_quality: audit the working warehouse after each transform. Configuration only."""
from __future__ import annotations

from airflow.sdk import dag, task

from focuslake.airflow_env import DEFAULT_TASK_ARGS, WAREHOUSE_POOL
from focuslake.assets import AUDITED_WAREHOUSE, WAREHOUSE


@dag(
    dag_id="focus_quality",
    schedule=WAREHOUSE,
    catchup=False,
    max_active_runs=1,  # opens the DuckDB working file
    default_args=DEFAULT_TASK_ARGS,
    tags=["focuslake", "quality", "warehouse"],
    doc_md="""
### focus_quality
The *audit* step of write-audit-publish. Scheduled on the **focus_warehouse** asset (updated by
`focus_transform`); runs the quality checks over the working DuckDB warehouse. If every check
passes it updates **focus_warehouse_audited**, which schedules `focus_publish`; a failed check
fails the task (after its retries) and nothing is published.
""",
)
def focus_quality():
    @task(
        pool=WAREHOUSE_POOL,
        outlets=[AUDITED_WAREHOUSE],
        doc_md="Calls `focuslake.pipeline.check_quality()` (raises naming the failed checks). "
        "Runs in pool `warehouse_writer`: DuckDB allows one writer process.",
    )
    def check_quality() -> dict:
        from focuslake import pipeline

        return pipeline.check_quality()

    check_quality()


focus_quality()
