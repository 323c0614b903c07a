"""focus_export: every day, each user's previous UTC day as a data-portability export. Configuration only.

The export itself is focuslake.export.scheduled_export (docs/analyst.md, "Export").
"""
from __future__ import annotations

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task

from focuslake.airflow_env import DEFAULT_TASK_ARGS
from focuslake.orchestration import START_DATE

EXPORT_CRON = "0 2 * * *"  # 02:00 UTC: two hours after focus_metrics_daily (00:00) has started
EXPORT_FORMAT = "parquet"  # or "csv"
EXPORT_USERS: list[str] = []  # empty: every user with gold rows that day; or the user ids to export

with DAG(
    dag_id="focus_export",
    # [D 02:00, D+1 02:00): the run after that interval exports UTC day D
    schedule=CronDataIntervalTimetable(EXPORT_CRON, timezone="UTC"),
    start_date=START_DATE,
    catchup=False,  # history: airflow backfill create --dag-id focus_export ...
    max_active_runs=1,
    default_args=DEFAULT_TASK_ARGS,
    tags=["focuslake", "export", "privacy"],
    params={
        "users": Param(EXPORT_USERS, type="array", items={"type": "string"},
                       description="user ids to export; empty = every user with data that day"),
        "format": Param(EXPORT_FORMAT, enum=["parquet", "csv"]),
        "day": Param(None, type=["null", "string"], format="date",
                     description="YYYY-MM-DD to export instead of the run's day"),
    },
    doc_md="""
### focus_export
Data portability (seed 004): at 02:00 UTC, after `focus_metrics_daily` published the previous
day, writes each user's gold rows of that UTC day (every gold table and view with a `user_id`;
the week and month rows containing the day; the streak summary) from the **published** copy to
`FOCUSLAKE_DATA/exports/<user_id>/day-<YYYY-MM-DD>/` with a `manifest.json` (rows and sha256
per file). A rerun of the same day replaces that export. Each export is recorded in the access
log (`privacy/access_log.jsonl`, the user as a keyed hash).

Params: `users` (empty = everyone with data that day), `format` (`parquet` | `csv`), `day`
(export another day). The run fails (and retries) if the published copy predates the end of
the day: the daily metrics are not published yet.
""",
) as dag:

    @task(doc_md="Calls `focuslake.export.scheduled_export()`: the run's day (its data interval's start date), "
          "for the users in params. Reads only the published read-only copy, so it runs outside pool "
          "`warehouse_writer`.")
    def export(params=None, data_interval_start=None, dag_run=None) -> dict:
        from focuslake.export import scheduled_export

        params = params or {}
        return scheduled_export(data_interval_start=data_interval_start, run_after=getattr(dag_run, "run_after", None),
                                day=params.get("day"), users=params.get("users"), fmt=params.get("format", "parquet"))

    export()
