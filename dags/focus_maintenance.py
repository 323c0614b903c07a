"""focus_maintenance: daily housekeeping of the data root. Configuration only."""
from __future__ import annotations

from airflow.sdk import DAG, task

from focuslake.airflow_env import DEFAULT_TASK_ARGS, WAREHOUSE_POOL
from focuslake.orchestration import START_DATE

with DAG(
    dag_id="focus_maintenance",
    schedule="30 3 * * *",  # 03:30 UTC, after the daily metrics; the interval is not used
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_TASK_ARGS,
    tags=["focuslake", "maintenance", "warehouse"],
    doc_md="""
### focus_maintenance
Daily housekeeping (`focuslake.maintenance`):
1. `retention` -- retention by data class (`focuslake.privacy.retention`: sensitive 7 days,
   general 30, system 90 by default, `FOCUSLAKE_DATA/privacy/policy.toml` to change) across
   landing, quarantine, lake, ledger, receiver state, the working warehouse and the published
   copy; its XCom is the report of what was removed, per layer.
2. `remove_orphan_temp_files` -- `.<name>.tmp-<pid>` files of writers that died between write
   and rename (lake partitions, ledger export, publish), once their process is gone.
3. `maintain_warehouse` -- `CHECKPOINT` of the working DuckDB warehouse and, when a quarter of
   its blocks are free, a compaction (copy to a new file, row counts compared, atomic rename).

The tasks that open the warehouse run in pool `warehouse_writer` (one slot).
""",
) as dag:

    @task(pool=WAREHOUSE_POOL, doc_md="Calls `focuslake.maintenance.apply_retention()`: removes what is past "
          "its data class's age from every layer and returns the report (XCom). Pool `warehouse_writer`: it "
          "deletes warehouse rows and swaps the published copy.")
    def retention() -> dict:
        from focuslake import maintenance

        return maintenance.apply_retention()

    @task(trigger_rule="none_failed", doc_md="Calls `focuslake.maintenance.remove_orphan_temp_files()`: "
          "removes temp files of dead writers older than an hour. Does not open DuckDB.")
    def remove_orphan_temp_files() -> dict:
        from focuslake import maintenance

        return maintenance.remove_orphan_temp_files()

    @task(pool=WAREHOUSE_POOL, trigger_rule="none_failed",
          doc_md="Calls `focuslake.maintenance.maintain_warehouse()`: CHECKPOINT, and compaction when at "
          "least 25 % of the file is free blocks. Pool `warehouse_writer`: it rewrites the DuckDB file.")
    def maintain_warehouse() -> dict:
        from focuslake import maintenance

        return maintenance.maintain_warehouse()

    retention() >> remove_orphan_temp_files() >> maintain_warehouse()
