"""The quality gate on imported history (docs/quality.md "Imported history", docs/activitywatch.md).

An ActivityWatch export (built with ActivityWatch's own code, as tests/test_activitywatch.py
does) is imported for one person beside a simulated collector user; ingest -> `dbt build` ->
`pipeline.check_quality` -> `pipeline.publish` must pass and publish, and the published gold must
hold the imported person's per-app seconds exactly as ActivityWatch's own query engine computes
them (and the collector user's as the simulator's ground truth). Then the same scoping must not
hide a real collector problem: a collector device whose window and input streams stop is stale,
and NULL pids of collector rows are still counted -- also under a segment name that only looks
like an import.
"""
from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from duck import q
from test_activitywatch import aw_active_events, dbt_build, make_export, per_hour_app_us, write

from collectors.simulate import simulate
from focuslake import importers, pipeline
from focuslake.config import Paths
from focuslake.importers import activitywatch as aw
from focuslake.publish import PublishError
from focuslake.quality import QualityError
from focuslake.quality.gx import CONTEXT_DIR
from focuslake.segments import CsvSegmentWriter
from focuslake.verify import ACTIVE_TOLERANCE_S

US = 1_000_000
DAY1, DAY2 = "2026-11-16", "2026-11-17"   # the simulated day; the export runs 22:10 -> 01:20
PERSON, AW_DEVICE = "alice", "laptop-aw"



def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def ts_us(day: str, hour: float) -> int:
    return int((datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(hours=hour)).timestamp() * US)


def rows_of(paths: Paths, run_id: str, check: str, *, failed: bool | None = None) -> list[dict]:
    """One check's stored rows of one run, read from the run's results (audit.check_history)."""
    con = duckdb.connect()
    try:
        cur = con.execute(f"SELECT * FROM read_parquet('{paths.root}/quality/results/*.parquet') "
                          "WHERE run_id = ? AND check_name = ?" + ("" if failed is None else
                                                                  f" AND passed = {not failed}"),
                          [run_id, check])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


# --- the rule, fast ---------------------------------------------------------------------------
NAMES = {  # landing path -> source
    "active_window/u1/d1/2026-11-17/active_window-activitywatch-20261117-0123456789abcdef0123.csv":
        "activitywatch",
    "system_events/u1/d1/2026-11-17/system_events-activitywatch-20261117-0123456789abcdef0123.csv":
        "activitywatch",
    "active_window/u1/d1/2026-11-17/active_window-20261117T090000Z-0000.csv": "collector",
    "events/u1/d1/2026-11-17/events-20261117T090000Z-0000.bin": "collector",
    # merely containing the mark is not enough: the exact form, under its own stream
    "active_window/u1/d1/2026-11-17/active_window-activitywatch-20261117-stale.csv": "collector",
    "active_window/u1/d1/2026-11-17/system_events-activitywatch-20261117-0123456789abcdef0123.csv":
        "collector",
    "active_window/u1/d1/2026-11-17/active_window-activitywatch-20261117-0123456789abcdef0123.csv.part":
        "collector",
    "active_window/u1/d1/2026-11-17/x-active_window-activitywatch-20261117-0123456789abcdef0123.csv":
        "collector",
}


def test_python_and_sql_rule_agree_and_the_importer_follows_it(tmp_path):
    con = duckdb.connect()
    for path, want in NAMES.items():
        assert importers.source_of(path) == want, path
        assert con.execute(f"SELECT {importers.source_sql('p')} FROM (SELECT ?::VARCHAR AS p)",
                           [path]).fetchone()[0] == want, path
    assert con.execute(f"SELECT {importers.source_sql('p')} FROM (SELECT NULL::VARCHAR AS p)").fetchone()[0] \
        == importers.COLLECTOR
    # every segment a real import writes is recognised as imported, a collector's is not
    paths = Paths(tmp_path / "data")
    r = aw.import_export(paths, write(tmp_path, "full.json", make_export()), "u1", "laptop-aw", durable=False)
    assert len(r.segments_written) >= 4 and {importers.source_of(s) for s in r.segments_written} == {"activitywatch"}
    with CsvSegmentWriter(paths.landing, "active_window", "u1", "laptop", durable=False) as w:
        w.write_row([ts_us(DAY1, 9), "Code", "x", 1, "change"])
    (seg,) = w.sealed
    assert importers.source_of(seg.relative_to(paths.landing).as_posix()) == importers.COLLECTOR


