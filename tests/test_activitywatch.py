"""ActivityWatch import (focuslake/importers/activitywatch.py, docs/activitywatch.md).

The exports are built with ActivityWatch's own code: aw-core's data model (`aw_core.models.Event`,
`to_json_dict()`), and aw-server's heartbeat merge (`aw_transform.heartbeat_reduce`) turning a
simulated watcher's 1 s polls into events, as aw-watcher-window and aw-watcher-web produce them
(ms timestamps, ~1 s gaps at switches, zero-length events for windows seen once). The oracle is
ActivityWatch's own query engine (`aw_query` over an in-memory `aw_datastore`): window events
intersected with not-afk events (`filter_period_intersect`, as in aw-client's canonical query).

One pipeline per module: an older export (a snapshot taken mid-evening, its last events still
growing) is imported and ingested, then the full export, then the full export again; one real
`dbt build` runs on the result, and gold must equal ActivityWatch's numbers for the full export.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aw_core.models import Event
from aw_datastore import Datastore
from aw_datastore.storages import MemoryStorage
from aw_query.query2 import query as aw_query
from aw_transform import heartbeat_reduce
from duck import q

from focuslake import pipeline
from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, PROJECT_ROOT, Paths
from focuslake.importers import activitywatch as aw
from focuslake.privacy import access_log

DBT = Path(sys.executable).with_name("dbt")
HOST = "laptop"
WINDOW, AFK, WEB = f"aw-watcher-window_{HOST}", f"aw-watcher-afk_{HOST}", "aw-watcher-web-firefox"
VSCODE = f"aw-watcher-vscode_{HOST}"
START = datetime(2026, 11, 16, 22, 10, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 17, tzinfo=UTC)
END = datetime(2026, 11, 17, 1, 20, tzinfo=UTC)
SNAPSHOT = datetime(2026, 11, 16, 23, 31, 17, 250000, tzinfo=UTC)  # the older export's moment
ONE_US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
APPS = [("Code", ["activitywatch.py - focuslake - Visual Studio Code", "schemas.py - focuslake - Visual Studio Code"]),
        ("firefox", ["Hacker News — Mozilla Firefox", "aw-core docs — Mozilla Firefox",
                     "Private Browsing — Mozilla Firefox"]),
        ("Slack", ["general | team - Slack"]),
        ("gnome-terminal-server", ["~/focuslake: pytest", "~/focuslake: git"])]
URLS = {"Hacker News — Mozilla Firefox": "https://news.ycombinator.com/",
        "aw-core docs — Mozilla Firefox": "https://docs.activitywatch.net/en/latest/",
        "Private Browsing — Mozilla Firefox": "https://private.example/"}


# --- the export, built with ActivityWatch's own code ---------------------------------------------
def _timeline(rng: random.Random) -> list[tuple[datetime, datetime, str, str]]:
    """What the person did: (start, end, app, title), with breaks when the watcher was not
    running, and one Code stretch across midnight."""
    def stretch(t: datetime, until: datetime) -> list:
        out = []
        while t < until:
            app, titles = rng.choice(APPS)
            r = rng.random()  # a flash (seen by one poll at most), a short visit, a long stretch
            ms = rng.randint(150, 900) if r < 0.1 else rng.randint(900, 45_000) if r < 0.6 else \
                rng.randint(45_000, 420_000)
            out.append((t, min(t + timedelta(milliseconds=ms), until), app, rng.choice(titles)))
            t += timedelta(milliseconds=ms)
            if rng.random() < 0.07:  # suspended / watcher stopped: no polls
                t += timedelta(seconds=rng.randint(60, 900))
        return out

    cross = (MIDNIGHT - timedelta(minutes=3), MIDNIGHT + timedelta(minutes=6, milliseconds=rng.randint(0, 999)))
    return [*stretch(START, cross[0]), (*cross, "Code", APPS[0][1][0]), *stretch(cross[1], END)]


def _polls(timeline, rng, data_of) -> list[Event]:
    """A watcher polling once a second (with jitter) sends heartbeats; aw-server merges them."""
    beats, t = [], START
    for s, e, app, title in timeline:
        t = max(t, s)
        while t < e:
            data = data_of(app, title)
            if data is not None:
                beats.append(Event(timestamp=t, duration=0, data=data))
            t += timedelta(milliseconds=1000 + rng.randint(-30, 30))
    return heartbeat_reduce(beats, pulsetime=2.0)


def _afk(rng) -> list[Event]:
    """aw-watcher-afk: contiguous alternating periods, boundaries at arbitrary times; one
    not-afk period across midnight."""
    out, t, status = [], START - timedelta(minutes=3, milliseconds=417), "not-afk"
    while t < END:
        if status == "not-afk":
            d = timedelta(milliseconds=rng.randint(240_000, 2_400_000))
            if t < MIDNIGHT < t + d + timedelta(minutes=10) or MIDNIGHT - timedelta(minutes=20) < t < MIDNIGHT:
                d = MIDNIGHT - t + timedelta(minutes=7, milliseconds=333)
        else:
            d = timedelta(milliseconds=rng.randint(181_000, 900_000))
        out.append(Event(timestamp=t, duration=d, data={"status": status}))
        t += d
        status = "afk" if status == "not-afk" else "not-afk"
    return out


def _bucket(bid: str, type_: str, client: str, hostname: str, events: list[Event]) -> dict:
    return {"id": bid, "name": None, "type": type_, "client": client, "hostname": hostname,
            "created": (START - timedelta(days=30)).isoformat(), "data": {},
            "events": [e.to_json_dict() for e in events]}


def make_export(seed: int = 3) -> dict:
    rng = random.Random(seed)
    timeline = _timeline(rng)
    window = _polls(timeline, rng, lambda app, title: {"app": app, "title": title})

    def tab(app, title):
        if app != "firefox":
            return None
        return {"url": URLS[title], "title": title.removesuffix(" — Mozilla Firefox"),
                "audible": title.startswith("aw-core"), "incognito": title.startswith("Private"), "tabCount": 4}

    web = _polls(timeline, random.Random(seed + 1), tab)
    editor = [Event(timestamp=START + timedelta(minutes=m), duration=30, data={"file": "x.py", "project": "p",
                                                                              "language": "python"})
              for m in range(3)]
    return {"buckets": {
        WINDOW: _bucket(WINDOW, "currentwindow", "aw-watcher-window", HOST, window),
        AFK: _bucket(AFK, "afkstatus", "aw-watcher-afk", HOST, _afk(rng)),
        WEB: _bucket(WEB, "web.tab.current", "aw-client-web", "unknown", web),
        VSCODE: _bucket(VSCODE, "app.editor.activity", "aw-watcher-vscode", HOST, editor)}}


def snapshot(export: dict, at: datetime) -> dict:
    """The same history exported at an earlier moment: events started before it, the ones
    still running cut at it (an AW event grows by heartbeat merge until it ends)."""
    out = json.loads(json.dumps(export))
    for b in out["buckets"].values():
        evs = []
        for e in (Event(**x) for x in b["events"]):
            if e.timestamp < at:
                e.duration = min(e.duration, at - e.timestamp)
                evs.append(e.to_json_dict())
        b["events"] = evs
    return out


def write(tmp: Path, name: str, export) -> Path:
    p = tmp / name
    p.write_text(json.dumps(export) if not isinstance(export, str) else export)
    return p


# --- ActivityWatch's numbers ---------------------------------------------------------------------
def aw_datastore(export: dict) -> Datastore:
    ds = Datastore(MemoryStorage, testing=True)
    for bid, b in export["buckets"].items():
        ds.create_bucket(bid, b["type"], b["client"], b["hostname"], datetime.fromisoformat(b["created"]))
        ds[bid].insert([Event(**e) for e in b["events"]])
    return ds


def aw_active_events(export: dict) -> list[Event]:
    """aw-client's canonical active-window query: window events ∩ not-afk events."""
    q = (f'window = query_bucket("{WINDOW}"); afk = query_bucket("{AFK}"); '
         'not_afk = filter_keyvals(afk, "status", ["not-afk"]); '
         "RETURN = filter_period_intersect(window, not_afk);")
    return aw_query("focuslake-test", q, START - timedelta(days=1), END + timedelta(days=1),
                    aw_datastore(export))


