"""Reports people look at (focuslake.reports): daily and weekly pages per user from the published
warehouse, every number checked against the warehouse queried independently and against the
workload's ground truth; charts are real PNGs; the page loads nothing from elsewhere; output is
atomic; the Airflow task renders its run's period.

One workload per module: 2 users, Fri 2026-11-20 .. Tue 2026-11-24 (ISO weeks 47 and 48; the
first day and week have no previous period with data, the others do).
"""
from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from duck import q

from collectors.simulate import simulate
from focuslake import pipeline
from focuslake.config import DBT_PROJECT_DIR, PROJECT_ROOT, Paths
from focuslake.reports import (
    ReportError,
    from_interval,
    parse_day,
    parse_week,
    render_interval,
    render_reports,
)
from focuslake.reports.charts import CATEGORY_COLORS
from focuslake.reports.render import png_size, publish_dir

slow = pytest.mark.slow
DBT = Path(sys.executable).with_name("dbt")
START = date(2026, 11, 20)  # a Friday
DAY, FIRST_DAY, WEEK, FIRST_WEEK = "2026-11-24", "2026-11-20", "2026-W48", "2026-W47"
CHARTS = {"timeline.png", "categories.png", "score_trend.png", "context_switches.png", "comparison.png"}
ACTIVE_TOL_S = 0.001  # per hour, as focuslake.verify (both sides use the same microsecond timestamps)


