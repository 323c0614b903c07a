"""Write-audit-publish end to end on a simulated workload (simulate -> ingest -> dbt build ->
quality gate -> publish):

1. a clean day passes every check and is published;
2. a second day is published while an analyst holds the published copy open and others keep
   opening it: the run is not blocked and no one sees a half-published state;
3. bad data of each kind is injected (nulls above threshold, duplicates, out-of-range values,
   future timestamps, schema drift with an extra and a missing column, a lock without unlock,
   a stale stream, a clock set back): the right check fails naming its partition, the reason
   is in the quality table (read from the analysts' published copy), the published copy is
   unchanged, the Airflow task fails naming the failed checks, and the quarantine keeps the
   evidence.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from collectors.simulate import simulate
from focuslake import pipeline
from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, Paths
from focuslake.publish import PublishError
from focuslake.quality import QualityError
from focuslake.segments import CsvSegmentWriter

pytestmark = pytest.mark.slow
DBT = Path(sys.executable).with_name("dbt")
DAY1, DAY2 = "2026-11-16", "2026-11-17"
US = 1_000_000


def dbt_build(paths: Paths) -> subprocess.CompletedProcess:
    """`dbt build` alone from dbt_project/, as a user runs it (own target dir per data root)."""
    env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(paths.root)}
    return subprocess.run([str(DBT), "build", "--profiles-dir", ".", "--target-path",
                           str(paths.root / "dbt_target"), "--log-path", str(paths.root / "dbt_logs")],
                          cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def build(paths: Paths) -> subprocess.CompletedProcess:
    pipeline.ingest(paths)
    r = dbt_build(paths)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    return r


def land(stage: Paths, paths: Paths, day: str) -> int:
    """Move one day's sealed segments from the collectors' staging area into the landing zone
    (a rename on one file system, as a collector's seal)."""
    moved = 0
    for src in sorted(stage.landing.glob(f"*/*/*/{day}/*")):
        dst = paths.landing / src.relative_to(stage.landing)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        moved += 1
    assert moved > 0
    return moved


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def ts_us(day: str, hour: float) -> int:
    return int((datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(hours=hour)).timestamp() * US)


def gold_totals(con) -> tuple:
    return con.execute("SELECT count(*), sum(keystrokes), sum(clicks) FROM gold.gld_user_hourly").fetchone()


# --- 1. a clean day --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict:
    paths = Paths(tmp_path_factory.mktemp("gate") / "data")
    # two days of two people's collectors, landing one day at a time (the second day arrives
    # while an analyst is reading the first; see second_day)
    stage = Paths(paths.root.parent / "collectors")
    simulate(stage.root, users=2, days=2, hours=3, seed=7, start=date(2026, 11, 16), durable=False)
    land(stage, paths, DAY1)
    build(paths)
    summary = pipeline.check_quality(paths)
    manifest = pipeline.publish(paths)
    return {"paths": paths, "summary": summary, "manifest": manifest, "sha": sha(paths.published)}


def test_clean_data_passes_every_check_and_is_published(clean):
    paths, s = clean["paths"], clean["summary"]
    assert s["failed"] == 0 and s["checks"] > 200
    con = duckdb.connect(str(paths.published), read_only=True)
    try:
        rows = con.execute("SELECT source, count(*), count(*) FILTER (WHERE NOT passed) FROM "
                           "audit.check_results WHERE run_id = ? GROUP BY 1 ORDER BY 1", [s["run_id"]]).fetchall()
        names = {n for (n,) in con.execute("SELECT DISTINCT check_name FROM audit.check_results").fetchall()}
    finally:
        con.close()
    assert {src: bad for src, _, bad in rows} == {"gx": 0, "sql": 0}
    assert {"segment_rows_reconcile", "lake_matches_ledger", "day_rows_reconcile", "quarantine_evidence",
            "gold_equals_silver_keystrokes", "daily_equals_sum_of_hours", "input_counts_equal_events",
            "null_rate", "duplicate_rate", "schema_violations", "ingestion_error_rate", "freshness",
            "event_order_lock_unlock", "event_order_suspend_resume", "event_order_idle",
            "input_while_locked", "gx_suite", "gx_range", "gx_key_unique", "gx_ts_not_in_future",
            "gx_ts_not_before_first_segment", "gx_row_count", "gx_schema_columns", "gx_accepted_values",
            } <= names
    assert clean["manifest"]["audit_run_id"] == s["run_id"]
    docs = paths.root / "quality_docs" / "index.html"
    assert docs.exists() and "brz_system_metrics" in docs.read_text()


# --- 2. publish under an analyst's open connection -------------------------------------------
ANALYST = textwrap.dedent("""
    import json, os, sys, time, duckdb
    mode, db, out, stop = sys.argv[1:5]
    q = "SELECT count(*), sum(keystrokes), sum(clicks) FROM gold.gld_user_hourly"
    held = duckdb.connect(db, read_only=True) if mode == "held" else None  # kept open throughout
    with open(out, "w") as f:
        def log(value):
            f.write(json.dumps({"t": time.time(), "v": value}) + "\\n"); f.flush()
        while True:
            try:
                if held is not None:
                    log(list(held.execute(q).fetchone()))
                else:  # a new analyst arriving at any moment (no other connection in this process:
                    c = duckdb.connect(db, read_only=True)  # DuckDB reuses an open instance per path)
                    log(list(c.execute(q).fetchone()))
                    c.close()
            except Exception as e:
                log(repr(e))
            if os.path.exists(stop):
                break
            time.sleep(0.05)
""")


@pytest.fixture(scope="module")
def second_day(clean, tmp_path_factory) -> dict:
    paths = clean["paths"]
    work = tmp_path_factory.mktemp("analyst")
    stop = work / "stop"
    outs = {m: work / f"{m}.jsonl" for m in ("held", "fresh")}
    procs = {m: subprocess.Popen([sys.executable, "-c", ANALYST, m, str(paths.published), str(o), str(stop)])
             for m, o in outs.items()}
    try:
        deadline = time.time() + 60
        while not all(o.exists() and o.read_text().count("\n") >= 2 for o in outs.values()) \
                and time.time() < deadline:
            time.sleep(0.1)
        land(Paths(paths.root.parent / "collectors"), paths, DAY2)
        t0 = time.time()
        build(paths)
        summary = pipeline.check_quality(paths)
        manifest = pipeline.publish(paths)
        published_at = time.time()
        time.sleep(1.5)  # the analysts keep querying after the swap
    finally:
        stop.touch()
        rcs = {m: p.wait(timeout=60) for m, p in procs.items()}
    obs = {m: [json.loads(line) for line in o.read_text().splitlines()] for m, o in outs.items()}
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    v2 = list(gold_totals(con))
    con.close()
    return {"obs": obs, "published_at": published_at, "summary": summary, "manifest": manifest,
            "pipeline_s": published_at - t0, "v2": v2, "sha": sha(paths.published), "rc": rcs}


def test_analyst_connection_neither_blocks_nor_sees_half_published_state(clean, second_day):
    obs, v2, t_pub = second_day["obs"], second_day["v2"], second_day["published_at"]
    assert second_day["rc"] == {"held": 0, "fresh": 0}
    errors = [o for m in obs for o in obs[m] if not isinstance(o["v"], list)]
    assert errors == []
    held = [o["v"] for o in obs["held"]]
    v1 = held[0]
    assert v1 != v2 and v2[0] > v1[0]           # the second day really changed gold
    # the run was not blocked: it published while the held connection was open and querying
    assert any(o["t"] > t_pub for o in obs["held"]) and any(o["t"] < t_pub - 1 for o in obs["held"])
    # the connection held across the publish saw the old version, whole, every time
    assert all(v == v1 for v in held)
    # new connections saw the old or the new version, nothing in between; the new one after the swap
    fresh = [(o["t"], o["v"]) for o in obs["fresh"]]
    assert {tuple(v) for _, v in fresh} <= {tuple(v1), tuple(v2)}
    assert any(v == v1 for t, v in fresh if t < t_pub - 1)
    after = [v for t, v in fresh if t > t_pub + 0.2]
    assert after and all(v == v2 for v in after)
    assert second_day["manifest"]["audit_run_id"] == second_day["summary"]["run_id"]


# --- 3. bad data of each kind ------------------------------------------------------------------
def write_csv(paths: Paths, stream: str, user: str, device: str, rows: list) -> Path:
    w = CsvSegmentWriter(paths.landing, stream, user, device, rotate_seconds=86_400, durable=False)
    w.write_rows(rows)
    return w.seal()


def metrics_row(t: int, cpu: float = 12.5) -> list:
    return [t, cpu, 40.0, 0.0, 1, 2, 3, 4, 80.0, True, "code", 3.0]


def raw_csv(paths: Paths, rel: str, text: str) -> Path:
    p = paths.landing / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def bad(clean, second_day) -> dict:
    paths = clean["paths"]
    before = sha(paths.published)
    wh = duckdb.connect(str(paths.warehouse), read_only=True)
    started, first_lock = wh.execute(
        "SELECT min(ts_us) FILTER (WHERE event = 'collector_start'), min(ts_us) FILTER (WHERE event = 'lock') "
        "FROM bronze.brz_system_events WHERE user_id = 'user01' AND ts::DATE = ?", [DAY1]).fetchone()
    dup_seg = wh.execute("SELECT min(segment_id) FROM bronze.brz_system_metrics WHERE user_id = 'user01' "
                         "AND ts::DATE = ?", [DAY1]).fetchone()[0]
    wh.close()
    now_us = int(time.time() * US)
    made = {}
    # nulls above threshold: a window collector that lost titles (1000 heartbeats, no title)
    t = ts_us(DAY2, 9)
    made["nulls"] = write_csv(paths, "active_window", "user03", "nulls03",
                              [[t + i * 5 * US, "code", None, 4242, "heartbeat"] for i in range(1000)])
    # duplicates: a collector re-sent an hour of samples after a crash (one new line, new checksum)
    src = (paths.landing / dup_seg).read_text().splitlines()
    made["duplicates"] = raw_csv(paths, dup_seg.replace(".csv", "-resent.csv"),
                                 "\n".join(src + [",".join(map(str, metrics_row(ts_us(DAY1, 23.9))))]) + "\n")
    # out-of-range: CPU 150 % on 300 samples (the ingest quarantines the rows)
    t = ts_us(DAY2, 11)
    made["out_of_range"] = write_csv(paths, "system_metrics", "user02", "laptop02",
                                     [metrics_row(t + i * 5 * US, cpu=150.0) for i in range(300)])
    # future timestamps: a device clock 1-2 h ahead (within the ingest's 24 h, beyond the 5 min skew)
    made["future"] = write_csv(paths, "system_metrics", "user04", "future04",
                               [metrics_row(now_us + 3600 * US + i * 5 * US) for i in range(50)])
    # schema drift: an extra column, and a missing column
    hdr = "ts_us,cpu_percent,mem_percent,swap_percent,disk_read_bytes,disk_write_bytes,net_sent_bytes," \
          "net_recv_bytes,battery_percent,on_ac_power,top_process,top_process_cpu"
    t = ts_us(DAY2, 12)
    made["schema_extra"] = raw_csv(paths, f"system_metrics/user01/laptop01/{DAY2}/system_metrics-drift-0000.csv",
                                   hdr + ",gpu_percent\n" + "\n".join(
                                       ",".join(map(str, metrics_row(t + i * 5 * US) + [7.5])) for i in range(30)) + "\n")
    made["schema_missing"] = raw_csv(paths, f"input_counts/user01/laptop01/{DAY2}/input_counts-drift-0000.csv",
                                     "ts_us,bucket_s,key_presses,clicks,mouse_moves,mouse_distance_px\n" + "\n".join(
                                         f"{t + i * 5 * US},5,0,0,0,0.0" for i in range(30)) + "\n")
    # a lock without unlock: a stray lock halfway between user01's collector start and first real lock
    made["lock_without_unlock"] = write_csv(paths, "system_events", "user01", "laptop01",
                                            [[(started + first_lock) // 2, "lock"]])
    # a stale stream: the window and input collectors of stale05 died after 30 minutes,
    # its system sampler ran on for 4 hours (no lock, no suspend)
    t = ts_us(DAY2, 8)
    made["stale_stream"] = write_csv(paths, "system_metrics", "user05", "stale05",
                                     [metrics_row(t + i * 5 * US) for i in range(4 * 720)])
    write_csv(paths, "active_window", "user05", "stale05",
              [[t + i * 5 * US, "code", "main.py", 77, "heartbeat"] for i in range(360)])
    write_csv(paths, "input_counts", "user05", "stale05", [[t + i * 5 * US, 5, 0, 0, 0, 0, 0.0] for i in range(360)])
    # a clock set back: one sample six days before the device's first segment
    made["clock_set_back"] = raw_csv(paths, f"system_metrics/user02/laptop02/{DAY1}/system_metrics-clock-0000.csv",
                                     hdr + "\n" + "\n".join(",".join(map(str, metrics_row(ts_us(DAY1, 20) + i * 5 * US)))
                                                            for i in range(10)) + "\n"
                                     + ",".join(map(str, metrics_row(ts_us("2026-11-10", 12)))) + "\n")
    r = build(paths)
    with pytest.raises(QualityError) as err:
        pipeline.check_quality(paths)
    with pytest.raises(PublishError) as perr:
        pipeline.publish(paths)
    return {"paths": paths, "err": err.value, "publish_err": perr.value, "before": before,
            "made": {k: v.relative_to(paths.landing).as_posix() for k, v in made.items()},
            "dbt_stdout": r.stdout, "first_lock": first_lock}


def failed_rows(bad: dict, check: str) -> list[dict]:
    """The failed rows of one check in the failed run, read the way an analyst would: from the
    published copy's audit.check_history view."""
    con = duckdb.connect(str(bad["paths"].published), read_only=True)
    try:
        cur = con.execute("SELECT * FROM audit.check_history WHERE run_id = ? AND check_name = ? "
                          "AND NOT passed", [bad["err"].run_id, check])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()


def test_published_copy_stays_at_the_last_good_state(bad, second_day):
    assert sha(bad["paths"].published) == second_day["sha"] == bad["before"]
    assert "failed" in str(bad["publish_err"]) and bad["err"].run_id in str(bad["publish_err"])
    manifest = json.loads(bad["paths"].published.with_suffix(".json").read_text())
    assert manifest["audit_run_id"] == second_day["summary"]["run_id"]


def test_nulls_above_threshold(bad):
    rows = failed_rows(bad, "null_rate")
    assert any(r["table_name"] == "bronze.brz_active_window" and r["column_name"] == "window_title"
               and r["partition_key"] == DAY2 and r["observed"] > 0.05 for r in rows), rows
    gx = failed_rows(bad, "gx_null_rate")
    assert [(r["table_name"], r["column_name"]) for r in gx] == [("bronze.brz_active_window", "window_title")]


def test_duplicates(bad):
    rows = failed_rows(bad, "duplicate_rate")
    assert [(r["table_name"], r["partition_key"]) for r in rows if r["partition_key"] != "all"] == [
        ("bronze.brz_system_metrics", DAY1)]
    assert rows[0]["observed"] > 0.01 and "repeat the key" in " ".join(r["detail"] for r in rows)
    assert [r["table_name"] for r in failed_rows(bad, "gx_key_unique")] == ["bronze.brz_system_metrics"]


def test_out_of_range(bad):
    rel = bad["made"]["out_of_range"]
    rows = failed_rows(bad, "ingestion_error_rate")
    (part,) = [r for r in rows if r["partition_key"] == f"system_metrics {DAY2}"]
    assert part["observed"] > 0.01 and rel in part["detail"]
    rejects = bad["paths"].quarantine / "rows" / f"{rel}.rejects.parquet"
    reasons = duckdb.execute(f"SELECT DISTINCT reason FROM read_parquet('{rejects}')").fetchall()
    assert reasons == [("cpu_percent above maximum 100",)]


def test_future_timestamps(bad):
    rows = failed_rows(bad, "gx_ts_not_in_future")
    assert [(r["table_name"], r["column_name"]) for r in rows] == [("bronze.brz_system_metrics", "ts")]
    assert 0 < rows[0]["observed"] < 0.05 and "50 of" in rows[0]["detail"]


def test_schema_drift_extra_and_missing_column(bad):
    rows = failed_rows(bad, "schema_violations")
    parts = {r["partition_key"]: r["detail"] for r in rows}
    assert "unexpected columns ['gpu_percent']" in parts[bad["made"]["schema_extra"]]
    assert "missing columns ['wheel']" in parts[bad["made"]["schema_missing"]]
    for kind in ("schema_extra", "schema_missing"):  # the evidence is kept, with its reason
        moved = bad["paths"].quarantine / "files" / bad["made"][kind]
        assert moved.exists() and json.loads(moved.with_name(moved.name + ".reason.json").read_text()
                                             )["reason"].startswith("schema:")


def test_lock_without_unlock(bad):
    order = failed_rows(bad, "event_order_lock_unlock")
    assert any(r["partition_key"] == f"user01/laptop01 {DAY1}" and "lock without unlock" in r["detail"]
               for r in order), order
    locked = failed_rows(bad, "input_while_locked")
    assert [r["partition_key"] for r in locked if r["partition_key"] != "all"] == [f"user01/laptop01 {DAY1}"]
    # dbt's singular tests report the same (as warnings; the gate is what blocks)
    out = bad["dbt_stdout"]
    assert "Warning in test assert_lock_followed_by_unlock" in out
    assert "Warning in test assert_no_input_while_locked" in out


def test_stale_stream(bad):
    rows = failed_rows(bad, "freshness")
    stale = {(r["table_name"], r["partition_key"]) for r in rows if r["partition_key"] != "all"}
    assert stale == {("bronze.brz_active_window", "user05/stale05"), ("bronze.brz_input_counts", "user05/stale05")}
    assert all(r["observed"] > 2 * 3600 for r in rows if r["partition_key"] != "all")


def test_clock_set_back(bad):
    rows = failed_rows(bad, "gx_ts_not_before_first_segment")
    assert [(r["table_name"], r["column_name"]) for r in rows] == [("bronze.brz_system_metrics", "ts")]
    assert "2026-11-10" in rows[0]["detail"]


def test_data_docs_show_the_failed_validations(bad):
    index = (bad["paths"].root / "quality_docs" / "index.html").read_text()
    assert bad["err"].run_id in index
    assert index.count("<td>FAILED</td>") >= 2  # brz_system_metrics and brz_active_window at least


def test_failure_message_names_every_failed_check(bad):
    msg = str(bad["err"])
    for name in ("null_rate", "duplicate_rate", "ingestion_error_rate", "gx_ts_not_in_future",
                 "schema_violations", "event_order_lock_unlock", "input_while_locked", "freshness",
                 "gx_ts_not_before_first_segment"):
        assert name in msg, name
    assert bad["err"].run_id in msg


def test_nothing_lost_reconciliation_still_exact(bad):
    con = duckdb.connect(str(bad["paths"].published), read_only=True)
    try:
        rows = con.execute("SELECT check_name, bool_and(passed) FROM audit.check_history WHERE run_id = ? "
                           "AND check_name IN ('segment_rows_reconcile', 'lake_matches_ledger', "
                           "'day_rows_reconcile', 'quarantine_evidence', 'gold_equals_silver_keystrokes', "
                           "'daily_equals_sum_of_hours') GROUP BY 1", [bad["err"].run_id]).fetchall()
    finally:
        con.close()
    assert dict(rows) == dict.fromkeys(["segment_rows_reconcile", "lake_matches_ledger", "day_rows_reconcile",
                                        "quarantine_evidence", "gold_equals_silver_keystrokes",
                                        "daily_equals_sum_of_hours"], True)


def test_airflow_quality_task_fails_naming_the_checks(bad, airflow_ready, monkeypatch):
    from airflow_harness import last_run, run_dag

    monkeypatch.setenv("FOCUSLAKE_DATA", str(bad["paths"].root))
    with pytest.raises(AssertionError) as e:
        run_dag("focus_quality")
    assert "check_quality" in str(e.value) and "schema_violations" in str(e.value)
    run = last_run("focus_quality")
    assert run["tasks"] == {"check_quality": "failed"} and run["asset_events"] == []
    assert sha(bad["paths"].published) == bad["before"]
