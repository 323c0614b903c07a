"""focus_forget_user: the right to be forgotten, triggered by hand. Configuration only."""
from __future__ import annotations

from airflow.sdk import DAG, Param, task

from focuslake.airflow_env import DEFAULT_TASK_ARGS, WAREHOUSE_POOL
from focuslake.orchestration import START_DATE

with DAG(
    dag_id="focus_forget_user",
    schedule=None,  # only when someone asks
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_TASK_ARGS,
    params={"user": Param("", type="string", minLength=1, maxLength=90,
                          pattern=r"^(hmac-sha256:[0-9a-f]{64}|[A-Za-z0-9][A-Za-z0-9_.-]{0,19})$",
                          title="user id or its keyed hash",
                          description="Prefer the hash (`python -m focuslake.privacy hash --user U`): "
                                      "the run's parameters stay in Airflow's metadata DB.")},
    tags=["focuslake", "privacy"],
    doc_md="""
### focus_forget_user
Removes every row and file of one user from every layer of `FOCUSLAKE_DATA` -- landing,
quarantine, lake, ledger, receiver tokens and state, quality records, the working warehouse
and the published copy (team tables rebuilt without them), reports, exports -- then scans the
whole data root for the id and writes a deletion receipt that holds only a keyed hash of it
(`FOCUSLAKE_DATA/privacy/receipts/`). Rows of theirs timed before the forget are refused by
every later ingest. See docs/privacy.md.

Trigger with the parameter `user`: the user id or, better, its keyed hash
(`python -m focuslake.privacy hash --user U`), since Airflow keeps a run's parameters in its
metadata DB. The task fails if any trace is left (the receipt lists where).
""",
) as dag:

    @task(pool=WAREHOUSE_POOL,
          doc_md="Calls `focuslake.privacy.forget.forget_user(user)`; returns the receipt (counts per layer, "
          "keyed hash only). Pool `warehouse_writer`: it deletes warehouse rows and swaps the published copy. "
          "Every step is idempotent: a retry (or a new trigger) finishes an interrupted forget.")
    def forget(params: dict | None = None) -> dict:
        from focuslake.privacy.forget import forget_user

        receipt = forget_user(None, params["user"])
        return {k: receipt[k] for k in ("user_hash", "forgotten_at", "removed", "residue", "receipt")}

    forget()
