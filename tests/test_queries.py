"""docs/queries.md and the analyst schema, on a published warehouse built from a simulated
workload (tests/analyst_workload.py).

Every SQL block of docs/queries.md is run as written and its numbers are recomputed
independently: from the simulator's ground truth (<data>/truth/) where the metric has one (active
time, counts, categories, active users), otherwise from the gold rows underneath (focus scores
and streaks, recomputed here from the 30 s windows). The analyst views' contract is checked
against schema.yml and pinned to v1 (docs/analyst.md).
"""
from __future__ import annotations

import csv
import io
import statistics
import subprocess
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta

import pytest
import yaml
from analyst_workload import published_workload
from duck import q

from focuslake import query
from focuslake.config import DBT_PROJECT_DIR, PROJECT_ROOT
from focuslake.privacy.warehouse import load_manifest

pytestmark = pytest.mark.slow
USER = "user01"
# Analyst contract v1, pinned: these columns, with these types, stay in these views (docs/analyst.md:
# columns may be added; removing, renaming or retyping one is a breaking change -> a new view).
ANALYST_V1 = {
    "user_hourly": "user_id:varchar hour_start:timestamp day:date hour_of_day:integer weekday:integer "
                   "active_seconds:double focused_seconds:double focus_score_avg:double keystrokes:bigint "
                   "clicks:bigint mouse_distance_px:double input_events:bigint context_switches:bigint "
                   "idle_periods:bigint apps_used:bigint",
    "user_daily": "user_id:varchar day:date weekday:integer weekday_name:varchar active_seconds:double "
                  "focused_seconds:double focus_share:double focus_score_avg:double focus_score_min:double "
                  "focus_score_max:double keystrokes:bigint clicks:bigint mouse_distance_px:double "
                  "input_events:bigint context_switches:bigint context_switches_per_active_hour:double "
                  "idle_periods:bigint sessions:bigint breaks:bigint longest_session_minutes:double "
                  "longest_focus_streak_minutes:double",
    "user_weekly": "user_id:varchar week_start:date active_days:bigint active_seconds:double focused_seconds:double "
                   "focus_share:double focus_score_avg:double focus_score_min:double focus_score_max:double "
                   "keystrokes:bigint clicks:bigint mouse_distance_px:double input_events:bigint "
                   "context_switches:bigint context_switches_per_active_hour:double idle_periods:bigint "
                   "sessions:bigint breaks:bigint longest_session_minutes:double longest_focus_streak_minutes:double",
    "user_monthly": "user_id:varchar month_start:date active_days:bigint active_seconds:double "
                    "focused_seconds:double focus_share:double focus_score_avg:double focus_score_min:double "
                    "focus_score_max:double keystrokes:bigint clicks:bigint mouse_distance_px:double "
                    "input_events:bigint context_switches:bigint context_switches_per_active_hour:double "
                    "idle_periods:bigint sessions:bigint breaks:bigint longest_session_minutes:double "
                    "longest_focus_streak_minutes:double",
    "app_usage_daily": "user_id:varchar day:date app_name:varchar category:varchar is_distraction:boolean "
                       "active_seconds:double",
    "category_daily": "user_id:varchar day:date category:varchar productivity_category:varchar "
                      "is_distraction:boolean focus_weight:double active_seconds:double share_of_day:double "
                      "focus_score_avg:double",
    "focus_windows": "user_id:varchar device_id:varchar window_start:timestamp window_end:timestamp day:date "
                     "app_name:varchar category:varchar active_seconds:double focus_score:double "
                     "distraction_risk:double risk_category:varchar focus_momentum:double is_focused:boolean "
                     "contributing_factors:varchar[]",
    "focus_streaks": "user_id:varchar device_id:varchar streak_start:timestamp streak_end:timestamp day:date "
                     "minutes:double active_seconds:double main_app:varchar main_category:varchar",
    "activity_streaks": "user_id:varchar longest_streak_days:bigint current_streak_days:bigint "
                        "last_active_day:date streaks:bigint",
    "team_daily": "day:date weekday:integer dau:bigint wau:bigint mau:bigint active_seconds:double "
                  "focused_seconds:double focus_score_avg:double",
    "team_retention": "cohort_week:date week_offset:integer cohort_size:bigint retained_users:bigint "
                      "retention_rate:double",
}


@pytest.fixture(scope="module")
def pub():
    return published_workload()



