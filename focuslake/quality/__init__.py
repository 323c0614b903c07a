"""Quality checks between the layers (spine: reconciliation). Every check's result is stored
as a row in the working warehouse's `audit.check_results`, so analysts can query the
history; a failing check raises QualityError naming the failed checks, which fails the
Airflow task and keeps the published copy at its last good state.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from focuslake.config import Paths


class QualityError(RuntimeError):
    pass


@dataclass
class Check:
    name: str
    table: str
    observed: float
    threshold: float
    passed: bool
    detail: str = ""
    partition: str = ""


RESULTS_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.check_results (
    run_id VARCHAR, checked_at TIMESTAMP, check_name VARCHAR, table_name VARCHAR,
    partition_key VARCHAR, observed DOUBLE, threshold DOUBLE, passed BOOLEAN, detail VARCHAR
);
"""


def _lake(paths: Paths, stream: str) -> str:
    return (f"read_parquet('{paths.lake}/{stream}/date=*/*.parquet', hive_partitioning=true, "
            f"union_by_name=true)")


def reconcile(con, paths: Paths) -> list[Check]:
    checks: list[Check] = []
    ledger = f"read_parquet('{paths.ledger_export}')"
    if not paths.ledger_export.exists():
        return [Check("ledger_exists", "ledger", 0, 1, False, "no ledger export: has ingest run?")]
    # 1. every segment: rows read = rows written + rows quarantined
    bad = con.execute(f"""SELECT path, rows_read, rows_written, rows_quarantined FROM {ledger}
                          WHERE rows_read <> rows_written + rows_quarantined""").fetchall()
    checks.append(Check("segment_rows_reconcile", "ledger", len(bad), 0, not bad,
                        "; ".join(f"{p}: read {r} != written {w} + quarantined {q}" for p, r, w, q in bad[:10])))
    # 2. the lake holds exactly rows_written rows of every ingested segment
    for stream in ("events", "system_metrics", "active_window", "input_counts", "system_events"):
        if not list((paths.lake / stream).glob("date=*/*.parquet")):
            lake_counts = "SELECT NULL::VARCHAR AS segment_id, 0::BIGINT AS n WHERE false"
        else:
            lake_counts = f"SELECT segment_id, count(*) AS n FROM {_lake(paths, stream)} GROUP BY 1"
        rows = con.execute(f"""
            WITH l AS ({lake_counts}),
                 g AS (SELECT path AS segment_id, rows_written FROM {ledger}
                       WHERE status = 'ingested' AND stream = '{stream}')
            SELECT coalesce(g.segment_id, l.segment_id), coalesce(g.rows_written, 0), coalesce(l.n, 0)
            FROM g FULL OUTER JOIN l USING (segment_id)
            WHERE coalesce(g.rows_written, 0) <> coalesce(l.n, 0)""").fetchall()
        checks.append(Check("lake_matches_ledger", f"lake.{stream}", len(rows), 0, not rows,
                            "; ".join(f"{s}: ledger {w} != lake {n}" for s, w, n in rows[:10])))
    return checks


def warehouse_totals(con) -> list[Check]:
    """Gold totals equal silver totals; days equal the sum of their hours."""
    checks = []
    pairs = [
        ("keystrokes", "SELECT count(*) FROM silver.slv_input_events WHERE event_type = 1",
         "SELECT coalesce(sum(keystrokes), 0) FROM gold.gld_user_hourly"),
        ("clicks", "SELECT count(*) FROM silver.slv_input_events WHERE event_type = 4",
         "SELECT coalesce(sum(clicks), 0) FROM gold.gld_user_hourly"),
        ("context_switches", "SELECT count(*) FROM silver.slv_window_intervals WHERE is_context_switch",
         "SELECT coalesce(sum(context_switches), 0) FROM gold.gld_user_hourly"),
        ("active_seconds", "SELECT coalesce(sum(active_seconds), 0) FROM silver.slv_active_hourly",
         "SELECT coalesce(sum(active_seconds), 0) FROM gold.gld_user_app_hourly"),
    ]
    for name, silver_sql, gold_sql in pairs:
        s = con.execute(silver_sql).fetchone()[0]
        g = con.execute(gold_sql).fetchone()[0]
        ok = abs(float(s) - float(g)) <= 1e-6 * max(1.0, abs(float(s)))
        checks.append(Check(f"gold_equals_silver_{name}", "gold.gld_user_hourly", float(g), float(s), ok,
                            "" if ok else f"gold {g} != silver {s}"))
    bad_days = con.execute("""
        SELECT d.user_id, d.day FROM gold.gld_user_daily d
        JOIN (SELECT user_id, day, sum(keystrokes) k, sum(clicks) c, sum(context_switches) s,
                     sum(active_seconds) a FROM gold.gld_user_hourly GROUP BY ALL) h USING (user_id, day)
        WHERE d.keystrokes <> h.k OR d.clicks <> h.c OR d.context_switches <> h.s
           OR abs(d.active_seconds - h.a) > 1e-6""").fetchall()
    checks.append(Check("daily_equals_sum_of_hours", "gold.gld_user_daily", len(bad_days), 0, not bad_days,
                        "; ".join(f"{u} {d}" for u, d in bad_days[:10])))
    return checks


def run_checks(paths: Paths, run_id: str | None = None) -> dict:
    import duckdb

    run_id = run_id or f"quality-{uuid.uuid4().hex[:12]}"
    if not paths.warehouse.exists():
        raise QualityError(f"no working warehouse at {paths.warehouse}: has the transform run?")
    con = duckdb.connect(str(paths.warehouse))
    try:
        checks = reconcile(con, paths) + warehouse_totals(con)
        con.execute(RESULTS_DDL)
        now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        con.executemany("INSERT INTO audit.check_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(run_id, now, c.name, c.table, c.partition, c.observed, c.threshold, c.passed,
                          c.detail) for c in checks])
    finally:
        con.close()
    failed = [c for c in checks if not c.passed]
    if failed:
        raise QualityError("quality checks failed: " + "; ".join(
            f"{c.name} on {c.table} ({c.detail})" for c in failed))
    return {"run_id": run_id, "checks": len(checks), "failed": 0}
