"""`python -m focuslake.bench_queries`: what gold buys an analyst (issue 8's goal: a month
summary per user on the published warehouse in <= 100 ms).

At 10 users x 30 days (the same workload as focuslake.bench_models), one **month summary** per
user -- active seconds, seconds per category, keystrokes, clicks, context switches -- computed
three ways on the published read-only copy:

- **gold**: the analyst views (`analyst.user_monthly` + `analyst.category_daily`), the way
  docs/queries.md asks;
- **gold tables**: the same from the gold tables underneath (`gold.gld_user_monthly` +
  `gold.gld_user_category_daily`): what the contract's view layer costs;
- **silver**: the same numbers from the cleaned intervals and events (`silver.slv_active_intervals`
  clipped to the month, `silver.slv_input_events`, `silver.slv_window_intervals`);
- **lake**: keystrokes and clicks only, straight from the Parquet lake with `read_parquet`
  (date-partition pruning); active time is not a query there (it needs the heartbeat merge,
  AFK and interval logic of the silver models).

Each is timed warm (one connection, repeated) and cold (connect, query, close: what a one-liner
costs); median and p95 over users x repeats. Gold and silver must agree (counts exactly, seconds
within 1 ms), or the benchmark fails. The workload is built once under
benchmarks/out/queries/ (simulate, ingest, dbt build, quality gate, publish: several minutes) and
reused while the dbt project is unchanged (`--rebuild` forces it).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, PROJECT_ROOT, Paths

OUT = PROJECT_ROOT / "benchmarks" / "out"
GOAL_MS = 100.0

GOLD_SQL = """
SELECT m.active_seconds, m.keystrokes, m.clicks, m.context_switches,
       (SELECT map(list(category ORDER BY category), list(s ORDER BY category)) FROM (
            SELECT category, sum(active_seconds) AS s FROM analyst.category_daily
            WHERE user_id = $user AND day >= $month AND day < $month + INTERVAL 1 MONTH
            GROUP BY category)) AS seconds_by_category
FROM analyst.user_monthly AS m
WHERE m.user_id = $user AND m.month_start = $month
"""

GOLD_TABLES_SQL = """
SELECT m.active_seconds, m.keystrokes, m.clicks, m.context_switches,
       (SELECT map(list(category ORDER BY category), list(s ORDER BY category)) FROM (
            SELECT category, sum(active_seconds) AS s FROM gold.gld_user_category_daily
            WHERE user_id = $user AND day >= $month AND day < $month + INTERVAL 1 MONTH
            GROUP BY category)) AS seconds_by_category
FROM gold.gld_user_monthly AS m
WHERE m.user_id = $user AND m.month_start = $month
"""

SILVER_SQL = """
WITH b AS (SELECT epoch_us($month::TIMESTAMP) AS lo, epoch_us(($month + INTERVAL 1 MONTH)::TIMESTAMP) AS hi),
act AS (
    SELECT category, sum(least(end_us, hi) - greatest(start_us, lo)) / 1e6 AS s
    FROM silver.slv_active_intervals, b
    WHERE user_id = $user AND end_us > lo AND start_us < hi
    GROUP BY category),
inp AS (
    SELECT count(*) FILTER (WHERE event_type = 1) AS keystrokes, count(*) FILTER (WHERE event_type = 4) AS clicks
    FROM silver.slv_input_events
    WHERE user_id = $user AND ts >= $month AND ts < $month + INTERVAL 1 MONTH),
sw AS (
    SELECT count(*) FILTER (WHERE is_context_switch) AS context_switches
    FROM silver.slv_window_intervals
    WHERE user_id = $user AND started_at >= $month AND started_at < $month + INTERVAL 1 MONTH)
SELECT (SELECT sum(s) FROM act) AS active_seconds, inp.keystrokes, inp.clicks, sw.context_switches,
       (SELECT map(list(category ORDER BY category), list(s ORDER BY category)) FROM act) AS seconds_by_category
FROM inp, sw
"""

LAKE_SQL = """
SELECT NULL AS active_seconds, count(*) FILTER (WHERE event_type = 1) AS keystrokes,
       count(*) FILTER (WHERE event_type = 4) AS clicks, NULL AS context_switches, NULL AS seconds_by_category
