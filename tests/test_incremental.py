"""Incremental builds (dbt_project/macros/incremental.sql) equal a full refresh row for row.

One workload lands piece by piece: day 1 (less one events segment, held back as late data),
then day 2 hour by hour, then day 3, then the late segment. After each piece the pipeline
ingests and two warehouses are built incrementally from the same lake: one with the default
day partitions (built at the end of each day), one with hour partitions (built after every
piece, so restarts cross many partition boundaries inside activity: intervals, AFK periods and
sessions running over them). A `--full-refresh` build of the final lake is the reference: every
silver and gold table must be equal (floats within 1e-9)."""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest
from duck import q

from collectors.simulate import simulate
from focuslake import pipeline
from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, Paths

pytestmark = pytest.mark.slow
DBT = Path(sys.executable).with_name("dbt")
HOUR_VARS = '{"incremental_partition_s": 3600}'
FLOAT_TYPES = {"DOUBLE", "FLOAT", "REAL"}


def dbt(data: Path, warehouse: Path, *args: str, check: bool = True) -> str:
    env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(data), "FOCUSLAKE_WAREHOUSE": str(warehouse)}
    target = warehouse.parent / f"target-{warehouse.stem}"
    r = subprocess.run([str(DBT), *args, "--profiles-dir", ".", "--target-path", str(target),
                        "--log-path", str(target / "logs")],
                       cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == 0 or not check, r.stdout[-4000:] + r.stderr[-2000:]
    return r.stdout if r.returncode == 0 else f"FAILED\n{r.stdout}"


def segment_hour(p: Path) -> str:
    return p.name.split("-")[1][:11]  # <stream>-<YYYYmmddTHHMMSSZ>-<seq>.<ext> -> YYYYmmddTHH


def release(held: Path, landing: Path, hours: set[str]) -> int:
    n = 0
    for p in sorted(held.rglob("*")):
        if p.is_file() and segment_hour(p) in hours:
            dst = landing / p.relative_to(held)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(p, dst)
            n += 1
    return n


def layer_tables(db: Path) -> dict[str, list[tuple[str, str]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns()
                              WHERE schema_name IN ('silver', 'gold') AND (schema_name, table_name) IN
                                    (SELECT (schema_name, table_name) FROM duckdb_tables())
                              ORDER BY schema_name, table_name, column_index""").fetchall()
    finally:
        con.close()
    out: dict[str, list[tuple[str, str]]] = {}
    for s, t, c, ty in rows:
        out.setdefault(f"{s}.{t}", []).append((c, ty))
    return out


def table_diffs(a: Path, b: Path) -> dict[str, str]:
    """Every silver/gold table of `a` against `b`: same columns, same rows (floats within 1e-9)."""
    ta, tb = layer_tables(a), layer_tables(b)
    diffs = {t: "missing in one build" for t in set(ta) ^ set(tb)}
    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    for t in sorted(set(ta) & set(tb)):
        if ta[t] != tb[t]:
            diffs[t] = f"columns differ: {ta[t]} vs {tb[t]}"
            continue
        exact = [f'"{c}"' for c, ty in ta[t] if ty not in FLOAT_TYPES]
        floats = [f'"{c}"' for c, ty in ta[t] if ty in FLOAT_TYPES]
        order = ", ".join(exact + floats)
        rows_a = con.execute(f"SELECT {order} FROM a.{t} ORDER BY {order}").fetchall()
        rows_b = con.execute(f"SELECT {order} FROM b.{t} ORDER BY {order}").fetchall()
        if len(rows_a) != len(rows_b):
            diffs[t] = f"{len(rows_a)} rows vs {len(rows_b)}"
            continue
        n_exact = len(exact)
        for ra, rb in zip(rows_a, rows_b):
            same = ra[:n_exact] == rb[:n_exact] and all(
                (x is None and y is None) or (x is not None and y is not None
                                              and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9))
                for x, y in zip(ra[n_exact:], rb[n_exact:]))
            if not same:
                diffs[t] = f"first differing row: {ra} vs {rb}"
                break
    con.close()
    return diffs



@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The workload landed piece by piece, two incremental warehouses and the full reference."""
    root = tmp_path_factory.mktemp("incremental")
    paths = Paths(root / "data")
    simulate(paths.root, users=2, days=3, seed=21, start=date(2026, 10, 29), hours=3, durable=False)
    held = root / "held"
    shutil.move(paths.landing, held)
    paths.landing.mkdir()
    segs = sorted(p for p in held.rglob("*") if p.is_file())
    hours_by_day: dict[str, list[str]] = {}
    for h in sorted({segment_hour(p) for p in segs}):
        hours_by_day.setdefault(h[:8], []).append(h)
    day1, day2, day3 = sorted(hours_by_day)
    late = [p for p in segs if p.parts[-5] == "events" and segment_hour(p).startswith(day1)][1]
    late_held = root / "late" / late.relative_to(held)
    late_held.parent.mkdir(parents=True)
    shutil.move(late, late_held)
    by_day, by_hour = root / "by_day.duckdb", root / "by_hour.duckdb"
    steps, restarts = [], []

    def land(hours: set[str], late_segment: bool = False) -> None:
        n = release(held, paths.landing, hours)
        if late_segment:
            n += release(late_held.parents[4], paths.landing, {segment_hour(late_held)})
        s = pipeline.ingest(paths)
        assert s["segments_ingested"] == n > 0
        dbt(paths.root, by_hour, "run", "--vars", HOUR_VARS)
        restarts.extend(q(by_hour, "SELECT model, from_us FROM audit.dbt_incremental_log WHERE kind = 'change'"))

    for wh in (by_day, by_hour):
        dbt(paths.root, wh, "seed")
    land(set(hours_by_day[day1]))
    dbt(paths.root, by_day, "run")
    day2_hours = hours_by_day[day2]
    for h in day2_hours[:3]:  # hour by hour
        land({h})
        steps.append(h)
    land(set(day2_hours[3:]))
    dbt(paths.root, by_day, "run")
    land(set(hours_by_day[day3]))
    land(set(), late_segment=True)  # a day-1 segment arrives two days late
    out = dbt(paths.root, by_day, "build")  # the last run also tests what it built
    full = root / "full.duckdb"
    dbt(paths.root, full, "build", "--full-refresh")
    return {"paths": paths, "held": held, "by_day": by_day, "by_hour": by_hour, "full": full, "late": late, "build_log": out,
            "hour_steps": steps, "hour_restarts": restarts}


def test_incremental_by_day_equals_full_refresh(built):
    diffs = table_diffs(built["by_day"], built["full"])
    assert diffs == {}, diffs
    tables = layer_tables(built["full"])
    assert {"silver.slv_window_intervals", "gold.gld_focus_features", "gold.gld_user_daily"} <= set(tables)


def test_incremental_by_hour_equals_full_refresh(built):
    diffs = table_diffs(built["by_hour"], built["full"])
    assert diffs == {}, diffs
    assert len(built["hour_steps"]) >= 3


def test_restarts_looked_back_past_their_partition(built):
    """The hour-partitioned build did restart devices before the partition boundary: rows that
    ran into the new hour (an interval, an AFK period, a session) were rebuilt whole."""
    rows = built["hour_restarts"]  # (model, restart point) logged by each hour-partitioned run
    looked_back = {m for m, from_us in rows if from_us % 3_600_000_000}
    assert {"slv_window_intervals", "slv_not_afk_periods", "slv_sessions"} <= looked_back, sorted(set(rows))
    assert {m for m, _ in rows} >= {"slv_events", "gld_focus_features", "gld_focus_scores", "gld_user_hourly"}


def test_late_segment_rebuilt_its_day_and_is_counted_once(built):
    paths = built["paths"]
    day = built["late"].parts[-2]  # the date folder: YYYY-MM-DD
    full = q(built["full"], f"SELECT sum(keystrokes), sum(input_events) FROM gold.gld_user_daily WHERE day = '{day}'")
    incr = q(built["by_day"], f"SELECT sum(keystrokes), sum(input_events) FROM gold.gld_user_daily WHERE day = '{day}'")
    assert incr == full and full[0][0] > 0
    # its events are in the warehouse, each once
    rows = q(built["by_day"], f"""SELECT count(*), max(copies) FROM silver.slv_events
                                  WHERE segment_id LIKE '%{built['late'].name}'""")
    assert rows[0][0] > 0 and rows[0][1] == 1
    assert (paths.landing / built["late"].relative_to(built["held"])).exists()


def test_a_rerun_with_nothing_new_rebuilds_nothing(built):
    paths = built["paths"]
    before = q(built["by_day"], "SELECT count(*) FROM gold.gld_focus_features")
    dbt(paths.root, built["by_day"], "run", "--select", "slv_events+")
    changes = q(built["by_day"], """SELECT count(*) FROM audit.dbt_incremental_log WHERE kind <> 'marker'
                                    AND logged_at >= (SELECT max(logged_at) FROM audit.dbt_incremental_log
                                                      WHERE model = 'slv_events' AND kind = 'marker')""")
    assert changes == [(0,)]
    assert q(built["by_day"], "SELECT count(*) FROM gold.gld_focus_features") == before


def test_a_model_whose_tests_failed_is_rebuilt_and_tested_again(built, tmp_path):
    """A build whose tests fail does not count as consumed (macro incr_unlog_failed): the next
    build (a retry) rebuilds the same rows and tests them again instead of passing on nothing."""
    wh = tmp_path / "retry.duckdb"
    shutil.copy(built["by_day"], wh)
    con = duckdb.connect(str(wh))
    # an upstream fault: one idle period twice, logged as a change of slv_idle_periods
    dev = con.execute("""SELECT user_id, device_id, start_us FROM silver.slv_idle_periods
                         WHERE duration_s >= 60 ORDER BY start_us LIMIT 1""").fetchone()
    con.execute("INSERT INTO silver.slv_idle_periods SELECT * FROM silver.slv_idle_periods "
                "WHERE user_id = ? AND device_id = ? AND start_us = ?", list(dev))
    con.execute("""INSERT INTO audit.dbt_incremental_log (model, kind, user_id, device_id, from_us, logged_at)
                   VALUES ('slv_idle_periods', 'change', ?, ?, ?, now()::TIMESTAMP)""", list(dev))
    con.close()
    for attempt in (1, 2):  # the first build and its retry both rebuild the rows and fail on them
        out = dbt(built["paths"].root, wh, "build", "--select", "gld_focus_features", check=False)
        assert out.startswith("FAILED"), f"attempt {attempt}: {out[-3000:]}"
        assert "Failure in test between_gld_focus_features_idle_time_30s" in out, out[-3000:]
        assert "not marked as built: gld_focus_features" in out, out[-3000:]
    bad = q(wh, "SELECT count(*) FROM gold.gld_focus_features WHERE idle_time_30s > 30")
    assert bad[0][0] > 0
    # once the fault upstream is repaired, the next build repairs the rows and passes
    con = duckdb.connect(str(wh))
    con.execute("""DELETE FROM silver.slv_idle_periods WHERE rowid = (SELECT max(rowid) FROM silver.slv_idle_periods
                   WHERE user_id = ? AND device_id = ? AND start_us = ?)""", list(dev))
    con.close()
    dbt(built["paths"].root, wh, "build", "--select", "gld_focus_features")
    assert q(wh, "SELECT count(*) FROM gold.gld_focus_features WHERE idle_time_30s > 30") == [(0,)]


def test_every_incremental_model_declares_its_retention_day():
    """Privacy's rule (focuslake/privacy/retention.py): retention deletes an incremental model's
    expired rows in place by its `retention_last_day`; without one it could only rebuild it."""
    from focuslake.privacy.warehouse import load_manifest

    models = {n["name"]: n["config"] for n in load_manifest()["nodes"].values() if n["resource_type"] == "model"}
    incremental = {m: c for m, c in models.items() if c["materialized"] == "incremental"}
    assert set(incremental) == {
        "slv_events", "slv_input_events", "slv_window_intervals", "slv_not_afk_periods", "slv_idle_periods",
        "slv_active_intervals", "slv_active_hourly", "slv_sessions", "gld_focus_features", "gld_focus_scores",
        "gld_user_hourly"}
    assert [m for m, c in incremental.items() if not c["meta"].get("retention_last_day")] == []
    assert {c["incremental_strategy"] for c in incremental.values()} == {"restart"}
    assert all(c["meta"].get("restart_order") for c in incremental.values())
