"""Synthetic workload generator: N people x D days of focus telemetry, written into the landing
zone through the same segment writers as the real collectors, plus the ground truth.

    python -m collectors.simulate --users 3 --days 7 --seed 1 [--start 2026-11-16]
        [--data DIR] [--rotate-seconds 3600] [--no-fsync] [--hours H] [--consent-keys] [--quiet]

Outputs (under the data root, see focuslake.config.Paths):
  landing/<stream>/<user>/<device>/<YYYY-MM-DD>/<segment>   binary events + 4 CSV streams
  truth/hourly.parquet       per (user, device, hour): keystrokes, clicks, mouse_distance_px,
                             active_seconds, context_switches, idle_periods, input_events
  truth/app_hourly.parquet   per (user, device, hour, app_name, category): active_seconds
  truth/catalog.csv          every (app_name, window_title) the generator can emit + category
  truth/manifest.json        arguments, profiles and counts

Deterministic: the same arguments give byte-identical landing files and truth in a fresh data
directory. Each (seed, user, day) has its own numpy Generator; one user-day is generated,
written and discarded at a time, so memory stays bounded for any number of days.
The truth implements docs/metrics.md in numpy from the generated timeline (never by reading
the landing files back); see collectors/workload.py:day_truth.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from collectors import workload as wl
from collectors.apps import APP_NAMES, CATALOG, CATEGORIES
from focuslake.config import Paths
from focuslake.events import FLAG_KEY_IDENTITY_CONSENT, EventType
from focuslake.schemas import BINARY_STREAM
from focuslake.segments import CsvSegmentWriter, EventSegmentWriter

DEFAULT_START = date(2026, 11, 16)  # a Monday
GENERATOR_VERSION = 1
CSV_ORDER = ("system_events", "active_window", "input_counts", "system_metrics")

HOURLY_SCHEMA = pa.schema([
    ("user_id", pa.string()), ("device_id", pa.string()),
    ("hour_start", pa.timestamp("us", tz="UTC")),
    ("keystrokes", pa.int64()), ("clicks", pa.int64()), ("mouse_distance_px", pa.float64()),
    ("active_seconds", pa.float64()), ("context_switches", pa.int64()),
    ("idle_periods", pa.int64()), ("input_events", pa.int64()),
])
APP_HOURLY_SCHEMA = pa.schema([
    ("user_id", pa.string()), ("device_id", pa.string()),
    ("hour_start", pa.timestamp("us", tz="UTC")),
    ("app_name", pa.string()), ("category", pa.string()), ("active_seconds", pa.float64()),
])


def _group_hours(parts: list[dict], keys: tuple[str, ...], sums: tuple[str, ...]) -> dict:
    """Concatenate per-day tables and sum duplicates of `keys` (a day's tail can share an hour
    with nothing else today, but stay safe)."""
    cat = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0)
           for k in (*keys, *sums)}
    if not cat[keys[0]].size:
        return {k: np.zeros(0, np.int64) for k in (*keys, *sums)}
    key = np.stack([cat[k].astype(np.int64) for k in keys], axis=1)
    uk, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.ravel()
    out = {k: uk[:, i] for i, k in enumerate(keys)}
    for s in sums:
        out[s] = np.bincount(inv, weights=cat[s], minlength=len(uk))
    return out


def _write_truth(truth_dir: Path, profiles: list[wl.Profile], hourly: dict, app_hourly: dict
                 ) -> dict:
    truth_dir.mkdir(parents=True, exist_ok=True)
    h_cols: dict[str, list] = {f.name: [] for f in HOURLY_SCHEMA}
    a_cols: dict[str, list] = {f.name: [] for f in APP_HOURLY_SCHEMA}
    totals = {"keystrokes": 0, "clicks": 0, "context_switches": 0, "idle_periods": 0,
              "input_events": 0, "active_seconds": 0.0, "mouse_distance_px": 0.0}
    for prof in profiles:
        h = _group_hours(hourly[prof.index], ("hour",),
                         ("keystrokes", "clicks", "mouse_distance_px", "active_us",
                          "context_switches", "idle_periods", "input_events"))
        n = h["hour"].size
        h_cols["user_id"] += [prof.user_id] * n
        h_cols["device_id"] += [prof.device_id] * n
        h_cols["hour_start"] += h["hour"].tolist()
        for k in ("keystrokes", "clicks", "context_switches", "idle_periods", "input_events"):
            v = np.rint(h[k]).astype(np.int64)
            h_cols[k] += v.tolist()
            totals[k] += int(v.sum())
        h_cols["mouse_distance_px"] += h["mouse_distance_px"].tolist()
        secs = h["active_us"] / wl.US
        h_cols["active_seconds"] += secs.tolist()
        totals["mouse_distance_px"] += float(h["mouse_distance_px"].sum())
        totals["active_seconds"] += float(secs.sum())
        a = _group_hours(app_hourly[prof.index], ("hour", "app", "cat"), ("us",))
        m = a["hour"].size
        a_cols["user_id"] += [prof.user_id] * m
        a_cols["device_id"] += [prof.device_id] * m
        a_cols["hour_start"] += a["hour"].tolist()
        a_cols["app_name"] += [APP_NAMES[i] for i in a["app"].tolist()]
        a_cols["category"] += [CATEGORIES[i] for i in a["cat"].tolist()]
        a_cols["active_seconds"] += (a["us"] / wl.US).tolist()
    pq.write_table(pa.Table.from_pydict(h_cols, schema=HOURLY_SCHEMA), truth_dir / "hourly.parquet")
    pq.write_table(pa.Table.from_pydict(a_cols, schema=APP_HOURLY_SCHEMA),
                   truth_dir / "app_hourly.parquet")
    with open(truth_dir / "catalog.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["app_name", "window_title", "category"])
        for p in CATALOG:
            w.writerow([p.app, p.title, p.category])
    totals["active_seconds"] = round(totals["active_seconds"], 6)
    totals["mouse_distance_px"] = round(totals["mouse_distance_px"], 3)
    return {"hourly_rows": len(h_cols["hour_start"]), "app_hourly_rows": len(a_cols["hour_start"]),
            "totals": totals}


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), disable=not enabled, transient=False)


def simulate(data_dir: str | Path | None = None, users: int = 3, days: int = 7, seed: int = 1,
             start: date = DEFAULT_START, rotate_seconds: int = 3600, hours: float | None = None,
             durable: bool = True, consent_keys: bool = False, progress: bool = False) -> dict:
    """Generate the workload into <data_dir>/landing and its truth into <data_dir>/truth.

    Returns a summary dict (users, days, segments, events, rows, per-stream/type counts,
    landing_bytes, seconds). Writes into a fresh directory for byte-identical reruns: an
    existing landing zone is added to (segment names never collide), the truth is replaced.
    """
    if users < 1 or users > 99 or days < 1:
        raise ValueError("need 1 <= users <= 99 and days >= 1")
    if hours is not None and not 0 < hours <= 24:
        raise ValueError("hours must be in (0, 24]")
    t_start = time.perf_counter()
    paths = Paths(Path(data_dir).resolve()) if data_dir is not None else Paths.from_env()
    landing, truth_dir = paths.landing, paths.truth
    landing.mkdir(parents=True, exist_ok=True)
    profiles = [wl.make_profile(seed, u, users) for u in range(users)]
    flags = FLAG_KEY_IDENTITY_CONSENT if consent_keys else 0
    seg_counts = {s: 0 for s in (BINARY_STREAM, *CSV_ORDER)}
    seg_bytes = 0
    row_counts = {s: 0 for s in CSV_ORDER}
    ev_counts = np.zeros(16, np.int64)
    hourly: dict[int, list] = {p.index: [] for p in profiles}
    app_hourly: dict[int, list] = {p.index: [] for p in profiles}

    with _progress(progress) as bar:
        task = bar.add_task("simulating", total=users * days)
        for prof in profiles:
            state = wl.initial_state(prof)
            for k in range(days):
                d = start + timedelta(days=k)
                bar.update(task, description=f"{prof.user_id} {d.isoformat()}")
                out = wl.simulate_day(prof, state, d, k, seed, hours=hours,
                                      consent_keys=consent_keys)
                writers = []
                if out.records.size:
                    ew = EventSegmentWriter(landing, prof.user_id, prof.device_id, flags=flags,
                                            rotate_seconds=rotate_seconds, durable=durable)
                    ew.write_records(out.records)
                    ew.seal()
                    writers.append(ew)
                    ev_counts += np.bincount(out.records["event_type"], minlength=16)
                for stream in CSV_ORDER:
                    rows = out.rows[stream]
                    if not rows:
                        continue
                    cw = CsvSegmentWriter(landing, stream, prof.user_id, prof.device_id,
                                          rotate_seconds=rotate_seconds, durable=durable)
                    for row in rows:
                        cw.write_row(row)
                    cw.seal()
                    writers.append(cw)
                    row_counts[stream] += len(rows)
                for w in writers:
                    seg_counts[w.stream] += len(w.sealed)
                    seg_bytes += sum(p.stat().st_size for p in w.sealed)
                if out.hourly is not None:
                    hourly[prof.index].append(out.hourly)
                    app_hourly[prof.index].append(out.app_hourly)
                bar.advance(task)

    truth_info = _write_truth(truth_dir, profiles, hourly, app_hourly)
    events_by_type = {EventType(i).name: int(n) for i, n in enumerate(ev_counts) if n}
    summary = {
        "users": users, "days": days, "seed": seed,
        "segments": int(sum(seg_counts.values())), "segments_by_stream": seg_counts,
        "events": int(ev_counts.sum()), "events_by_type": events_by_type,
        "rows": int(sum(row_counts.values())), "rows_by_stream": row_counts,
        "landing_bytes": seg_bytes,
    }
    manifest = {
        "generator": "collectors.simulate", "version": GENERATOR_VERSION,
        "args": {"users": users, "days": days, "seed": seed, "start": start.isoformat(),
                 "rotate_seconds": rotate_seconds, "hours": hours, "consent_keys": consent_keys},
        "definitions": {"afk_timeout_s": wl.AFK_TIMEOUT_US // wl.US,
                        "pulsetime_s": wl.PULSETIME_US // wl.US,
                        "idle_after_s": wl.IDLE_AFTER_US // wl.US, "bucket_s": 5},
        "profiles": [{"user_id": p.user_id, "device_id": p.device_id, "laptop": p.laptop,
                      "work_start_utc_h": round(p.start_hour, 3),
                      "distractibility": round(p.distractibility, 3),
                      "iki_median_s": round(p.iki_median, 4), "apps": sorted(p.apps)}
                     for p in profiles],
        "counts": {k: v for k, v in summary.items() if k not in ("users", "days", "seed")},
        "truth": truth_info,
    }
    with open(truth_dir / "manifest.json", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    summary["truth"] = truth_info
    summary["seconds"] = round(time.perf_counter() - t_start, 3)
    return summary


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m collectors.simulate", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=3)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START,
                    help="first day, YYYY-MM-DD (default 2026-11-16, a Monday)")
    ap.add_argument("--data", type=Path, default=None,
                    help="data root (default: $FOCUSLAKE_DATA or <repo>/data)")
    ap.add_argument("--rotate-seconds", type=int, default=3600)
    ap.add_argument("--no-fsync", action="store_true", help="skip fsync when sealing segments")
    ap.add_argument("--hours", type=float, default=None,
                    help="limit each day to its first H work hours (fast tests)")
    ap.add_argument("--consent-keys", action="store_true",
                    help="record key identity (X11 keycodes) and set the consent flag")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = _parse_args(argv)
    s = simulate(a.data, users=a.users, days=a.days, seed=a.seed, start=a.start,
                 rotate_seconds=a.rotate_seconds, hours=a.hours, durable=not a.no_fsync,
                 consent_keys=a.consent_keys, progress=not a.quiet and sys.stderr.isatty())
    print(f"simulated users={s['users']} days={s['days']} seed={s['seed']}: "
          f"segments={s['segments']} events={s['events']} rows={s['rows']} "
          f"landing={s['landing_bytes'] / 1e6:.1f} MB in {s['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
