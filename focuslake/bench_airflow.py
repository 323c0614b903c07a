"""Airflow benchmarks (`make bench` runs this): DAG-file parse time and data freshness.

    .venv/bin/python -m focuslake.bench_airflow [--repeats 3] [--no-freshness]

1. **Parse time per DAG file** (goal <= 0.3 s): each measurement is a cold Python process that
   first imports Airflow the way the DAG processor has it (``airflow.sdk`` and
   ``airflow.models``; reported on its own line), then parses one file of ``dags/`` with a
   DagBag (safe mode, the real bundle) -- the time of that second step is the file's parse
   time, Cosmos and the dbt manifest included. Bytecode caches warm (a first, uncounted round),
   as in a running deployment. Files are measured interleaved, ``--repeats`` rounds, median.
2. **Freshness on the embedded default** (goal <= 2 min): ``airflow standalone`` (the launcher of
   ``make airflow``; SQLite metadata, LocalExecutor) with the project's schedules, over a data
   root with one day of history already built and published. Then one new hour of segments
   lands (sealed into the landing zone by the workload generator) and the clock runs until that
   hour's rows are in ``gold.gld_user_hourly`` of the analysts' published copy. The DAG runs
   that carried it (ingest -> transform -> quality -> publish) are listed with their times.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from focuslake.airflow_env import DAGS_FOLDER, airflow_env, setup_airflow
from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, PROJECT_ROOT, Paths

PARSE_GOAL_S = 0.3
FRESHNESS_GOAL_S = 120.0

_PARSE_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import airflow.sdk, airflow.models  # what the DAG processor has imported before it parses a file
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1], safe_mode=True, bundle_path=sys.argv[2], bundle_name="dags-folder")
t2 = time.perf_counter()
print(json.dumps({"airflow_import_s": t1 - t0, "parse_s": t2 - t1, "dags": sorted(bag.dag_ids),
                  "errors": {k: v[-300:] for k, v in bag.import_errors.items()}}))
"""


def measure_parse(repeats: int = 3, files: list[Path] | None = None) -> dict:
    files = files or sorted(DAGS_FOLDER.glob("*.py"))
    with tempfile.TemporaryDirectory(prefix="focuslake-bench-af-") as tmp:
        env = {**os.environ, **airflow_env(Path(tmp) / "home")}
        # Bytecode caches as in any long-running deployment, kept in the temp dir: with
        # PYTHONDONTWRITEBYTECODE (set on some machines) and packages installed without .pyc, every
        # cold process would otherwise recompile each module it imports (measured: ~0.2 s of the
        # transform file's parse, seconds of Airflow's import). The first round warms them up.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        setup_airflow(Path(tmp) / "home", parse_dbt=False)
        samples: dict[str, list[dict]] = {f.name: [] for f in files}
        for round_ in range(repeats + 1):
            for f in files:  # interleaved: machine noise spreads over every file alike
                out = subprocess.run([sys.executable, "-c", _PARSE_SCRIPT, str(f), str(DAGS_FOLDER)], env=env,
                                     capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)
                if out.returncode != 0:
                    raise RuntimeError(f"parsing {f.name} failed:\n{out.stderr[-3000:]}")
                if round_:  # round 0 only fills the bytecode caches
                    samples[f.name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    result = {}
    for name, runs in samples.items():
        result[name] = {"parse_s": statistics.median(r["parse_s"] for r in runs),
                        "airflow_import_s": statistics.median(r["airflow_import_s"] for r in runs),
                        "dags": runs[-1]["dags"], "errors": runs[-1]["errors"]}
    return result


def print_parse(result: dict) -> None:
    imports = statistics.median(r["airflow_import_s"] for r in result.values())
    print(f"Airflow import before parsing (airflow.sdk + airflow.models, cold process): {imports:.2f} s (median)")
    print(f"{'DAG file':<28} {'parse s':>8}  {'vs goal':>8}  DAGs")
    for name, r in sorted(result.items(), key=lambda kv: -kv[1]["parse_s"]):
        ok = "ok" if r["parse_s"] <= PARSE_GOAL_S else "OVER"
        err = f"  IMPORT ERRORS: {r['errors']}" if r["errors"] else ""
        print(f"{name:<28} {r['parse_s']:8.3f}  {r['parse_s'] / PARSE_GOAL_S:6.2f}x {ok:>4}  "
              f"{','.join(r['dags'])}{err}")


# -- freshness --------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str):
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _token(base: str, password: str) -> str:
    req = urllib.request.Request(base + "/auth/token", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"username": "admin", "password": password}).encode())
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["access_token"]


def _hours_in_gold(published: Path, hours: list[datetime]) -> bool:
    import duckdb

    if not published.exists():
        return False
    try:
        con = duckdb.connect(str(published), read_only=True)
    except duckdb.Error:  # being swapped right now
        return False
    try:
        got = {r[0] for r in con.execute(
            "SELECT DISTINCT hour_start FROM gold.gld_user_hourly WHERE hour_start >= ? AND hour_start <= ?",
            [min(hours).replace(tzinfo=None), max(hours).replace(tzinfo=None)]).fetchall()}
    except duckdb.Error:
        return False
    finally:
        con.close()
    return {h.replace(tzinfo=None) for h in hours} <= got