def run_example(pub, name: str) -> list[dict]:
    ex = query.examples()[name]
    cols, rows = query.run(ex.sql, pub.published, USER if ex.needs_user else None)
    return [dict(zip(cols, r)) for r in rows]


# --- the ground truth and the gold windows, as plain Python ---------------------------------------
@pytest.fixture(scope="module")
def truth(pub):
    """user -> day -> {active, keystrokes, clicks, switches}; and (user, hour) rows; and app rows."""
    hourly = q(pub.published, f"""SELECT user_id, make_timestamp(epoch_us(hour_start)), sum(active_seconds),
                                         sum(keystrokes), sum(clicks), sum(context_switches)
                                  FROM read_parquet('{pub.truth}/hourly.parquet') GROUP BY ALL""")
    apps = q(pub.published, f"""SELECT user_id, make_timestamp(epoch_us(hour_start)), app_name, category,
                                       sum(active_seconds)
                                FROM read_parquet('{pub.truth}/app_hourly.parquet') GROUP BY ALL""")
    days = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    for u, h, a, k, c, s in hourly:
        d = days[u][h.date()]
        d["active"] += a
        d["keystrokes"] += k
        d["clicks"] += c
        d["switches"] += s
    return {"hourly": hourly, "apps": apps, "days": days}


def active_days(truth, user) -> dict[date, float]:
    return {d: v["active"] for d, v in truth["days"][user].items() if v["active"] > 0}


def week_of(d: date) -> date:
    return d - timedelta(days=d.weekday())


def distracting() -> set[str]:
    text = (DBT_PROJECT_DIR / "seeds" / "categories.csv").read_text(encoding="utf-8")
    return {r["category"] for r in csv.DictReader(io.StringIO(text)) if r["is_distraction"] == "true"}


@pytest.fixture(scope="module")
def windows(pub):
    """user -> day -> [(device, window_us, score, active_seconds, is_focused)] from gold."""
    out = defaultdict(lambda: defaultdict(list))
    for u, dev, us, day, score, act, foc in q(pub.published, """
            SELECT user_id, device_id, window_us, window_start::DATE, focus_score, active_seconds, is_focused
            FROM gold.gld_focus_scores ORDER BY user_id, device_id, window_us"""):
        out[u][day].append((dev, us, score, act, foc))
    return out


def streaks(windows, user) -> list[tuple]:
    """(minutes, start window_us, start day) of every run of consecutive focused windows."""
    out, run = [], None
    rows = sorted(w + (d,) for d, ws in windows[user].items() for w in ws)
    prev = None
    for dev, us, _score, _act, foc, day in rows:
        contiguous = prev is not None and prev[0] == dev and prev[1] == us - 30_000_000 and prev[2]
        if foc and contiguous:
            run[0] += 1
        elif foc:
            run = [1, us, day]
            out.append(run)
        prev = (dev, us, foc)
    return [(n * 0.5, us, day) for n, us, day in out]


# --- the checks, one per example ------------------------------------------------------------------
def check_focus_by_weekday(pub, rows, truth, windows):
    days = active_days(truth, USER)
    by_wd = defaultdict(list)
    for d, a in days.items():
        by_wd[d.isoweekday()].append((d, a))
    assert [r["weekday"] for r in rows] == sorted(by_wd)
    for r in rows:
        ds = by_wd[r["weekday"]]
        assert r["weekday_name"] == ds[0][0].strftime("%A") and r["days"] == len(ds)
        assert r["active_hours_per_day"] == pytest.approx(statistics.mean(a for _, a in ds) / 3600, abs=0.0051)
        focused = [sum(w[3] for w in windows[USER][d] if w[4]) for d, _ in ds]
        assert r["focused_hours_per_day"] == pytest.approx(statistics.mean(focused) / 3600, abs=0.0051)
        assert r["focus_share"] == pytest.approx(sum(focused) / sum(a for _, a in ds), abs=0.0006)
        scores = [statistics.mean(w[2] for w in windows[USER][d] if w[3] > 0) for d, _ in ds]
        assert r["focus_score"] == pytest.approx(statistics.mean(scores), abs=0.06)


