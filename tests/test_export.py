"""Data portability: `python -m focuslake.export` and the scheduled `focus_export` DAG, on a
published warehouse built from a simulated workload (tests/analyst_workload.py).

The exported files are read back (DuckDB read_parquet / read_csv) and compared row for row with
the published gold rows of that user, filtered by this test's own reading of the range rule;
no other user's rows or ids appear; the manifest's counts and checksums are those of the files;
every export is in the access log without the user id; bad arguments fail clearly and leave
nothing behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from analyst_workload import DAYS, START, USERS, published_workload

from focuslake import export
from focuslake.config import Paths
from focuslake.privacy import access_log
from focuslake.privacy.keys import user_hash

pytestmark = pytest.mark.slow
USER = "user02"
OTHERS = [f"user{i:02d}" for i in range(1, USERS + 1) if f"user{i:02d}" != USER]


@pytest.fixture(scope="module")
def pub() -> Paths:
    return published_workload()


def q(db, sql: str, params=None):
    con = duckdb.connect(str(db), read_only=str(db) != ":memory:")
    try:
        cur = con.execute(sql, params or [])
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def gold_user_tables(pub) -> dict[str, list[tuple[str, str]]]:
    _, rows = q(pub.published, """SELECT table_name, list((column_name, data_type) ORDER BY ordinal_position)
                                  FROM information_schema.columns WHERE table_schema = 'gold' GROUP BY ALL""")
    return {t: [tuple(c) for c in cols] for t, cols in rows if "user_id" in {c[0] for c in cols}}


def in_range(cols: list[str], row: tuple, start: date | None, end: date | None) -> bool:
    """This test's reading of the range rule: a row's period overlaps [start, end]."""
    spans = {"hour_start": 1, "window_start": 1, "streak_start": 1, "day": 1, "date": 1, "week_start": 7,
             "month_start": None}
    col = next((c for c in spans if c in cols), None)
    if col is None:
        return True  # no period: a per-user summary
    v = row[cols.index(col)]
    first = v.date() if isinstance(v, datetime) else v
    if spans[col] is None:
        last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    else:
        last = first + timedelta(days=spans[col] - 1)
    return (start is None or last >= start) and (end is None or first <= end)


def _hashable(row):
    return tuple(tuple(v) if isinstance(v, list) else v for v in row)


def read_back(path: Path, fmt: str, columns: list[tuple[str, str]], json_columns: list[str]):
    if fmt == "parquet":
        return q(":memory:", f"SELECT * FROM read_parquet('{path}')")
    types = ", ".join(f"'{c}': '{'VARCHAR' if c in json_columns else t}'" for c, t in columns)
    sel = ", ".join(f"""from_json("{c}", '["VARCHAR"]') AS "{c}" """ if c in json_columns else f'"{c}"'
                    for c, _ in columns)
    return q(":memory:", f"SELECT {sel} FROM read_csv('{path}', header = true, columns = {{{types}}})")


def assert_export_equals_gold(pub, manifest: dict, start: date | None, end: date | None):
    folder = Path(manifest["path"])
    tables = gold_user_tables(pub)
    assert set(manifest["tables"]) == set(tables) and not any(t.startswith("gld_team") for t in tables)
    assert {"gld_user_hourly", "gld_focus_scores", "gld_focus_streaks", "daily_stats"} <= set(tables)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["manifest.json", *(f"{t}.{manifest['format']}" for t in tables)])
    assert json.loads((folder / "manifest.json").read_text())["tables"] == manifest["tables"]
    for t, columns in tables.items():
        entry = manifest["tables"][t]
        f = folder / entry["file"]
        assert entry["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest() and entry["bytes"] == f.stat().st_size
        cols, rows = q(pub.published, f'SELECT * FROM gold."{t}" WHERE user_id = ?', [USER])
        want = [r for r in rows if in_range(cols, r, start, end)]
        got_cols, got = read_back(f, manifest["format"], columns, entry.get("json_columns", []))
        assert got_cols == cols, t
        assert Counter(map(_hashable, got)) == Counter(map(_hashable, want)), t
        assert entry["rows"] == len(want)
        if manifest["format"] == "parquet":  # types survive (a HUGEINT would come back DOUBLE)
            _, described = q(":memory:", f"DESCRIBE SELECT * FROM read_parquet('{f}')")
            assert [(c, ty) for c, ty, *_ in described] == columns, t
        assert {r[cols.index("user_id")] for r in got} <= {USER}, t
        if manifest["format"] == "csv":  # plain text: no other user's id, nor their devices' ids, anywhere
            text = f.read_text()
            for other in OTHERS:
                n = other[-2:]
                assert other not in text and f"laptop{n}" not in text and f"desktop{n}" not in text, t
    assert manifest["rows"] == sum(e["rows"] for e in manifest["tables"].values()) > 0


def test_parquet_export_of_everything_equals_the_published_gold_of_that_user(pub):
    m = export.export_user(USER, fmt="parquet", paths=pub)
    assert Path(m["path"]).parent == pub.exports / USER
    assert_export_equals_gold(pub, m, None, None)
    assert m["tables"]["gld_focus_scores"]["rows"] > 1000


def test_csv_export_of_a_range_keeps_the_overlapping_periods(pub, tmp_path):
    start, end = date(2026, 11, 3), date(2026, 11, 4)  # Tue..Wed: inside a week and a month that started before
    m = export.export_user(USER, start="2026-11-03", end="2026-11-04", fmt="csv", out=tmp_path, paths=pub)
    assert Path(m["path"]).parent == tmp_path / USER and (m["from"], m["to"]) == ("2026-11-03", "2026-11-04")
    assert_export_equals_gold(pub, m, start, end)
    t = m["tables"]
    assert t["gld_user_weekly"]["rows"] == 1 and t["gld_user_monthly"]["rows"] == 1  # the containing week/month
    assert t["gld_user_daily"]["rows"] == 2 and t["gld_user_streaks"]["rows"] == 1
    assert t["gld_focus_scores"]["json_columns"] == ["contributing_factors"]
    assert m["tables"]["gld_user_hourly"]["period_column"] == "hour_start"


def test_every_export_is_in_the_access_log_without_the_user_id(pub, tmp_path):
    before = len(access_log.entries(pub))
    m = export.export_user(USER, start="2026-10-29", end="2026-10-30", fmt="csv", out=tmp_path, paths=pub)
    entries = access_log.entries(pub)
    assert len(entries) == before + 1
    e = entries[-1]
    assert e["action"] == "export" and e["user_hash"] == user_hash(pub, USER)
    assert e["detail"] == {"format": "csv", "tables": sorted(m["tables"]), "rows": m["rows"],
                           "start": "2026-10-29", "end": "2026-10-30", "stamp": m["stamp"]}
    assert USER not in access_log.log_path(pub).read_text()


def test_stamps_do_not_collide_and_a_dead_exports_temp_folder_is_cleaned(pub, tmp_path):
    a = export.export_user(USER, start="2026-10-29", end="2026-10-29", fmt="csv", out=tmp_path, stamp="s1", paths=pub)
    orphan = tmp_path / USER / ".s1.tmp-999999999"  # a pid that cannot be running
    orphan.mkdir()
    (orphan / "gld_user_daily.csv").write_text("half")
    b = export.export_user(USER, start="2026-10-29", end="2026-10-29", fmt="csv", out=tmp_path, stamp="s1", paths=pub)
    assert (Path(a["path"]).name, Path(b["path"]).name) == ("s1", "s1-2")
    assert sorted(p.name for p in (tmp_path / USER).iterdir()) == ["s1", "s1-2"]


def test_a_failure_mid_export_leaves_nothing_and_logs_nothing(pub, tmp_path, monkeypatch):
    calls = []

    def failing_fsync(path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "fsync_dir", failing_fsync)
    before = len(access_log.entries(pub))
    with pytest.raises(OSError, match="No space"):
        export.export_user(USER, fmt="parquet", out=tmp_path, paths=pub)
    assert list((tmp_path / USER).iterdir()) == [] and len(access_log.entries(pub)) == before


def _cli(*args, data: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "focuslake.export", *args], check=False, capture_output=True,
                          text=True, env={**os.environ, "FOCUSLAKE_DATA": str(data)})


@pytest.mark.parametrize(("args", "message"), [
    (["--user", "nobody", "--format", "csv"], "user 'nobody' has no data in the published warehouse"),
    (["--user", "../etc", "--format", "csv"], "user id '../etc' is not valid"),
    (["--user", USER, "--format", "csv", "--from", "2026-11-31"], "--from '2026-11-31' is not a date"),
    (["--user", USER, "--format", "csv", "--from", "2026-11-04", "--to", "2026-11-03"], "is after --to"),
    (["--user", USER, "--format", "csv", "--from", "2027-01-01"], "has no rows between 2027-01-01 and the end"),
    (["--user", USER, "--format", "xlsx"], "invalid choice: 'xlsx'"),
    (["--format", "csv"], "the following arguments are required: --user"),
])
def test_bad_arguments_give_clear_errors_and_write_nothing(pub, args, message):
    before = sorted(p.name for p in pub.exports.rglob("*")) if pub.exports.exists() else []
    r = _cli(*args, data=pub.root)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert (sorted(p.name for p in pub.exports.rglob("*")) if pub.exports.exists() else []) == before


def test_cli_exports_and_says_where(pub, tmp_path):
    r = _cli("--user", USER, "--from", "2026-11-02", "--to", "2026-11-02", "--format", "parquet", "--out",
             str(tmp_path), data=pub.root)
    assert r.returncode == 0, r.stderr
    (folder,) = (tmp_path / USER).iterdir()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert f"to {folder}" in r.stdout and f"exported {manifest['rows']:,} rows of {USER}" in r.stdout
    empty = tmp_path / "empty"
    r = _cli("--user", USER, "--format", "csv", data=empty)
    assert r.returncode == 2 and "no published warehouse" in r.stderr


def test_scheduled_export_writes_every_active_users_day_and_reruns_in_place(pub):
    day = date(2026, 11, 3)
    report = export.scheduled_export(day="2026-11-03", paths=pub)
    assert set(report["exported"]) == {USER, *OTHERS} and report["skipped"] == {}
    for user, info in report["exported"].items():
        assert Path(info["path"]) == pub.exports / user / "day-2026-11-03"
    m = json.loads((pub.exports / USER / "day-2026-11-03" / "manifest.json").read_text())
    assert_export_equals_gold(pub, {**m, "path": str(pub.exports / USER / "day-2026-11-03")}, day, day)
    again = export.scheduled_export(day="2026-11-03", users=[USER], paths=pub)
    assert again["exported"][USER]["rows"] == report["exported"][USER]["rows"]
    assert [p.name for p in (pub.exports / USER).iterdir() if p.name.startswith(("day-", ".day-"))] == ["day-2026-11-03"]
    # a (user, day) of the workload without activity (per the ground truth: a weekend day): skipped,
    # not exported empty
    _, worked = q(pub.published, "SELECT DISTINCT user_id, make_timestamp(epoch_us(hour_start))::DATE "
                  f"FROM read_parquet('{pub.truth}/hourly.parquet')")
    days = [START + timedelta(days=i) for i in range(DAYS)]
    user, idle = next((u, d) for d in days for u in [USER, *OTHERS] if (u, d) not in set(worked))
    off = export.scheduled_export(day=idle, users=[user], paths=pub)
    assert off["exported"] == {} and off["skipped"] == {user: f"no gold rows on {idle}"}
    assert not (pub.exports / user / f"day-{idle}").exists()
    # a day that has not ended before the last publish: refused (the DAG task fails and retries)
    today = datetime.now(UTC).date()
    with pytest.raises(export.ExportError, match="not published yet"):
        export.scheduled_export(day=today, paths=pub)


def test_focus_export_dag_exports_the_previous_day(airflow_ready, pub, monkeypatch):
    from airflow_harness import last_run, run_dag

    monkeypatch.setenv("FOCUSLAKE_DATA", str(pub.root))
    before = len(access_log.entries(pub))
    # logical date 2026-11-05 02:00: data interval [11-04 02:00, 11-05 02:00) -> UTC day 2026-11-04
    state = run_dag("focus_export", logical_date=datetime(2026, 11, 5, 2, tzinfo=UTC),
                    conf={"users": [USER], "format": "csv"})
    assert state == "success" and last_run("focus_export")["tasks"] == {"export": "success"}
    folder = pub.exports / USER / "day-2026-11-04"
    m = json.loads((folder / "manifest.json").read_text())
    assert (m["format"], m["from"], m["to"]) == ("csv", "2026-11-04", "2026-11-04")
    assert_export_equals_gold(pub, {**m, "path": str(folder)}, date(2026, 11, 4), date(2026, 11, 4))
    assert not any((pub.exports / u / "day-2026-11-04").exists() for u in OTHERS)
    (entry,) = access_log.entries(pub)[before:]
    assert entry["airflow"]["dag_id"] == "focus_export" and entry["detail"]["format"] == "csv"