def _build_history(data: Path, day) -> None:
    from collectors.simulate import simulate
    from focuslake import pipeline

    simulate(data, users=1, days=1, seed=3, start=day, hours=2, durable=True)
    pipeline.ingest(Paths(data))
    with tempfile.TemporaryDirectory(prefix="focuslake-bench-dbt-") as tmp:
        subprocess.run([str(Path(sys.executable).parent / "dbt"), "build", "--profiles-dir", str(DBT_PROJECT_DIR),
                        "--target-path", f"{tmp}/target", "--log-path", f"{tmp}/logs", "--quiet"],
                       cwd=DBT_PROJECT_DIR, env={**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(data)},
                       check=True, capture_output=True)
    pipeline.check_quality(Paths(data))
    pipeline.publish(Paths(data))


def measure_freshness(timeout_s: float = 1800) -> dict:
    """Start `airflow standalone`, land one new hour, time until it is in published gold."""
    import duckdb

    from collectors.simulate import simulate

    tmp = Path(tempfile.mkdtemp(prefix="focuslake-bench-fresh-"))
    home, data = tmp / "home", tmp / "data"
    today = datetime.now(UTC).date()
    history_day, new_day = today - timedelta(days=2), today - timedelta(days=1)
    _build_history(data, history_day)
    port = _free_port()
    password = os.urandom(12).hex()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(FOCUSLAKE_DATA=str(data), FOCUSLAKE_AIRFLOW_PORT=str(port), AIRFLOW_ADMIN_PASSWORD=password)
    log = open(tmp / "standalone.log", "wb")  # noqa: SIM115  (kept open for the server's lifetime)
    proc = subprocess.Popen([sys.executable, "-m", "focuslake.airflow_ui", "--home", str(home)], env=env,
                            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    result: dict = {"data": str(data), "log": str(tmp / "standalone.log")}
    try:
        started = time.monotonic()
        token = None
        while time.monotonic() - started < 600:  # up, and every DAG parsed
            if proc.poll() is not None:
                raise RuntimeError(f"airflow standalone exited; see {tmp / 'standalone.log'}")
            try:
                token = token or _token(base, password)
                health = _api(base, token, "/api/v2/monitor/health")
                n = _api(base, token, "/api/v2/dags?limit=100")["total_entries"]
                if n >= 9 and all((health.get(k) or {}).get("status") == "healthy"
                                  for k in ("scheduler", "dag_processor", "triggerer")):
                    break
            except OSError:
                pass
            time.sleep(2)
        result["startup_s"] = round(time.monotonic() - started, 1)
        # let the runs the schedules create at start (latest hour/day/week/month) finish first
        settle = time.monotonic()
        while time.monotonic() - settle < 900:
            active = [r for state in ("queued", "running")
                      for r in _api(base, token, f"/api/v2/dags/~/dagRuns?state={state}&limit=100")["dag_runs"]]
            if not active:
                break
            time.sleep(5)
        result["settle_s"] = round(time.monotonic() - settle, 1)
        # one new hour lands (segments sealed: written as .part, fsynced, renamed)
        summary = simulate(data, users=1, days=1, seed=4, start=new_day, hours=1, durable=True)
        landed_wall = datetime.now(UTC)
        t0 = time.monotonic()
        truth = duckdb.connect()
        hours = [h for (h,) in truth.execute(
            f"SELECT DISTINCT hour_start FROM read_parquet('{data}/truth/hourly.parquet') "
            "WHERE hour_start::DATE = ? ORDER BY 1", [new_day]).fetchall()]
        truth.close()
        hours = [h.replace(tzinfo=UTC) if h.tzinfo is None else h for h in hours]
        result["landed"] = {"segments": summary.get("segments"), "hours": [h.isoformat() for h in hours]}
        while time.monotonic() - t0 < timeout_s:
            if _hours_in_gold(Paths(data).published, hours):
                result["freshness_s"] = round(time.monotonic() - t0, 1)
                break
            if proc.poll() is not None:
                raise RuntimeError(f"airflow standalone exited; see {tmp / 'standalone.log'}")
            time.sleep(2)
        else:
            result["freshness_s"] = None
        runs = _api(base, token, "/api/v2/dags/~/dagRuns?limit=100&order_by=start_date")["dag_runs"]
        result["runs"] = [
            {"dag_id": r["dag_id"], "run_type": r["run_type"], "state": r["state"],
             "start": r["start_date"], "end": r["end_date"]}
            for r in runs if r["start_date"] and r["start_date"] >= landed_wall.isoformat().replace("+00:00", "Z")]
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
    return result


def print_freshness(r: dict) -> None:
    f = r.get("freshness_s")
    verdict = "n/a" if f is None else ("ok" if f <= FRESHNESS_GOAL_S else "OVER")
    print(f"standalone ready in {r['startup_s']} s; initial scheduled runs settled in {r['settle_s']} s")
    print(f"landed {r['landed']['segments']} segments of hour(s) {', '.join(r['landed']['hours'])}")
    print(f"freshness (landed -> hour in published gold): {f if f is not None else 'not reached'} s  "
          f"goal {FRESHNESS_GOAL_S:.0f} s  ({f / FRESHNESS_GOAL_S:.2f}x {verdict})" if f is not None else
          f"freshness: not reached within the timeout (see {r['log']})")
    for run in r.get("runs", []):
        print(f"  {run['dag_id']:<24} {run['run_type']:<16} {run['state']:<8} {run['start']} -> {run['end']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m focuslake.bench_airflow", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-freshness", action="store_true", help="parse times only (the freshness run "
                        "starts Airflow and takes minutes)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    out = {"parse": measure_parse(args.repeats)}
    print_parse(out["parse"])
    if not args.no_freshness:
        out["freshness"] = measure_freshness()
        print_freshness(out["freshness"])
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
