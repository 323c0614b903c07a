"""focus_metrics_weekly: the weekly gold rollups, on Mondays, for the previous ISO week. Configuration only.

The tasks (dbt build of the models tagged `weekly` via Cosmos, with the run's data interval as dbt
vars -> quality -> publish -> render_reports, each user's report of that ISO week) are built by
focuslake.orchestration.metric_tasks.
"""
from __future__ import annotations

from airflow.sdk import DAG

from focuslake.airflow_env import DEFAULT_TASK_ARGS
from focuslake.orchestration import START_DATE, metric_doc, metric_macros, metric_tasks, metric_timetable

with DAG(
    dag_id="focus_metrics_weekly",
    schedule=metric_timetable("weekly"),  # CronDataIntervalTimetable: the interval is exactly the period
    start_date=START_DATE,
    catchup=False,  # history: airflow backfill create (docs/airflow.md)
    max_active_runs=1,  # writes the DuckDB warehouse: runs queue, one at a time
    default_args=DEFAULT_TASK_ARGS,
    tags=["focuslake", "metrics", "weekly", "warehouse"],
    doc_md=metric_doc("weekly"),
    user_defined_macros=metric_macros("weekly"),  # metric_interval(): the run's period, checked
) as dag:
    metric_tasks("weekly")
