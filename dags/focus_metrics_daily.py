"""focus_metrics_daily: the daily gold rollups, after midnight UTC, for the previous day. Configuration only.

The tasks (dbt build of the models tagged `daily` via Cosmos, with the run's data interval as dbt
vars -> quality -> publish -> render_reports, each user's report of that day) are built by
focuslake.orchestration.metric_tasks.
"""
from __future__ import annotations

from airflow.sdk import DAG

from focuslake.airflow_env import DEFAULT_TASK_ARGS
from focuslake.orchestration import START_DATE, metric_doc, metric_macros, metric_tasks, metric_timetable

with DAG(
    dag_id="focus_metrics_daily",
    schedule=metric_timetable("daily"),  # CronDataIntervalTimetable: the interval is exactly the period
    start_date=START_DATE,
    catchup=False,  # history: airflow backfill create (docs/airflow.md)
    max_active_runs=1,  # writes the DuckDB warehouse: runs queue, one at a time
    default_args=DEFAULT_TASK_ARGS,
    tags=["focuslake", "metrics", "daily", "warehouse"],
    doc_md=metric_doc("daily"),
    user_defined_macros=metric_macros("daily"),  # metric_interval(): the run's period, checked
) as dag:
    metric_tasks("daily")
