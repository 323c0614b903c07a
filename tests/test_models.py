"""The lakehouse models (dbt_project/): categories, sessions, features, focus score and the
four grains, checked against the workload's ground truth and against each other."""
from __future__ import annotations

import csv
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
from focuslake.config import DBT_PROJECT_DIR, Paths
from focuslake.verify import compare_with_truth, format_report

pytestmark = pytest.mark.slow
DBT = Path(sys.executable).with_name("dbt")
SEED_003_FEATURES = [  # every field of seed 003's FeatureVector except the LSTM sequence
    "hour_of_day", "day_of_week", "seconds_since_session_start", "minutes_since_last_break",
    "keystroke_count", "keystroke_rate", "keystroke_interval_mean", "keystroke_interval_std",
    "keystroke_interval_trend", "mouse_move_count", "mouse_distance_pixels", "mouse_speed_mean",
    "mouse_speed_std", "mouse_acceleration_mean", "mouse_click_count", "context_switches_30s",
    "context_switches_5min", "time_in_current_app", "unique_apps_5min", "idle_time_30s",
    "idle_event_count_5min", "longest_active_stretch_5min", "window_title_length",
    "window_title_changed_30s", "is_browser", "is_ide", "is_communication", "is_entertainment",
    "is_productivity", "productivity_category", "is_pseudo_productive"]


def dbt_build(data: Path, *select: str) -> None:
    env = {**os.environ, "FOCUSLAKE_DATA": str(data), "DO_NOT_TRACK": "1"}
    args = [str(DBT), "build", "--profiles-dir", "."] + (
        ["--select", *select, "--indirect-selection", "cautious"] if select else [])
    r = subprocess.run(args, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]



@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Paths:
    """2 users, Thu 2026-10-29 .. Fri 2026-11-06: two ISO weeks and a month boundary."""
    paths = Paths(tmp_path_factory.mktemp("models") / "data")
    simulate(paths.root, users=2, days=9, seed=21, start=date(2026, 10, 29), hours=3, durable=False)
    pipeline.ingest(paths)
    dbt_build(paths.root)
    return paths


def test_gold_matches_ground_truth_including_categories(wh):
    diffs = compare_with_truth(wh.warehouse, wh.truth)
    report = format_report(diffs)
    assert all(d.ok for d in diffs), report
    grains = {d.grain for d in diffs}
    assert "user-hour-category" in grains and "user-day" in grains


def test_category_rules_reproduce_every_catalog_category(wh):
    """The ordered regex rules, applied to the simulator's whole catalog (not only what a run
    happened to emit), give each (app, title) its intended category."""
    with open(DBT_PROJECT_DIR / "seeds" / "app_category_rules.csv") as f:
        rules = list(csv.DictReader(f))
    rules.sort(key=lambda r: int(r["priority"]))
    con = duckdb.connect()
    wrong = []
    with open(wh.truth / "catalog.csv") as f:
        catalog = list(csv.DictReader(f))
    for row in catalog:
        for r in rules:
            app_ok = not r["app_pattern"] or con.execute(
                "SELECT regexp_matches(?, ?)", [row["app_name"], r["app_pattern"]]).fetchone()[0]
            title_ok = not r["title_pattern"] or con.execute(
                "SELECT regexp_matches(?, ?)", [row["window_title"], r["title_pattern"]]).fetchone()[0]
            if app_ok and title_ok:
                if r["category"] != row["category"]:
                    wrong.append((row["app_name"], row["window_title"], r["rule_id"], row["category"]))
                break
    assert wrong == []


@pytest.mark.parametrize("table,period", [("gld_user_weekly", "week"), ("gld_user_monthly", "month")])
def test_weekly_and_monthly_equal_the_sum_of_their_days(wh, table, period):
    start = "week_start" if period == "week" else "month_start"
    rows = q(wh.warehouse, f"""
        WITH d AS (SELECT user_id, date_trunc('{period}', day)::DATE AS p, sum(keystrokes) k, sum(clicks) c,
                          sum(context_switches) s, sum(active_seconds) a, sum(focused_seconds) f,
                          sum(sessions) n, sum(breaks) b, max(longest_focus_streak_minutes) l
                   FROM gold.gld_user_daily GROUP BY ALL)
        SELECT d.user_id, d.p, d.k - g.keystrokes, d.c - g.clicks, d.s - g.context_switches,
               abs(d.a - g.active_seconds), abs(d.f - g.focused_seconds), d.n - g.sessions, d.b - g.breaks,
               d.l - g.longest_focus_streak_minutes
        FROM d FULL OUTER JOIN gold.{table} g ON g.user_id = d.user_id AND g.{start} = d.p""")
    assert len(rows) >= 2 * 2  # 2 users x (2 weeks | 2 months)
    for user, p, dk, dc, ds, da, df, dn, db, dl in rows:
        assert (dk, dc, ds, dn, db, dl) == (0, 0, 0, 0, 0, 0), (user, p)
        assert da < 1e-5 and df < 1e-5, (user, p)