def test_only_the_collector_bounds_are_scoped_in_the_committed_suites():
    import json

    scoped = {}
    for f in sorted((CONTEXT_DIR / "expectations").glob("*.json")):
        for e in json.loads(f.read_text())["expectations"]:
            if "row_condition" in e["kwargs"]:
                scoped[(f.stem, e["kwargs"]["column"])] = (e["type"], e["kwargs"]["row_condition"]["parameter"])
    assert scoped == {
        ("brz_active_window", "pid"): ("expect_column_values_to_not_be_null", "collector"),
        ("brz_active_window", "window_title"): ("expect_column_values_to_not_be_null", "collector"),
        ("brz_system_metrics", "top_process"): ("expect_column_values_to_not_be_null", "collector"),
        ("brz_system_metrics", "top_process_cpu"): ("expect_column_values_to_not_be_null", "collector"),
    }


# --- the pipeline, once per module --------------------------------------------------------------
@pytest.fixture(scope="module")
def export() -> dict:
    return make_export()


@pytest.fixture(scope="module")
def mixed(export, tmp_path_factory) -> dict:
    """One simulated collector user (3 hours of DAY1) and one person's imported ActivityWatch
    history, through ingest, dbt build, the gate and publish."""
    tmp = tmp_path_factory.mktemp("qimport")
    paths = Paths(tmp / "data")
    simulate(paths.root, users=1, days=1, hours=3, seed=7, start=date.fromisoformat(DAY1), durable=False)
    imported = aw.import_export(paths, write(tmp, "aw-export.json", export), PERSON, AW_DEVICE, durable=False)
    ingest = pipeline.ingest(paths)
    dbt_build(paths.root)
    summary = pipeline.check_quality(paths)   # raises QualityError if the gate fails
    manifest = pipeline.publish(paths)
    return {"paths": paths, "imported": imported, "ingest": ingest, "summary": summary,
            "manifest": manifest, "sha": sha(paths.published)}


@pytest.mark.slow
def test_gate_passes_and_publishes_imported_history(mixed):
    s, paths = mixed["summary"], mixed["paths"]
    assert s["failed"] == 0 and s["checks"] > 200
    assert mixed["ingest"]["rows_quarantined"] == 0 and mixed["imported"].rows["active_window"] > 500
    assert mixed["manifest"]["audit_run_id"] == s["run_id"]
    # the published copy holds both people
    users = {u for (u,) in q(paths.published, "SELECT DISTINCT user_id FROM gold.gld_user_daily")}
    assert users == {PERSON, "user01"}
    # the collector-only bounds were measured, on collector rows, and said so
    (pid,) = [r for r in rows_of(paths, s["run_id"], "null_rate")
              if r["table_name"] == "bronze.brz_active_window" and r["column_name"] == "pid"
              and r["partition_key"] == "all"]
    n_imported = q(paths.warehouse, "SELECT count(*) FROM bronze.brz_active_window WHERE user_id = ?", [PERSON])[0][0]
    assert pid["passed"] and n_imported > 0 and f"{n_imported} imported rows not counted" in pid["detail"]
    (gx_pid,) = [r for r in rows_of(paths, s["run_id"], "gx_null_rate")
                 if r["table_name"] == "bronze.brz_active_window" and r["column_name"] == "pid"]
    assert gx_pid["passed"]
    # freshness: measured for the collector's streams, recorded as not applicable for the import
    fresh = rows_of(paths, s["run_id"], "freshness")
    measured = {(r["table_name"], r["partition_key"]) for r in fresh if r["severity"] == "critical"
                and r["partition_key"] != "all"}
    assert measured == {(f"bronze.brz_{x}", "user01/laptop01")
                        for x in ("system_metrics", "active_window", "input_counts")}
    (info,) = [r for r in fresh if r["partition_key"] == f"{PERSON}/{AW_DEVICE}"]
    assert info["severity"] == "info" and "imported history only" in info["detail"]


@pytest.mark.slow
def test_published_gold_has_the_imported_persons_per_app_seconds(mixed, export):
    """Per UTC hour and app, published gold = ActivityWatch's canonical query (window ∩ not-afk)
    on the same export, bit for bit; per day within 1e-9 s (sums of doubles)."""
    db = mixed["paths"].published
    want = per_hour_app_us(aw_active_events(export))
    assert len(want) > 10
    gold = {(h, a): sec for h, a, sec in q(db, "SELECT hour_start, app_name, active_seconds "
                                               "FROM gold.gld_user_app_hourly WHERE user_id = ?", [PERSON])}
    assert gold == {k: us / 1e6 for k, us in want.items()}
    daily: dict = {}
    for (h, app), us in want.items():
        daily[(h.date(), app)] = daily.get((h.date(), app), 0) + us
    got = {(d, a): sec for d, a, sec in q(db, "SELECT day, app_name, active_seconds FROM gold.gld_user_app_daily "
                                              "WHERE user_id = ?", [PERSON])}
    assert got.keys() == daily.keys() and max(abs(got[k] - us / 1e6) for k, us in daily.items()) <= 1e-9