def check_distraction_apps_this_week(pub, rows, truth, windows):
    week = max(week_of(h.date()) for u, h, *_ in truth["hourly"] if u == USER)
    secs, days = defaultdict(float), defaultdict(set)
    for u, h, app, cat, s in truth["apps"]:
        if u == USER and cat in distracting() and week_of(h.date()) == week and s > 0:
            secs[(app, cat)] += s
            days[(app, cat)].add(h.date())
    want = {k: round(v / 60, 1) for k, v in secs.items() if round(v / 60, 1) > 0}
    got = {(r["app_name"], r["category"]): r["minutes"] for r in rows if r["minutes"] > 0}
    assert want and set(got) == set(want)
    for k, minutes in got.items():
        assert minutes == pytest.approx(secs[k] / 60, abs=0.051), k
    for r in rows:
        assert r["days"] == len(days[(r["app_name"], r["category"])])
    assert [r["minutes"] for r in rows] == sorted((r["minutes"] for r in rows), reverse=True)


def check_team_wau(pub, rows, truth, windows):
    active = {u: set(active_days(truth, u)) for u in truth["days"]}
    first, last = min(min(d) for d in active.values()), max(max(d) for d in active.values())
    want_days = [last - timedelta(days=i) for i in range(min(14, (last - first).days + 1))][::-1]
    assert [r["day"] for r in rows] == want_days
    for r in rows:
        d = r["day"]

        def users(n, d=d):
            return sum(1 for ds in active.values() if any(d - timedelta(days=n - 1) <= x <= d for x in ds))

        assert (r["dau"], r["wau"], r["mau"]) == (users(1), users(7), users(30)), d
        team = sum(truth["days"][u][d]["active"] for u in truth["days"] if d in truth["days"][u])
        assert r["team_active_hours"] == pytest.approx(team / 3600, abs=0.051)
    assert any(r["wau"] > r["dau"] for r in rows)  # the weekend: nobody active, WAU still counts the week


def check_month_category_breakdown(pub, rows, truth, windows):
    month = max(h.date().replace(day=1) for u, h, *_ in truth["hourly"] if u == USER)
    secs = defaultdict(float)
    for u, h, _app, cat, s in truth["apps"]:
        if u == USER and h.date().replace(day=1) == month:
            secs[cat] += s
    got = {r["category"]: r for r in rows}
    assert set(got) == {c for c, s in secs.items() if s > 0}
    total = sum(secs.values())
    for c, r in got.items():
        assert r["hours"] == pytest.approx(secs[c] / 3600, abs=0.0051), c
        assert r["share"] == pytest.approx(secs[c] / total, abs=0.0006), c
        assert r["is_distraction"] == (c in distracting())
    assert sum(r["share"] for r in rows) == pytest.approx(1, abs=0.005)


def check_focus_score_trend(pub, rows, truth, windows):
    assert [r["day"] for r in rows] == sorted(active_days(truth, USER))
    scores = []
    for r in rows:
        ws = windows[USER][r["day"]]
        scores.append(statistics.mean(w[2] for w in ws if w[3] > 0))
        assert r["focus_score"] == pytest.approx(scores[-1], abs=0.056)
        assert r["focus_score_7d"] == pytest.approx(statistics.mean(scores[-7:]), abs=0.056)
        assert r["focused_hours"] == pytest.approx(sum(w[3] for w in ws if w[4]) / 3600, abs=0.0051)
        assert r["weekday_name"] == r["day"].strftime("%A")


def check_longest_focus_streaks(pub, rows, truth, windows):
    runs = sorted(streaks(windows, USER), key=lambda s: (-s[0], s[1]))
    assert len(rows) == min(10, len(runs)) and len(rows) >= 3
    assert [r["minutes"] for r in rows] == [m for m, _, _ in runs[:len(rows)]]
    epoch = datetime(1970, 1, 1)
    assert [r["streak_start"] for r in rows] == [epoch + timedelta(microseconds=us) for _, us, _ in runs[:len(rows)]]
    for r in rows:
        assert r["streak_end"] - r["streak_start"] == timedelta(minutes=r["minutes"])
    # the rollups' longest streak per day is the longest of these that started that day
    longest = defaultdict(float)
    for m, _, d in streaks(windows, USER):
        longest[d] = max(longest[d], m)
    daily = dict(q(pub.published, "SELECT day, longest_focus_streak_minutes FROM gold.gld_user_daily "
                                  "WHERE user_id = ?", [USER]))
    assert daily == {d: longest.get(d, 0.0) for d in daily}


