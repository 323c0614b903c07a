"""What the Great Expectations suites validate in one gate run (focuslake.quality.scope,
docs/quality.md "What each run validates"), on a real simulated workload, real ingest, real dbt
builds and real GX validations, in the order a deployment sees them:

1. the first audit validates every partition and records a baseline;
2. an audit with nothing new validates no partition again;
3. one new segment: only its lake file is validated (rows = the file's rows);
4. a changed suite or a changed bronze model, `--full` and an unusable baseline validate
   everything again;
5. an hourly publish before the daily rollup of a new day (the first hour of a day) passes:
   the open day is recorded, not failed; a changed daily row of a closed day still fails;
6. a bad value in a partition touched since the last passing audit fails the gate, nothing is
   published and the baseline stays the last passing audit's.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from test_quality_gate import DAY1, DAY2, US, land, metrics_row, ts_us, write_csv

from collectors.simulate import simulate
from focuslake import pipeline
from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, Paths
from focuslake.publish import PublishError, audit_stamp_path
from focuslake.quality import QualityError, run_checks
from focuslake.quality import scope as SC
from focuslake.quality.suites import SUITES

pytestmark = pytest.mark.slow
DBT = Path(sys.executable).with_name("dbt")
BRONZE = sorted(n for n, s in SUITES.items() if s.table.startswith("bronze."))


def dbt(paths: Paths, *args: str) -> None:
    env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(paths.root)}
    r = subprocess.run([str(DBT), "build", "--profiles-dir", ".", "--target-path", str(paths.root / "dbt_target"),
                        "--log-path", str(paths.root / "dbt_logs"), *args], cwd=DBT_PROJECT_DIR, env=env,
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def stamp(paths: Paths) -> dict:
    return json.loads(audit_stamp_path(paths).read_text())


def lake_files(paths: Paths, day: str) -> dict[str, dict[str, int]]:
    """stream -> {lake file: rows} of one day (from the Parquet footers)."""
    out: dict[str, dict[str, int]] = {}
    for f in sorted(paths.lake.glob(f"*/date={day}/*.parquet")):
        out.setdefault(f.parts[-3], {})[f.relative_to(paths.lake).as_posix()] = pq.read_metadata(f).num_rows
    return out


def results(paths: Paths, run_id: str, name: str) -> list[tuple]:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute("SELECT partition_key, passed, severity FROM audit.check_results WHERE run_id = ? "
                           "AND check_name = ? ORDER BY ALL", [run_id, name]).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> dict:
    paths = Paths(tmp_path_factory.mktemp("scope") / "data")
    stage = Paths(paths.root.parent / "collectors")
    simulate(stage.root, users=2, days=2, hours=3, seed=11, start=date(2026, 11, 16), durable=False)
    land(stage, paths, DAY1)
    pipeline.ingest(paths)
    dbt(paths)
    first = pipeline.check_quality(paths)
    return {"paths": paths, "stage": stage, "first": first, "baseline": SC.load_baseline(paths)}


def test_first_audit_validates_everything_and_records_the_baseline(lake):
    s, base = lake["first"], lake["baseline"]
    assert s["failed"] == 0
    assert s["scope"]["mode"] == "full" and "no passing audit" in s["scope"]["reason"]
    parts = s["scope"]["partitions"]
    assert set(BRONZE) <= set(parts)
    assert all(n == total and total > 0 for name, (n, total) in parts.items() if name in BRONZE)
    day1 = lake_files(lake["paths"], DAY1)
    for name in BRONZE:  # every row of every lake file of the day
        assert s["scope"]["rows"][name] == sum(day1[name.removeprefix("brz_")].values()), name
    assert base["run_id"] == s["run_id"] and base["mode"] == "full"
    assert stamp(lake["paths"])["scope"] == s["scope"]


@pytest.fixture(scope="module")
def nothing_new(lake) -> dict:
    return pipeline.check_quality(lake["paths"])


def test_audit_with_nothing_new_validates_no_partition(lake, nothing_new):
    sc = nothing_new["scope"]
    assert nothing_new["failed"] == 0
    assert sc["mode"] == "incremental" and sc["since_run"] == lake["first"]["run_id"]
    assert {n: v[0] for n, v in sc["partitions"].items()} == dict.fromkeys(sc["partitions"], 0)
    assert sc["partitions"].keys() == lake["first"]["scope"]["partitions"].keys()
    # the per-day SQL figures carried for the untouched days equal the first audit's
    now = SC.load_baseline(lake["paths"])["day_stats"]
    assert {n: now[n] for n in BRONZE} == {n: lake["baseline"]["day_stats"][n] for n in BRONZE}


@pytest.fixture(scope="module")
def one_segment(lake, nothing_new) -> dict:
    paths = lake["paths"]
    t = ts_us(DAY1, 1)
    seg = write_csv(paths, "system_metrics", "user01", "tablet01", [metrics_row(t + i * 5 * US) for i in range(120)])
    ingested = pipeline.ingest(paths)
    return {"seg": seg, "ingested": ingested, "summary": pipeline.check_quality(paths)}


def test_one_new_segment_validates_only_its_lake_file(lake, nothing_new, one_segment):
    s = one_segment["summary"]
    sc = s["scope"]
    assert s["failed"] == 0
    assert sc["mode"] == "incremental" and sc["since_run"] == nothing_new["run_id"]
    rel = f"system_metrics/date={DAY1}/user01~tablet01.parquet"
    assert lake_files(lake["paths"], DAY1)["system_metrics"][rel] == 120
    assert sc["partitions"]["brz_system_metrics"] == [1, lake["first"]["scope"]["partitions"]["brz_system_metrics"][1] + 1]
    assert sc["rows"]["brz_system_metrics"] == 120
    assert all(sc["partitions"][n][0] == 0 for n in sc["partitions"] if n != "brz_system_metrics")
    # the day's null/duplicate figures were measured again and include the new rows
    new = SC.load_baseline(lake["paths"])["day_stats"]["brz_system_metrics"][DAY1]
    old = lake["baseline"]["day_stats"]["brz_system_metrics"][DAY1]
    assert new["n"] == old["n"] + 120 and new["units"] == old["units"] + 1


def _scope_only(paths: Paths) -> dict:
    """An audit without GX (no baseline written): what it would validate."""
    return run_checks(paths, gx=False, docs=False)["scope"]


def test_changed_suite_validates_everything(lake, one_segment, monkeypatch):
    before = SC.suites_hash()
    s = SUITES["brz_system_metrics"]
    monkeypatch.setitem(SUITES, "brz_system_metrics",
                        dataclasses.replace(s, max_rows_per_scope_day=s.max_rows_per_scope_day + 1))
    assert SC.suites_hash() != before
    sc = _scope_only(lake["paths"])
    assert sc["mode"] == "full" and "suites" in sc["reason"]
    assert all(n == total for n, total in sc["partitions"].values())


def _plan(paths: Paths) -> SC.Plan:
    from focuslake.quality import checks as C
    from focuslake.quarantine import unresolved_rels

    u = unresolved_rels(paths)
    ctx = C.Ctx(paths, datetime.now(UTC).replace(tzinfo=None), None, u["file"], u["rows"])
    con = duckdb.connect(str(paths.warehouse))
    try:
        C.prepare(con, ctx)
        return SC.plan(con, ctx)
    finally:
        con.close()


def test_changed_bronze_model_or_seed_validates_bronze_whole(lake, one_segment, monkeypatch, tmp_path):
    paths = lake["paths"]
    p = _plan(paths)
    assert p.mode == "incremental" and p.carried_day_stats.keys() == set(BRONZE)
    assert all(len(s.parts) == 0 for s in p.suites.values())
    # a bronze model edited (the lake files are the same): bronze validated whole, nothing carried
    proj = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, proj, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    model = proj / "models" / "bronze" / "brz_system_metrics.sql"
    model.write_text(model.read_text() + "\n-- cpu_percent now rounded\n")
    monkeypatch.setattr("focuslake.config.DBT_PROJECT_DIR", proj)
    p = _plan(paths)
    assert p.mode == "incremental" and "bronze" in p.reason
    assert p.carried_day_stats == {} and p.touched_days == {}
    for name in BRONZE:
        assert p.suites[name].whole and len(p.suites[name].parts) == p.suites[name].total_parts > 0
    assert not any(len(s.parts) for n, s in p.suites.items() if n not in BRONZE)  # gold rows unchanged
    monkeypatch.undo()
    # a seed the bronze views join changed in the warehouse: the same
    con = duckdb.connect(str(paths.warehouse))
    try:
        seed = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'ref' ORDER BY 1 "
                           "LIMIT 1").fetchone()[0]
        con.execute(f'CREATE TABLE ref."_keep_{seed}" AS SELECT * FROM ref."{seed}"')
        con.execute(f'DELETE FROM ref."{seed}" WHERE rowid = (SELECT min(rowid) FROM ref."{seed}")')
    finally:
        con.close()
    try:
        p = _plan(paths)
        assert "bronze" in p.reason and p.carried_day_stats == {}
        assert all(p.suites[n].whole for n in BRONZE)
    finally:
        con = duckdb.connect(str(paths.warehouse))
        con.execute(f'DELETE FROM ref."{seed}"')
        con.execute(f'INSERT INTO ref."{seed}" SELECT * FROM ref."_keep_{seed}"')
        con.execute(f'DROP TABLE ref."_keep_{seed}"')
        con.close()
    assert _plan(paths).reason == "partitions touched since the last passing audit"


@pytest.fixture(scope="module")
def full_cli(lake, one_segment) -> dict:
    env = {**os.environ, "FOCUSLAKE_DATA": str(lake["paths"].root)}
    r = subprocess.run([sys.executable, "-m", "focuslake", "quality", "--full"], env=env, capture_output=True,
                       text=True, timeout=900, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(r.stdout[r.stdout.index("{"):])


def test_full_flag_validates_every_partition(lake, full_cli):
    sc = full_cli["scope"]
    assert full_cli["failed"] == 0
    assert sc["mode"] == "full" and "asked for" in sc["reason"] and sc["since_run"] is None
    assert all(n == total for n, total in sc["partitions"].values())
    assert sc["partitions"]["brz_system_metrics"][1] == lake["first"]["scope"]["partitions"]["brz_system_metrics"][1] + 1
    assert SC.load_baseline(lake["paths"])["last_full_run"] == full_cli["run_id"]


@pytest.fixture(scope="module")
def corrupt_baseline(lake, full_cli) -> dict:
    """The record of the last passing audit damaged (valid JSON, wrong shape)."""
    base = SC.baseline_path(lake["paths"])
    doc = json.loads(base.read_text())
    doc["lake"] = {stream: "?" for stream in doc["lake"]}
    base.write_text(json.dumps(doc))
    return pipeline.check_quality(lake["paths"])


def test_unusable_baseline_means_a_full_validation_and_a_new_baseline(lake, corrupt_baseline):
    sc = corrupt_baseline["scope"]
    assert corrupt_baseline["failed"] == 0
    assert sc["mode"] == "full" and "could not use the last passing audit" in sc["reason"]
    assert all(n == total for n, total in sc["partitions"].values())
    base = SC.load_baseline(lake["paths"])
    assert base["run_id"] == corrupt_baseline["run_id"]
    assert all(isinstance(v, dict) and v for v in base["lake"].values())


@pytest.fixture(scope="module")
def new_day_hourly(lake, corrupt_baseline) -> dict:
    """The second day lands; the hourly rollups are rebuilt, the daily rollup has not run yet
    (as in the first hour of a new day): the gate runs and the warehouse is published."""
    paths = lake["paths"]
    land(lake["stage"], paths, DAY2)
    pipeline.ingest(paths)
    dbt(paths, "--exclude", "tag:daily", "tag:weekly", "tag:monthly")
    s = pipeline.check_quality(paths)
    return {"summary": s, "manifest": pipeline.publish(paths)}


def test_hourly_publish_before_the_daily_rollup_passes_and_validates_the_new_day(lake, new_day_hourly):
    paths, s = lake["paths"], new_day_hourly["summary"]
    assert s["failed"] == 0 and new_day_hourly["manifest"]["audit_run_id"] == s["run_id"]
    sc = s["scope"]
    assert sc["mode"] == "incremental"
    day2 = lake_files(paths, DAY2)
    for name in BRONZE:  # exactly the new day's lake files, none of the first day's
        files = day2.get(name.removeprefix("brz_"), {})
        assert sc["partitions"][name][0] == len(files) and sc["rows"][name] == sum(files.values()), name
    assert sc["partitions"]["gld_user_daily"][0] == 0  # not rebuilt
    assert sc["partitions"]["gld_user_hourly"][0] >= 2  # both users' new day
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    users = {u for (u,) in con.execute("SELECT DISTINCT user_id FROM gold.gld_user_hourly WHERE day = ?",
                                       [DAY2]).fetchall()}
    assert con.execute("SELECT count(*) FROM gold.gld_user_daily WHERE day = ?", [DAY2]).fetchone()[0] == 0
    con.close()
    assert len(users) == 2
    # the open day is recorded, not failed; the closed day is judged and equal
    pending = results(paths, s["run_id"], "daily_rollup_pending")
    assert pending == [("all", False, "info")]
    detail = duckdb.connect(str(paths.warehouse), read_only=True).execute(
        "SELECT detail FROM audit.check_results WHERE run_id = ? AND check_name = 'daily_rollup_pending'",
        [s["run_id"]]).fetchone()[0]
    assert all(f"{u} {DAY2}" in detail for u in users) and DAY1 not in detail
    assert results(paths, s["run_id"], "daily_equals_sum_of_hours") == [("all", True, "critical")]


def test_changed_daily_row_of_a_closed_day_still_fails(lake, new_day_hourly):
    paths = lake["paths"]
    dbt(paths, "--select", "tag:daily")  # the daily rollup of the new day: the first day is closed
    con = duckdb.connect(str(paths.warehouse))
    user = con.execute("SELECT min(user_id) FROM gold.gld_user_daily WHERE day = ?", [DAY1]).fetchone()[0]
    con.execute("UPDATE gold.gld_user_daily SET keystrokes = keystrokes + 1 WHERE day = ? AND user_id = ?",
                [DAY1, user])
    con.close()
    with pytest.raises(QualityError) as e:
        pipeline.check_quality(paths)
    assert "daily_equals_sum_of_hours" in str(e.value)
    bad = [p for p, ok, _ in results(paths, e.value.run_id, "daily_equals_sum_of_hours") if not ok]
    assert f"{user} {DAY1}" in bad
    st = stamp(paths)
    assert not st["passed"] and st["scope"]["mode"] == "incremental"
    assert st["scope"]["partitions"]["gld_user_daily"][0] >= 1  # the changed partition, validated again
    dbt(paths, "--select", "gld_user_daily")  # repaired
    assert pipeline.check_quality(paths)["failed"] == 0


def test_bad_value_in_a_touched_partition_fails_the_gate(lake, new_day_hourly):
    paths = lake["paths"]
    passed_run = SC.load_baseline(paths)["run_id"]
    published = paths.published.read_bytes()
    # a collector with its clock a day ahead: its segment lands in a new (future) partition
    future = datetime.now(UTC).timestamp() + 86_400
    write_csv(paths, "system_metrics", "user02", "clock02",
              [metrics_row(int(future * US) + i * 5 * US) for i in range(50)])
    pipeline.ingest(paths)
    with pytest.raises(QualityError) as e:
        pipeline.check_quality(paths)
    names = {(c.name, c.table) for c in e.value.failed}
    assert ("gx_ts_not_in_future", "bronze.brz_system_metrics") in names
    st = stamp(paths)
    assert not st["passed"] and st["scope"]["mode"] == "incremental" and st["scope"]["since_run"] == passed_run
    files = sorted(paths.lake.glob("system_metrics/date=*/user02~clock02.parquet"))
    assert len(files) == 1  # the one touched partition, validated with all its rows
    assert st["scope"]["partitions"]["brz_system_metrics"][0] == 1
    assert st["scope"]["rows"]["brz_system_metrics"] == pq.read_metadata(files[0]).num_rows > 0
    assert all(v[0] == 0 for n, v in st["scope"]["partitions"].items() if n.startswith("brz_")
               and n != "brz_system_metrics")
    # nothing published, and the next audit still starts from the last passing one
    with pytest.raises(PublishError):
        pipeline.publish(paths)
    assert paths.published.read_bytes() == published
    assert SC.load_baseline(paths)["run_id"] == passed_run
    with pytest.raises(QualityError):
        pipeline.check_quality(paths)
    assert stamp(paths)["scope"]["partitions"]["brz_system_metrics"][0] == 1