@pytest.mark.slow
def test_the_collector_user_beside_the_import_matches_ground_truth(mixed):
    paths = mixed["paths"]
    rows = q(paths.published, f"""
        WITH t AS (SELECT user_id, hour_start, app_name, sum(active_seconds) AS s
                   FROM read_parquet('{paths.truth}/app_hourly.parquet') GROUP BY ALL),
             g AS (SELECT user_id, hour_start, app_name, active_seconds AS s FROM gold.gld_user_app_hourly
                   WHERE user_id <> '{PERSON}')
        SELECT count(*), max(abs(coalesce(t.s, 0) - coalesce(g.s, 0)))
        FROM t FULL OUTER JOIN g USING (user_id, hour_start, app_name)""")
    (n, worst), = rows
    assert n >= 6 and worst <= ACTIVE_TOLERANCE_S


# --- the same scoping does not hide a real collector problem -------------------------------------
def write_csv(paths: Paths, stream: str, user: str, device: str, rows: list, name: str | None = None) -> str:
    w = CsvSegmentWriter(paths.landing, stream, user, device, rotate_seconds=86_400, durable=False, name=name)
    w.write_rows(rows)
    return w.seal().relative_to(paths.landing).as_posix()


def metrics_row(t: int) -> list:
    return [t, 12.5, 40.0, 0.0, 1, 2, 3, 4, 80.0, True, "code", 3.0]


@pytest.fixture(scope="module")
def broken(mixed) -> dict:
    """On top of the published state: a collector device whose window and input collectors die
    after 30 minutes while its system sampler runs on for 4 hours (no lock, no suspend), and a
    collector window stream without pids landed under a name that only looks like an import
    (another stream's import name)."""
    paths = mixed["paths"]
    t = ts_us(DAY2, 8)
    made = {"stale": write_csv(paths, "system_metrics", "user06", "stale06",
                               [metrics_row(t + i * 5 * US) for i in range(4 * 720)])}
    write_csv(paths, "active_window", "user06", "stale06",
              [[t + i * 5 * US, "code", "main.py", 77, "heartbeat"] for i in range(360)])
    write_csv(paths, "input_counts", "user06", "stale06", [[t + i * 5 * US, 5, 0, 0, 0, 0, 0.0] for i in range(360)])
    made["no_pid"] = write_csv(paths, "active_window", "user07", "nopid07",
                               [[t + i * 5 * US, "code", "main.py", None, "heartbeat"] for i in range(1000)],
                               name="system_events-activitywatch-20261117-0123456789abcdef0123")
    pipeline.ingest(paths)
    dbt_build(paths.root)
    with pytest.raises(QualityError) as err:
        pipeline.check_quality(paths)
    with pytest.raises(PublishError):
        pipeline.publish(paths)
    return {"paths": paths, "err": err.value, "made": made}


@pytest.mark.slow
def test_a_stopped_collector_stream_is_still_stale(broken, mixed):
    paths, run = broken["paths"], broken["err"].run_id
    failed = rows_of(paths, run, "freshness", failed=True)
    stale = {(r["table_name"], r["partition_key"]) for r in failed if r["partition_key"] != "all"}
    assert stale == {("bronze.brz_active_window", "user06/stale06"), ("bronze.brz_input_counts", "user06/stale06")}
    assert all(r["observed"] > 2 * 3600 and "is stale" in r["detail"] for r in failed if r["partition_key"] != "all")
    # the imported device and the healthy collector are not among them, and the import is still
    # recorded as out of scope in the failed run
    info = [r for r in rows_of(paths, run, "freshness") if r["partition_key"] == f"{PERSON}/{AW_DEVICE}"]
    assert [r["severity"] for r in info] == ["info"]
    assert "freshness on bronze" in str(broken["err"])
    # nothing was published: analysts keep the last good copy
    assert sha(paths.published) == mixed["sha"]


@pytest.mark.slow
def test_collector_rows_without_pid_are_still_counted(broken):
    paths, run = broken["paths"], broken["err"].run_id
    assert importers.source_of(broken["made"]["no_pid"]) == importers.COLLECTOR
    failed = [r for r in rows_of(paths, run, "null_rate", failed=True)
              if r["table_name"] == "bronze.brz_active_window" and r["column_name"] == "pid"]
    (day,) = [r for r in failed if r["partition_key"] == DAY2]
    # DAY2's collector rows: nopid07's 1000 without pid and stale06's 360 with; alice's imported
    # rows of that day are not counted
    assert day["observed"] == pytest.approx(1000 / 1360) and "of 1360 collector rows" in day["detail"]
    (gx,) = rows_of(paths, run, "gx_null_rate", failed=True)
    assert gx["column_name"] == "pid" and "collector rows unexpected" in gx["detail"]
