"""The quality gate: the *audit* of write-audit-publish (docs/quality.md).

`run_checks(paths)` audits the working warehouse, the Parquet lake, the ledger and the
quarantine:
  * reconciliation per segment and per landing day (rows read = written + quarantined, the lake
    holds what the ledger says), quarantine evidence, gold = silver per user and day, a day =
    the sum of its hours, input counts = input events per device and day;
  * the seed thresholds: null rate > 5 %, duplicate rate > 1 % (per table and day), schema
    violations, ingestion error rate > 1 % (per day), freshness (a cadence stream > 2 h behind
    while it should produce), event-order accuracy (lock/unlock, suspend/resume, idle
    start/end, no input while locked);
  * the Great Expectations suites of every bronze stream and gold table (expectations/gx/).
Every result is a row of `audit.check_results` in the working warehouse (published with it)
and of the run's Parquet file under <data>/quality/results/ (all runs, passed or failed,
queryable from the published copy through the view `audit.check_history`); GX Data Docs are
rebuilt under <data>/quality_docs/. A failed critical check raises QualityError naming the
failed checks and partitions: the Airflow task fails and nothing is published.
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from datetime import UTC, datetime

from focuslake.config import Paths
from focuslake.quality.checks import Check, Ctx

__all__ = ["RESULTS_DDL", "Check", "QualityError", "run_checks"]
log = logging.getLogger("focuslake.quality")


class QualityError(RuntimeError):
    """A critical check failed; the message names each failed check and where."""

    def __init__(self, message: str, failed: list[Check] | None = None, run_id: str = ""):
        super().__init__(message)
        self.failed = failed or []
        self.run_id = run_id


RESULT_COLUMNS = (("run_id", "VARCHAR"), ("checked_at", "TIMESTAMP"), ("check_name", "VARCHAR"),
                  ("source", "VARCHAR"), ("severity", "VARCHAR"), ("table_name", "VARCHAR"),
                  ("column_name", "VARCHAR"), ("partition_key", "VARCHAR"), ("observed", "DOUBLE"),
                  ("threshold", "DOUBLE"), ("passed", "BOOLEAN"), ("detail", "VARCHAR"))
RESULTS_DDL = ("CREATE SCHEMA IF NOT EXISTS audit;\nCREATE TABLE IF NOT EXISTS audit.check_results ("
               + ", ".join(f"{n} {t}" for n, t in RESULT_COLUMNS) + ");")


def _parse_as_of(value: str | datetime | None) -> datetime | None:
    """None/'' -> relative freshness; 'now' -> the wall clock; else an ISO time (UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        t = value
    elif value == "now":
        return datetime.now(UTC).replace(tzinfo=None)
    else:
        t = datetime.fromisoformat(value)
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def results_dir(paths: Paths):
    return paths.root / "quality" / "results"


def _store(con, paths: Paths, run_id: str, checked_at: datetime, checks: list[Check]) -> None:
    """Append the run's rows to the working warehouse's table and write the run's Parquet file
    (atomically) into the history that the view audit.check_history reads."""
    import pyarrow as pa

    from focuslake.ledger import write_parquet_atomic

    con.execute(RESULTS_DDL)
    have = {r[0] for r in con.execute("DESCRIBE audit.check_results").fetchall()}
    for name, typ in RESULT_COLUMNS:  # older warehouses: add the columns they lack
        if name not in have:
            con.execute(f"ALTER TABLE audit.check_results ADD COLUMN {name} {typ}")
    rows = [(run_id, checked_at, c.name, c.source, c.severity, c.table, c.column, c.partition,
             float(c.observed), float(c.threshold), bool(c.passed), c.detail) for c in checks]
    cols = ", ".join(n for n, _ in RESULT_COLUMNS)
    con.executemany(f"INSERT INTO audit.check_results ({cols}) VALUES ({', '.join('?' * len(RESULT_COLUMNS))})",
                    rows)
    table = pa.table({n: [r[i] for r in rows] for i, (n, _) in enumerate(RESULT_COLUMNS)},
                     schema=pa.schema([(n, {"VARCHAR": pa.string(), "TIMESTAMP": pa.timestamp("us"),
                                            "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_()}[t])
                                       for n, t in RESULT_COLUMNS]))
    target = results_dir(paths) / f"{checked_at:%Y%m%dT%H%M%S}_{run_id}.parquet"
    write_parquet_atomic(table, target)
    con.execute(f"""CREATE OR REPLACE VIEW audit.check_history AS
        SELECT * FROM read_parquet('{results_dir(paths)}/*.parquet', union_by_name = true)""")


def run_checks(paths: Paths, run_id: str | None = None, *, as_of: str | datetime | None = None,
               now: datetime | None = None, gx: bool = True, docs: bool = True,
               full: bool | None = None) -> dict:
    """Audit everything; store every result; raise QualityError if a critical check failed.

    as_of: freshness reference time (default: env FOCUSLAKE_QUALITY_AS_OF; unset means each
    device's own newest data, so a backfill of old data is not "stale"); now: the clock the
    future-timestamp bound uses (default: the wall clock); full: validate every partition with
    GX (True), only those touched since the last passing audit where that is sound (False), or
    decide (None: env FOCUSLAKE_QUALITY_FULL, else focuslake.quality.scope's rules)."""
    import duckdb

    from focuslake.quality import checks as C
    from focuslake.quality import scope as SC
    from focuslake.quarantine import unresolved_rels

    t0 = time.perf_counter()
    run_id = run_id or f"quality-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    if not paths.warehouse.exists():
        raise QualityError(f"no working warehouse at {paths.warehouse}: has the transform run?")
    now = now or datetime.now(UTC).replace(tzinfo=None)
    as_of = _parse_as_of(as_of if as_of is not None else os.environ.get("FOCUSLAKE_QUALITY_AS_OF"))
    unresolved = unresolved_rels(paths)
    ctx = Ctx(paths, now, as_of, unresolved["file"], unresolved["rows"])
    checks: list[Check] = []
    timings: dict[str, float] = {}
    docs_index = None
    plan = None
    con = duckdb.connect(str(paths.warehouse))
    try:
        if not paths.ledger_export.exists():
            checks.append(Check("ledger_exists", "ledger", 0, 1, False, "no ledger snapshot: has the ingest run?"))
        else:
            C.prepare(con, ctx)
            t = time.perf_counter()
            plan = _plan(con, ctx, full)
            ctx.plan = plan
            timings["scope"] = round(time.perf_counter() - t, 3)
            checks.append(Check("gx_scope", "warehouse", float(sum(len(s.parts) for s in plan.suites.values())),
                                float(sum(s.total_parts for s in plan.suites.values())), True,
                                f"{plan.mode}: {plan.reason}" + (f" (since run {plan.baseline_run})"
                                                                 if plan.baseline_run else ""),
                                source="gx", severity="info"))
            for fn in C.ALL_SQL_CHECKS:
                t = time.perf_counter()
                try:
                    checks += fn(con, ctx)
                except duckdb.Error as e:  # a missing relation or column is a failed check, not a crash
                    checks.append(Check(fn.__name__, "warehouse", 1, 0, False, f"could not run: {e}"))
                timings[fn.__name__] = round(time.perf_counter() - t, 3)
            if gx:
                from focuslake.quality.gx import validate_all

                t = time.perf_counter()
                gx_checks, docs_index = validate_all(con, ctx, run_id, build_docs=docs, plan=plan)
                checks += gx_checks
                timings["great_expectations"] = round(time.perf_counter() - t, 3)
        _store(con, paths, run_id, now, checks)
        con.execute("CHECKPOINT")  # the file as audited is complete: nothing left in a WAL
    finally:
        con.close()
    failed = [c for c in checks if not c.passed and c.severity == "critical"]
    from focuslake.publish import write_audit_stamp

    scope = plan.describe() if plan is not None else None
    if not failed and plan is not None and plan.state is not None and gx:
        SC.save_baseline(paths, plan, run_id)  # what the next run compares against
    write_audit_stamp(paths, run_id, not failed, sorted({f"{c.name} on {c.table}" for c in failed}),
                      scope=scope)
    summary = {"run_id": run_id, "checks": len(checks), "failed": len(failed),
               "failed_checks": sorted({f"{c.name} on {c.table}" for c in failed}),
               "as_of": as_of.isoformat() if as_of else None,
               "docs": str(docs_index) if docs_index else None, "scope": scope,
               "seconds": round(time.perf_counter() - t0, 3), "phase_seconds": timings}
    log.info("quality %s", summary)
    if failed:
        heads = [c for c in failed if c.partition == "all"] or failed
        msg = "quality gate failed, nothing published; failed checks: " + "; ".join(
            f"{c.name} on {c.table}" + (f".{c.column}" if c.column else "") + f" ({c.detail[:300]})"
            for c in heads)
        msg += f". Details: SELECT * FROM audit.check_history WHERE run_id = '{run_id}' AND NOT passed"
        raise QualityError(msg, failed, run_id)
    return summary


def _plan(con, ctx, full):
    """What GX validates (focuslake.quality.scope.plan); if that cannot be worked out, every
    table whole, and no baseline is recorded from this run."""
    from focuslake.quality import scope as SC
    from focuslake.quality.checks import relation_exists
    from focuslake.quality.suites import SUITES

    try:
        return SC.plan(con, ctx, full)
    except Exception as e:  # noqa: BLE001 -- never a crash of the gate: validate everything instead
        log.warning("quality scope: %r; validating every partition", e)
        try:  # e.g. an unreadable baseline: a full validation, which records a new one if it passes
            p = SC.plan(con, ctx, True, ignore_baseline=True)
            p.reason = f"could not use the last passing audit's record ({e!r:.200}): every partition"
            return p
        except Exception as e2:  # noqa: BLE001
            e = e2
        p = SC.Plan("full", f"could not tell what changed ({e!r:.200}): every table whole", None, state=None)
        p.suites = {n: SC.SuiteScope([], 0, True) for n, s in SUITES.items() if relation_exists(con, s.table)}
        return p


def latest_results(paths: Paths, run_id: str | None = None):
    """The stored rows of one run (default: the newest) as a list of dicts."""
    import duckdb

    files = sorted(results_dir(paths).glob("*.parquet"))
    if not files:
        return []
    f = next((p for p in files if run_id and p.stem.endswith(run_id)), files[-1])
    con = duckdb.connect()
    try:
        cur = con.execute(f"SELECT * FROM read_parquet('{f}')")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()

