"""focus_ingest: landing zone -> Parquet lake, when segments land (or every 5 minutes). Configuration only."""
from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from focuslake.airflow_env import DEFAULT_TASK_ARGS
from focuslake.assets import LAKE, LANDING


@dag(
    dag_id="focus_ingest",
    # when the landing watcher sees new sealed segments, and every 5 minutes as a backstop
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("*/5 * * * *", timezone="UTC"), assets=LANDING),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # one ingest at a time: the ledger and the partition rewrites are per-process
    default_args=DEFAULT_TASK_ARGS,
    tags=["focuslake", "ingest", "lake"],
    doc_md="""
### focus_ingest
Moves sealed segments from `FOCUSLAKE_DATA/landing/` into the Parquet lake
(`FOCUSLAKE_DATA/lake/`, Hive partitions), quarantining bad files and rows with their reason
and recording every segment in the ledger (re-dropped files are no-ops).

Runs when sealed segments land: the **focus_landing** asset's watcher
(`focuslake.landing_watch.LandingTrigger`, in the triggerer) polls the landing zone every 5 s
and updates the asset once new segments appear. Also every 5 minutes (no catch-up), in case an
event was lost. When it ingested or quarantined new segments it updates
the **focus_lake** asset, which schedules `focus_transform`; with nothing new the task is
skipped and nothing downstream runs. Does not open the DuckDB warehouse.
""",
)
def focus_ingest():
    @task(
        outlets=[LAKE],
        doc_md="Calls `focuslake.pipeline.ingest()`; returns the segment and row counts (XCom). "
        "When no new or changed segment was found the task ends *skipped*: the lake did not "
        "change, so no **focus_lake** event is emitted and dbt does not rerun every 5 minutes.",
    )
    def ingest() -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from focuslake import pipeline

        counts = pipeline.ingest()
        if counts["segments_new"] == 0:  # a skipped task emits no asset event
            raise AirflowSkipException(f"no new segments in the landing zone: {counts}")
        return counts

    ingest()


focus_ingest()
