"""`python -m focuslake <command>`: run pipeline steps by hand and look at the results."""
from __future__ import annotations

import argparse
import json
import logging

from focuslake.config import Paths, apply_no_telemetry


def summary(paths: Paths) -> int:
    import duckdb
    from rich.console import Console
    from rich.table import Table

    console = Console()
    db = paths.published if paths.published.exists() else paths.warehouse
    if not db.exists():
        console.print(f"[red]No warehouse yet at {paths.warehouse}. Run `make demo`.[/red]")
        return 1
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("""
        SELECT user_id, count(*) AS days, round(sum(active_seconds) / 3600, 1) AS active_h,
               sum(keystrokes), sum(clicks), sum(context_switches), round(sum(mouse_distance_px) / 1000, 1)
        FROM gold.gld_user_daily GROUP BY user_id ORDER BY user_id""").fetchall()
    top = con.execute("""
        SELECT user_id, arg_max(app_name, s), round(max(s) / 3600, 1) FROM (
          SELECT user_id, app_name, sum(active_seconds) s FROM gold.gld_user_app_daily GROUP BY ALL)
        GROUP BY user_id ORDER BY user_id""").fetchall()
    top = {u: (a, h) for u, a, h in top}
    t = Table(title="Gold metrics per user (gold.gld_user_daily)")
    for col in ("user", "days", "active h", "keystrokes", "clicks", "switches", "mouse kpx",
                "top app (h)"):
        t.add_column(col, justify="right" if col not in ("user", "top app (h)") else "left")
    for u, d, h, k, c, s, m in rows:
        app, ah = top.get(u, ("-", 0))
        t.add_row(u, str(d), str(h), f"{k:,}", f"{c:,}", f"{s:,}", str(m), f"{app} ({ah})")
    console.print(t)
    checks = con.execute("SELECT count(*), count(*) FILTER (WHERE NOT passed) FROM audit.check_results"
                         ).fetchone() if _has(con, "audit", "check_results") else (0, 0)
    con.close()
    console.print(f"Quality checks recorded: {checks[0]} ({checks[1]} failed)")
    if (paths.truth / "hourly.parquet").exists():
        from focuslake.verify import compare_with_truth

        diffs = compare_with_truth(db, paths.truth)
        ok = sum(d.ok for d in diffs)
        console.print(f"Gold vs the workload's ground truth: {ok}/{len(diffs)} metric x grain checks agree "
                      f"(counts exact, active time within 1 ms/hour)"
                      + ("" if ok == len(diffs) else " -- MISMATCH: " + ", ".join(
                          f"{d.metric}/{d.grain}" for d in diffs if not d.ok)))
    console.print(f"Published warehouse (read-only, for analysts): [bold]{paths.published}[/bold]")
    console.print(f"Working warehouse (pipeline only):            {paths.warehouse}")
    console.print(f"Parquet lake:                                  {paths.lake}")
    console.print(f"Quarantine:                                    {paths.quarantine}")
    console.print("Query it: .venv/bin/python -c \"import duckdb; print(duckdb.connect("
                  f"'{paths.published}', read_only=True).sql('from gold.gld_user_daily'))\"")
    return 0


def _has(con, schema: str, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                            "AND table_name = ?", [schema, table]).fetchone()[0])


def main(argv: list[str] | None = None) -> int:
    apply_no_telemetry()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(prog="focuslake", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, helptext in (("ingest", "landing -> lake"), ("quality", "run the quality gate"),
                           ("publish", "publish the audited warehouse"),
                           ("summary", "print gold metrics and where the results are")):
        sp = sub.add_parser(name, help=helptext)
        if name == "quality":
            sp.add_argument("--full", action="store_true", default=None,
                            help="GX validates every partition, not only those touched since the last passing "
                                 "audit (docs/quality.md)")
    args = ap.parse_args(argv)
    paths = Paths.from_env()
    if args.cmd == "summary":
        return summary(paths)
    from focuslake import pipeline
    if args.cmd == "quality":
        result = pipeline.check_quality(paths, full=args.full)
    else:
        result = {"ingest": pipeline.ingest, "publish": pipeline.publish}[args.cmd](paths)
    print(json.dumps(result, indent=2, default=str))
    return 0