def per_hour_app_us(events: list[Event]) -> Counter:
    out: Counter = Counter()
    for e in events:
        s, end = e.timestamp, e.timestamp + e.duration
        h = s.replace(minute=0, second=0, microsecond=0)
        while h < end:
            piece = min(end, h + HOUR) - max(s, h)
            if piece > timedelta(0):
                out[(h.replace(tzinfo=None), e.data["app"])] += piece // ONE_US
            h += HOUR
    return out


def merged_spans(events: list[Event], key) -> list[tuple]:
    """Events (non-zero) with equal key() that touch or overlap, merged: what the pipeline's
    interval models must give back."""
    out: list[list] = []
    for e in sorted((e for e in events if e.duration > timedelta(0)), key=lambda e: e.timestamp):
        s, end = _us(e.timestamp), _us(e.timestamp + e.duration)
        if out and out[-1][2] == key(e) and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([s, end, key(e)])
    return [tuple(x) for x in out]


def _us(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // ONE_US


def events_of(export: dict, bid: str) -> list[Event]:
    return [Event(**e) for e in export["buckets"][bid]["events"]]


def dbt_build(root: Path) -> str:
    env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(root)}
    r = subprocess.run([str(DBT), "build", "--profiles-dir", ".", "--target-path", str(root / "dbt_target"),
                        "--log-path", str(root / "dbt_logs")], cwd=DBT_PROJECT_DIR, env=env,
                       capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    return r.stdout


def landing_files(paths: Paths) -> dict[str, tuple[int, int]]:
    return {p.relative_to(paths.landing).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in paths.landing.rglob("*") if p.is_file()}


# --- the module's pipeline -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def export() -> dict:
    return make_export()


@pytest.fixture(scope="module")
def run(export, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("aw")
    paths = Paths(tmp / "data")
    older, full = write(tmp, "older.json", snapshot(export, SNAPSHOT)), write(tmp, "full.json", export)
    out = {"paths": paths, "tmp": tmp, "full": full}
    out["first"] = aw.import_export(paths, older, "u1", "laptop-aw", durable=False)
    out["ingest1"] = pipeline.ingest(paths)
    out["second"] = aw.import_export(paths, full, "u1", "laptop-aw", durable=False)
    out["ingest2"] = pipeline.ingest(paths)
    before = landing_files(paths)
    out["again"] = aw.import_export(paths, full, "u1", "laptop-aw", durable=False)
    out["landing_unchanged"] = landing_files(paths) == before
    out["ingest3"] = pipeline.ingest(paths)
    return out


@pytest.fixture(scope="module")
def wh(run) -> Path:
    dbt_build(run["paths"].root)
    return run["paths"].warehouse



def test_export_exercises_what_it_should(export):
    """Preconditions of the fixture, so the pipeline tests below mean something."""
    win, afk = events_of(export, WINDOW), events_of(export, AFK)
    assert len({e.data["app"] for e in win}) == 4 and len(win) > 60
    assert any(e.timestamp < MIDNIGHT < e.timestamp + e.duration for e in win)
    assert any(e.timestamp < MIDNIGHT < e.timestamp + e.duration and e.data["status"] == "not-afk" for e in afk)
    assert any(e.duration == timedelta(0) for e in win)          # windows seen by one poll
    ends = sorted(_us(e.timestamp + e.duration) for e in afk)
    crossing = [e for e in win if any(_us(e.timestamp) < x < _us(e.timestamp + e.duration) for x in ends)]
    assert len(crossing) > 5                                    # window events cut by AFK changes
    assert any(e.timestamp < SNAPSHOT < e.timestamp + e.duration for e in win)  # grows after the snapshot
    assert any(e.data["incognito"] for e in events_of(export, WEB))


@pytest.mark.slow
def test_gold_per_app_seconds_equal_activitywatch(run, export, wh):
    """gld_user_app_hourly and slv_active_hourly equal ActivityWatch's canonical query (window ∩
    not-afk, per UTC hour and app) exactly: both sides are integer microseconds (hourly gold is
    one division of the same integer by 1e6); daily gold sums hourly doubles (within 1e-9 s)."""
    want = per_hour_app_us(aw_active_events(export))
    assert len(want) > 10 and {h.date() for h, _ in want} == {START.date(), MIDNIGHT.date()}
    silver = {(h, a): us for h, a, us in q(wh, """SELECT hour_start, app_name, sum(active_us)::BIGINT
        FROM silver.slv_active_hourly WHERE user_id = 'u1' GROUP BY ALL""")}
    assert silver == dict(want)
    gold = {(h, a): s for h, a, s in q(wh, "SELECT hour_start, app_name, active_seconds "
                                           "FROM gold.gld_user_app_hourly WHERE user_id = 'u1'")}
    assert gold == {k: us / 1e6 for k, us in want.items()}  # bit for bit
    daily: Counter = Counter()
    for (h, app), us in want.items():
        daily[(h.date(), app)] += us
    gold_daily = {(d, a): s for d, a, s in q(wh, "SELECT day, app_name, active_seconds FROM gold.gld_user_app_daily")}
    assert gold_daily.keys() == daily.keys()
    assert max(abs(gold_daily[k] - us / 1e6) for k, us in daily.items()) <= 1e-9
    # the person-level total agrees too
    (total,) = q(wh, "SELECT sum(active_seconds) FROM gold.gld_user_daily WHERE user_id = 'u1'")[0]
    assert abs(total - sum(want.values()) / 1e6) <= 1e-6


@pytest.mark.slow
def test_window_intervals_and_not_afk_periods_reproduce_the_events(export, wh):
    """Every AW window event's [timestamp, timestamp + duration] comes back from
    slv_window_intervals (touching events of the same window merged, as the heartbeat merge
    does), and every not-afk event from slv_not_afk_periods -- with no input counted."""
    want = merged_spans(events_of(export, WINDOW), lambda e: (e.data["app"], e.data["title"]))
    got = q(wh, "SELECT start_us, end_us, app_name, window_title FROM silver.slv_window_intervals "
                "WHERE user_id = 'u1' ORDER BY start_us")
    assert [(s, e, (a, t)) for s, e, a, t in got] == want
    not_afk = [e for e in events_of(export, AFK) if e.data["status"] == "not-afk"]
    want = [(s, e) for s, e, _k in merged_spans(not_afk, lambda e: "not-afk")]
    got = q(wh, "SELECT start_us, end_us, input_events, sources FROM silver.slv_not_afk_periods "
                "WHERE user_id = 'u1' ORDER BY start_us")
    assert [(s, e) for s, e, _n, _src in got] == want
    assert {(n, src) for _s, _e, n, src in got} == {(0, "afk_status")}


@pytest.mark.slow
def test_web_events_land_as_app_events(export, run, wh):
    web = [e for e in events_of(export, WEB) if e.duration > timedelta(0)]
    grew = sum(1 for e in web if e.timestamp < SNAPSHOT < e.timestamp + e.duration)
    rows = q(wh, """SELECT ts_us, source, event_name, properties->>'url', properties->>'title',
                           (properties->>'incognito')::BOOLEAN, (properties->>'duration_s')::DOUBLE
                    FROM bronze.brz_app_events WHERE user_id = 'u1' ORDER BY ts_us""")
    # an event still growing at the older export lands as its first part plus its growth
    assert len(rows) == len(web) + grew
    assert {r[1:3] for r in rows} == {("activitywatch", "web.tab.current")}
    total_us = sum(round(r[6] * 1e6) for r in rows)
    assert total_us == sum(e.duration // ONE_US for e in web)
    private = [r for r in rows if r[5]]
    assert private and all(r[3] is None and r[4] is None for r in private)  # no URL/title of incognito tabs
    assert {r[3] for r in rows if not r[5]} == {URLS["Hacker News — Mozilla Firefox"],
                                                URLS["aw-core docs — Mozilla Firefox"]}
    (sessions,) = q(wh, "SELECT sum(event_count) FROM silver.slv_app_sessions WHERE user_id = 'u1'")[0]
    assert sessions == len(rows)


def test_overlapping_export_lands_only_what_is_new(run, export):
    """The full export after the older one: the time already imported is not landed again, and
    what was imported covers exactly the full export's time (checked in gold above)."""
    first, second = run["first"], run["second"]
    by = {b.bucket_id: b for b in second.buckets}
    old = {b.bucket_id: b for b in first.buckets}
    win = [e for e in events_of(export, WINDOW) if e.duration > timedelta(0)]
    total = sum(e.duration // ONE_US for e in win)
    assert old[WINDOW].landed_us + by[WINDOW].landed_us == total
    assert by[WINDOW].already_us == old[WINDOW].landed_us > 0
    assert by[WINDOW].covered == old[WINDOW].imported - 1  # all but the one still growing then
    assert run["ingest2"]["segments_ingested"] == len(second.segments_written) > 0
    assert run["ingest2"]["rows_quarantined"] == 0 and run["ingest1"]["rows_quarantined"] == 0


def test_reimporting_the_same_export_is_a_no_op(run):
    again = run["again"]
    assert again.segments_written == [] and again.rows == Counter()
    assert run["landing_unchanged"]
    assert run["ingest3"]["segments_new"] == 0
    assert all(b.imported == 0 and b.landed_us == 0 for b in again.buckets if not b.not_imported)
    assert sum(b.covered for b in again.buckets) == sum(b.imported for b in run["second"].buckets) + sum(
        b.covered for b in run["second"].buckets)
    # every import is in the access log, the user only as a keyed hash
    log = [e for e in access_log.entries(run["paths"]) if e["action"] == "import"]
    assert len(log) == 3 and all("u1" not in json.dumps(e) for e in log)
    assert log[-1]["detail"]["export_sha256"] == again.export_sha256


def test_lost_import_state_still_lands_nothing_twice(tmp_path, export):
    """Segment names derive from their rows: without the import state, the same export maps to
    the same names, which exist (or are in the ingest ledger): nothing is written again."""
    paths = Paths(tmp_path / "data")
    p = write(tmp_path, "full.json", export)
    first = aw.import_export(paths, p, "u1", "laptop-aw", durable=False)
    assert first.segments_written and pipeline.ingest(paths)["segments_ingested"] == len(first.segments_written)
    aw.state_path(paths).unlink()
    for f in list((paths.landing / "app_events").rglob("*.csv")):  # the landing may be pruned after ingest
        f.unlink()
    again = aw.import_export(paths, p, "u1", "laptop-aw", durable=False)
    assert again.segments_written == [] and sorted(again.segments_existing) == sorted(first.segments_written)
    assert pipeline.ingest(paths)["segments_new"] == 0


def test_a_crash_mid_import_and_a_rerun_land_every_piece_once(tmp_path, export, monkeypatch):
    """A failure after the intent is recorded and some segments landed; the rerun lands the
    rest, and the landing ends up exactly as one clean import's."""
    clean = Paths(tmp_path / "clean")
    p = write(tmp_path, "full.json", export)
    aw.import_export(clean, p, "u1", "laptop-aw", durable=False)
    crashed = Paths(tmp_path / "crashed")
    real_seal, calls = aw.CsvSegmentWriter.seal, []

    def failing_seal(self):
        calls.append(self.name)
        if len(calls) == 3:
            raise OSError("disk full (injected)")
        return real_seal(self)

    monkeypatch.setattr(aw.CsvSegmentWriter, "seal", failing_seal)
    with pytest.raises(OSError):
        aw.import_export(crashed, p, "u1", "laptop-aw", durable=False)
    monkeypatch.undo()
    con = sqlite3.connect(aw.state_path(crashed))
    assert con.execute("SELECT count(*) FROM covered WHERE state = 'pending'").fetchone()[0] > 0
    con.close()
    landed = {k for k in landing_files(crashed) if not k.endswith(".part")}
    assert len(landed) == 2
    # the rerun keeps the pieces whose segment landed, and lands exactly the missing segments
    rerun = aw.import_export(crashed, p, "u1", "laptop-aw", durable=False)
    assert set(rerun.segments_written) == set(landing_files(clean)) - landed and not rerun.segments_existing
    assert set(landing_files(crashed)) == set(landing_files(clean))  # same names, no .part left
    con = sqlite3.connect(aw.state_path(crashed))
    assert con.execute("SELECT count(*) FROM covered WHERE state = 'pending'").fetchone()[0] == 0
    con.close()


def test_single_bucket_exports_are_accepted(tmp_path, export):
    paths = Paths(tmp_path / "data")
    one = {"buckets": {WINDOW: export["buckets"][WINDOW]}}         # /api/0/buckets/<id>/export
    r = aw.import_export(paths, write(tmp_path, "one.json", one), "u1", "d1", durable=False)
    assert [b.bucket_id for b in r.buckets] == [WINDOW] and r.rows["active_window"] > 0
    bare = dict(export["buckets"][AFK])                               # a bare bucket object
    r = aw.import_export(paths, write(tmp_path, "bare.json", bare), "u1", "d1", durable=False)
    assert [b.bucket_id for b in r.buckets] == [AFK] and r.rows["system_events"] > 0


# --- malformed exports ---------------------------------------------------------------------------
def _ok_bucket(**over) -> dict:
    b = {"id": WINDOW, "type": "currentwindow", "client": "aw-watcher-window", "hostname": HOST,
         "created": START.isoformat(), "events": [
             Event(timestamp=START, duration=60, data={"app": "Code", "title": "a"}).to_json_dict()]}
    return b | over


@pytest.mark.parametrize("text,message", [
    ("this is not json", "not JSON (Expecting value at line 1 column 1)"),
    ("[1, 2]", "the top level is a JSON array"),
    ('{"version": 1}', 'no "buckets" in the export (top-level keys: version)'),
    ('{"buckets": {}}', "the export has no buckets"),
    ('{"buckets": []}', '"buckets" is a JSON array'),
    (json.dumps({"buckets": {WINDOW: _ok_bucket(type=None)}}), f"bucket '{WINDOW}': no \"type\""),
    (json.dumps({"buckets": {WINDOW: _ok_bucket(events={"a": 1})}}), f"bucket '{WINDOW}': \"events\" is missing"),
    (json.dumps({"buckets": {WINDOW: 7}}), f"bucket '{WINDOW}': a JSON number"),
])
def test_refused_exports_land_nothing(tmp_path, text, message):
    paths = Paths(tmp_path / "data")
    with pytest.raises(aw.ExportError) as e:
        aw.import_export(paths, write(tmp_path, "x.json", text), "u1", "d1", durable=False)
    assert message in str(e.value)
    assert not paths.landing.exists() or not any(paths.landing.rglob("*.csv"))


BAD_EVENTS = [
    ({"duration": 5, "data": {"app": "a"}}, "timestamp: required"),
    ({"timestamp": "yesterday", "duration": 5, "data": {"app": "a"}}, "timestamp: not ISO 8601"),
    ({"timestamp": "2026-11-16T22:00:00", "duration": 5, "data": {"app": "a"}}, "timestamp: has no UTC offset"),
    ({"timestamp": "1999-01-01T00:00:00Z", "duration": 5, "data": {"app": "a"}}, "timestamp: out of range"),
    ({"timestamp": "2026-11-16T22:00:00Z", "duration": -2.5, "data": {"app": "a"}}, "duration: negative (-2.5 s)"),
    ({"timestamp": "2026-11-16T22:00:00Z", "duration": "5", "data": {"app": "a"}},
     "duration: must be a number of seconds, got a JSON string"),
    ({"timestamp": "2026-11-16T22:00:00Z", "duration": 5, "data": {"title": "t"}},
     "data.app: missing or not a non-empty string"),
    ({"timestamp": "2026-11-16T22:00:00Z", "duration": 5}, "data: missing or not an object"),
    ("not an event", "event is a JSON string, not an object"),
]


def test_bad_events_are_skipped_counted_and_named(tmp_path):
    good = [Event(timestamp=START + timedelta(minutes=i), duration=30, data={"app": "Code", "title": "a"}).to_json_dict()
            for i in range(3)]
    events = [good[0], *[e for e, _ in BAD_EVENTS], good[1], good[2]]
    afk = [{"timestamp": START.isoformat(), "duration": 600, "data": {"status": "away"}},
           Event(timestamp=START, duration=600, data={"status": "not-afk"}).to_json_dict()]
    tabs = [{"timestamp": START.isoformat(), "duration": 9, "data": {"url": "data:image/png;base64," + "A" * 70_000}},
            {"timestamp": START.isoformat(), "duration": 9, "data": {"title": "no url"}}]
    export = {"buckets": {WINDOW: _ok_bucket(events=events),
                          AFK: _ok_bucket(id=AFK, type="afkstatus", events=afk),
                          WEB: _ok_bucket(id=WEB, type="web.tab.current", hostname="unknown", events=tabs)}}
    paths = Paths(tmp_path / "data")
    r = aw.import_export(paths, write(tmp_path, "x.json", export), "u1", "d1", durable=False)
    w = next(b for b in r.buckets if b.bucket_id == WINDOW)
    assert w.imported == 3 and sum(w.skipped.values()) == len(BAD_EVENTS) and r.skipped == len(BAD_EVENTS) + 3
    msgs = r.skip_messages()
    for i, (_ev, reason) in enumerate(BAD_EVENTS, start=1):  # the bucket and the event's index are named
        assert any(m.startswith(f"bucket '{WINDOW}': 1 event(s) skipped: {reason}") and f"(event index {i})" in m
                   for m in msgs), (reason, msgs)
    assert any(f"bucket '{AFK}'" in m and 'data.status: must be "afk" or "not-afk"' in m and "(event index 0)" in m
               for m in msgs)
    assert any(f"bucket '{WEB}'" in m and "data: larger than 65536 bytes" in m and "(event index 0)" in m for m in msgs)
    assert any(f"bucket '{WEB}'" in m and "data.url: missing" in m and "(event index 1)" in m for m in msgs)
    assert r.rows["active_window"] > 0 and r.rows["system_events"] == 2 and r.rows["app_events"] == 0
    # --strict refuses the same export and lands nothing
    strict = Paths(tmp_path / "strict")
    with pytest.raises(aw.ExportError, match="--strict: nothing imported.*timestamp: required"):
        aw.import_export(strict, write(tmp_path, "x.json", export), "u1", "d1", strict=True, durable=False)
    assert not any(strict.landing.rglob("*.csv"))


def test_unknown_bucket_types_and_hosts(tmp_path, export):
    paths = Paths(tmp_path / "data")
    p = write(tmp_path, "full.json", export)
    r = aw.import_export(paths, p, "u1", "d1", durable=False)
    vs = next(b for b in r.buckets if b.bucket_id == VSCODE)
    assert vs.not_imported.startswith("type 'app.editor.activity' is not imported") and vs.events == 3
    with pytest.raises(aw.ExportError, match=f"bucket '{VSCODE}' would be skipped"):
        aw.import_export(Paths(tmp_path / "s"), p, "u1", "d1", strict=True, durable=False)
    # two hosts' window buckets: refused without --hostname, one host imported with it
    two = json.loads(json.dumps(export))
    two["buckets"]["aw-watcher-window_desktop"] = _ok_bucket(id="aw-watcher-window_desktop", hostname="desktop")
    p2 = write(tmp_path, "two.json", two)
    with pytest.raises(aw.ExportError, match=r"2 hosts \(desktop, laptop\).*--hostname"):
        aw.import_export(Paths(tmp_path / "two"), p2, "u1", "d2", durable=False)
    r = aw.import_export(Paths(tmp_path / "two"), p2, "u1", "d2", hostname="desktop", durable=False)
    imported = {b.bucket_id for b in r.buckets if not b.not_imported}
    assert imported == {"aw-watcher-window_desktop", WEB}  # the browser bucket's host is "unknown"
    assert r.rows["active_window"] == 13  # 60 s from a 5 s grid point: change, 11 heartbeats, close


def test_a_device_with_collector_window_data_is_refused(tmp_path, export):
    from focuslake.segments import CsvSegmentWriter

    paths = Paths(tmp_path / "data")
    with CsvSegmentWriter(paths.landing, "active_window", "u1", "laptop", durable=False) as w:
        w.write_row([int(MIDNIGHT.timestamp() * 1e6) + 5_000_000, "Code", "x", 1, "change"])
    with pytest.raises(aw.ExportError, match="already has collector window data on 2026-11-17.*--device laptop-aw"):
        aw.import_export(paths, write(tmp_path, "full.json", export), "u1", "laptop", durable=False)
    assert not any(p for p in paths.landing.rglob("*.csv") if aw.MARK in p.name)


def test_cli(tmp_path, export):
    env = {**os.environ, **NO_TELEMETRY_ENV, "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "focuslake.importers.activitywatch"]
    p = write(tmp_path, "full.json", export)
    r = subprocess.run([*cmd, str(p), "--user", "u1", "--device", "laptop-aw", "--data", str(tmp_path / "d")],
                       cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert WINDOW in r.stdout and f"not imported: bucket '{VSCODE}' (3 events)" in r.stdout
    assert "Segments written: " in r.stdout and any((tmp_path / "d" / "landing").rglob("*.csv"))
    bad = write(tmp_path, "bad.json", "{")
    r = subprocess.run([*cmd, str(bad), "--user", "u1", "--device", "laptop-aw", "--data", str(tmp_path / "e")],
                       cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and "refused, nothing imported" in r.stderr and "not JSON" in r.stderr


def test_coverage_matches_a_brute_force_set():
    rng = random.Random(5)
    for _ in range(200):
        cov, brute = aw.Coverage(), set()
        for _ in range(12):
            s = rng.randint(0, 60)
            e = s + rng.randint(1, 15)
            missing = {x for r in cov.subtract(s, e) for x in range(*r)}
            assert missing == set(range(s, e)) - brute
            cov.add(s, e)
            brute |= set(range(s, e))
            assert all(a < b for a, b in zip(cov.ends, cov.starts[1:], strict=False))  # disjoint, not touching
            assert {x for a, b in zip(cov.starts, cov.ends, strict=True) for x in range(a, b)} == brute
