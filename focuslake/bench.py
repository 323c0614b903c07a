"""`make bench`: speed and memory measured side by side in one run.

The machine is shared and noisy, so every comparison runs its contenders interleaved
(A, B, A, B, ...) on the same input and reports medians and their ratio; absolute times are
printed for context only. Results go to stdout and to benchmarks/out/latest.json; the
figures worth keeping are copied into benchmarks/RESULTS.md by hand with the date.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from focuslake import events as ev
from focuslake.config import PROJECT_ROOT, Paths

OUT = PROJECT_ROOT / "benchmarks" / "out"


def synthetic_events(n: int, seed: int = 7, start_us: int = 1_763_337_600_000_000) -> np.ndarray:
    """A realistic mix: mostly mouse moves and keys, some clicks/wheel/window switches."""
    rng = np.random.default_rng(seed)
    r = ev.make_records(n)
    r["timestamp_us"] = start_us + np.cumsum(rng.integers(1_000, 120_000, n))
    r["event_type"] = rng.choice([1, 2, 3, 4, 5, 6, 10, 11], n, p=[.25, .25, .4, .04, .03, .01, .01, .01])
    apps = np.array([b"code", b"firefox", b"slack", b"gnome-terminal", b"zoom"], dtype="S32")
    r["app_name"] = apps[rng.integers(0, len(apps), n)]
    r["process_id"] = 1000 + rng.integers(0, 5, n)
    r["window_handle"] = rng.integers(1 << 20, 1 << 22, n)
    r["data"][:, 0] = rng.integers(0, 1920, n)
    r["data"][:, 1] = rng.integers(0, 1080, n)
    r["data"][:, 2] = rng.integers(0, 3000, n)
    keys = np.isin(r["event_type"], ev.KEY_TYPES)
    r["data"][keys, :2] = 0
    return r


# -- seed 003's per-record parser, the "before" this project replaces ------------------------
def seed003_parse_event(raw: bytes) -> dict:
    parts = struct.unpack("<Q I I 32s I 12s", raw)
    etype = parts[1]
    data_bytes = parts[5]
    if etype in (1, 2):
        data = {"virtual_key": struct.unpack("<I", data_bytes[0:4])[0],
                "scan_code": struct.unpack("<I", data_bytes[4:8])[0],
                "flags": struct.unpack("<I", data_bytes[8:12])[0]}
    elif etype in (3, 4, 5):
        data = {"x": struct.unpack("<i", data_bytes[0:4])[0], "y": struct.unpack("<i", data_bytes[4:8])[0],
                "v": struct.unpack("<I", data_bytes[8:12])[0]}
    else:
        data = {}
    return {"timestamp": datetime.fromtimestamp(parts[0] / 1_000_000), "event_type": etype,
            "process_id": parts[2], "app_name": parts[3].decode("utf-8").rstrip("\x00"),
            "window_handle": parts[4], "data": data}


def seed003_ingest(path: Path, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    body = path.read_bytes()[ev.HEADER_SIZE:-ev.FOOTER_SIZE]
    rows = [seed003_parse_event(body[i:i + 64]) for i in range(0, len(body), 64)]
    pq.write_table(pa.table({
        "ts": [r["timestamp"] for r in rows], "event_type": [r["event_type"] for r in rows],
        "process_id": [r["process_id"] for r in rows], "app_name": [r["app_name"] for r in rows],
        "window_handle": [r["window_handle"] for r in rows],
        "x": [r["data"].get("x") for r in rows], "y": [r["data"].get("y") for r in rows]}), out)


def pyarrow_write_decoded(path: Path, out: Path) -> None:
    """Baseline: decode with the dtype and write the same columns with plain pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, r = ev.read_segment(path)
    pq.write_table(pa.table({
        "ts_us": r["timestamp_us"].view(np.int64), "event_type": r["event_type"].astype(np.int32),
        "process_id": r["process_id"].astype(np.int64),
        "app_name": np.char.rstrip(r["app_name"]).astype(str),
        "window_handle": r["window_handle"].astype(np.int64),
        "data_0": r["data"][:, 0].astype(np.int64), "data_1": r["data"][:, 1].astype(np.int64),
        "data_2": r["data"][:, 2].astype(np.int64)}), out, compression="zstd")


