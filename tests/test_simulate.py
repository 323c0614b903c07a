"""The synthetic workload generator: determinism, decodable landing files, internal
consistency between the streams and the truth, and realism bounds.

Small runs only (a few user-days, often --hours 3) so the module finishes in seconds.
"""
from __future__ import annotations

import csv
import hashlib
import itertools
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from collectors.apps import CATALOG, CATEGORIES
from collectors.simulate import simulate
from focuslake.config import PROJECT_ROOT
from focuslake.events import FLAG_KEY_IDENTITY_CONSENT, EventType, read_segment
from focuslake.schemas import CSV_STREAMS, ID_RE

pytestmark = pytest.mark.timeout(120)

US = 1_000_000
HOUR_US = 3600 * US
INPUT_TYPES = [EventType.KEY_PRESS, EventType.KEY_RELEASE, EventType.MOUSE_MOVE,
               EventType.MOUSE_CLICK, EventType.MOUSE_WHEEL]
SMALL = {"users": 2, "days": 2, "hours": 3, "durable": False}


# ------------------------------------------------------------------------------- helpers
def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def load(data: Path) -> dict:
    """Everything in the landing zone, per (user, device): records and CSV rows in time order."""
    out: dict = defaultdict(lambda: {"records": [], "csv": defaultdict(list)})
    for p in sorted((data / "landing" / "events").rglob("*.bin")):
        header, recs = read_segment(p)
        user, device = p.parts[-4], p.parts[-3]
        assert (header.user_id, header.device_id) == (user, device)
        out[(user, device)]["records"].append(np.array(recs))
        out[(user, device)].setdefault("flags", set()).add(header.flags)
    for stream in CSV_STREAMS:
        for p in sorted((data / "landing" / stream).rglob("*.csv")):
            with open(p, newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
            out[(p.parts[-4], p.parts[-3])]["csv"][stream] += rows[1:]
    for dev in out.values():
        recs = np.concatenate(dev["records"])
        dev["records"] = recs[np.argsort(recs["timestamp_us"], kind="stable")]
        for stream, rows in dev["csv"].items():
            rows.sort(key=lambda r: int(r[0]))
    return dict(out)


def inputs_of(recs: np.ndarray) -> np.ndarray:
    return recs[np.isin(recs["event_type"], INPUT_TYPES)]


def locked_periods(dev: dict) -> list[tuple[int, int]]:
    """[lock, next unlock] and [suspend, next resume] from system_events."""
    out, since = [], None
    for ts, ev in dev["csv"]["system_events"]:
        if ev in ("lock", "suspend") and since is None:
            since = int(ts)
        elif ev in ("unlock",) and since is not None:
            out.append((since, int(ts)))
            since = None
    if since is not None:
        out.append((since, 2**62))
    return out


def truth(data: Path):
    return (pq.read_table(data / "truth" / "hourly.parquet").to_pandas(),
            pq.read_table(data / "truth" / "app_hourly.parquet").to_pandas())


def hour_of(ts) -> np.ndarray:
    ts = np.asarray(ts, np.int64)
    return ts - ts % HOUR_US


def hour_us(col) -> np.ndarray:
    """pandas UTC timestamps -> integer microseconds since the epoch."""
    v = col.dt.tz_convert(None).to_numpy().astype("datetime64[us]").astype(np.int64)
    assert np.all(v % HOUR_US == 0)
    return v


def files_oracle(dev: dict) -> tuple[dict, dict, dict]:
    """docs/metrics.md recomputed from the landing files alone (the way the pipeline sees them):
    active seconds per hour, per (hour, app), context switches per hour."""
    aw = dev["csv"]["active_window"]
    ts = np.array([int(r[0]) for r in aw], np.int64)
    key = [(r[1], r[2]) for r in aw]
    reason = [r[4] for r in aw]
    ivs = []  # (start, end, (app, title))
    for i in range(len(aw)):
        if reason[i] == "close":
            continue
        end = ts[i + 1] if i + 1 < len(aw) and ts[i + 1] - ts[i] <= 6 * US else ts[i]
        if ivs and ivs[-1][2] == key[i] and ivs[-1][1] == ts[i]:
            ivs[-1][1] = end            # heartbeat merge
        else:
            ivs.append([ts[i], end, key[i]])
    switches: dict = defaultdict(int)
    for a, b in itertools.pairwise(ivs):
        if b[2][0] != a[2][0]:
            switches[int(hour_of(b[0]))] += 1
    inp = np.sort(inputs_of(dev["records"])["timestamp_us"].astype(np.int64))
    cut = np.flatnonzero(np.diff(inp) > 180 * US)
    runs = list(zip(np.r_[inp[:1], inp[cut + 1]], np.r_[inp[cut], inp[-1:]]))
    active: dict = defaultdict(float)
    per_app: dict = defaultdict(float)
    j = 0
    for s, e, (app, _title) in ivs:
        while j < len(runs) and runs[j][1] <= s:
            j += 1
        k = j
        while k < len(runs) and runs[k][0] < e:
            lo, hi = max(s, runs[k][0]), min(e, runs[k][1])
            while lo < hi:
                cut_at = min(hi, int(hour_of(lo)) + HOUR_US)
                active[int(hour_of(lo))] += (cut_at - lo) / US
                per_app[(int(hour_of(lo)), app)] += (cut_at - lo) / US
                lo = cut_at
            k += 1
    return active, per_app, switches


# ------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("sim")
    out = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        out[name] = base / name
        out[name + "_summary"] = simulate(base / name, seed=seed, **SMALL)
    return out


@pytest.fixture(scope="module")
def small(runs):
    return load(runs["a"])


@pytest.fixture(scope="module")
def fullday(tmp_path_factory):
    """Two people, one full Monday (no --hours): for realism bounds."""
    d = tmp_path_factory.mktemp("full")
    simulate(d, users=2, days=1, seed=3, durable=False)
    return d, load(d)


# ------------------------------------------------------------------------------- tests
def test_deterministic_same_seed_different_seed(runs):
    a, b, c = runs["a"], runs["b"], runs["c"]
    assert tree_digest(a / "landing") == tree_digest(b / "landing")
    assert tree_digest(a / "truth") == tree_digest(b / "truth")
    assert truth(a)[0].equals(truth(b)[0]) and truth(a)[1].equals(truth(b)[1])
    assert tree_digest(a / "landing") != tree_digest(c / "landing")
    assert not truth(a)[0].equals(truth(c)[0])
    assert runs["a_summary"]["events"] > 10_000


def test_landing_decodes_with_schema_headers(runs):
    landing = runs["a"] / "landing"
    files = [p for p in landing.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.endswith(".part")]
    bins = [p for p in files if p.suffix == ".bin"]
    csvs = [p for p in files if p.suffix == ".csv"]
    assert bins and csvs and len(bins) + len(csvs) == len(files)
    assert len(files) == runs["a_summary"]["segments"]
    for p in bins:
        header, recs = read_segment(p)             # raises on any corruption
        assert header.flags == 0 and len(recs) > 0
        assert ID_RE.match(header.user_id) and ID_RE.match(header.device_id)
        ts = recs["timestamp_us"].astype(np.int64)
        assert np.all(np.diff(ts) >= 0), p
        # the segment sits in the directory of its UTC date
        assert p.parts[-2] == datetime.fromtimestamp(ts[0] / US, tz=UTC).strftime("%Y-%m-%d")
    for p in csvs:
        stream = p.parts[-5]
        with open(p, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        assert rows[0] == CSV_STREAMS[stream].names, p
        assert len(rows) > 1
        ts = np.array([int(r[0]) for r in rows[1:]])
        assert np.all(np.diff(ts) >= 0), p
        assert all(len(r) == len(rows[0]) for r in rows)


def test_counts_agree_between_streams_and_truth(runs, small):
    hourly, _ = truth(runs["a"])
    totals = defaultdict(int)
    for (user, device), dev in small.items():
        recs = dev["records"]
        et = recs["event_type"]
        ic = np.array([[float(x) for x in r] for r in dev["csv"]["input_counts"]])
        n = {t: int((et == t).sum()) for t in EventType}
        assert n[EventType.KEY_PRESS] > 0 and n[EventType.MOUSE_CLICK] > 0
        assert ic[:, 2].sum() == n[EventType.KEY_PRESS]
        assert n[EventType.KEY_RELEASE] == n[EventType.KEY_PRESS]
        assert ic[:, 3].sum() == n[EventType.MOUSE_CLICK]
        assert ic[:, 4].sum() == n[EventType.MOUSE_WHEEL]
        assert ic[:, 5].sum() == n[EventType.MOUSE_MOVE]
        assert np.all(ic[:, 1] == 5) and np.all(ic[:, 0] % (5 * US) == 0)
        # bucket by bucket: every row counts exactly the records in [ts, ts + 5 s)
        kp = recs["timestamp_us"][et == EventType.KEY_PRESS].astype(np.int64)
        per_bucket = np.searchsorted(kp, ic[:, 0] + 5 * US) - np.searchsorted(kp, ic[:, 0])
        assert np.array_equal(per_bucket, ic[:, 2])
        # mouse distance per the definition, from the records
        mv = recs[et == EventType.MOUSE_MOVE]
        xy = mv["data"][:, :2].view(np.int32).astype(np.float64)
        dist = np.hypot(*np.diff(xy, axis=0).T).sum()
        h = hourly[(hourly.user_id == user) & (hourly.device_id == device)]
        assert h.mouse_distance_px.sum() == pytest.approx(dist, rel=1e-9)
        assert ic[:, 6].sum() == pytest.approx(dist, abs=1e-3 * len(ic))
        assert h.keystrokes.sum() == n[EventType.KEY_PRESS]
        assert h.clicks.sum() == n[EventType.MOUSE_CLICK]
        assert h.input_events.sum() == sum(n[t] for t in INPUT_TYPES)
        assert h.idle_periods.sum() == n[EventType.IDLE_START]
        # a WINDOW_FOCUS_CHANGE is emitted exactly at each app switch
        assert h.context_switches.sum() == n[EventType.WINDOW_FOCUS_CHANGE] > 0
        totals["keys"] += n[EventType.KEY_PRESS]
    assert totals["keys"] == runs["a_summary"]["truth"]["totals"]["keystrokes"]


def test_no_input_while_locked_and_records_name_focused_app(small):
    for dev in small.values():
        ts = inputs_of(dev["records"])["timestamp_us"].astype(np.int64)
        periods = locked_periods(dev)
        assert len(periods) >= 2       # the night (lock .. next unlock) and the last lock
        for lo, hi in periods:
            assert not np.any((ts >= lo) & (ts <= hi)), (lo, hi)
        first_start = int(dev["csv"]["system_events"][0][0])
        assert dev["csv"]["system_events"][0][1] == "collector_start" and ts[0] > first_start
        # app_name of every input record is the window focused at that moment
        aw = dev["csv"]["active_window"]
        w_ts = np.array([int(r[0]) for r in aw if r[4] != "close"], np.int64)
        w_app = np.array([r[1] for r in aw if r[4] != "close"])
        recs = inputs_of(dev["records"])
        idx = np.searchsorted(w_ts, recs["timestamp_us"].astype(np.int64), side="right") - 1
        assert np.all(idx >= 0)
        assert np.array_equal(w_app[idx], recs["app_name"].astype(str))


def test_window_stream_follows_sampling_rules(small):
    for dev in small.values():
        aw = dev["csv"]["active_window"]
        ts = np.array([int(r[0]) for r in aw], np.int64)
        reason = np.array([r[4] for r in aw])
        assert set(reason) == {"change", "heartbeat", "close"}
        assert np.all(ts[reason == "heartbeat"] % (5 * US) == 0)
        assert np.all(np.diff(ts) > 0)   # no heartbeat on top of a change
        gaps = np.diff(ts)[reason[:-1] != "close"]
        assert gaps.max() <= 5 * US      # while unlocked nothing is ever missing
        assert np.all(reason[1:][reason[:-1] == "close"] == "change")
        # every lock has its close sample at the exact same microsecond
        locks = [int(t) for t, e in dev["csv"]["system_events"] if e == "lock"]
        assert sorted(locks) == sorted(ts[reason == "close"].tolist())
        # catalog covers every emitted (app, title)
        cat = {(p.app, p.title) for p in CATALOG}
        assert {(r[1], r[2]) for r in aw} <= cat


def test_idle_events_follow_definition(small):
    for dev in small.values():
        recs = dev["records"]
        inp = np.sort(inputs_of(recs)["timestamp_us"].astype(np.int64))
        gaps = np.diff(inp)
        big = gaps > 5 * US
        starts = recs["timestamp_us"][recs["event_type"] == EventType.IDLE_START].astype(np.int64)
        ends = recs[recs["event_type"] == EventType.IDLE_END]
        assert np.array_equal(starts, np.r_[inp[:-1][big], inp[-1]] + 5 * US)
        assert np.array_equal(ends["timestamp_us"].astype(np.int64), inp[1:][big])
        assert np.array_equal(ends["data"][:, 0].astype(np.int64), gaps[big] // 1000)
        # the night carries over: the first input of day 2 ends an idle period of hours
        assert ends["data"][:, 0].max() > 10 * 3600 * 1000


def test_truth_matches_definition_recomputed_from_files(runs, small):
    hourly, app_hourly = truth(runs["a"])
    for (user, device), dev in small.items():
        active, per_app, switches = files_oracle(dev)
        h = hourly[(hourly.user_id == user) & (hourly.device_id == device)]
        hours = hour_us(h.hour_start)
        got = dict(zip(hours.tolist(), h.active_seconds))
        assert {k for k, v in active.items() if v > 0} <= set(got)
        for hr, secs in got.items():
            assert secs == pytest.approx(active.get(hr, 0.0), abs=1e-3)   # docs: 1 ms / hour
        got_sw = dict(zip(hours.tolist(), h.context_switches))
        assert {k: v for k, v in got_sw.items() if v} == dict(switches)
        a = app_hourly[(app_hourly.user_id == user)]
        a_hours = hour_us(a.hour_start)
        got_app = defaultdict(float)
        for hr, app, secs in zip(a_hours.tolist(), a.app_name, a.active_seconds):
            got_app[(hr, app)] += secs
        assert set(got_app) == {k for k, v in per_app.items() if v > 0}
        for k, v in per_app.items():
            assert got_app[k] == pytest.approx(v, abs=1e-3)


def test_truth_app_hourly_sums_to_hourly_and_uses_catalog(runs):
    hourly, app_hourly = truth(runs["a"])
    assert len(hourly) and len(app_hourly)
    assert str(hourly.hour_start.dtype) == "datetime64[us, UTC]"
    s = app_hourly.groupby(["user_id", "device_id", "hour_start"]).active_seconds.sum()
    m = hourly.set_index(["user_id", "device_id", "hour_start"]).active_seconds
    both = m.to_frame("h").join(s.to_frame("a"), how="outer").fillna(0.0)
    assert (both.h - both.a).abs().max() < 1e-6
    assert (hourly.active_seconds <= 3600 + 1e-9).all()
    assert set(app_hourly.category) <= set(CATEGORIES)
    pairs = {(p.app, p.category) for p in CATALOG}
    assert set(zip(app_hourly.app_name, app_hourly.category)) <= pairs
    with open(runs["a"] / "truth" / "catalog.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["app_name", "window_title", "category"]
    assert rows[1:] == [[p.app, p.title, p.category] for p in CATALOG]
    assert (runs["a"] / "truth" / "manifest.json").stat().st_size > 0


def test_key_identity_only_with_consent(small, tmp_path):
    for dev in small.values():
        keys = dev["records"][np.isin(dev["records"]["event_type"],
                                      [EventType.KEY_PRESS, EventType.KEY_RELEASE])]
        assert len(keys) and not keys["data"][:, :2].any()
        assert dev["flags"] == {0}
    simulate(tmp_path, users=1, days=1, hours=1, durable=False, consent_keys=True)
    (dev,) = load(tmp_path).values()
    assert dev["flags"] == {FLAG_KEY_IDENTITY_CONSENT}
    keys = dev["records"][dev["records"]["event_type"] == EventType.KEY_PRESS]
    codes = keys["data"][:, 0]
    assert np.all((codes >= 9) & (codes <= 255))          # X11 keycodes
    assert np.array_equal(keys["data"][:, 1], codes - 8)  # evdev scan code
    assert len(np.unique(codes)) > 20


def test_realistic_weekday(fullday):
    data, devs = fullday
    hourly, app_hourly = truth(data)
    assert len(devs) == 2
    for (user, device), dev in devs.items():
        h = hourly[hourly.user_id == user]
        active_h = h.active_seconds.sum() / 3600
        # 7.5-9.5 h at the desk incl. a 30-60 min lunch, minus breaks and AFK in meetings
        # (ActivityWatch-style active time of office workers is typically 5-8 h)
        assert 4.5 <= active_h <= 9.5, active_h
        # keystrokes per active hour: knowledge workers type ~1-4k keys/h; a 60 WPM typist
        # typing without pause would do ~18k
        kph = h.keystrokes.sum() / active_h
        assert 500 <= kph <= 8000, kph
        recs = dev["records"]
        et = recs["event_type"]
        kp = np.sort(recs["timestamp_us"][et == EventType.KEY_PRESS].astype(np.int64))
        iki = np.diff(kp) / US
        # inside bursts: median inter-key interval 0.1-0.3 s (40-120 WPM bursts)
        assert 0.1 <= np.median(iki[iki < 1.0]) <= 0.3
        ic = np.array([[float(x) for x in r] for r in dev["csv"]["input_counts"]])
        assert ic[:, 2].max() <= 75   # 15 keys/s in a 5 s bucket is beyond human speed
        # app switching: a knowledge worker switches apps dozens to hundreds of times a day
        assert 20 <= h.context_switches.sum() <= 600
        # mouse moves sampled every 16-33 ms within an episode; plausible pointer speeds
        mv = recs[et == EventType.MOUSE_MOVE]
        d = np.diff(mv["timestamp_us"].astype(np.int64))
        assert d.min() >= 15_999
        assert np.median(mv["data"][:, 2]) < 5000
        xy = mv["data"][:, :2].view(np.int32)
        assert xy[:, 0].min() >= 0 and xy[:, 0].max() < 1920 and xy[:, 1].max() < 1080
        # AFK: some input gaps over 180 s while unlocked (idle breaks, meetings)
        inp = np.sort(inputs_of(recs)["timestamp_us"].astype(np.int64))
        gaps = np.flatnonzero(np.diff(inp) > 180 * US)
        locks = locked_periods(dev)
        unlocked_gaps = [g for g in gaps if not any(inp[g] < lo and inp[g + 1] > hi
                                                    for lo, hi in locks)]
        assert len(unlocked_gaps) >= 1
        # lunch: one screen lock of 30-60 min; the day ends with lock + suspend
        lens = [(hi - lo) / 60e6 for lo, hi in locks]
        assert any(29.9 <= x <= 60.1 for x in lens), lens
        events = [e for _, e in dev["csv"]["system_events"]]
        assert events[0] == "collector_start" and events[-2:] == ["lock", "suspend"]
        # system metrics every 5 s while on, values in range
        sm = np.array([[float(r[0]), float(r[1]), float(r[2])] for r in
                       dev["csv"]["system_metrics"]])
        assert np.all(np.diff(sm[:, 0])[np.diff(sm[:, 0]) < 60 * US] == 5 * US)
        assert sm[:, 1].min() >= 0 and sm[:, 1].max() <= 100 and sm[:, 2].max() <= 100
        cats = set(app_hourly[app_hourly.user_id == user].category)
        assert {"ide", "communication"} <= cats and len(cats) >= 4


def test_cli_prints_summary(tmp_path):
    r = subprocess.run([sys.executable, "-m", "collectors.simulate", "--users", "1", "--days", "1",
                        "--hours", "1", "--data", str(tmp_path), "--no-fsync", "--quiet"],
                       cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert "users=1 days=1" in r.stdout and "segments=" in r.stdout and "events=" in r.stdout
    assert (tmp_path / "truth" / "hourly.parquet").exists()