FROM read_parquet('{lake}/events/date=*/*.parquet', hive_partitioning = true, hive_types = {{'date': 'DATE'}})
WHERE user_id = $user AND date >= $month AND date < $month + INTERVAL 1 MONTH
"""


def _project_hash() -> str:
    """Hash of the dbt project's SQL/YAML: the built warehouse is reused while it is unchanged."""
    h = hashlib.sha256()
    for p in sorted(DBT_PROJECT_DIR.rglob("*")):
        if p.is_file() and p.suffix in (".sql", ".yml", ".csv") and not {"target", "logs"} & set(
                p.relative_to(DBT_PROJECT_DIR).parts):
            h.update(str(p.relative_to(DBT_PROJECT_DIR)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _run(name: str, cmd: list[str], env: dict, cwd: Path = PROJECT_ROOT) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, check=False, env=env, cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    seconds = time.perf_counter() - t0
    print(f"  {name:<24} {seconds:7.1f} s", flush=True)
    return seconds


def ensure_workload(root: Path, users: int, days: int, rebuild: bool = False) -> Paths:
    """Simulate (once), ingest, dbt build, audit and publish under ``root``; reused while the
    dbt project is unchanged. Returns the data root's Paths."""
    paths = Paths(root / "data")
    stamp = root / "built.json"
    want = {"users": users, "days": days, "dbt_project": _project_hash()}
    if not rebuild and stamp.exists() and paths.published.exists():
        have = json.loads(stamp.read_text())
        if {k: have.get(k) for k in want} == want:
            return paths
    env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(paths.root)}
    py, dbt = sys.executable, str(Path(sys.executable).with_name("dbt"))
    print(f"building the {users} users x {days} days workload under {root} (once; several minutes)")
    have = json.loads(stamp.read_text()) if stamp.exists() else {}
    if rebuild or (have.get("users"), have.get("days")) != (users, days) or not (paths.truth / "manifest.json").exists():
        import shutil

        shutil.rmtree(paths.root, ignore_errors=True)
        start = date.today() - timedelta(days=days + 1)  # ends before yesterday: inside the ingest's clock bound
        _run("simulate", [py, "-m", "collectors.simulate", "--users", str(users), "--days", str(days), "--start",
                          start.isoformat(), "--data", str(paths.root), "--no-fsync", "--quiet"], env)
    _run("ingest", [py, "-m", "focuslake", "ingest"], env)  # a no-op for segments already in the ledger
    _run("dbt build", [dbt, "build", "--profiles-dir", ".", "--quiet"], env, DBT_PROJECT_DIR)
    _run("quality gate", [py, "-m", "focuslake", "quality"], env)
    _run("publish", [py, "-m", "focuslake", "publish"], env)
    stamp.write_text(json.dumps({**want, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
    return paths


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def _time_query(db: Path, sql: str, params: dict, repeats: int) -> tuple[list[float], list[float], tuple]:
    """(warm ms, cold ms, result): warm on one connection after a warm-up; cold connects each time."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        result = con.execute(sql, params).fetchone()
        warm = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            con.execute(sql, params).fetchone()
            warm.append((time.perf_counter() - t0) * 1000)
    finally:
        con.close()
    cold = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        c = duckdb.connect(str(db), read_only=True)
        c.execute(sql, params).fetchone()
        c.close()
        cold.append((time.perf_counter() - t0) * 1000)
    return warm, cold, result


def _agree(gold: tuple, silver: tuple) -> list[str]:
    problems = []
    g_act, g_k, g_c, g_s, g_cat = gold
    s_act, s_k, s_c, s_s, s_cat = silver
    if (g_k, g_c, g_s) != (s_k, s_c, s_s):
        problems.append(f"counts gold {(g_k, g_c, g_s)} != silver {(s_k, s_c, s_s)}")
    if abs(g_act - s_act) > 1e-3:
        problems.append(f"active seconds gold {g_act} != silver {s_act}")
    if set(g_cat) != set(s_cat) or any(abs(g_cat[k] - s_cat[k]) > 1e-3 for k in g_cat):
        problems.append(f"seconds per category gold {g_cat} != silver {s_cat}")
    return problems


def main(argv=None) -> int:
    import duckdb
    from rich.console import Console
    from rich.table import Table

    ap = argparse.ArgumentParser(prog="focuslake.bench_queries", description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=10, help="timed runs per user and source (warm and cold)")
    ap.add_argument("--root", type=Path, default=OUT / "queries", help="where the workload is built and kept")
    ap.add_argument("--rebuild", action="store_true", help="build the workload again even if it is current")
    args = ap.parse_args(argv)
    paths = ensure_workload(args.root, args.users, args.days, args.rebuild)
    db = paths.published
    con = duckdb.connect(str(db), read_only=True)
    try:
        users = [u for (u,) in con.execute("SELECT DISTINCT user_id FROM analyst.user_monthly ORDER BY 1").fetchall()]
        # the month with the most active user-days (a 30-day workload spans two months)
        (month,) = con.execute("SELECT month_start FROM analyst.user_monthly GROUP BY 1 "
                               "ORDER BY sum(active_days) DESC, 1 LIMIT 1").fetchone()
    finally:
        con.close()
    sources = {"gold (analyst views)": GOLD_SQL, "gold tables": GOLD_TABLES_SQL,
               "silver (intervals + events)": SILVER_SQL,
               "lake (read_parquet, input counts only)": LAKE_SQL.format(lake=paths.lake)}
    timings = {name: {"warm": [], "cold": []} for name in sources}
    results: dict[str, dict[str, tuple]] = {name: {} for name in sources}
    for user in users:
        params = {"user": user, "month": month}
        for name, sql in sources.items():
            warm, cold, result = _time_query(db, sql, params, args.repeats)
            timings[name]["warm"] += warm
            timings[name]["cold"] += cold
            results[name][user] = result
    gold, tables, silver, lake = (results[n] for n in sources)
    problems = [f"{u}: {p}" for u in users for p in _agree(gold[u], silver[u]) + _agree(gold[u], tables[u])]
    lake_equal = all(lake[u][1:3] == gold[u][1:3] for u in users)

    console = Console(width=max(Console().width, 120))
    table = Table(title=f"Month summary per user ({len(users)} users, month {month:%Y-%m}, {args.repeats} repeats "
                        f"each) on the published warehouse, read_only")
    for col in ("source", "warm median", "warm p95", "cold median", "cold p95", "vs gold (warm median)"):
        table.add_column(col, justify="left" if col == "source" else "right")
    gold_med = statistics.median(timings["gold (analyst views)"]["warm"])
    summary = {}
    for name in sources:
        w, c = timings[name]["warm"], timings[name]["cold"]
        row = {"warm_median_ms": statistics.median(w), "warm_p95_ms": _pct(w, 95),
               "cold_median_ms": statistics.median(c), "cold_p95_ms": _pct(c, 95)}
        summary[name] = row
        table.add_row(name, *(f"{row[k]:.1f} ms" for k in row), f"{row['warm_median_ms'] / gold_med:.1f}x")
    console.print(table)
    g = summary["gold (analyst views)"]
    verdict = "PASS" if g["warm_p95_ms"] <= GOAL_MS else "MISS"
    console.print(f"gold warm p95 {g['warm_p95_ms']:.1f} ms (goal <= {GOAL_MS:.0f} ms: {verdict}); "
                  f"cold p95 (connect + query) {g['cold_p95_ms']:.1f} ms")
    console.print("gold views, gold tables and silver agree for every user" if not problems else
                  "[red]the sources DISAGREE:[/red]\n" + "\n".join(problems))
    console.print(f"lake input counts {'equal' if lake_equal else 'DIFFER from'} gold's")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "queries.json").write_text(json.dumps(
        {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "users": len(users), "days": args.days,
         "month": str(month), "repeats": args.repeats, "timings": summary, "gold_equals_silver": not problems,
         "lake_counts_equal_gold": lake_equal}, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
