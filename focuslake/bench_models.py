"""`python -m focuslake.bench_models`: landing -> gold at 10 users x 30 days, full versus
incremental, side by side in one run (issue 5's goals: full build <= 5 min with peak RSS
<= 4 GB; an incremental hourly run <= 10 % of the full build's time).

The workload ends yesterday (the ingest rejects timestamps beyond the clock's skew bound). The
last hour of segments is held back; the full build ingests and builds everything else from
scratch; then that hour lands and the incremental run (ingest + `dbt build`, whose incremental
models rebuild each device from the start of the day that received new segments, looking back
to any row reaching into it: docs/incremental.md) is timed, and then the same
run once more with nothing new landed (the fixed cost of any run: start-up, parse, per-node work
and tests). Each step runs in its own process
and reports its own peak RSS; both builds share one dbt target dir (the hourly run parses
partially, as in the DAGs), and each build's dbt timings are kept in
benchmarks/out/run_results-<step>.json (the slowest nodes are printed).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, PROJECT_ROOT

PY = sys.executable
OUT = PROJECT_ROOT / "benchmarks" / "out"
DBT = str(Path(sys.executable).with_name("dbt"))
# Runs a command and prints its own children's peak RSS (KiB) last: per-step memory.
_MEASURE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print('maxrss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")


def step(name: str, cmd: list[str], env: dict, cwd: Path = PROJECT_ROOT) -> dict:
    if cmd[0] == DBT:  # one target dir for both builds (an hourly run parses partially, as in the DAGs)
        cmd = [*cmd, "--target-path", str(OUT / "target")]
    t0 = time.perf_counter()
    r = subprocess.run([PY, "-c", _MEASURE, *cmd], check=False, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"{name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    rss = int(re.findall(r"maxrss_kib (\d+)", r.stdout)[-1])
    if cmd[0] == DBT:  # dbt's own per-node timings, kept per step (the profile behind the figures)
        shutil.copyfile(OUT / "target" / "run_results.json", _run_results(name))
    return {"step": name, "seconds": round(seconds, 1), "peak_rss_mb": round(rss / 1024)}


def _run_results(step_name: str) -> Path:
    slug = re.sub(r"\W+", "_", step_name).strip("_")
    return OUT / f"run_results-{slug}.json"


def slowest_nodes(step_name: str, n: int = 12) -> list[tuple[str, float]]:
    """The step's slowest dbt nodes (models and tests), from its run_results.json."""
    f = _run_results(step_name)
    if not f.exists():
        return []
    rows = [(r["unique_id"].split(".", 2)[-1], r["execution_time"]) for r in json.loads(f.read_text())["results"]]
    return sorted(rows, key=lambda r: -r[1])[:n]


def segment_start(p: Path) -> str:
    return p.name.split("-")[1]  # <stream>-<YYYYmmddTHHMMSSZ>-<seq>.<ext>


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="focuslake.bench_models")
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--keep", help="keep the data under this directory")
    args = ap.parse_args(argv)
    root = Path(args.keep or tempfile.mkdtemp(prefix="focuslake-bench-models-"))
    data = root / "data"
    if data.exists():
        shutil.rmtree(data)
    env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(data)}
    start = date.today() - timedelta(days=args.days + 1)
    results = [step("simulate", [PY, "-m", "collectors.simulate", "--users", str(args.users), "--days",
                                 str(args.days), "--start", start.isoformat(), "--data", str(data),
                                 "--no-fsync", "--quiet"], env)]
    segs = [p for p in (data / "landing").rglob("*") if p.is_file()]
    last_hour = max(segment_start(p) for p in segs)[:11]  # YYYYmmddTHH
    held = root / "held"
    for p in segs:
        if segment_start(p).startswith(last_hour):
            dst = held / p.relative_to(data / "landing")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(p, dst)
    n_held = sum(1 for _ in held.rglob("*") if _.is_file())

    full = [step("full: ingest", [PY, "-m", "focuslake", "ingest"], env),
            step("full: dbt build --full-refresh", [DBT, "build", "--profiles-dir", ".", "--full-refresh",
                                                    "--quiet"], env, DBT_PROJECT_DIR)]
    shutil.copytree(held, data / "landing", dirs_exist_ok=True)
    incr = [step("incremental: ingest (last hour)", [PY, "-m", "focuslake", "ingest"], env),
            step("incremental: dbt build", [DBT, "build", "--profiles-dir", ".", "--quiet"], env,
                 DBT_PROJECT_DIR)]
    # The same run again with nothing new landed: what every scheduled run costs whatever the data
    # (process start-up, dbt's parse and per-node work, the tests): the floor under the hourly run.
    idle = [step("nothing new: ingest", [PY, "-m", "focuslake", "ingest"], env),
            step("nothing new: dbt build", [DBT, "build", "--profiles-dir", ".", "--quiet"], env, DBT_PROJECT_DIR)]
    results += full + incr + idle
    t_full = sum(r["seconds"] for r in full)
    t_incr = sum(r["seconds"] for r in incr)
    t_idle = sum(r["seconds"] for r in idle)
    rss = max(r["peak_rss_mb"] for r in full)
    print(f"focuslake model benchmarks  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  "
          f"{args.users} users x {args.days} days from {start} (held back: {n_held} segments of hour {last_hour})")
    for r in results:
        print(f"  {r['step']:<36} {r['seconds']:8.1f} s   peak RSS {r['peak_rss_mb']:6d} MB")
    for r in results:
        if nodes := slowest_nodes(r["step"]):
            total = sum(t for _, t in slowest_nodes(r["step"], 10**6))
            print(f"  {r['step']}: dbt node time {total:.1f} s (2 threads), slowest: "
                  + ", ".join(f"{name} {t:.1f}" for name, t in nodes))
            r["slowest_nodes"] = nodes
    print(f"full landing->gold {t_full:.1f} s (goal <= 300 s: {'PASS' if t_full <= 300 else 'MISS'}), "
          f"peak RSS {rss} MB (goal <= 4096: {'PASS' if rss <= 4096 else 'MISS'})")
    print(f"incremental hourly run {t_incr:.1f} s = {t_incr / t_full:.0%} of the full build "
          f"(goal <= 10 %: {'PASS' if t_incr <= 0.1 * t_full else 'MISS'})")
    print(f"the same run with nothing new {t_idle:.1f} s = {t_idle / t_full:.0%} of the full build: the hour's "
          f"own cost is {t_incr - t_idle:.1f} s = {(t_incr - t_idle) / t_full:.0%}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "models.json").write_text(json.dumps({"results": results, "full_s": t_full, "incremental_s": t_incr,
                                                 "nothing_new_s": t_idle}, indent=2))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