def check_context_switches_per_hour(pub, rows, truth, windows):
    switches, active = defaultdict(int), defaultdict(float)
    for u, h, a, _k, _c, s in truth["hourly"]:
        if u == USER and a > 0:
            switches[h.hour] += s
            active[h.hour] += a
    assert [r["hour_of_day"] for r in rows] == sorted(active)
    for r in rows:
        h = r["hour_of_day"]
        assert r["switches"] == switches[h], h
        assert r["active_hours"] == pytest.approx(active[h] / 3600, abs=0.0051)
        assert r["switches_per_active_hour"] == pytest.approx(switches[h] / (active[h] / 3600), abs=0.051)
    assert sum(r["switches"] for r in rows) > 0


def check_my_weeks(pub, rows, truth, windows):
    weeks = defaultdict(lambda: defaultdict(float))
    for d, v in truth["days"][USER].items():
        w = weeks[week_of(d)]
        for k in ("active", "keystrokes", "clicks", "switches"):
            w[k] += v[k]
        w["days"] += v["active"] > 0
    assert [r["week_start"] for r in rows] == sorted(weeks) and len(rows) == 2
    for r in rows:
        w = weeks[r["week_start"]]
        assert (r["keystrokes"], r["clicks"], r["context_switches"], r["active_days"]) == (
            w["keystrokes"], w["clicks"], w["switches"], w["days"])
        assert r["active_hours"] == pytest.approx(w["active"] / 3600, abs=0.051)


def check_team_retention(pub, rows, truth, windows):
    user_weeks = {u: {week_of(d) for d in active_days(truth, u)} for u in truth["days"]}
    cohort = {u: min(ws) for u, ws in user_weeks.items()}
    want = {}
    for u, ws in user_weeks.items():
        for w in ws:
            key = (cohort[u], (w - cohort[u]).days // 7)
            want.setdefault(key, set()).add(u)
    size = defaultdict(int)
    for c in cohort.values():
        size[c] += 1
    got = {(r["cohort_week"], r["week_offset"]): r for r in rows}
    assert set(got) == set(want)
    for k, r in got.items():
        assert (r["cohort_size"], r["retained_users"]) == (size[k[0]], len(want[k]))
        assert r["retention_rate"] == pytest.approx(len(want[k]) / size[k[0]])


CHECKS = {
    "focus-by-weekday": check_focus_by_weekday,
    "distraction-apps-this-week": check_distraction_apps_this_week,
    "team-wau": check_team_wau,
    "month-category-breakdown": check_month_category_breakdown,
    "focus-score-trend": check_focus_score_trend,
    "longest-focus-streaks": check_longest_focus_streaks,
    "context-switches-per-hour": check_context_switches_per_hour,
    "my-weeks": check_my_weeks,
    "team-retention": check_team_retention,
}


def test_every_sql_block_is_a_named_example_with_its_one_liner_and_a_check():
    text = (PROJECT_ROOT / "docs" / "queries.md").read_text()
    fences = [line for line in text.splitlines() if line.startswith("```sql")]
    names = list(query.examples())
    assert len(fences) == len(names) >= 8, "every ```sql block needs a name: ```sql <name>"
    assert set(CHECKS) == set(names), "every example needs its check here"
    for name, ex in query.examples().items():
        one_liner = f"`.venv/bin/python -m focuslake.query {name}" + (f" --user {USER}`" if ex.needs_user else "`")
        assert one_liner in text, f"docs/queries.md must show how to run {name}: {one_liner}"
        assert "analyst." in ex.sql and "gold." not in ex.sql and "silver." not in ex.sql, \
            f"{name}: examples query the stable analyst schema only"


@pytest.mark.parametrize("name", list(CHECKS))
def test_example_returns_rows_that_agree_with_truth_and_gold(pub, truth, windows, name):
    rows = run_example(pub, name)
    assert rows, f"{name} returned no rows"
    CHECKS[name](pub, rows, truth, windows)


def test_query_cli_runs_an_example_read_only(pub):
    r = subprocess.run([sys.executable, "-m", "focuslake.query", "my-weeks", "--user", USER, "--csv", "--db",
                        str(pub.published)], capture_output=True, text=True, check=True)
    got = list(csv.reader(io.StringIO(r.stdout)))
    cols, rows = query.run(query.examples()["my-weeks"].sql, pub.published, USER)
    assert got[0] == cols and got[1:] == [[str(v) for v in row] for row in rows]
    listing = subprocess.run([sys.executable, "-m", "focuslake.query", "--list"], capture_output=True, text=True,
                             check=True).stdout
    assert all(name in listing for name in CHECKS)
    for args, msg in [(["my-weeks"], "give --user"), (["nope"], "no example 'nope'"),
                      (["--sql", "CREATE TABLE analyst.x AS SELECT 1", "--db", str(pub.published)], "read-only")]:
        r = subprocess.run([sys.executable, "-m", "focuslake.query", *args], check=False, capture_output=True,
                           text=True)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)


