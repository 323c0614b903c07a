"""Ingest: landing -> lake. Every bad segment kind is quarantined or skipped with its reason,
counted, and reconciled (rows read = rows written + rows quarantined); nothing is lost or
duplicated; reruns and re-drops are no-ops."""
from __future__ import annotations

import json
import os
import sqlite3
import zlib

import duckdb
import numpy as np
import pyarrow.dataset as ds
import pytest

from focuslake import events as ev
from focuslake.config import Paths
from focuslake.ingest import ingest_landing, partition_path
from focuslake.segments import CsvSegmentWriter, EventSegmentWriter

T0 = 1_763_300_000_000_000  # 2025-11-16 13:33:20 UTC
NOW = T0 + 3600 * 1_000_000
DAY = "2025-11-16"


@pytest.fixture
def paths(tmp_path) -> Paths:
    return Paths(tmp_path / "data").ensure()


def records(n: int, t0: int = T0, step_us: int = 100_000) -> np.ndarray:
    r = ev.make_records(n)
    r["timestamp_us"] = t0 + np.arange(n) * step_us
    r["event_type"] = np.where(np.arange(n) % 2, ev.EventType.MOUSE_MOVE, ev.EventType.KEY_PRESS)
    r["app_name"] = b"code"
    r["process_id"] = 42
    r["data"][:, 0] = np.where(r["event_type"] == ev.EventType.MOUSE_MOVE, 100, 0)
    return r


def write_events(paths: Paths, recs: np.ndarray, user="alice", device="lap1", **kw):
    w = EventSegmentWriter(paths.landing, user, device, rotate_seconds=3600, **kw)
    w.write_records(recs)
    return w.seal()


def write_metrics(paths: Paths, rows: list, user="alice", device="lap1"):
    w = CsvSegmentWriter(paths.landing, "system_metrics", user, device, rotate_seconds=3600)
    w.write_rows(rows)
    return w.seal()


def metric_row(i: int, cpu=12.5):
    return [T0 + i * 5_000_000, cpu, 40.0, 0.0, 1, 2, 3, 4, 88.0, True, "code", 3.0]


def landing_file(paths: Paths, stream: str, name: str, content: bytes, user="alice", device="lap1"):
    p = paths.landing / stream / user / device / DAY / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)
    return p


def ledger_rows(paths: Paths) -> dict[str, dict]:
    con = sqlite3.connect(paths.ledger)
    con.row_factory = sqlite3.Row
    out = {r["path"]: dict(r) for r in con.execute("SELECT * FROM segments")}
    con.close()
    return out


def lake_count(paths: Paths, stream: str) -> int:
    files = list((paths.lake / stream).glob("date=*/*.parquet"))
    if not files:
        return 0
    return duckdb.execute(f"SELECT count(*) FROM read_parquet('{paths.lake}/{stream}/date=*/*.parquet', "
                      "hive_partitioning=true)").fetchone()[0]


def assert_reconciled(paths: Paths, summary: dict) -> None:
    assert summary["rows_read"] == summary["rows_written"] + summary["rows_quarantined"]
    for row in ledger_rows(paths).values():
        assert row["rows_read"] == row["rows_written"] + row["rows_quarantined"], row


