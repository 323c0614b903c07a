"""Retention by class and forgetting a user, on a real pipeline (simulated workload -> ingest ->
dbt build -> quality -> published copy): retention removes exactly the days past their class's
age and nothing else, in every layer; after forget-user a scan of every file under the data root
and every table of every DuckDB file finds nothing of that user, and the other users' gold rows
are unchanged."""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from duck import q

from collectors.simulate import simulate
from focuslake import pipeline
from focuslake.config import DBT_PROJECT_DIR, Paths
from focuslake.maintenance import apply_retention as maintenance_retention
from focuslake.privacy import access_log, consent
from focuslake.privacy.forget import ForgetError, forget_user, log_roots, scan, scan_logs
from focuslake.privacy.keys import user_hash
from focuslake.privacy.policy import KEYSTROKE_DYNAMICS, PolicyError, load_policy, policy_path
from focuslake.privacy.retention import apply_retention
from focuslake.publish import publish_warehouse
from focuslake.receiver.store import Store

pytestmark = pytest.mark.slow
DBT = Path(sys.executable).with_name("dbt")
START = date(2026, 11, 16)
SECRET_TITLE = "Zebra payroll 2027 - confidential draft"


def dbt_build(root: Path) -> None:
    env = {**os.environ, "FOCUSLAKE_DATA": str(root), "DO_NOT_TRACK": "1"}
    env.pop("FOCUSLAKE_WAREHOUSE", None)
    r = subprocess.run([str(DBT), "build", "--profiles-dir", "."], cwd=DBT_PROJECT_DIR, env=env,
                       capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def build(root: Path, *, users: int, days: int, quality: bool) -> Paths:
    """Simulate (key codes with consent in every header), grant keystroke dynamics to user01
    only, plant a title only user02 ever had, then ingest -> dbt -> (quality) -> publish."""
    paths = Paths(root)
    simulate(root, users=users, days=days, seed=21, start=START, durable=False, consent_keys=True)
    with consent.Registry(paths) as reg:
        reg.grant("user01", KEYSTROKE_DYNAMICS, at_us=0)
    seg = sorted((paths.landing / "active_window" / "user02").rglob("*.csv"))[2]
    rows = list(csv.reader(io.StringIO(seg.read_text())))
    rows[1][2] = SECRET_TITLE
    with open(seg, "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    s = pipeline.ingest(paths)
    assert s["segments_quarantined"] == 0 and s["rows_quarantined"] == s["rows_no_consent"], s
    dbt_build(root)
    if quality:
        pipeline.check_quality(paths)
    publish_warehouse(paths, require_audit=quality)
    return paths



def lake_days(paths: Paths) -> dict[tuple[str, str], int]:
    out = {}
    for f in paths.lake.glob("*/date=*/*.parquet"):
        key = (f.parent.parent.name, f.parent.name.removeprefix("date="))
        out[key] = out.get(key, 0) + pq.read_metadata(f).num_rows
    return out


def landing_days(paths: Paths) -> Counter:
    return Counter((p.relative_to(paths.landing).parts[0], p.relative_to(paths.landing).parts[3])
                   for p in paths.landing.rglob("*") if p.is_file())


def ledger_days(paths: Paths) -> Counter:
    con = sqlite3.connect(paths.ledger)
    try:
        return Counter((s, p.split("/")[3]) for p, s in con.execute("SELECT path, stream FROM segments"))
    finally:
        con.close()


def key_codes(db_or_lake) -> int:
    if isinstance(db_or_lake, Paths):
        return duckdb.execute(f"SELECT count(*) FROM read_parquet('{db_or_lake.lake}/events/*/*.parquet') "
                              "WHERE event_type IN (1, 2) AND (data_0 <> 0 OR data_1 <> 0)").fetchone()[0]
    return q(db_or_lake, "SELECT count(*) FROM silver.slv_events WHERE event_type IN (1, 2) "
                         "AND (key_code <> 0 OR scan_code <> 0 OR data_0 <> 0 OR data_1 <> 0)")[0][0]


# -- retention ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def retained(tmp_path_factory):
    """2 users x 3 days (Nov 16-18), then retention "on" 2026-12-17 12:00 UTC: the general class
    (30 days) loses Nov 16, the system class (90 days) nothing, the sensitive class (7 days) --
    key identity -- everything."""
    paths = build(tmp_path_factory.mktemp("retention") / "data", users=2, days=3, quality=False)
    before = {"lake": lake_days(paths), "landing": landing_days(paths), "ledger": ledger_days(paths),
              "keys_lake": key_codes(paths), "keys_wh": key_codes(paths.warehouse),
              "tables": {db: table_days(db) for db in (paths.warehouse, paths.published)},
              "daily": q(paths.published, "SELECT * FROM gold.gld_user_daily WHERE day > '2026-11-16' ORDER BY ALL")}
    now = datetime(2026, 12, 17, 12, tzinfo=UTC)
    # this process's Airflow task logs (tests/conftest.py): one written before the general cut, one after
    logs = Path(os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]) / "dag_id=focus_export"
    old_log, new_log = logs / "run_id=old" / "attempt=1.log", logs / "run_id=new" / "attempt=1.log"
    for f, day in ((old_log, datetime(2026, 11, 10, tzinfo=UTC)), (new_log, datetime(2026, 11, 20, tzinfo=UTC))):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("exported 10 rows of user01\n")
        os.utime(f, (day.timestamp(), day.timestamp()))
    dry = apply_retention(paths, now=now, dry_run=True)
    assert old_log.exists()
    after_dry = {"lake": lake_days(paths), "landing": landing_days(paths)}
    report = apply_retention(paths, now=now)
    again = apply_retention(paths, now=now)
    return paths, before, dry, after_dry, report, again


def table_days(db: Path) -> dict[str, Counter]:
    """Rows per table and day, for every table with a day (as retention_last_day names it)."""
    from focuslake.privacy.policy import Policy
    from focuslake.privacy.warehouse import describe, load_manifest
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for t in describe(con, load_manifest(), Policy()):
            if t.last_day and t.klass:
                out[f"{t.schema}.{t.name}"] = (t.klass, Counter(dict(con.execute(
                    f"SELECT ({t.last_day})::VARCHAR, count(*) FROM {t.qualified} GROUP BY 1").fetchall())))
        return out
    finally:
        con.close()


GENERAL_STREAMS = {"active_window", "input_counts", "events", "app_events"}


def test_dry_run_removes_nothing_and_says_what_would_go(retained):
    _, before, dry, after_dry, report, _ = retained
    assert after_dry == {"lake": before["lake"], "landing": before["landing"]}
    assert dry["dry_run"] and dry["removed_before"] == {"sensitive": "2026-12-10", "general": "2026-11-17",
                                                        "system": "2026-09-18"}
    assert dry["lake"]["active_window"]["files"] == report["lake"]["active_window"]["files"] > 0
    assert "gold.gld_user_daily" in dry["warehouse"]["delete_where"]


def test_files_go_exactly_by_class_and_day(retained):
    paths, before, _, _, report, _ = retained
    for layer, now in (("lake", lake_days(paths)), ("ledger", ledger_days(paths))):
        gone = {k for k in before[layer] if k not in now}
        assert gone == {k for k in before[layer] if k[0] in GENERAL_STREAMS and k[1] == "2026-11-16"}, layer
        assert all(now[k] == v for k, v in before[layer].items() if k not in gone), layer
    land = landing_days(paths)
    for (stream, day), n in before["landing"].items():
        if stream in GENERAL_STREAMS and day == "2026-11-16" or stream == "events":
            assert land[(stream, day)] == 0
        else:
            assert land[(stream, day)] == n, (stream, day)
    assert report["landing"]["sensitive_segments"] > 0
    assert report["lake"]["active_window"]["partitions"] == 1 and report["ledger"]["segments"] > 0
    # the system class keeps its first day everywhere
    assert before["lake"][("system_metrics", "2026-11-16")] == lake_days(paths)[("system_metrics", "2026-11-16")]


def test_airflow_task_logs_age_out_with_the_general_class(retained):
    _, _, dry, _, report, _ = retained
    logs = Path(os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    assert dry["logs"][str(logs.resolve())]["files"] >= 1 and report["logs"][str(logs.resolve())]["files"] >= 1
    assert not (logs / "dag_id=focus_export" / "run_id=old").exists()  # the file and its emptied folder
    assert (logs / "dag_id=focus_export" / "run_id=new" / "attempt=1.log").exists()


def test_key_identity_goes_after_seven_days_the_events_stay(retained):
    paths, before, *_ = retained
    assert before["keys_lake"] > 1000 and before["keys_wh"] > 1000  # user01's granted key codes were there
    assert key_codes(paths) == 0 and key_codes(paths.warehouse) == 0 and key_codes(paths.published) == 0
    assert lake_days(paths)[("events", "2026-11-17")] == before["lake"][("events", "2026-11-17")]


def test_warehouse_and_published_lose_exactly_the_expired_days(retained):
    paths, before, _, _, report, _ = retained
    for db in (paths.warehouse, paths.published):
        now = table_days(db)
        for table, (klass, days) in before["tables"][db].items():
            want = Counter({d: n for d, n in days.items() if not (klass == "general" and d < "2026-11-17")})
            assert now[table][1] == want, (db.name, table)
        assert q(db, "SELECT min(day) FROM gold.gld_team_daily")[0][0] == date(2026, 11, 17)  # rebuilt
        assert q(db, "SELECT count(*) FROM silver.slv_app_categories")[0][0] > 0
    # the rows that stay are the same rows
    assert q(paths.published, "SELECT * FROM gold.gld_user_daily ORDER BY ALL") == before["daily"]
    assert os.stat(paths.published).st_mode & 0o222 == 0, "the published copy is read-only again"
    assert report["published"]["compaction"]["action"] == "checkpoint + compaction"


def test_a_second_run_removes_nothing_and_the_maintenance_hook_runs_it(retained):
    paths, *_, again = retained
    assert all(not v for v in again["lake"].values()) and not again["ledger"].get("segments")
    assert again["warehouse"] == {"delete_where": {}, "scrub_where": {}, "rebuild": []}
    assert maintenance_retention(paths)["dry_run"] is False  # installed: no longer "not_installed"
    assert [e["action"] for e in access_log.entries(paths)].count("retention") >= 3


def test_policy_file_overrides_and_bad_policies_are_refused(tmp_path):
    paths = Paths(tmp_path)
    policy_path(paths).parent.mkdir(parents=True)
    policy_path(paths).write_text('[retention]\ngeneral = 14\n[retention.streams]\ninput_counts = "system"\n')
    p = load_policy(paths)
    assert p.days["general"] == 14 and p.stream_days("input_counts") == 90 and p.stream_days("events") == 14
    for text, msg in (('[retention]\ngeneral = "30"\n', "whole number"), ("[retention]\nforever = 1\n", "unknown keys"),
                      ('[retention.streams]\nwebcam = "general"\n', "unknown stream"),
                      ('[retention.streams]\nevents = "secret"\n', "unknown class"), ("[[x", "not valid TOML")):
        policy_path(paths).write_text(text)
        with pytest.raises(PolicyError, match=msg):
            load_policy(paths)


# -- forget a user ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def forgotten(tmp_path_factory):
    paths = build(tmp_path_factory.mktemp("forget") / "data", users=3, days=2, quality=True)
    store = Store(paths.root / "receiver" / "receiver.sqlite")
    store.create_token("user02", "laptop02")
    store.create_token("user01", "desktop01")
    store.close()
    for rel in ("reports/user02/daily/2026-11-16/index.html", "exports/user02/x/gld_user_daily.csv"):
        (paths.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (paths.root / rel).write_text("report of user02 on laptop02\n")
    (paths.root / "focus_ingest.log").write_text("INFO ingested landing/events/user02/laptop02/...\nok user01\n")
    # the log folders outside the data root (this process's Airflow home and dbt log dir:
    # tests/conftest.py): a task log of the export DAG and a line of dbt's log naming them
    task_log = (Path(os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]) / "dag_id=focus_export"
                / "run_id=scheduled__2026-11-17T02:00:00+00:00" / "task_id=export" / "attempt=1.log")
    task_log.parent.mkdir(parents=True, exist_ok=True)
    task_log.write_text('{"event": "exported 1,234 rows of user02 in 8 tables (parquet)"}\n'
                        '{"event": "exported 1,200 rows of user01 in 8 tables (parquet)"}\n'
                        '{"event": "device laptop02 done"}\n')
    dbt_log = Path(os.environ["DBT_LOG_PATH"]) / "dbt.log"
    dbt_log.parent.mkdir(parents=True, exist_ok=True)
    with dbt_log.open("a") as f:
        f.write("12:00:00  On model.focuslake.gld_user_daily: /* user02 */ select 1\n")
    (dbt_log.parent / "dbt.log.1").write_text("older, rotated: user02 and user01\n")
    named = task_log.parents[2] / "run_id=user02" / "task_id=export" / "attempt=1.log"
    named.parent.mkdir(parents=True, exist_ok=True)
    named.write_text("a run id that names them\n")
    devices = {r[0] for r in q(paths.warehouse, "SELECT DISTINCT device_id FROM silver.slv_events WHERE user_id = 'user02'")}
    old = min((paths.landing / "system_metrics" / "user02").rglob("*.csv"))
    kept_segment = (old.relative_to(paths.landing), old.read_bytes())
    assert q(paths.published, "SELECT count(*) FROM gold.gld_user_app_hourly WHERE user_id = 'user02'")[0][0] > 0
    assert q(paths.warehouse, "SELECT count(*) FROM silver.slv_app_categories WHERE window_title = ?",
             [SECRET_TITLE])[0][0] == 1
    others = {t: q(paths.published, f"SELECT * FROM gold.{t} WHERE user_id <> 'user02' ORDER BY ALL")
              for t in ("gld_user_hourly", "gld_user_daily", "gld_user_weekly", "gld_user_monthly", "gld_focus_scores",
                        "gld_user_app_daily", "gld_user_category_daily", "gld_user_streaks")}
    dau = dict(q(paths.published, "SELECT day, dau FROM gold.gld_team_daily"))
    receipt = forget_user(paths, user_hash(paths, "user02"))  # by hash: what a UI trigger would carry
    return paths, receipt, devices, others, dau, kept_segment, (task_log, dbt_log, named)


def every_trace(paths: Paths, needles: list[str]) -> list[str]:
    """An independent scan: raw bytes of every file, decompressed Parquet values, every text
    column of every table and view of every DuckDB file."""
    found = []
    for f in (p for p in paths.root.rglob("*") if p.is_file()):
        rel = f.relative_to(paths.root).as_posix()
        data = f.read_bytes()
        found += [f"{rel}: bytes {n}" for n in needles if n.encode() in data or n in rel]
        if data[:4] == b"PAR1":
            t = pq.read_table(f)
            for name, col in zip(t.column_names, t.columns, strict=True):
                if pa.types.is_string(col.type):
                    found += [f"{rel}: {name} {n}" for n in needles if pc.any(pc.match_substring(col, n)).as_py()]
        elif data[8:12] == b"DUCK":
            con = duckdb.connect(str(f), read_only=True)
            try:
                rels = con.execute("SELECT schema_name, table_name FROM duckdb_tables() UNION ALL "
                                   "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall()
                for s, t in rels:
                    cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE "
                                                      "table_schema = ? AND table_name = ? AND data_type = 'VARCHAR'",
                                                      [s, t]).fetchall()]
                    for c in cols:
                        for n in needles:
                            if con.execute(f'SELECT count(*) FROM "{s}"."{t}" WHERE contains("{c}", ?)', [n]).fetchone()[0]:
                                found.append(f"{rel}: {s}.{t}.{c} {n}")
            finally:
                con.close()
    return found


def test_nothing_of_the_user_is_left_anywhere(forgotten):
    paths, receipt, devices, *_ = forgotten
    assert devices and receipt["residue"] == []
    assert every_trace(paths, ["user02", *devices, SECRET_TITLE]) == []
    assert scan(paths, "user02") == []
    # and the rest is still there
    assert every_trace(paths, ["user01"]) != [] and q(paths.published, "SELECT count(*) FROM gold.gld_user_daily")[0][0] == 4


def test_the_airflow_and_dbt_logs_outside_the_data_root_are_reached(forgotten):
    paths, receipt, devices, *_, (task_log, dbt_log, named) = forgotten
    assert {str(task_log.parents[3].resolve()), str(dbt_log.parent.resolve())} <= set(receipt["log_roots"])
    assert not named.exists() and receipt["removed"]["log_files_removed"] == 1
    assert (dbt_log.parent / "dbt.log.1").read_text() == "older, rotated: [forgotten] and user01\n"
    assert "laptop02" in devices and receipt["removed"]["log_files_redacted"] >= 3  # 2 files for the id, 1 for the device
    text = task_log.read_text()
    assert "user02" not in text and "laptop02" not in text and "rows of user01" in text
    assert "[forgotten]" in text and "[forgotten-device]" in text
    assert "user02" not in dbt_log.read_text() and "gld_user_daily" in dbt_log.read_text()
    assert scan_logs(log_roots(paths), "user02") == []
    assert scan_logs(log_roots(paths), "user01") != []  # the scan sees what is there


def test_a_log_folder_that_is_not_a_log_folder_is_refused(tmp_path):
    from focuslake.config import PROJECT_ROOT
    paths = Paths(tmp_path / "data")
    for env in ({"DBT_LOG_PATH": "logs"}, {"DBT_LOG_PATH": str(PROJECT_ROOT)},
                {"AIRFLOW__LOGGING__BASE_LOG_FOLDER": "/"}, {"DBT_LOG_PATH": str(tmp_path)}):
        with pytest.raises(ForgetError, match="log folder"):
            log_roots(paths, {"AIRFLOW_HOME": str(tmp_path / "home"), **env})
    (tmp_path / "home" / "logs").mkdir(parents=True)
    assert log_roots(paths, {"AIRFLOW_HOME": str(tmp_path / "home"), "DBT_LOG_PATH": str(tmp_path / "dbt")}) == [
        (tmp_path / "home" / "logs").resolve()]


def test_other_users_gold_is_unchanged_and_team_tables_recount(forgotten):
    paths, _, _, others, dau, *_ = forgotten
    for t, rows in others.items():
        assert q(paths.published, f"SELECT * FROM gold.{t} ORDER BY ALL") == rows, t
        assert q(paths.warehouse, f"SELECT * FROM gold.{t} ORDER BY ALL") == rows, t
    assert dict(q(paths.published, "SELECT day, dau FROM gold.gld_team_daily")) == {d: n - 1 for d, n in dau.items()}


def test_the_receipt_holds_counts_and_only_a_hash(forgotten):
    paths, receipt, *_ = forgotten
    text = Path(receipt["receipt"]).read_text()
    assert "user02" not in text and receipt["user_hash"] == user_hash(paths, "user02")
    assert receipt["removed"]["files"]["lake"]["files"] == 2 * 5  # 2 days x 5 streams
    assert receipt["removed"]["sqlite"] == {"receiver/receiver.sqlite": {"tokens": 1}}
    assert receipt["removed"]["duckdb"]["published"]["deleted"]["gold.gld_user_daily"] == 2
    assert set(receipt["removed"]["duckdb"]["warehouse"]["rebuilt"]) >= {"gld_team_daily", "slv_app_categories"}
    assert re.fullmatch(r"hmac-sha256:[0-9a-f]{64}", receipt["user_hash"])
    entry = access_log.entries(paths)[-1]
    assert entry["action"] == "forget" and entry["user_hash"] == receipt["user_hash"] and entry["os_user"]


def test_late_data_of_a_forgotten_user_is_refused(forgotten):
    paths, *_, (rel, data), _ = forgotten
    target = paths.landing / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)  # an offline laptop's queue arrives after the forget
    s = pipeline.ingest(paths)
    assert s["rows_read"] > 0 and s["rows_no_consent"] == s["rows_read"] and s["rows_written"] == 0
    assert not target.exists() and scan(paths, "user02") == []


def test_unknown_hash_and_bad_id_are_clear_errors(tmp_path):
    paths = Paths(tmp_path)
    with pytest.raises(ForgetError, match="no data of a user with hash"):
        forget_user(paths, "hmac-sha256:" + "0" * 64)
    with pytest.raises(ForgetError, match="bad user id"):
        forget_user(paths, "../etc")
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_every_table_model_says_how_retention_reaches_it():
    """A table with rows in time declares the day each row belongs to; the rest are rebuilt by
    retention and forget, which an incremental model cannot be (dbt_project.yml)."""
    from focuslake.privacy.warehouse import load_manifest
    models = [n for n in load_manifest()["nodes"].values()
              if n["resource_type"] == "model" and n["config"]["materialized"] in ("table", "incremental")]
    assert len(models) > 20
    for n in models:
        if n["config"]["materialized"] == "incremental":
            assert n["config"]["meta"].get("retention_last_day"), n["name"]
    dated = {n["name"] for n in models if n["config"]["meta"].get("retention_last_day")}
    # what has no day is a rollup over all time, a team table or the app/title catalogue
    assert {n["name"] for n in models} - dated == {"slv_app_categories", "gld_team_daily", "gld_team_retention",
                                                    "gld_user_streaks"}
