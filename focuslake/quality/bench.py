"""`python -m focuslake.quality.bench`: what one run of the quality gate costs (issue 5, "quality
gate at scale"), on a simulated workload built once under benchmarks/out/gate-bench/ (simulate,
ingest, dbt build), then:

1. **first audit**: no passing audit recorded, GX validates every partition;
2. **one new segment**: one system_metrics segment of a new device lands and is ingested (what
   an hourly run sees: a few touched partitions), the gate runs again;
3. **nothing new**: the gate runs again without any change.

Each gate run is `python -m focuslake quality` in its own process: wall time, the gate's own
seconds and its Great Expectations phase, what it validated (the scope record) and the process's
peak RSS. `--code-root DIR` runs the gate of another checkout (e.g. `git archive main | tar -x -C
/tmp/main`) on a copy of the same data, for a before/after comparison. `--data DIR` uses an
existing data root instead (e.g. a 10 x 30 build): it is copied (its bronze views re-pointed at
the copy's lake with `dbt run`), never modified.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, PROJECT_ROOT, Paths

OUT = PROJECT_ROOT / "benchmarks" / "out" / "gate-bench"


def _run(what: str, cmd: list[str], env: dict, cwd: Path | None = None) -> str:
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"{what} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout


def build(root: Path, users: int, days: int, hours: float | None) -> Paths:
    paths = Paths(root)
    env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(root)}
    py, dbt = sys.executable, str(Path(sys.executable).with_name("dbt"))
    shutil.rmtree(root, ignore_errors=True)
    start = date.today() - timedelta(days=days + 1)
    _run("simulate", [py, "-m", "collectors.simulate", "--users", str(users), "--days", str(days), "--start",
                      start.isoformat(), "--data", str(root), "--no-fsync", "--quiet",
                      *(["--hours", str(hours)] if hours else [])], env)
    _run("ingest", [py, "-m", "focuslake", "ingest"], env)
    _run("dbt build", [dbt, "build", "--profiles-dir", ".", "--quiet", "--target-path", str(root / "dbt_target"),
                       "--log-path", str(root / "dbt_logs")], env, DBT_PROJECT_DIR)
    return paths


def gate(root: Path, code_root: Path | None) -> dict:
    env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(root)}
    if code_root:
        env["PYTHONPATH"] = str(code_root)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "focuslake", "quality"], env=env, cwd=code_root or PROJECT_ROOT,
                       capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far, MB
    out = r.stdout
    summary = json.loads(out[out.index("{"):]) if "{" in out else {}
    return {"rc": r.returncode, "wall_s": round(wall, 1), "gate_s": summary.get("seconds"),
            "gx_s": (summary.get("phase_seconds") or {}).get("great_expectations"),
            "scope": summary.get("scope"), "failed": summary.get("failed_checks"),
            "peak_rss_mb": round(rss), "stderr": r.stderr[-1500:] if r.returncode else ""}


def new_segment(paths: Paths, device: str = "bench-new-device") -> None:
    """One system_metrics segment (120 samples) of a new device of the first user, ingested."""
    import duckdb

    from focuslake import pipeline
    from focuslake.segments import CsvSegmentWriter

    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        user, t = con.execute("SELECT min(user_id), max(ts_us) FROM bronze.brz_system_metrics").fetchone()
    finally:
        con.close()
    w = CsvSegmentWriter(paths.landing, "system_metrics", user, device, rotate_seconds=86_400,
                         durable=False)
    cpu = 12.5 + sum(map(ord, device)) % 50  # another device: other content (the ledger dedups by checksum)
    w.write_rows([[t - 600_000_000 + i * 5_000_000, cpu, 40.0, 0.0, 1, 2, 3, 4, 80.0, True, "code", 3.0]
                  for i in range(120)])
    w.seal()
    pipeline.ingest(paths)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--hours", type=float, default=3)
    ap.add_argument("--data", type=Path, help="an existing data root to copy instead of building one")
    ap.add_argument("--code-root", type=Path, help="run the gate of this checkout (default: this one)")
    ap.add_argument("--keep", action="store_true", help="reuse benchmarks/out/gate-bench/base if built")
    args = ap.parse_args(argv)
    base = OUT / "base"
    if args.data:
        base = args.data
    elif not (args.keep and (base / "warehouse").exists()):
        print(f"building {args.users} users x {args.days} days x {args.hours} h under {base}")
        build(base, args.users, args.days, args.hours)
    run = OUT / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(base, run, symlinks=True,
                    ignore=shutil.ignore_patterns("quality", "quality_docs", "published", "dbt_target", "dbt_logs"))
    # the bronze views name the lake by its absolute path: point the copy's at its own lake
    env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(run)}
    _run("dbt run bronze", [str(Path(sys.executable).with_name("dbt")), "run", "--profiles-dir", ".", "--quiet",
                            "--select", "path:models/bronze", "--target-path", str(run / "dbt_target"),
                            "--log-path", str(run / "dbt_logs")], env, DBT_PROJECT_DIR)
    rows = []
    for step in ("first audit", "one new segment", "nothing new"):
        if step == "one new segment":
            new_segment(Paths(run))
        r = gate(run, args.code_root)
        rows.append((step, r))
        sc = r["scope"] or {}
        parts = sc.get("partitions") or {}
        print(f"{step:16s} rc={r['rc']} wall {r['wall_s']} s, gate {r['gate_s']} s, GX {r['gx_s']} s, "
              f"peak RSS {r['peak_rss_mb']} MB, mode {sc.get('mode', '(no scope: before)')}, "
              f"partitions validated {sum(v[0] for v in parts.values())}/{sum(v[1] for v in parts.values())}"
              + (f"\n  failed: {r['failed']}\n{r['stderr']}" if r["rc"] else ""))
    print(json.dumps([{"step": s, **{k: v for k, v in r.items() if k != "stderr"}} for s, r in rows],
                     default=str))
    return 0 if all(r["rc"] == 0 for _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