def test_feature_vectors_have_every_seed003_field_one_row_per_window(wh):
    cols = {c for (c,) in q(wh.warehouse, "SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = 'gld_focus_features'")}
    assert set(SEED_003_FEATURES) <= cols
    dup, n, active = q(wh.warehouse, """
        SELECT count(*) - count(DISTINCT (user_id, device_id, window_us)), count(*),
               count(*) FILTER (WHERE keystroke_count > 0) FROM gold.gld_focus_features""")[0]
    assert dup == 0 and n > 2 * 9 * 60 and active > n / 10
    # features are computed, not constants: each varies across windows
    for c in ("keystroke_rate", "mouse_speed_mean", "context_switches_5min", "unique_apps_5min",
              "idle_time_30s", "time_in_current_app", "window_title_length", "minutes_since_last_break"):
        (distinct,) = q(wh.warehouse, f"SELECT count(DISTINCT {c}) FROM gold.gld_focus_features")[0]
        assert distinct > 3, c


def test_focus_scores_are_bounded_explained_and_consistent(wh):
    rows = q(wh.warehouse, """SELECT min(focus_score), max(focus_score), min(distraction_risk),
               max(distraction_risk), count(*) FILTER (WHERE len(contributing_factors) = 0),
               count(*) FILTER (WHERE risk_category <> CASE WHEN distraction_risk < 0.3 THEN 'LOW'
                                WHEN distraction_risk < 0.7 THEN 'MEDIUM' ELSE 'HIGH' END),
               min(focus_momentum), max(focus_momentum)
               FROM gold.gld_focus_scores""")[0]
    lo, hi, rlo, rhi, unexplained, misfiled, mlo, mhi = rows
    assert 0 <= lo < hi <= 100 and 0 <= rlo < rhi <= 1
    assert unexplained == 0 and misfiled == 0 and 0 <= mlo < mhi <= 100
    # distracting categories score lower than the IDE on average (the formula does what it says)
    by_cat = dict(q(wh.warehouse, "SELECT category, avg(focus_score) FROM gold.gld_focus_scores "
                                  "WHERE active_seconds > 0 GROUP BY 1"))
    assert by_cat["ide"] > by_cat.get("entertainment", 0) + 20


def test_features_are_causal(wh, tmp_path):
    """Cut the lake at T and rebuild: every window ending by T has the same features as with the
    whole history, so no feature used data from after its window."""
    (t_us,) = q(wh.warehouse, "SELECT quantile_disc(window_us, 0.5) FROM gold.gld_focus_features")[0]
    cut = Paths(tmp_path / "cut").ensure()
    con = duckdb.connect()
    for stream_dir in wh.lake.iterdir():
        if stream_dir.name.startswith("_"):
            shutil.copytree(stream_dir, cut.lake / stream_dir.name)
            continue
        for f in stream_dir.glob("date=*/*.parquet"):
            out = cut.lake / f.relative_to(wh.lake)
            out.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY (SELECT * FROM read_parquet('{f}') WHERE ts_us < {t_us}) TO '{out}' (FORMAT parquet)")
    dbt_build(cut.root, "+gld_focus_scores")
    cols = ", ".join(SEED_003_FEATURES)
    sql = (f"SELECT user_id, device_id, window_us, {cols}, round(focus_score, 6), round(focus_momentum, 6) "
           "FROM gold.gld_focus_features JOIN gold.gld_focus_scores USING (user_id, device_id, window_us) "
           f"WHERE window_us + 30000000 <= {t_us} ORDER BY ALL")
    full, truncated = q(wh.warehouse, sql), q(cut.warehouse, sql)
    assert len(full) > 100 and len(truncated) == len(full)
    names = ["user_id", "device_id", "window_us", *SEED_003_FEATURES, "focus_score", "focus_momentum"]
    def same(x, y):  # floats: parallel aggregation order may move the last digit
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) if isinstance(x, float) else x == y
    diffs = [(a[:3], n, x, y) for a, b in zip(full, truncated) for n, x, y in zip(names, a, b)
             if not same(x, y)]
    assert diffs == [], diffs[:10]


def test_late_segment_is_reflected_after_the_next_run_without_double_counting(tmp_path):
    paths = Paths(tmp_path / "data")
    simulate(paths.root, users=1, days=2, seed=8, start=date(2026, 11, 17), hours=2, durable=False)
    late = min((paths.landing / "events").rglob("*.bin"))  # day 1's first events segment
    held = tmp_path / late.name
    shutil.move(late, held)
    pipeline.ingest(paths)
    dbt_build(paths.root)
    before = q(paths.warehouse, "SELECT sum(keystrokes) FROM gold.gld_user_daily")[0][0]
    assert not all(d.ok for d in compare_with_truth(paths.warehouse, paths.truth))  # a day is short
    shutil.move(held, late)  # the segment arrives a day late
    s = pipeline.ingest(paths)
    assert s["segments_ingested"] == 1
    dbt_build(paths.root)
    diffs = compare_with_truth(paths.warehouse, paths.truth)
    assert all(d.ok for d in diffs), format_report(diffs)  # reflected, and nothing counted twice
    after = q(paths.warehouse, "SELECT sum(keystrokes) FROM gold.gld_user_daily")[0][0]
    assert after > before
