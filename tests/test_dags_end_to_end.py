"""The real Airflow DAG chain (dag.test() on SQLite metadata, Cosmos running dbt) on a
simulated workload: gold in the published copy equals the workload's ground truth."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from datetime import date

import duckdb
import pytest
from airflow_harness import last_run, run_dag
from netaudit import audit, is_local

from collectors.simulate import simulate
from focuslake.config import Paths
from focuslake.verify import compare_with_truth, format_report

pytestmark = pytest.mark.slow
CHAIN = ("focus_ingest", "focus_transform", "focus_quality", "focus_publish")


@pytest.fixture(scope="module")
def chain(airflow_ready, tmp_path_factory):
    data = tmp_path_factory.mktemp("dag-e2e") / "data"
    mp = pytest.MonkeyPatch()
    mp.setenv("FOCUSLAKE_DATA", str(data))  # read at DAG parse (dbt env) and task run time
    simulate(data, users=2, days=2, seed=5, start=date(2026, 11, 17), hours=4, durable=False)
    with audit(data.parent) as seen:  # every socket connect / name lookup, here and in child processes
        states = {dag_id: run_dag(dag_id) for dag_id in CHAIN}
    CONNECTIONS.extend(seen.all())
    yield Paths(data), states
    mp.undo()


CONNECTIONS: list[dict] = []


def test_the_chain_reaches_nothing_beyond_this_machine(chain, tmp_path):
    """Cosmos, dbt (run in the task process), GX and Airflow ran the whole chain: not one
    connection or name lookup left the machine (telemetry is off in the project's own config)."""
    outbound = [e for e in CONNECTIONS if not is_local(e["target"])]
    assert outbound == [], outbound
    # the audit is live: an attempt is recorded (in this process and in a child process)
    with audit(tmp_path) as seen:
        with contextlib.suppress(OSError):
            socket.getaddrinfo("telemetry.example.invalid", 443)
        subprocess.run([sys.executable, "-c", ("import socket\ntry: socket.getaddrinfo('scarf.example.invalid', 443)\n"
                        "except OSError: pass")], check=True)
    assert {e["target"] for e in seen.outbound()} == {"'telemetry.example.invalid'", "'scarf.example.invalid'"}


def test_every_dag_of_the_chain_succeeds_and_emits_its_asset(chain):
    _, states = chain
    assert states == dict.fromkeys(CHAIN, "success")
    assert last_run("focus_ingest")["asset_events"] == ["focus_lake"]
    transform = last_run("focus_transform")
    assert transform["asset_events"] == ["focus_warehouse"]
    # one `dbt build` of the whole project, then the outlet
    assert transform["tasks"] == {"dbt_build": "success", "warehouse_built": "success"}
    assert last_run("focus_publish")["asset_events"] == ["focus_warehouse_published"]


def test_published_gold_matches_ground_truth(chain):
    paths, _ = chain
    diffs = compare_with_truth(paths.published, paths.truth)
    report = format_report(diffs)
    print(report)
    assert all(d.ok for d in diffs), report
    assert min(d.compared for d in diffs if d.grain == "user-hour") >= 2 * 2 * 3


def test_quality_results_are_in_the_published_copy(chain):
    paths, _ = chain
    con = duckdb.connect(str(paths.published), read_only=True)
    try:
        names = {n for (n,) in con.execute("SELECT DISTINCT check_name FROM audit.check_results "
                                           "WHERE passed").fetchall()}
    finally:
        con.close()
    assert {"segment_rows_reconcile", "lake_matches_ledger", "daily_equals_sum_of_hours"} <= names


def test_no_new_segments_means_no_downstream_run(chain):
    assert run_dag("focus_ingest") == "success"
    assert last_run("focus_ingest")["tasks"] == {"ingest": "skipped"}
