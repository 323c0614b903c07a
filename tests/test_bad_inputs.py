"""Bad inputs through the whole pipeline (ingest -> dbt build -> quality gate): 30+ distinct
kinds of bad binary and CSV segments land beside a simulated workload, each on its own device
(or path). Nothing crashes; each one is quarantined (whole file, or its bad rows) or flagged
with a reason (a ledger note, a skipped duplicate, or a named failed check of the gate); and
reconciliation stays exact for every segment (rows read = written + quarantined, the lake
holds exactly the written rows, the quarantine holds the evidence).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from collectors.simulate import simulate
from focuslake import events as ev
from focuslake import pipeline
from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, Paths
from focuslake.quality import QualityError

pytestmark = pytest.mark.slow
DAY = "2026-11-16"
US = 1_000_000
T0 = int(datetime(2026, 11, 16, 10, 0, tzinfo=UTC).timestamp() * US)
USER = "baduser"
METRICS_HDR = ("ts_us,cpu_percent,mem_percent,swap_percent,disk_read_bytes,disk_write_bytes,"
               "net_sent_bytes,net_recv_bytes,battery_percent,on_ac_power,top_process,top_process_cpu")


def mline(i: int, cpu="10.0", disk="1", ts: int | None = None) -> str:
    return f"{T0 + i * 5 * US if ts is None else ts},{cpu},40.0,0.0,{disk},2,3,4,90.0,true,code,1.5"


def metrics(n: int, bad: dict[int, str] | None = None) -> str:
    lines = [(bad or {}).get(i, mline(i)) for i in range(n)]
    return METRICS_HDR + "\n" + "\n".join(lines) + "\n"


def records(n: int, t0: int = T0, moves_only: bool = True) -> np.ndarray:
    r = ev.make_records(n)
    r["timestamp_us"] = t0 + np.arange(n, dtype=np.int64) * 100_000
    r["event_type"] = ev.EventType.MOUSE_MOVE if moves_only else np.where(
        np.arange(n) % 2, ev.EventType.MOUSE_MOVE, ev.EventType.KEY_PRESS)
    r["app_name"] = b"code"
    r["process_id"] = 42
    r["data"][:, 0] = 100 + np.arange(n) % 50
    r["data"][:, 1] = 200
    return r


def seg(recs: np.ndarray, device: str, user: str = USER) -> bytes:
    return ev.encode_segment(recs, user, device, int(recs["timestamp_us"][0]) if len(recs) else T0)


def flip(b: bytes, at: int) -> bytes:
    return b[:at] + bytes([b[at] ^ 0xFF]) + b[at + 1:]


def patch(b: bytes, at: int, new: bytes) -> bytes:
    at = at % len(b)
    return b[:at] + new + b[at + len(new):]


def with_types(types: dict[int, int], n: int = 100) -> np.ndarray:
    r = records(n)
    for i, t in types.items():
        r["event_type"][i] = t
    return r


def with_ts(ts: dict[int, int], n: int = 100) -> np.ndarray:
    r = records(n)
    for i, t in ts.items():
        r["timestamp_us"][i] = t
    return r


def keycodes_without_consent() -> bytes:
    r = records(100, moves_only=False)
    keys = r["event_type"] == ev.EventType.KEY_PRESS
    r["data"][keys, 0] = 38
    r["data"][keys, 1] = 30
    body = r.tobytes()
    return ev.pack_header(USER, "k14", T0, flags=0) + body + ev.pack_footer(len(r), zlib.crc32(body))


def duplicated_records() -> bytes:
    r = records(1500, t0=T0 + 3600 * US)
    return seg(np.concatenate([r, r]), "k15")


@dataclass
class Kind:
    name: str
    rel: str                 # landing path
    content: object          # bytes, str, or a callable(now_us) -> bytes | str
    outcome: str             # file | rows | note | duplicate | flag
    reason: str              # reason prefix (file), reason substring (rows/note/duplicate), check name (flag)
    bad_rows: int = 0        # rows expected quarantined (rows outcome)
    flag_where: str = ""     # text the failed check's partition or detail must contain (flag)


def _bin(device: str, name: str = "events-x-0000.bin", user: str = USER) -> str:
    return f"events/{user}/{device}/{DAY}/{name}"


def _csv(stream: str, device: str, name: str | None = None, day: str = DAY, user: str = USER) -> str:
    return f"{stream}/{user}/{device}/{day}/{name or stream + '-x-0000.csv'}"


GOOD = seg(records(100), "k00")
KINDS = [
    # -- binary segments: the whole file is untrustworthy
    Kind("bin_truncated_mid_record", _bin("k01"), seg(records(100), "k01")[:-40], "file", "truncated"),
    Kind("bin_no_footer", _bin("k02"), seg(records(100), "k02")[:-ev.FOOTER_SIZE], "file", "truncated"),
    Kind("bin_tiny", _bin("k03"), b"FOCUS", "file", "truncated"),
    Kind("bin_zero_bytes", _bin("k04"), b"", "file", "truncated"),
    Kind("bin_bad_checksum", _bin("k05"), flip(seg(records(100), "k05"), ev.HEADER_SIZE + 70), "file", "bad_checksum"),
    Kind("bin_bad_magic", _bin("k06"), b"NOTFOCUS" + seg(records(100), "k06")[8:], "file", "bad_magic"),
    Kind("bin_future_format_version", _bin("k07"), patch(seg(records(100), "k07"), 8, (9).to_bytes(2, "little")),
         "file", "unsupported_version"),
    Kind("bin_footer_zeroed", _bin("k08"), patch(seg(records(100), "k08"), -ev.FOOTER_SIZE, b"\0" * ev.FOOTER_SIZE),
         "file", "missing_footer"),
    Kind("bin_count_mismatch", _bin("k09"), patch(seg(records(100), "k09"), -8, (999).to_bytes(8, "little")),
         "file", "count_mismatch"),
    Kind("bin_identity_mismatch", _bin("k10"), seg(records(100), "k10", user="mallory"), "file",
         "identity_mismatch"),
    # -- binary records: the bad rows only
    Kind("bin_unknown_event_type", _bin("k11"), seg(with_types({3: 99, 4: 200}), "k11"), "rows",
         "unknown event_type", bad_rows=2),
    Kind("bin_event_type_unknown_zero", _bin("k12"), seg(with_types({5: 0}), "k12"), "rows",
         "unknown event_type", bad_rows=1),
    Kind("bin_timestamp_before_2000", _bin("k13"), seg(with_ts({7: 10**12, 8: 0}), "k13"), "rows",
         "timestamp out of range", bad_rows=2),
    Kind("bin_timestamp_days_in_future", _bin("k16"),
         lambda now: seg(with_ts({9: now + 10 * 86_400 * US}), "k16"), "rows", "timestamp out of range",
         bad_rows=1),
    # -- binary: flagged
    Kind("bin_key_codes_without_consent", _bin("k14"), keycodes_without_consent(), "note", "key codes scrubbed"),
    Kind("bin_duplicate_records", _bin("k15"), duplicated_records(), "flag", "duplicate_rate", flag_where=DAY),
    Kind("bin_resent_under_another_name", _bin("k00", "events-resent-0000.bin"), GOOD, "duplicate",
         "same checksum already processed"),
    # -- CSV segments: the whole file
    Kind("csv_missing_column", _csv("system_metrics", "k20"),
         METRICS_HDR.replace(",swap_percent", "") + "\n" + f"{T0},10,40,1,2,3,4,90,true,code,1\n", "file",
         "schema: missing columns ['swap_percent']"),
    Kind("csv_extra_column", _csv("system_metrics", "k21"), METRICS_HDR + ",gpu\n" + mline(0) + ",3\n", "file",
         "schema: unexpected columns ['gpu']"),
    Kind("csv_blank_lines_only", _csv("system_metrics", "k22"), "\n\n", "file", "schema: empty file"),
    # a zero-byte CSV has the same checksum as the zero-byte binary above: skipped, with the reason
    Kind("csv_zero_bytes_same_as_another_file", _csv("system_metrics", "k19"), "", "duplicate",
         "same checksum already processed (this run)"),
    Kind("csv_no_header_row", _csv("system_metrics", "k23"), mline(0) + "\n" + mline(1) + "\n", "file",
         "schema: missing columns"),
    Kind("csv_header_not_utf8", _csv("system_metrics", "k24"), b"ts_us,cpu_\xff\xfe\n1,2\n", "file",
         "schema: header row is not UTF-8"),
    Kind("csv_duplicate_header_names", _csv("system_events", "k25"), "ts_us,event,event\n1,lock,lock\n",
         "file", "schema: duplicate column names"),
    Kind("path_unknown_stream", f"keystrokes/{USER}/k26/{DAY}/keystrokes-x-0000.csv", "ts_us,key\n26,a\n",
         "file", "bad_path: unknown stream"),
    Kind("path_invalid_user_id", f"system_events/bad user/k27/{DAY}/system_events-x-0000.csv",
         "ts_us,event\n27,lock\n", "file", "bad_path: invalid user_id"),
    Kind("path_invalid_date_dir", f"system_events/{USER}/k28/16-11-2026/system_events-x-0000.csv",
         "ts_us,event\n28,lock\n", "file", "bad_path: invalid date directory"),
    Kind("path_wrong_extension", _csv("system_events", "k29", "system_events-x-0000.bin"), "ts_us,event\n29,lock\n",
         "file", "bad_path: system_events segments end in .csv"),
    Kind("path_too_shallow", f"system_events/{USER}/system_events-x-0000.csv", "ts_us,event\n30,lock\n",
         "file", "bad_path: expected"),
    # -- CSV rows
    Kind("csv_unparseable_value", _csv("system_metrics", "k30"), metrics(20, {3: mline(3, cpu="abc")}),
         "rows", "unparseable row: CAST", bad_rows=1),
    Kind("csv_too_few_fields", _csv("system_metrics", "k31"), metrics(20, {4: mline(4).rsplit(",", 2)[0]}),
         "rows", "unparseable row", bad_rows=1),
    Kind("csv_too_many_fields", _csv("system_metrics", "k32"), metrics(20, {5: mline(5) + ",9,9"}),
         "rows", "unparseable row", bad_rows=1),
    Kind("csv_cpu_out_of_range", _csv("system_metrics", "k33"), metrics(20, {6: mline(6, cpu="150.0")}),
         "rows", "cpu_percent above maximum 100", bad_rows=1),
    Kind("csv_negative_counter", _csv("system_metrics", "k34"), metrics(20, {7: mline(7, disk="-5")}),
         "rows", "disk_read_bytes below minimum 0", bad_rows=1),
    Kind("csv_missing_required_value", _csv("system_metrics", "k35"), metrics(20, {8: mline(8, cpu="")}),
         "rows", "missing required value: cpu_percent", bad_rows=1),
    Kind("csv_value_not_accepted", _csv("system_events", "k36"),
         f"ts_us,event\n{T0},lock\n{T0 + US},explode\n{T0 + 2 * US},unlock\n", "rows", "event not one of",
         bad_rows=1),
    Kind("csv_timestamp_days_in_future", _csv("system_metrics", "k37"),
         lambda now: metrics(20, {9: mline(9, ts=now + 5 * 86_400 * US)}), "rows", "ts_us out of range",
         bad_rows=1),
    # -- CSV: flagged by the gate
    Kind("csv_titles_missing", _csv("active_window", "k40"),
         "ts_us,app_name,window_title,pid,reason\n" + "".join(
             f"{T0 + i * 5 * US},code,,7,heartbeat\n" for i in range(1200)), "flag", "null_rate", flag_where=DAY),
    Kind("csv_clock_ahead_within_a_day", _csv("system_metrics", "k41", day="{today}"),
         lambda now: METRICS_HDR + "\n" + "".join(mline(0, ts=now + 3600 * US + i * 5 * US) + "\n" for i in range(20)),
         "flag", "gx_ts_not_in_future", flag_where="20 of"),
    Kind("csv_clock_set_back", _csv("system_metrics", "k42"),
         metrics(10) + mline(0, ts=T0 - 6 * 86_400 * US) + "\n", "flag", "gx_ts_not_before_first_segment",
         flag_where="2026-11-10"),
    Kind("csv_lock_without_unlock", _csv("system_events", "k43"),
         f"ts_us,event\n{T0},collector_start\n{T0 + 60 * US},lock\n{T0 + 120 * US},lock\n", "flag",
         "event_order_lock_unlock", flag_where=f"{USER}/k43"),
]
assert len({k.name for k in KINDS}) == len(KINDS) >= 20


def dbt_build(paths: Paths) -> subprocess.CompletedProcess:
    env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(paths.root)}
    return subprocess.run([str(Path(sys.executable).with_name("dbt")), "build", "--profiles-dir", ".",
                           "--target-path", str(paths.root / "dbt_target"), "--log-path",
                           str(paths.root / "dbt_logs")], cwd=DBT_PROJECT_DIR, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    paths = Paths(tmp_path_factory.mktemp("bad") / "data")
    simulate(paths.root, users=1, days=1, hours=1, seed=3, start=date(2026, 11, 16), durable=False)
    now_us = int(time.time() * US)
    today = (datetime(1970, 1, 1) + timedelta(microseconds=now_us + 3600 * US)).date().isoformat()
    good = paths.landing / _bin("k00")
    good.parent.mkdir(parents=True, exist_ok=True)
    good.write_bytes(GOOD)
    assert pipeline.ingest(paths)["segments_quarantined"] == 0  # the baseline and k00 land first
    rels = {}
    for k in KINDS:
        rel = k.rel.replace("{today}", today)
        content = k.content(now_us) if callable(k.content) else k.content
        p = paths.landing / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        rels[k.name] = rel
    ingest = pipeline.ingest(paths)
    build = dbt_build(paths)
    err = None
    try:
        pipeline.check_quality(paths)
    except QualityError as e:
        err = e
    con = duckdb.connect()
    ledger = {r[0]: dict(zip(("path", "status", "rows_read", "rows_written", "rows_quarantined", "reason",
                                  "note"), r)) for r in con.execute(
        f"SELECT path, status, rows_read, rows_written, rows_quarantined, reason, note "
        f"FROM read_parquet('{paths.ledger_export}')").fetchall()}
    lake = dict(con.execute(f"SELECT segment_id, count(*) FROM read_parquet('{paths.lake}/*/date=*/*.parquet', "
                            "union_by_name=true) GROUP BY 1").fetchall())
    results_file = max((paths.root / "quality" / "results").glob("*.parquet"))
    cur = con.execute(f"SELECT * FROM read_parquet('{results_file}')")
    names = [d[0] for d in cur.description]
    results = [dict(zip(names, r)) for r in cur.fetchall()]
    con.close()
    return {"paths": paths, "ingest": ingest, "build": build, "err": err, "ledger": ledger, "lake": lake,
            "results": results, "rels": rels}


def test_no_crash_anywhere(run):
    assert run["ingest"]["segments_new"] == len(KINDS)
    assert run["build"].returncode == 0, run["build"].stdout[-3000:]
    assert isinstance(run["err"], QualityError)  # the gate refused, with reasons: not a crash
    assert {r["check_name"] for r in run["results"] if r["detail"].startswith("could not run")} == set()


def test_reconciliation_exact_for_every_segment(run):
    for path, row in run["ledger"].items():
        assert row["rows_read"] == row["rows_written"] + row["rows_quarantined"], row
        if row["status"] == "ingested":
            assert run["lake"].get(path, 0) == row["rows_written"], path
        else:
            assert path not in run["lake"], path
    for name in ("segment_rows_reconcile", "lake_matches_ledger", "day_rows_reconcile", "quarantine_evidence"):
        rows = [r for r in run["results"] if r["check_name"] == name]
        assert rows and all(r["passed"] for r in rows), name


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_bad_input_is_quarantined_or_flagged_with_reason(run, kind):
    rel = run["rels"][kind.name]
    entry = run["ledger"][rel]
    q = run["paths"].quarantine
    if kind.outcome == "file":
        assert entry["status"] == "quarantined" and entry["reason"].startswith(kind.reason), entry
        assert entry["rows_written"] == 0 and entry["rows_read"] == entry["rows_quarantined"]
        note = json.loads((q / "files" / (rel + ".reason.json")).read_text())
        assert note["reason"] == entry["reason"] and (q / "files" / rel).exists()
        assert not (run["paths"].landing / rel).exists()
    elif kind.outcome == "rows":
        assert entry["status"] == "ingested" and entry["rows_quarantined"] == kind.bad_rows, entry
        assert kind.reason.split(":")[0] in entry["reason"]  # the ledger names the kind of reason
        rejects = duckdb.execute(f"SELECT reason FROM read_parquet('{q / 'rows' / (rel + '.rejects.parquet')}')"
                                 ).fetchall()
        assert len(rejects) == kind.bad_rows and all(kind.reason in r for (r,) in rejects)
        assert run["lake"][rel] == entry["rows_written"] > 0
    elif kind.outcome == "note":
        assert entry["status"] == "ingested" and kind.reason in entry["note"]
        codes = duckdb.execute(f"SELECT max(data_0), max(data_1) FROM read_parquet('{run['paths'].lake}/events/*/*.parquet') "
                               "WHERE event_type = 1 AND segment_id = ?", [rel]).fetchone()
        assert codes == (0, 0)
    elif kind.outcome == "duplicate":
        assert entry["status"] == "duplicate" and kind.reason in entry["reason"]
        assert entry["rows_read"] == entry["rows_written"] == 0 and rel not in run["lake"]
    else:
        failed = [r for r in run["results"] if r["check_name"] == kind.reason and not r["passed"]]
        assert failed, f"{kind.reason} did not fail"
        assert any(kind.flag_where in (r["partition_key"] + " " + r["detail"]) for r in failed), failed
        assert kind.reason in str(run["err"])
