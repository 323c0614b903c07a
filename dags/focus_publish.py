"""focus_publish: swap the analysts' read-only copy after quality passed. Configuration only."""
from __future__ import annotations

from airflow.sdk import dag, task

from focuslake.airflow_env import DEFAULT_TASK_ARGS, WAREHOUSE_POOL
from focuslake.assets import AUDITED_WAREHOUSE, PUBLISHED_WAREHOUSE


@dag(
    dag_id="focus_publish",
    schedule=AUDITED_WAREHOUSE,
    catchup=False,
    max_active_runs=1,  # reads the DuckDB working file, writes the published copy
    default_args=DEFAULT_TASK_ARGS,
    tags=["focuslake", "publish", "warehouse"],
    doc_md="""
### focus_publish
The *publish* step of write-audit-publish. Scheduled on **focus_warehouse_audited** (updated by
`focus_quality` only when every check passed); atomically swaps the analysts' read-only copy
(`FOCUSLAKE_DATA/published/focus.duckdb`) to the audited working warehouse and updates
**focus_warehouse_published**.
""",
)
def focus_publish():
    @task(
        pool=WAREHOUSE_POOL,
        outlets=[PUBLISHED_WAREHOUSE],
        doc_md="Calls `focuslake.pipeline.publish()`. Runs in pool `warehouse_writer`: it copies the "
        "working DuckDB file, which must not be written meanwhile.",
    )
    def publish() -> dict:
        from focuslake import pipeline

        return pipeline.publish()

    publish()


focus_publish()