# --- the analyst schema: a contract ---------------------------------------------------------------
def _declared() -> dict[str, list[tuple[str, str]]]:
    doc = yaml.safe_load((DBT_PROJECT_DIR / "models" / "analyst" / "schema.yml").read_text())
    return {m["name"]: [(c["name"], c["data_type"]) for c in m["columns"]] for m in doc["models"]}


def test_published_analyst_views_have_exactly_the_declared_columns_and_types(pub):
    rows = q(pub.published, """SELECT c.table_name, list((c.column_name, lower(c.data_type)) ORDER BY ordinal_position),
                                      any_value(t.table_type)
                               FROM information_schema.columns c JOIN information_schema.tables t
                                    USING (table_catalog, table_schema, table_name)
                               WHERE c.table_schema = 'analyst' GROUP BY ALL""")
    published = {name: [tuple(c) for c in cols] for name, cols, _ in rows}
    assert {kind for *_, kind in rows} == {"VIEW"}
    assert published == _declared()


def test_contract_v1_is_pinned():
    declared = _declared()
    for view, spec in ANALYST_V1.items():
        have = dict(declared[view])
        for col, typ in (c.split(":") for c in spec.split()):
            assert have.get(col) == typ, f"analyst.{view}.{col} ({typ}) is in contract v1: see docs/analyst.md"


def test_analyst_models_are_contracted_documented_views_over_gold_only(pub):
    manifest = load_manifest()  # parsed first when stale
    models = {n["name"]: n for n in manifest["nodes"].values()
              if n["resource_type"] == "model" and n["schema"] == "analyst"}
    assert set(models) == set(ANALYST_V1)
    for name, node in models.items():
        assert node["config"]["contract"]["enforced"] is True and node["config"]["materialized"] == "view", name
        assert node["description"] and all(c.get("description") for c in node["columns"].values()), name
        for parent in node["depends_on"]["nodes"]:
            p = manifest["nodes"][parent]
            assert (p["resource_type"], p["schema"]) in {("model", "gold"), ("seed", "ref")}, (name, parent)


def test_views_follow_gold_counts(pub):
    """The analyst views are gold, renamed and typed: same rows, same totals."""
    pairs = [("user_daily", "gld_user_daily"), ("user_weekly", "gld_user_weekly"),
             ("user_monthly", "gld_user_monthly"), ("user_hourly", "gld_user_hourly"),
             ("focus_windows", "gld_focus_scores"), ("focus_streaks", "gld_focus_streaks"),
             ("app_usage_daily", "gld_user_app_category_daily"), ("category_daily", "gld_user_category_daily"),
             ("team_daily", "gld_team_daily"), ("team_retention", "gld_team_retention"),
             ("activity_streaks", "gld_user_streaks")]
    for view, table in pairs:
        ((a,),), ((b,),) = (q(pub.published, f"SELECT count(*) FROM analyst.{view}"),
                            q(pub.published, f"SELECT count(*) FROM gold.{table}"))
        assert a == b > 0, (view, table)
    # app x category seconds add up to the per-app and per-category gold tables
    diff = q(pub.published, """
        SELECT max(abs(a.s - g.active_seconds)) FROM (SELECT user_id, day, app_name, sum(active_seconds) s
             FROM analyst.app_usage_daily GROUP BY ALL) a JOIN gold.gld_user_app_daily g USING (user_id, day, app_name)
        UNION ALL
        SELECT max(abs(a.s - g.active_seconds)) FROM (SELECT user_id, day, category, sum(active_seconds) s
             FROM analyst.app_usage_daily GROUP BY ALL) a JOIN gold.gld_user_category_daily g USING (user_id, day, category)""")
    assert all(d < 1e-5 for (d,) in diff)
