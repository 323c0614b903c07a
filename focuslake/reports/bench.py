"""`python -m focuslake.reports.bench`: how long a report takes to render, and the chart layout
choice measured side by side (fixed margins, what the reports use, vs matplotlib's constrained
layout engine, which draws each figure several times to place its texts).

Uses the published warehouse under ``--data`` when there is one; otherwise builds one first
(simulate 2 users x 7 days, ingest, dbt build, quality, publish; a few minutes, not timed).
Each variant renders the same daily and weekly reports ``--repeats`` times, alternating, in this
one process (matplotlib and DuckDB already imported); the medians are compared.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, Paths


def build_warehouse(root: Path) -> Paths:
    from collectors.simulate import simulate
    from focuslake import pipeline

    paths = Paths(root)
    simulate(paths.root, users=2, days=7, seed=1, start=date(2026, 11, 16), durable=False)
    pipeline.ingest(paths)
    env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(paths.root)}
    subprocess.run([str(Path(sys.executable).with_name("dbt")), "build", "--profiles-dir", "."],
                   cwd=DBT_PROJECT_DIR, env=env, check=True, capture_output=True)
    pipeline.check_quality(paths)
    pipeline.publish(paths)
    return paths


def _constrained(width, height, **_margins):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from focuslake.reports import charts

    fig = Figure(figsize=(width, height), dpi=charts.DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m focuslake.reports.bench")
    ap.add_argument("--data", type=Path, help="data root with a published warehouse (default: build one in a tmp dir)")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    from focuslake.reports import charts, data, period_of, render_reports

    tmp = Path(tempfile.mkdtemp(prefix="focuslake-bench-reports-"))
    paths = Paths(a.data.resolve()) if a.data else None
    if paths is None or not paths.published.exists():
        print(f"building a published warehouse in {tmp / 'data'} (not timed) ...", flush=True)
        paths = build_warehouse(tmp / "data")
    con = data.connect(paths.published)
    try:
        # the user-day with the most active time (the most windows to draw)
        user, day = con.execute("SELECT user_id, day FROM gold.gld_user_daily ORDER BY active_seconds DESC, "
                                "user_id, day LIMIT 1").fetchone()
    finally:
        con.close()
    periods = {"daily": period_of("daily", day), "weekly": period_of("weekly", day)}
    fixed = charts._figure
    variants = {"fixed margins (ours)": fixed, "constrained layout": _constrained}
    times: dict[tuple[str, str], list[float]] = {(v, k): [] for v in variants for k in periods}
    render_reports(periods["daily"], [user], paths=paths, out=tmp / "warm")  # imports, font cache
    for i in range(a.repeats):
        for v, fn in variants.items():
            charts._figure = fn
            try:
                for kind, period in periods.items():
                    t0 = time.perf_counter()
                    render_reports(period, [user], paths=paths, out=tmp / f"out-{i}")
                    times[(v, kind)].append(time.perf_counter() - t0)
            finally:
                charts._figure = fixed
    print(f"one report of {user}: daily {periods['daily'].label}, weekly {periods['weekly'].label}; "
          f"median of {a.repeats}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'variant':<24} {'daily s':>8} {'weekly s':>9}")
    med = {k: statistics.median(v) for k, v in times.items()}
    for v in variants:
        print(f"{v:<24} {med[(v, 'daily')]:>8.2f} {med[(v, 'weekly')]:>9.2f}")
    ours, other = "fixed margins (ours)", "constrained layout"
    print(f"constrained / fixed: daily {med[(other, 'daily')] / med[(ours, 'daily')]:.2f}x, "
          f"weekly {med[(other, 'weekly')] / med[(ours, 'weekly')]:.2f}x")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
