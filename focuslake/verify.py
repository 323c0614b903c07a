"""Compare gold metrics with the synthetic workload's recorded ground truth.

Counts (keystrokes, clicks, context switches, idle periods, input events) must match exactly;
active seconds and seconds per app within ACTIVE_TOLERANCE_S per hour: both sides compute
them from the same microsecond timestamps (docs/metrics.md), so the only difference allowed
is floating-point rounding. Truth lists only hours with activity; a missing row is 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXACT = ("keystrokes", "clicks", "context_switches", "idle_periods", "input_events")
ACTIVE_TOLERANCE_S = 0.001
DISTANCE_TOLERANCE_PX = 0.01


@dataclass
class MetricDiff:
    metric: str
    grain: str
    compared: int
    mismatches: int
    max_abs_diff: float
    examples: list

    @property
    def ok(self) -> bool:
        return self.mismatches == 0


def compare_with_truth(warehouse: Path, truth: Path) -> list[MetricDiff]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute(f"""CREATE TEMP VIEW truth_hourly AS
            SELECT user_id, epoch_us(hour_start) AS hour_us, sum(keystrokes) AS keystrokes,
                   sum(clicks) AS clicks, sum(context_switches) AS context_switches,
                   sum(idle_periods) AS idle_periods, sum(input_events) AS input_events,
                   sum(active_seconds) AS active_seconds, sum(mouse_distance_px) AS mouse_distance_px
            FROM read_parquet('{truth}/hourly.parquet') GROUP BY ALL""")
        con.execute(f"""CREATE TEMP VIEW truth_app AS
            SELECT user_id, epoch_us(hour_start) AS hour_us, app_name, sum(active_seconds) AS active_seconds
            FROM read_parquet('{truth}/app_hourly.parquet') GROUP BY ALL""")
        con.execute("""CREATE TEMP VIEW gold_hourly AS
            SELECT *, epoch_us(hour_start) AS hour_us FROM gold.gld_user_hourly""")
        out = []
        metrics = [(m, 0.0) for m in EXACT] + [("active_seconds", ACTIVE_TOLERANCE_S),
                                                ("mouse_distance_px", DISTANCE_TOLERANCE_PX)]
        for metric, tol in metrics:
            out.append(_diff(con, metric, "user-hour", tol, "truth_hourly", "gold_hourly",
                             ["user_id", "hour_us"]))
        for metric, tol in metrics:
            out.append(_diff(con, metric, "user-day", tol * 24,
                             f"(SELECT user_id, (hour_us // 86400000000) AS day_no, sum({metric}) AS {metric} "
                             "FROM truth_hourly GROUP BY ALL)",
                             f"(SELECT user_id, (epoch_us(day::TIMESTAMP) // 86400000000) AS day_no, {metric} "
                             "FROM gold.gld_user_daily)", ["user_id", "day_no"]))
        con.execute("""CREATE TEMP VIEW gold_app AS
            SELECT user_id, epoch_us(hour_start) AS hour_us, app_name, active_seconds
            FROM gold.gld_user_app_hourly""")
        out.append(_diff(con, "active_seconds", "user-hour-app", ACTIVE_TOLERANCE_S, "truth_app",
                         "gold_app", ["user_id", "hour_us", "app_name"]))
        if _has_table(con, "gold", "gld_user_category_hourly"):
            con.execute(f"""CREATE TEMP VIEW truth_cat AS
                SELECT user_id, epoch_us(hour_start) AS hour_us, category, sum(active_seconds) AS active_seconds
                FROM read_parquet('{truth}/app_hourly.parquet') GROUP BY ALL""")
            con.execute("""CREATE TEMP VIEW gold_cat AS
                SELECT user_id, epoch_us(hour_start) AS hour_us, category, active_seconds
                FROM gold.gld_user_category_hourly""")
            out.append(_diff(con, "active_seconds", "user-hour-category", ACTIVE_TOLERANCE_S, "truth_cat",
                             "gold_cat", ["user_id", "hour_us", "category"]))
        return out
    finally:
        con.close()


def _has_table(con, schema: str, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                            "AND table_name = ?", [schema, table]).fetchone()[0])


def _diff(con, metric: str, grain: str, tol: float, truth: str, gold: str, keys: list[str]) -> MetricDiff:
    k = ", ".join(keys)
    rows = con.execute(f"""
        WITH t AS (SELECT {k}, {metric} AS v FROM {truth}),
             g AS (SELECT {k}, {metric} AS v FROM {gold})
        SELECT {k}, coalesce(t.v, 0) AS truth, coalesce(g.v, 0) AS gold
        FROM t FULL OUTER JOIN g USING ({k})
        WHERE coalesce(t.v, 0) <> 0 OR coalesce(g.v, 0) <> 0""").fetchall()
    diffs = [(r, abs(float(r[-1]) - float(r[-2]))) for r in rows]
    bad = [r for r, d in diffs if d > tol]
    return MetricDiff(metric, grain, len(rows), len(bad), max((d for _, d in diffs), default=0.0), bad[:5])


def format_report(diffs: list[MetricDiff]) -> str:
    lines = [f"{'metric':<20} {'grain':<14} {'compared':>9} {'mismatch':>9} {'max |diff|':>12}"]
    for d in diffs:
        lines.append(f"{d.metric:<20} {d.grain:<14} {d.compared:>9} {d.mismatches:>9} {d.max_abs_diff:>12.6g}"
                     + ("" if d.ok else f"   e.g. {d.examples[:2]}"))
    return "\n".join(lines)