# -- the happy path ------------------------------------------------------------------------
def test_good_segments_land_in_hive_partitions_readable_by_duckdb_and_pyarrow(paths):
    write_events(paths, records(500))
    write_metrics(paths, [metric_row(i) for i in range(50)])
    s = ingest_landing(paths, now_us=NOW)
    assert s["segments_ingested"] == 2 and s["rows_written"] == 550 and s["rows_quarantined"] == 0
    target = partition_path(paths.lake, "events", DAY, "alice", "lap1")
    assert target.exists()
    rows = duckdb.execute(f"SELECT user_id, device_id, date, count(*) FROM read_parquet("
                      f"'{paths.lake}/events/date=*/*.parquet', hive_partitioning=true) GROUP BY ALL").fetchall()
    assert [(u, d, str(day), n) for u, d, day, n in rows] == [("alice", "lap1", DAY, 500)]
    table = ds.dataset(paths.lake / "system_metrics", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 50 and set(table.column_names) >= {"user_id", "device_id", "date", "cpu_percent"}
    assert_reconciled(paths, s)


def test_rerun_is_a_noop_and_redrop_with_same_checksum_is_skipped(paths):
    seg = write_events(paths, records(100))
    first = ingest_landing(paths, now_us=NOW)
    assert first["rows_written"] == 100
    again = ingest_landing(paths, now_us=NOW)
    assert again["segments_new"] == 0 and again["rows_written"] == 0
    copy = seg.with_name("events-redropped-0000.bin")  # same bytes under another name
    copy.write_bytes(seg.read_bytes())
    redo = ingest_landing(paths, now_us=NOW)
    assert redo["segments_duplicate"] == 1 and redo["rows_written"] == 0
    assert lake_count(paths, "events") == 100
    entry = ledger_rows(paths)[copy.relative_to(paths.landing).as_posix()]
    assert entry["status"] == "duplicate" and "same checksum" in entry["reason"]


def test_part_files_are_never_read(paths):
    landing_file(paths, "events", "events-x-0000.bin.part", b"half written")
    s = ingest_landing(paths, now_us=NOW)
    assert s["segments_new"] == 0 and not any(paths.quarantine.rglob("*.part"))


def test_changed_segment_replaces_its_rows_idempotently(paths):
    """A segment re-landed with different content replaces its own rows, never duplicates."""
    seg = write_events(paths, records(100))
    ingest_landing(paths, now_us=NOW)
    other = write_events(paths, records(10, t0=T0 + 600_000_000))  # a second segment, same partition
    ingest_landing(paths, now_us=NOW)
    seg.write_bytes(ev.encode_segment(records(40), "alice", "lap1", T0))
    s = ingest_landing(paths, now_us=NOW)
    assert s["rows_written"] == 40
    assert lake_count(paths, "events") == 50  # 40 (new version) + 10 (other segment)
    assert other.exists()


def test_crash_between_lake_write_and_ledger_is_redone_without_duplicates(paths, monkeypatch):
    write_events(paths, records(100))
    from focuslake import ledger as ledger_mod

    def boom(self, entries):
        raise RuntimeError("simulated crash before the ledger commit")
    monkeypatch.setattr(ledger_mod.Ledger, "record", boom)
    with pytest.raises(RuntimeError):
        ingest_landing(paths, now_us=NOW)
    assert lake_count(paths, "events") == 100  # the lake was written, the ledger was not
    monkeypatch.undo()
    s = ingest_landing(paths, now_us=NOW)
    assert s["rows_written"] == 100
    assert lake_count(paths, "events") == 100  # redone, not duplicated


# -- bad binary segments: quarantined whole ---------------------------------------------------
def _good_bytes(n=20) -> bytes:
    return ev.encode_segment(records(n), "alice", "lap1", T0)


def _flip(b: bytes, at: int) -> bytes:
    return b[:at] + bytes([b[at] ^ 0xFF]) + b[at + 1:]


BAD_BINARY = {
    "truncated": (lambda b: b[:-40], "truncated"),
    "no_footer": (lambda b: b[:-ev.FOOTER_SIZE], "truncated"),
    "tiny": (lambda b: b[:10], "truncated"),
    "bad_checksum": (lambda b: _flip(b, ev.HEADER_SIZE + 70), "bad_checksum"),
    "bad_magic": (lambda b: b"NOTFOCUS" + b[8:], "bad_magic"),
    "future_version": (lambda b: b[:8] + (2).to_bytes(2, "little") + b[10:], "unsupported_version"),
    "footer_zeroed": (lambda b: b[:-ev.FOOTER_SIZE] + b"\0" * ev.FOOTER_SIZE, "missing_footer"),
    "count_mismatch": (lambda b: b[:-8] + (999).to_bytes(8, "little"), "count_mismatch"),
    "identity_mismatch": (lambda b: ev.encode_segment(records(20), "mallory", "lap1", T0),
                          "identity_mismatch"),
}


@pytest.mark.parametrize("kind", sorted(BAD_BINARY))
def test_bad_binary_segment_is_quarantined_whole_with_reason(paths, kind):
    mutate, reason = BAD_BINARY[kind]
    bad = landing_file(paths, "events", f"events-{kind}-0000.bin", mutate(_good_bytes()))
    write_events(paths, records(30, t0=T0 + 10_000_000_000))  # a good neighbour still lands
    s = ingest_landing(paths, now_us=NOW + 20_000_000_000)
    assert s["segments_quarantined"] == 1 and s["segments_ingested"] == 1
    assert not bad.exists()
    moved = paths.quarantine / "files" / bad.relative_to(paths.landing)
    assert moved.exists()
    note = json.loads(moved.with_name(moved.name + ".reason.json").read_text())
    assert note["reason"].startswith(reason), note
    entry = ledger_rows(paths)[bad.relative_to(paths.landing).as_posix()]
    assert entry["status"] == "quarantined" and entry["reason"].startswith(reason)
    assert entry["rows_written"] == 0 and entry["rows_read"] == entry["rows_quarantined"]
    assert lake_count(paths, "events") == 30
    assert_reconciled(paths, s)


def test_bad_records_are_quarantined_row_by_row_with_raw_bytes(paths):
    r = records(50)
    r["event_type"][3] = 99                                   # unknown type
    r["timestamp_us"][7] = NOW + 10 * 86_400 * 1_000_000       # ten days in the future
    r["event_type"][9] = ev.EventType.UNKNOWN                 # "should never occur"
    write_events(paths, r)
    s = ingest_landing(paths, now_us=NOW)
    assert (s["rows_read"], s["rows_written"], s["rows_quarantined"]) == (50, 47, 3)
    rej = duckdb.execute(f"SELECT line, reason, raw FROM read_parquet('{paths.quarantine}/rows/**/*.parquet') "
                     "ORDER BY line").fetchall()
    assert [(line, reason) for line, reason, _ in rej] == [
        (3, "unknown event_type"), (7, "timestamp out of range"), (9, "unknown event_type")]
    assert bytes.fromhex(rej[0][2]) == r[3].tobytes()  # the evidence is the record itself
    assert_reconciled(paths, s)


def test_key_identity_without_consent_is_scrubbed_at_ingest(paths):
    """Even if a collector misbehaves and writes key codes without the consent flag."""
    r = records(20)
    r["data"][r["event_type"] == ev.EventType.KEY_PRESS, 0] = 38  # 'a'
    r["data"][r["event_type"] == ev.EventType.KEY_PRESS, 1] = 30
    body = r.tobytes()
    raw = ev.pack_header("alice", "lap1", T0, flags=0) + body + ev.pack_footer(len(r), zlib.crc32(body))
    p = landing_file(paths, "events", "events-rogue-0000.bin", raw)
    ingest_landing(paths, now_us=NOW)
    codes = duckdb.execute(f"SELECT max(data_0), max(data_1) FROM read_parquet('{paths.lake}/events/*/*.parquet') "
                       "WHERE event_type = 1").fetchone()
    assert codes == (0, 0)
    assert "key codes scrubbed" in ledger_rows(paths)[p.relative_to(paths.landing).as_posix()]["note"]


# -- bad CSV segments -------------------------------------------------------------------------
HEADER = "ts_us,cpu_percent,mem_percent,swap_percent,disk_read_bytes,disk_write_bytes,net_sent_bytes," \
         "net_recv_bytes,battery_percent,on_ac_power,top_process,top_process_cpu"
GOOD_LINE = f"{T0},10.0,40.0,0.0,1,2,3,4,90.0,true,code,1.5"


@pytest.mark.parametrize("kind,content,reason", [
    ("missing_column", HEADER.replace(",swap_percent", "") + "\n" + f"{T0},10,40,1,2,3,4,90,true,code,1\n",
     "schema: missing columns ['swap_percent']"),
    ("extra_column", HEADER + ",gpu\n" + GOOD_LINE + ",3\n", "schema: unexpected columns ['gpu']"),
    ("empty_file", "", "schema: empty file"),
    ("no_header", GOOD_LINE + "\n", "schema: missing columns"),
])
def test_csv_schema_violations_quarantine_the_file(paths, kind, content, reason):
    bad = landing_file(paths, "system_metrics", f"system_metrics-{kind}-0000.csv", content.encode())
    s = ingest_landing(paths, now_us=NOW)
    assert s["segments_quarantined"] == 1
    entry = ledger_rows(paths)[bad.relative_to(paths.landing).as_posix()]
    assert entry["status"] == "quarantined" and entry["reason"].startswith(reason), entry
    assert (paths.quarantine / "files" / bad.relative_to(paths.landing)).exists()
    assert_reconciled(paths, s)


def test_csv_bad_rows_are_quarantined_good_rows_kept(paths):
    lines = [HEADER, GOOD_LINE,
             f"{T0 + 5_000_000},abc,40.0,0.0,1,2,3,4,90.0,true,code,1.5",    # unparseable value
             f"{T0 + 10_000_000},10.0,40.0,0.0,1,2,3,4,90.0,true,code",      # too few columns
             f"{T0 + 15_000_000},150.0,40.0,0.0,1,2,3,4,90.0,true,code,1.5",  # CPU out of range
             f"{T0 + 20_000_000},,40.0,0.0,1,2,3,4,90.0,true,code,1.5",       # required value missing
             f"{NOW + 90_000_000_000},10.0,40.0,0.0,1,2,3,4,90.0,true,code,1.5",  # future
             f"{T0 + 25_000_000},10.0,40.0,0.0,-5,2,3,4,90.0,true,code,1.5",  # negative counter
             f"{T0 + 30_000_000},11.0,41.0,,1,2,3,4,,,\"a, \"\"quoted\"\" name\",",  # optional NULLs
             ]
    p = landing_file(paths, "system_metrics", "system_metrics-mixed-0000.csv", ("\n".join(lines) + "\n").encode())
    s = ingest_landing(paths, now_us=NOW)
    assert (s["rows_read"], s["rows_written"], s["rows_quarantined"]) == (8, 2, 6)
    reasons = sorted(r for (r,) in duckdb.execute(
        f"SELECT reason FROM read_parquet('{paths.quarantine}/rows/**/*.parquet')").fetchall())
    assert any(r.startswith("unparseable row: CAST") for r in reasons)
    assert any(r.startswith("unparseable row: MISSING COLUMNS") for r in reasons)
    assert "cpu_percent above maximum 100" in reasons
    assert "missing required value: cpu_percent" in reasons
    assert "ts_us out of range (before 2000 or in the future)" in reasons
    assert "disk_read_bytes below minimum 0" in reasons
    kept = duckdb.execute(f"SELECT top_process, swap_percent FROM read_parquet('{paths.lake}/system_metrics/*/*.parquet') "
                      "ORDER BY ts_us").fetchall()
    assert kept == [("code", 0.0), ('a, "quoted" name', None)]
    entry = ledger_rows(paths)[p.relative_to(paths.landing).as_posix()]
    assert entry["status"] == "ingested" and entry["rows_quarantined"] == 6
    assert_reconciled(paths, s)


def test_csv_accepted_values_are_enforced(paths):
    w = CsvSegmentWriter(paths.landing, "system_events", "alice", "lap1", rotate_seconds=3600)
    w.write_rows([[T0, "lock"], [T0 + 1, "explode"], [T0 + 2, "unlock"]])
    w.seal()
    s = ingest_landing(paths, now_us=NOW)
    assert (s["rows_written"], s["rows_quarantined"]) == (2, 1)
    (reason,) = duckdb.execute(f"SELECT reason FROM read_parquet('{paths.quarantine}/rows/**/*.parquet')").fetchone()
    assert reason.startswith("event not one of")


@pytest.mark.parametrize("rel,reason", [
    ("nostream/alice/lap1/2025-11-16/x.csv", "bad_path: unknown stream"),
    ("system_events/al ice/lap1/2025-11-16/x.csv", "bad_path: invalid user_id"),
    ("system_events/alice/lap1/16-11-2025/x.csv", "bad_path: invalid date directory"),
    ("system_events/alice/lap1/2025-11-16/x.bin", "bad_path: system_events segments end in .csv"),
    ("system_events/alice/x.csv", "bad_path: expected"),
])
def test_files_outside_the_landing_layout_are_quarantined(paths, rel, reason):
    p = paths.landing / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("ts_us,event\n1,lock\n")
    s = ingest_landing(paths, now_us=NOW)
    assert s["segments_quarantined"] == 1
    assert ledger_rows(paths)[rel]["reason"].startswith(reason)
    assert not p.exists() and (paths.quarantine / "files" / rel).exists()
    assert_reconciled(paths, s)


def test_segment_crossing_midnight_is_split_into_two_date_partitions(paths):
    midnight = 1_763_337_600_000_000  # 2025-11-17 00:00 UTC
    w = EventSegmentWriter(paths.landing, "alice", "lap1", rotate_seconds=7200)
    w.write_records(records(100, t0=midnight - 5_000_000))  # 5 s before to 5 s after midnight
    w.seal()
    ingest_landing(paths, now_us=midnight + 3600 * 1_000_000)
    days = duckdb.execute(f"SELECT date::VARCHAR, count(*) FROM read_parquet('{paths.lake}/events/*/*.parquet', "
                      "hive_partitioning=true) GROUP BY 1 ORDER BY 1").fetchall()
    assert days == [("2025-11-16", 50), ("2025-11-17", 50)]


def test_ledger_export_matches_ledger_and_lake(paths):
    write_events(paths, records(100))
    write_metrics(paths, [metric_row(i) for i in range(10)] + [metric_row(11, cpu=-1)])
    ingest_landing(paths, now_us=NOW)
    exported = duckdb.execute(f"SELECT path, status, rows_written, rows_quarantined FROM "
                          f"read_parquet('{paths.ledger_export}') ORDER BY path").fetchall()
    assert [(r[1], r[2], r[3]) for r in exported] == [("ingested", 100, 0), ("ingested", 10, 1)]
    assert os.path.getsize(paths.ledger_export) > 0


def test_chunked_ingest_gives_the_same_lake_as_one_chunk(tmp_path):
    """Memory is bounded by processing the backlog in chunks; the result must not depend on it."""
    results = []
    for chunk_bytes in (1 << 40, 1):  # everything at once / one segment per chunk
        paths = Paths(tmp_path / f"c{chunk_bytes}").ensure()
        for k in range(3):
            write_events(paths, records(200, t0=T0 + k * 3_600_000_000))
        write_metrics(paths, [metric_row(i) for i in range(40)])
        s = ingest_landing(paths, now_us=NOW + 4 * 3_600_000_000, chunk_bytes=chunk_bytes)
        assert s["rows_written"] == 640 and s["segments_ingested"] == 4
        results.append(duckdb.execute(
            f"SELECT * EXCLUDE (segment_id) FROM read_parquet('{paths.lake}/*/date=*/*.parquet', "
            "union_by_name=true) ORDER BY ALL").fetchall())
    assert results[0] == results[1]