# ------------------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    ours: list[float]
    base: list[float]
    goal: float | None  # None: context only, no goal
    unit_count: int
    unit: str

    @property
    def ratio(self) -> float:  # throughput ours / throughput baseline
        return statistics.median(self.base) / statistics.median(self.ours)

    def line(self) -> str:
        mo, mb = statistics.median(self.ours), statistics.median(self.base)
        goal = ("(context, no goal)" if self.goal is None else
                f"goal >= {self.goal}x  {'PASS' if self.ratio >= self.goal else 'MISS'}")
        return (f"{self.name:<46} ours {mo * 1e3:8.1f} ms ({self.unit_count / mo / 1e6:6.2f} M{self.unit}/s)"
                f"  baseline {mb * 1e3:8.1f} ms  ratio {self.ratio:5.2f}x  {goal}")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _fresh_landing(src_files: list[tuple[Path, str]], root: Path) -> Paths:
    if root.exists():
        shutil.rmtree(root)
    paths = Paths(root).ensure()
    for f, rel in src_files:
        dst = paths.landing / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(f, dst) if f.stat().st_dev == dst.parent.stat().st_dev else shutil.copy(f, dst)
    return paths


def bench_binary(work: Path, n: int, repeats: int) -> list[Result]:
    from focuslake.ingest import ingest_landing

    recs = synthetic_events(n)
    seg = work / "events-bench.bin"
    seg.write_bytes(ev.encode_segment(recs, "bench", "dev1", int(recs["timestamp_us"][0])))
    day = datetime.fromtimestamp(recs["timestamp_us"][0] / 1e6, tz=UTC).strftime("%Y-%m-%d")
    rel = f"events/bench/dev1/{day}/events-bench.bin"
    ours, base_pa, base_seed = [], [], []
    for i in range(repeats):
        def run_ours():
            paths = _fresh_landing([(seg, rel)], work / "ours")
            s = ingest_landing(paths, now_us=int(recs["timestamp_us"][-1]))
            assert s["rows_written"] == n, s
        ours.append(_timed(run_ours))
        base_pa.append(_timed(lambda: pyarrow_write_decoded(seg, work / "pa.parquet")))
        if i < max(1, repeats // 2):  # the slow baseline: fewer repeats
            base_seed.append(_timed(lambda: seed003_ingest(seg, work / "seed.parquet")))
    return [Result(f"binary ingest {n:,} events vs pyarrow write", ours, base_pa, 0.7, n, "ev"),
            Result(f"binary ingest {n:,} events vs seed-003 struct.unpack", ours, base_seed, 5.0, n, "ev")]


def bench_csv(work: Path, n: int, repeats: int) -> list[Result]:
    import duckdb

    from focuslake.ingest import ingest_landing, init_lake
    from focuslake.ledger import Ledger
    from focuslake.schemas import SYSTEM_METRICS

    rng = np.random.default_rng(3)
    t0 = 1_763_337_600_000_000
    f = work / "system_metrics-bench.csv"
    cols = {
        "ts_us": t0 + np.arange(n, dtype=np.int64) * 100_000,  # one day: one partition
        "cpu_percent": np.round(rng.uniform(0, 100, n), 1), "mem_percent": np.round(rng.uniform(20, 80, n), 1),
        "swap_percent": np.round(rng.uniform(0, 5, n), 1),
        "disk_read_bytes": rng.integers(0, 1 << 20, n), "disk_write_bytes": rng.integers(0, 1 << 20, n),
        "net_sent_bytes": rng.integers(0, 1 << 16, n), "net_recv_bytes": rng.integers(0, 1 << 18, n),
        "battery_percent": np.round(rng.uniform(10, 100, n), 1), "on_ac_power": rng.integers(0, 2, n) == 1,
        "top_process": rng.choice(["code", "firefox", "slack"], n),
        "top_process_cpu": np.round(rng.uniform(0, 50, n), 1)}
    import pyarrow as pa
    import pyarrow.csv as pacsv
    pacsv.write_csv(pa.table({c.name: cols[c.name] for c in SYSTEM_METRICS.columns}), f,
                    pacsv.WriteOptions(quoting_style="needed"))
    # the same file plus one bad row at its end (CPU above 100 %): the single pass is proven
    # wrong only after it has read everything, then the two passes run -- the worst case
    bad = work / "system_metrics-bench-bad.csv"
    last = SYSTEM_METRICS.names
    with open(f, "rb") as src, open(bad, "wb") as dst:
        shutil.copyfileobj(src, dst)
        row = {c: "" for c in last} | {"ts_us": str(int(cols["ts_us"][-1]) + 1), "cpu_percent": "150.0",
                                       "mem_percent": "40.0", **{c: "0" for c in last if c.endswith("_bytes")}}
        dst.write((",".join(row[c] for c in last) + "\n").encode())
    day = datetime.fromtimestamp(t0 / 1e6, tz=UTC).strftime("%Y-%m-%d")
    rel = f"system_metrics/bench/dev1/{day}/system_metrics-bench.csv"
    ours, steady, with_bad, base, phases = [], [], [], [], []
    for _ in range(repeats):
        def run_ours():  # a fresh data root: creates the ledger and the lake's schema files too
            paths = _fresh_landing([(f, rel)], work / "ours")
            s = ingest_landing(paths, now_us=int(cols["ts_us"][-1]))
            assert s["rows_written"] == n and s["csv_segments_single_pass"] == 1, s
            phases.append(s["phase_seconds"])
        ours.append(_timed(run_ours))

        # a new segment into a data root that exists already (ledger, lake schemas): what every
        # ingest after the first one pays; the set-up is not timed
        ready = _fresh_landing([(f, rel)], work / "steady")
        init_lake(ready.lake)
        Ledger(ready.ledger).close()

        def run_steady(paths=ready):
            s = ingest_landing(paths, now_us=int(cols["ts_us"][-1]))
            assert s["rows_written"] == n and s["csv_segments_single_pass"] == 1, s
        steady.append(_timed(run_steady))

        def run_bad():
            paths = _fresh_landing([(bad, rel)], work / "bad")
            s = ingest_landing(paths, now_us=int(cols["ts_us"][-1]))
            assert (s["rows_written"], s["rows_quarantined"], s["csv_segments_single_pass"]) == (n, 1, 0), s
        with_bad.append(_timed(run_bad))

        def run_copy():
            con = duckdb.connect()
            con.execute(f"COPY (SELECT * FROM read_csv('{f}')) TO '{work / 'copy.parquet'}' (FORMAT parquet)")
            con.close()
        base.append(_timed(run_copy))
    print("CSV ingest phases (s):", phases[len(phases) // 2])
    return [Result(f"CSV ingest+validation {n:,} rows vs DuckDB COPY", ours, base, 0.8, n, "rows"),
            Result("  the same into an existing data root", steady, base, 0.8, n, "rows"),
            Result("  the file with one bad row (two passes)", with_bad, base, None, n, "rows")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="focuslake.bench")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--csv-rows", type=int, default=500_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="focuslake-bench-") as tmp:
        work = Path(tmp)
        results += bench_binary(work, args.events, args.repeats)
        results += bench_csv(work, args.csv_rows, args.repeats)
    print(f"focuslake benchmarks  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  "
          f"(medians of {args.repeats} interleaved runs; ratio = baseline time / our time)")
    for r in results:
        print(r.line())
    (OUT / "latest.json").write_text(json.dumps([{
        "name": r.name, "ours_s": r.ours, "baseline_s": r.base, "ratio": round(r.ratio, 3), "goal": r.goal}
        for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