# --- the workload, once ---------------------------------------------------------------------------
def _cli(*args: str, data: Path, tty: bool = False, env: dict | None = None) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "focuslake.reports", *args, "--data", str(data)]
    env = {**os.environ, **(env or {})}
    if not tty:
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=600, check=False)
        return r.returncode, r.stdout + r.stderr
    # under a pseudo-terminal, as a person runs it: rich draws its progress bar on stderr
    leader, follower = pty.openpty()
    p = subprocess.Popen(cmd, stdin=follower, stdout=follower, stderr=follower, cwd=PROJECT_ROOT,
                         env={**env, "COLUMNS": "120"}, close_fds=True)
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(leader)
    return p.wait(timeout=600), out.decode(errors="replace")


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> dict:
    """Simulate, ingest, dbt build, quality, publish (as tests/test_end_to_end.py), then render the
    daily reports of every user with the CLI under a terminal (progress bar) and the weekly ones
    with the package function."""
    paths = Paths(tmp_path_factory.mktemp("reports") / "data")
    simulate(paths.root, users=2, days=5, seed=17, start=START, hours=5, durable=False)
    summary = pipeline.ingest(paths)
    assert summary["segments_quarantined"] == 0, summary
    env = {**os.environ, "FOCUSLAKE_DATA": str(paths.root), "DO_NOT_TRACK": "1"}
    r = subprocess.run([str(DBT), "build", "--profiles-dir", "."], cwd=DBT_PROJECT_DIR, env=env,
                       capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    pipeline.check_quality(paths)
    pipeline.publish(paths)
    t0 = time.time()
    daily = _cli("daily", "--all", "--date", DAY, data=paths.root, tty=True)
    weekly = render_reports(parse_week(WEEK), paths=paths)
    return {"paths": paths, "daily": daily, "weekly": weekly, "rendered_after": t0, "seconds": time.time() - t0}



def users(paths: Paths) -> list[str]:
    return [u for (u,) in q(paths.published, "SELECT DISTINCT user_id FROM gold.gld_user_daily ORDER BY 1")]


def report(paths: Paths, user: str, kind: str, label: str) -> tuple[Path, dict]:
    d = paths.root / "reports" / user / kind / label
    return d, json.loads((d / "report.json").read_text())


def iso(ts: datetime) -> str:
    return ts.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def period_bounds(kind: str, label: str) -> tuple[date, date]:
    start = parse_day(label).start if kind == "daily" else parse_week(label).start
    return start, start + timedelta(days=1 if kind == "daily" else 7)


SUMMARY = ["active_seconds", "focused_seconds", "focus_score_avg", "focus_score_min", "focus_score_max",
           "context_switches", "keystrokes", "clicks", "sessions", "breaks", "active_hours",
           "longest_session_minutes", "longest_focus_streak_minutes"]


def expected_from_warehouse(db: Path, kind: str, user: str, label: str) -> dict:
    """What the report must say, queried here on its own from the gold tables."""
    start, end = period_bounds(kind, label)
    prev = start - (end - start)
    table, key = ("gld_user_daily", "day") if kind == "daily" else ("gld_user_weekly", "week_start")
    cols = ", ".join(SUMMARY)

    def summary(d):
        rows = q(db, f"SELECT {cols} FROM gold.{table} WHERE user_id = ? AND {key} = ?", [user, d])
        return dict(zip(SUMMARY, rows[0])) if rows else None

    cats = q(db, """SELECT category, sum(active_seconds) FROM gold.gld_user_category_daily
                    WHERE user_id = ? AND day >= ? AND day < ? GROUP BY 1 ORDER BY 2 DESC, 1""", [user, start, end])
    hours = q(db, """SELECT hour_start, active_seconds, focused_seconds, focus_score_avg, focus_score_min,
                            focus_score_max, context_switches
                     FROM gold.gld_user_hourly WHERE user_id = ? AND day >= ? AND day < ? ORDER BY 1""",
              [user, start, end])
    days = q(db, """SELECT day, active_seconds, focused_seconds, focus_score_avg, focus_score_min, focus_score_max,
                           context_switches FROM gold.gld_user_daily
                    WHERE user_id = ? AND day >= ? AND day < ? ORDER BY 1""", [user, start, end])
    windows = q(db, """SELECT window_start, device_id, category, active_seconds, focus_score, is_focused
                       FROM gold.gld_focus_scores WHERE user_id = ? AND window_start >= ? AND window_start < ?
                       ORDER BY window_start, device_id""", [user, start, end])
    return {"summary": summary(start), "previous": summary(prev), "categories": cats, "hours": hours,
            "days": days, "windows": windows}


# --- numbers against the warehouse ------------------------------------------------------------------
@slow
def test_cli_and_function_render_every_user(wh):
    rc, out = wh["daily"]
    assert rc == 0, out
    assert [r["user_id"] for r in wh["weekly"]] == users(wh["paths"])
    for u in users(wh["paths"]):
        for kind, label in (("daily", DAY), ("weekly", WEEK)):
            d = wh["paths"].root / "reports" / u / kind / label
            assert {p.name for p in d.iterdir()} == CHARTS | {"index.html", "report.json"}
        assert f"{u}: {wh['paths'].root / 'reports' / u / 'daily' / DAY}/index.html" in out
    assert not [p for p in (wh["paths"].root / "reports").rglob(".*")], "temporary folders left behind"


@slow
def test_all_shows_a_progress_bar_on_a_terminal(wh):
    _, out = wh["daily"]
    n = len(users(wh["paths"]))
    assert re.search(rf"daily 2026-11-24 user\d+.*{n}/{n}", out), out[-2000:]


@slow
@pytest.mark.parametrize(("kind", "label"), [("daily", DAY), ("weekly", WEEK)])
def test_report_json_equals_the_warehouse(wh, kind, label):
    paths = wh["paths"]
    checked = 0
    for u in users(paths):
        _, r = report(paths, u, kind, label)
        exp = expected_from_warehouse(paths.published, kind, u, label)
        assert r["user_id"] == u and r["report"] == kind and r["period"]["label"] == label
        assert r["timezone"] == "UTC" and r["source"]["read_only"] is True
        assert {k: r["summary"][k] for k in SUMMARY} == exp["summary"]
        assert r["summary"]["focused_share"] == pytest.approx(
            exp["summary"]["focused_seconds"] / exp["summary"]["active_seconds"])
        assert r["previous"] == exp["previous"] and r["previous_period"]["has_data"] is (exp["previous"] is not None)
        for m in ("active_seconds", "focused_seconds", "focus_score_avg", "context_switches"):
            ch, cur = r["comparison"][m], exp["summary"][m]
            prev = exp["previous"][m] if exp["previous"] else None
            assert (ch["current"], ch["previous"]) == (cur, prev), m
            if prev is None:
                assert ch["delta"] is None and ch["delta_pct"] is None
            else:
                assert ch["delta"] == pytest.approx(cur - prev, abs=1e-9)
                assert ch["delta_pct"] == (pytest.approx((cur - prev) / prev * 100) if prev else None)
        assert [(c["category"], c["active_seconds"]) for c in r["categories"]] == [
            (c, pytest.approx(s, abs=1e-6)) for c, s in exp["categories"]]
        assert sum(c["share"] for c in r["categories"]) == pytest.approx(1.0)
        assert [tuple(h.values()) for h in r["hours"]] == [(iso(h[0]), *h[1:]) for h in exp["hours"]]
        assert [tuple(d.values()) for d in r["days"]] == [(d[0].isoformat(), *d[1:]) for d in exp["days"]]
        tl = r["timeline"]
        assert [tuple(w) for w in tl["rows"]] == [(iso(w[0]), *w[1:]) for w in exp["windows"]]
        assert tl["windows"] == len(exp["windows"]) > 100
        assert tl["active_windows"] == sum(1 for w in exp["windows"] if w[3] > 0)
        assert tl["focused_windows"] == sum(1 for w in exp["windows"] if w[5]) > 0
        assert (tl["window_seconds"], tl["focused_score_min"]) == (30, 60)
        # the focused windows really are those scoring >= the threshold
        assert all((w[4] >= 60) == w[5] for w in exp["windows"])
        checked += 1
    assert checked == 2


@slow
def test_comparison_with_a_previous_period_that_has_data(wh):
    """Tue vs Mon and W48 vs W47 both have a previous period with data: real deltas."""
    paths = wh["paths"]
    for kind, label, prev in (("daily", DAY, "2026-11-23"), ("weekly", WEEK, FIRST_WEEK)):
        for u in users(paths):
            _, r = report(paths, u, kind, label)
            assert r["previous_period"]["label"] == prev and r["previous_period"]["has_data"], (u, kind)
            assert all(r["comparison"][m]["delta"] is not None for m in r["comparison"])


@slow
def test_first_day_and_week_have_no_previous_data(wh, tmp_path):
    paths = wh["paths"]
    out = tmp_path / "out"
    res = render_reports(parse_day(FIRST_DAY), users(paths)[:1], paths=paths, out=out)
    assert [x["user_id"] for x in res] == users(paths)[:1]
    for x in res:
        r = json.loads((Path(x["dir"]) / "report.json").read_text())
        assert r["previous"] is None and r["previous_period"] == {
            "label": "2026-11-19", "title": "Thursday 19 November 2026", "has_data": False}
        assert all(c["previous"] is None and c["delta"] is None for c in r["comparison"].values())
        html = (Path(x["dir"]) / "index.html").read_text()
        assert "No data for Thursday 19 November 2026 in the warehouse." in html
        assert html.count("no previous data") == 4


# --- numbers against the simulator's ground truth -------------------------------------------------
def _truth(paths: Paths, user: str, start: date, end: date) -> dict:
    con = duckdb.connect()
    h = con.execute(f"""SELECT hour_start AT TIME ZONE 'UTC', sum(active_seconds), sum(context_switches),
                               sum(keystrokes), sum(clicks)
                        FROM read_parquet('{paths.truth}/hourly.parquet')
                        WHERE user_id = ? AND hour_start >= ?::TIMESTAMPTZ AND hour_start < ?::TIMESTAMPTZ
                        GROUP BY 1 ORDER BY 1""", [user, f"{start} 00:00+00", f"{end} 00:00+00"]).fetchall()
    c = con.execute(f"""SELECT category, sum(active_seconds), count(DISTINCT hour_start)
                        FROM read_parquet('{paths.truth}/app_hourly.parquet')
                        WHERE user_id = ? AND hour_start >= ?::TIMESTAMPTZ AND hour_start < ?::TIMESTAMPTZ
                        GROUP BY 1""", [user, f"{start} 00:00+00", f"{end} 00:00+00"]).fetchall()
    return {"hours": {t: (a, s) for t, a, s, _, _ in h}, "active": sum(a for _, a, _, _, _ in h),
            "switches": sum(s for _, _, s, _, _ in h), "keystrokes": sum(k for *_, k, _ in h),
            "clicks": sum(x for *_, x in h), "categories": {k: (s, n) for k, s, n in c}}


@slow
@pytest.mark.parametrize(("kind", "label"), [("daily", DAY), ("weekly", WEEK)])
def test_report_numbers_equal_the_ground_truth(wh, kind, label):
    """Active time, context switches, keystrokes, clicks and seconds per category of the report
    equal what the simulator generated (counts exactly, seconds within 1 ms per hour)."""
    paths = wh["paths"]
    start, end = period_bounds(kind, label)
    for u in users(paths):
        _, r = report(paths, u, kind, label)
        t = _truth(paths, u, start, end)
        n_hours = len(t["hours"])
        assert n_hours >= 3
        s = r["summary"]
        assert s["active_seconds"] == pytest.approx(t["active"], abs=ACTIVE_TOL_S * n_hours)
        assert (s["context_switches"], s["keystrokes"], s["clicks"]) == (t["switches"], t["keystrokes"], t["clicks"])
        cats = {c["category"]: c["active_seconds"] for c in r["categories"]}
        assert set(cats) == {k for k, (sec, _) in t["categories"].items() if sec > 0}
        for k, (sec, hours_with) in t["categories"].items():
            assert cats.get(k, 0.0) == pytest.approx(sec, abs=ACTIVE_TOL_S * hours_with), k
        by_hour = {datetime.fromisoformat(h["hour_start"]).replace(tzinfo=None): h for h in r["hours"]}
        for hour, (active, switches) in t["hours"].items():
            if active or switches:
                assert by_hour[hour]["active_seconds"] == pytest.approx(active, abs=ACTIVE_TOL_S), hour
                assert by_hour[hour]["context_switches"] == switches, hour


# --- the page ----------------------------------------------------------------------------------------
class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.nums: list[tuple[str, str, str]] = []  # (data-key, data-value, text)
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: list[str] = []
        self.meta: dict[str, str] = {}
        self._num: list | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href", "srcset", "poster", "data", "action", "formaction", "background") and v:
                self.refs.append((tag, k, v))
        if tag == "meta" and a.get("http-equiv"):
            self.meta[a["http-equiv"].lower()] = a.get("content", "")
        if tag == "span" and "num" in (a.get("class") or "").split():
            self._num = [a["data-key"], a["data-value"], ""]

    def handle_data(self, data):
        if self._num is not None:
            self._num[2] += data

    def handle_endtag(self, tag):
        if tag == "span" and self._num is not None:
            self.nums.append(tuple(self._num))
            self._num = None


def _lookup(obj, key: str):
    for part in key.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


MINUS = "\u2212"


def _duration(seconds: float) -> str:  # the documented format (docs/reports.md), written out again here
    if seconds is None:
        return "no data"
    sign, s = (MINUS if seconds < 0 else ""), abs(seconds)
    if 0 < s < 30:
        return sign + "< 1 min"
    m = round(s / 60)
    return f"{sign}{m // 60} h {m % 60:02d} min" if m >= 60 else f"{sign}{m} min"


def _expected_text(key: str, value) -> str | None:
    leaf = key.rsplit(".", 1)[-1]
    metric = key.split(".")[1] if key.startswith("comparison.") else leaf
    if value is None:
        return "no data" if leaf != "delta" else "no previous data"
    if leaf == "delta":
        return None  # checked on its own below (sign + relative change)
    if metric.endswith("_seconds"):
        return _duration(value)
    if metric.endswith("_minutes"):
        return _duration(value * 60)
    if metric.startswith("focus_score"):
        return f"{value:.1f}"
    if metric.endswith("share"):
        return f"{100 * value:.0f}%"
    return f"{value:,}"


@slow
@pytest.mark.parametrize(("kind", "label"), [("daily", DAY), ("weekly", WEEK)])
def test_every_number_on_the_page_is_in_report_json_and_reads_right(wh, kind, label):
    paths = wh["paths"]
    for u in users(paths):
        d, r = report(paths, u, kind, label)
        page = _Page()
        page.feed((d / "index.html").read_text())
        keys = {k for k, _, _ in page.nums}
        for k, raw, text in page.nums:
            value = _lookup(r, k)
            assert (json.loads(raw) if raw else None) == value, k
            want = _expected_text(k, value)
            if want is not None:
                assert text == want, (k, value, text)
        for m, ch in r["comparison"].items():  # the change column: sign and relative change
            text = next(t for k, _, t in page.nums if k == f"comparison.{m}.delta")
            if ch["delta"] is None:
                assert text == "no previous data"
                continue
            sign = "+" if text[0] == "+" else MINUS if text[0] == MINUS else "\u00b1"
            shown = round(ch["delta"] / 60) if m.endswith("_seconds") else round(ch["delta"], 1)
            assert sign == ("+" if shown > 0 else MINUS if shown < 0 else "\u00b1"), (m, text)
            if ch["delta_pct"] is not None:
                assert text.endswith(f"{abs(round(ch['delta_pct']))}%)"), (m, text)
        # what the page must show, at least
        assert {f"summary.{m}" for m in SUMMARY} <= keys
        assert {f"comparison.{m}.{x}" for m in r["comparison"] for x in ("previous", "current", "delta")} <= keys
        assert {f"categories.{i}.{x}" for i in range(len(r["categories"])) for x in ("active_seconds", "share")} <= keys
        series = "hours" if kind == "daily" else "days"
        assert {f"{series}.{i}.context_switches" for i in range(len(r[series]))} <= keys
        assert len(r[series]) >= (3 if kind == "daily" else 2)
        assert u in (d / "index.html").read_text() and "UTC" in (d / "index.html").read_text()


@slow
@pytest.mark.parametrize(("kind", "label"), [("daily", DAY), ("weekly", WEEK)])
def test_page_references_only_its_own_files(wh, kind, label):
    paths = wh["paths"]
    for u in users(paths):
        d, r = report(paths, u, kind, label)
        html = (d / "index.html").read_text()
        page = _Page()
        page.feed(html)
        assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
        assert "://" not in html and "url(" not in html and "@import" not in html
        srcs = [v for tag, k, v in page.refs]
        assert sorted(srcs) == sorted(CHARTS)  # exactly the five charts, by relative name
        for v in srcs:
            assert (d / v).is_file() and "/" not in v and not v.startswith(".")
        csp = page.meta["content-security-policy"]
        assert "default-src 'none'" in csp and "img-src 'self'" in csp
        assert [c["file"] for c in r["charts"]] == [v for tag, k, v in page.refs if tag == "img"]


@slow
@pytest.mark.parametrize(("kind", "label"), [("daily", DAY), ("weekly", WEEK)])
def test_charts_are_real_pngs_drawn_with_the_category_colours(wh, kind, label):
    import numpy as np
    from matplotlib import image

    paths = wh["paths"]
    for u in users(paths):
        d, r = report(paths, u, kind, label)
        for c in r["charts"]:
            p = d / c["file"]
            w, h = png_size(p)
            assert (w, h) == (c["width"], c["height"])
            assert 900 <= w <= 1600 and 300 <= h <= 900, (p.name, w, h)
            assert 15_000 < p.stat().st_size < 1_500_000, p.name
            px = image.imread(p)[..., :3]
            assert px.shape == (h, w, 3)
            assert (px < 0.99).mean() > 0.03, f"{p.name} is (nearly) blank"
            assert c["title"] and len(c["description"]) > 60
        # every category with a visible share is drawn in its colour on the timeline and the breakdown
        for name in ("timeline.png", "categories.png"):
            px = (image.imread(d / name)[..., :3] * 255).round().astype(np.int64).reshape(-1, 3)
            colours = set(np.unique(px[:, 0] << 16 | px[:, 1] << 8 | px[:, 2]).tolist())
            for cat in r["categories"]:
                if cat["share"] > 0.05 and cat["category"] in CATEGORY_COLORS:
                    assert int(CATEGORY_COLORS[cat["category"]][1:], 16) in colours, (name, cat["category"])


# --- where and how it is written --------------------------------------------------------------------
@slow
def test_reports_read_only_the_published_copy(wh, tmp_path):
    """A data root holding only published/ renders the same numbers; the file is not modified."""
    paths = wh["paths"]
    alone = Paths(tmp_path / "only-published")
    alone.published.parent.mkdir(parents=True)
    shutil.copy2(paths.published, alone.published)
    before = (alone.published.stat().st_mtime_ns, alone.published.stat().st_size)
    os.chmod(alone.published, 0o444)
    res = render_reports(parse_day(DAY), users(paths)[-1:], paths=alone)
    assert len(res) == 1
    assert (alone.published.stat().st_mtime_ns, alone.published.stat().st_size) == before
    assert not alone.warehouse.exists()
    for x in res:
        mine = json.loads((Path(x["dir"]) / "report.json").read_text())
        _, theirs = report(paths, x["user_id"], "daily", DAY)
        assert mine["summary"] == theirs["summary"] and mine["timeline"] == theirs["timeline"]


@slow
def test_rerender_swaps_atomically_while_a_reader_reads(wh, tmp_path):
    paths = wh["paths"]
    out = tmp_path / "out"
    user = users(paths)[0]
    period = parse_day(DAY)
    render_reports(period, [user], paths=paths, out=out)
    target = out / user / "daily" / DAY
    stale = target.with_name(f".{DAY}.tmp-999999999")  # a renderer that died half-way
    stale.mkdir()
    (stale / "index.html").write_text("<html>half")
    seen, bad, stop = [0], [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                r = json.loads((target / "report.json").read_text())
                html = (target / "index.html").read_text()
                if not html.rstrip().endswith("</html>") or not all((target / c["file"]).is_file()
                                                                    for c in r["charts"]):
                    bad.append("incomplete")
                seen[0] += 1
            except (OSError, ValueError) as e:
                bad.append(repr(e))

    t = threading.Thread(target=reader)
    t.start()
    try:
        render_reports(period, [user], paths=paths, out=out)
    finally:
        stop.set()
        t.join()
    assert bad == [] and seen[0] > 3
    assert not stale.exists(), "the dead renderer's temporary folder was not cleaned up"
    assert [p.name for p in target.parent.iterdir()] == [DAY]


def test_publish_dir_replaces_a_folder_in_one_step(tmp_path):
    target = tmp_path / "r"
    for n in range(3):
        tmp = tmp_path / f".r.tmp-{n}"
        tmp.mkdir()
        (tmp / "index.html").write_text(f"version {n}")
        publish_dir(tmp, target)
        assert (target / "index.html").read_text() == f"version {n}"
        assert not tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@slow
def test_a_failed_render_leaves_the_previous_report(wh, tmp_path, monkeypatch):
    from focuslake.reports import charts

    paths = wh["paths"]
    out = tmp_path / "out"
    user = users(paths)[0]
    render_reports(parse_day(DAY), [user], paths=paths, out=out)
    target = out / user / "daily" / DAY
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def broken(report, folder):
        (folder / "timeline.png").write_bytes(b"\x89PNG half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(charts, "draw_all", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        render_reports(parse_day(DAY), [user], paths=paths, out=out)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in target.parent.iterdir()] == [DAY]


@slow
def test_each_report_is_recorded_in_the_access_log_without_the_user_id(wh):
    from focuslake.privacy.access_log import entries, log_path
    from focuslake.privacy.keys import user_hash

    paths = wh["paths"]
    mine = [e for e in entries(paths) if e["action"] == "report"]
    for u in users(paths):
        for kind, label in (("daily", DAY), ("weekly", WEEK)):
            assert any(e["user_hash"] == user_hash(paths, u) and e["detail"]["kind"] == kind
                       and e["detail"]["period"] == label and e["detail"]["files"] == 7 for e in mine), (u, kind)
        assert u not in log_path(paths).read_text()


# --- bad input: clear errors, nothing written ---------------------------------------------------------
@slow
@pytest.mark.parametrize(("args", "message"), [
    (["daily", "--user", "nobody", "--date", DAY], "user 'nobody' has no data in the published warehouse"),
    (["daily", "--user", "{u}", "--date", "2026-11-19"],
     "no data for {u} in daily period 2026-11-19; days with data nearby: 2026-11-20, "),
    (["weekly", "--user", "{u}", "--week", "2026-W50"], "no data for {u} in weekly period 2026-W50"),
    (["weekly", "--all", "--week", "2026-W50"], "no user has data in weekly period 2026-W50"),
    (["daily", "--all", "--date", "24-11-2026"], "--date wants YYYY-MM-DD"),
    (["weekly", "--all", "--week", "2026-48"], "--week wants an ISO week YYYY-Www"),
    (["weekly", "--all", "--week", "2026-W54"], "--week '2026-W54'"),
])
def test_cli_errors_are_clear_and_write_nothing(wh, args, message, capsys):
    from focuslake.reports.__main__ import main

    paths = wh["paths"]
    u = users(paths)[0]
    before = sorted(str(p) for p in (paths.root / "reports").rglob("*"))
    assert main([*[a.replace("{u}", u) for a in args], "--data", str(paths.root)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message.replace("{u}", u) in err, err
    assert sorted(str(p) for p in (paths.root / "reports").rglob("*")) == before


@slow
def test_cli_defaults_to_the_latest_period_with_data(wh, tmp_path, capsys):
    from focuslake.reports.__main__ import main

    paths = wh["paths"]
    u = users(paths)[0]
    (latest,) = q(paths.published, "SELECT max(day) FROM gold.gld_user_daily WHERE user_id = ?", [u])[0]
    assert main(["daily", "--user", u, "--out", str(tmp_path), "--data", str(paths.root)]) == 0
    out = capsys.readouterr()
    assert f"the latest with data, {latest}" in out.err
    assert out.out.strip() == f"{u}: {tmp_path / u / 'daily' / latest.isoformat()}/index.html"
    assert (tmp_path / u / "daily" / latest.isoformat() / "index.html").is_file()


def test_cli_without_a_published_warehouse(tmp_path, capsys):
    from focuslake.reports.__main__ import main

    assert main(["daily", "--all", "--data", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no published warehouse at" in err and "make demo" in err
    with pytest.raises(SystemExit) as e:
        main(["weekly", "--all", "--date", DAY, "--data", str(tmp_path)])
    assert e.value.code == 2 and "--date goes with daily, --week with weekly" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def test_periods():
    assert parse_week("2026-W53").start == date(2026, 12, 28) and parse_week("2026-W53").end == date(2027, 1, 4)
    assert parse_week("2027-W01").label == "2027-W01" and parse_day("2028-02-29").previous().label == "2028-02-28"
    assert parse_week("2026-W01").previous().label == "2025-W52"
    p = from_interval("weekly", "2026-12-28T00:00:00+00:00", "2027-01-04T00:00:00+00:00")
    assert (p.kind, p.label, p.title) == ("weekly", "2026-W53", "week 2026-W53 (Mon 28 Dec - Sun 3 Jan 2027)")
    with pytest.raises(ValueError, match="not exactly one daily period"):
        from_interval("daily", "2026-11-24T00:00:00+00:00", "2026-11-24T00:00:00+00:00")
    with pytest.raises(ValueError, match="has no report"):
        from_interval("hourly", "2026-11-24T00:00:00+00:00", "2026-11-24T01:00:00+00:00")


# --- Airflow --------------------------------------------------------------------------------------------
@slow
def test_weekly_task_callable_renders_the_week_of_its_interval(wh):
    paths = wh["paths"]
    res = render_interval("weekly", "2026-11-16T00:00:00+00:00", "2026-11-23T00:00:00+00:00", paths=paths)
    assert res["report"] == "weekly" and res["period"] == FIRST_WEEK and res["reports"] == len(users(paths))
    assert "user" not in json.dumps(res)  # XCom carries counts, not who
    for u in users(paths):
        _, r = report(paths, u, "weekly", FIRST_WEEK)
        assert r["summary"]["active_seconds"] == expected_from_warehouse(
            paths.published, "weekly", u, FIRST_WEEK)["summary"]["active_seconds"]
        assert r["previous_period"] == {"label": "2026-W46", "title": "week 2026-W46 (Mon 9 Nov - Sun 15 Nov 2026)",
                                        "has_data": False}
    with pytest.raises(ReportError):
        render_reports(parse_week(FIRST_WEEK), ["nobody"], paths=paths)


@slow
def test_daily_dag_task_renders_the_day_of_its_data_interval(wh, airflow_ready, monkeypatch):
    """focus_metrics_daily's render_reports task, run by Airflow (dag.test() on the DAG cut to that
    task: the dbt, quality and publish tasks before it are run for real by tests/test_airflow_server.py
    and their order is checked in tests/test_dags.py). Its interval comes from the run's data
    interval through the DAG's metric_interval macro; it renders that day for every user."""
    from airflow_harness import load_dagbag, serialize_dag_to_db

    paths = wh["paths"]
    monkeypatch.setenv("FOCUSLAKE_DATA", str(paths.root))  # read at task run time
    monday = "2026-11-23"
    assert not any((paths.root / "reports" / u / "daily" / monday).exists() for u in users(paths))
    dag = load_dagbag().dags["focus_metrics_daily"].partial_subset(task_ids=["render_reports"],
                                                                   include_upstream=False)
    assert dag.task_ids == ["render_reports"]
    dag.get_task("render_reports").retries = 0
    serialize_dag_to_db(dag)
    started = datetime.now(UTC)
    # a run after Monday's end: Airflow gives it the data interval [Mon 00:00, Tue 00:00)
    dr = dag.test(logical_date=datetime(2026, 11, 24, tzinfo=UTC))
    assert (dr.data_interval_start, dr.data_interval_end) == (datetime(2026, 11, 23, tzinfo=UTC),
                                                              datetime(2026, 11, 24, tzinfo=UTC))
    assert str(getattr(dr.state, "value", dr.state)) == "success"
    for u in users(paths):
        d, r = report(paths, u, "daily", monday)
        assert datetime.fromisoformat(r["generated_at"]) >= started.replace(microsecond=0)
        exp = expected_from_warehouse(paths.published, "daily", u, monday)
        assert {k: r["summary"][k] for k in SUMMARY} == exp["summary"]
        assert {p.name for p in d.iterdir()} == CHARTS | {"index.html", "report.json"}
    # the report of the day the run was triggered on was not touched
    assert all(report(paths, u, "daily", DAY)[1]["generated_at"] <= started.strftime("%Y-%m-%dT%H:%M:%SZ")
               for u in users(paths))
