"""Quality gate parts that need no dbt build: the committed GX context and its privacy, import
cost, the quarantine CLI (list/show/export/reingest/discard, as a real subprocess) with the
gate's quarantine-driven checks, and the publish guard of write-audit-publish."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from focuslake.config import NO_TELEMETRY_ENV, PROJECT_ROOT, Paths
from focuslake.ingest import ingest_landing
from focuslake.publish import PublishError, publish_warehouse, write_audit_stamp
from focuslake.quality import checks as C
from focuslake.quality import gx as G
from focuslake.quality.suites import GOLD_SUITES, SUITES
from focuslake.quarantine import unresolved_rels
from focuslake.segments import CsvSegmentWriter

T0 = 1_763_300_000_000_000  # 2025-11-16 13:33:20 UTC
NOW = T0 + 3600 * 1_000_000
DAY = "2025-11-16"
HEADER = ("ts_us,cpu_percent,mem_percent,swap_percent,disk_read_bytes,disk_write_bytes,net_sent_bytes,"
          "net_recv_bytes,battery_percent,on_ac_power,top_process,top_process_cpu")


def metric_line(i: int, cpu: float = 10.0) -> str:
    return f"{T0 + i * 5_000_000},{cpu},40.0,0.0,1,2,3,4,90.0,true,code,1.5"


# --- the GX file data context --------------------------------------------------------------------
def test_committed_gx_context_matches_the_declarations():
    assert G.stale_files() == [], "run `python -m focuslake.quality.gx sync` and commit expectations/gx"
    names = {p.stem for p in (G.CONTEXT_DIR / "checkpoints").glob("*.json")}
    assert names == set(SUITES)
    assert {"brz_events", "brz_system_metrics", "brz_active_window", "brz_input_counts",
            "brz_system_events", "gld_user_hourly", "gld_user_daily", "gld_user_app_hourly",
            "gld_user_app_daily"} <= names
    # one suite per gold table, each with key uniqueness, ranges and timestamp sanity
    for s in GOLD_SUITES:
        checks = {e["meta"]["check"] for e in G.expectations_for(s)}
        assert {"key_unique", "range", "ts_not_in_future", "ts_not_before_first_segment",
                "row_count", "schema_columns", "schema_types"} <= checks, s.name


def test_sync_is_deterministic(tmp_path):
    assert G.sync(tmp_path) and G.sync(tmp_path) == []  # second sync changes nothing
    assert G.stale_files(tmp_path) == []
    (tmp_path / "checkpoints" / "leftover.json").write_text("{}")
    assert G.stale_files(tmp_path) == ["checkpoints/leftover.json"]


def test_quality_modules_import_without_great_expectations():
    """DAG files reach focuslake.pipeline/.quality at parse time; GX (seconds to import) must
    only load when checks run."""
    code = ("import sys, focuslake.pipeline, focuslake.quality, focuslake.quality.gx, "
            "focuslake.quality.checks, focuslake.publish, focuslake.quarantine; "
            "print([m for m in sys.modules if m.startswith('great_expectations')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow  # imports GX (8-15 s here)
def test_gx_analytics_off_and_no_outside_connection(tmp_path, monkeypatch):
    """Analytics off in the context config and the environment; a real validation run with
    Data Docs opens no socket to anything but loopback."""
    assert NO_TELEMETRY_ENV["GX_ANALYTICS_ENABLED"] == "false"
    assert "analytics_enabled: false" in (G.CONTEXT_DIR / "great_expectations.yml").read_text()
    import pandas as pd

    attempts: list = []
    real_connect = socket.socket.connect

    def spy(self, address):
        attempts.append(address)
        return real_connect(self, address)
    monkeypatch.setattr(socket.socket, "connect", spy)
    monkeypatch.delenv("GX_ANALYTICS_ENABLED", raising=False)
    paths = Paths(tmp_path)
    context = G.open_context(paths)  # applies NO_TELEMETRY_ENV first
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"
    assert context.config.analytics_enabled is False
    suite = SUITES["brz_system_events"]
    frame = G._normalise(pd.DataFrame({
        "user_id": ["u1", "u1"], "device_id": ["d1", "d1"],
        "ts": pd.to_datetime(["2026-11-16 10:00", "2026-11-16 11:00"]), "ts_us": [1, 2],
        "event": ["lock", "explode"], "segment_id": ["s", "s"],
        "date": pd.to_datetime(["2026-11-16", "2026-11-16"]),
        G.FIRST_SEGMENT_COL: pd.to_datetime(["2026-11-16", "2026-11-16"])}))
    params = {"max_ts": pd.Timestamp("2026-11-17"), "min_rows": 1, "max_rows": None}
    result = G.run_suite(context, suite, frame, params, "privacy-test")
    rows = {(r.name, r.column): r for r in G.flatten(suite, result, params)}
    assert not rows[("gx_accepted_values", "event")].passed  # the run really validated
    assert "explode" in rows[("gx_accepted_values", "event")].detail
    assert rows[("gx_range", "ts")].passed if ("gx_range", "ts") in rows else True
    index = G.build_site(context)
    assert index.exists() and index.is_relative_to(tmp_path)
    # GX's pages would load a tracking pixel (logo with the context id) and CDN scripts when
    # opened: the built site references nothing remote, and its index is static
    for page in index.parent.rglob("*.html"):
        text = page.read_text()
        assert "dataContextId" not in text and not re.search(r"(src|href)=[\"']https?://[^\"']*\.(js|css|png)",
                                                              text), page
    text = index.read_text()
    assert "<td>FAILED</td>" in text and ">brz_system_events</a>" in text and "privacy-test" in text
    bad = [a for a in attempts if not (isinstance(a, tuple) and str(a[0]).startswith(("127.", "::1", "localhost")))
           and not isinstance(a, str)]
    assert bad == [], f"GX tried to connect to {bad}"
    assert not list(G.CONTEXT_DIR.rglob("uncommitted")), "nothing is written into the repo at run time"


# --- the quarantine CLI and the checks it drives ------------------------------------------------
def cli(paths: Paths, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FOCUSLAKE_DATA": str(paths.root)}
    return subprocess.run([sys.executable, "-m", "focuslake.quarantine", *args], env=env, check=False,
                          capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)


def landing_csv(paths: Paths, stream: str, name: str, text: str, device="lap1") -> Path:
    p = paths.landing / stream / "alice" / device / DAY / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def gate_rows(paths: Paths) -> dict[str, list]:
    """The quarantine-driven checks of the gate over this data root (no warehouse needed)."""
    con = duckdb.connect()
    u = unresolved_rels(paths)
    ctx = C.Ctx(paths, datetime(2026, 1, 1), None, u["file"], u["rows"])
    C.prepare(con, ctx)
    out = {}
    for fn in (C.schema_violations, C.ingestion_error_rate, C.reconcile_segments, C.quarantine_evidence):
        for c in fn(con, ctx):
            out.setdefault(c.name, []).append(c)
    con.close()
    return out


@pytest.fixture
def qpaths(tmp_path) -> Paths:
    paths = Paths(tmp_path / "data").ensure()
    w = CsvSegmentWriter(paths.landing, "system_metrics", "alice", "lap1", rotate_seconds=3600)
    w.write_rows([[T0 + i * 5_000_000, 10.0, 40.0, 0.0, 1, 2, 3, 4, 90.0, True, "code", 1.5]
                  for i in range(200)])
    w.seal()
    return paths


def test_schema_drift_quarantined_listed_fixed_and_reingested(qpaths):
    paths = qpaths
    drift = landing_csv(paths, "system_metrics", "system_metrics-drift-0000.csv",
                        HEADER + ",gpu_percent\n" + "\n".join(metric_line(300 + i) + ",5.0" for i in range(20)) + "\n")
    rel = drift.relative_to(paths.landing).as_posix()
    ingest_landing(paths, now_us=NOW)
    gate = gate_rows(paths)
    assert not gate["schema_violations"][0].passed
    assert [c.partition for c in gate["schema_violations"][1:]] == [rel]
    assert all(c.passed for c in gate["segment_rows_reconcile"] + gate["quarantine_evidence"])

    out = cli(paths, "list")
    assert out.returncode == 0 and f"file:{rel}" in out.stdout and "unexpected columns ['gpu_percent']" in out.stdout
    shown = cli(paths, "show", f"file:{rel}")
    assert "gpu_percent" in shown.stdout and "reason:" in shown.stdout
    # re-ingesting the unchanged file is refused: it would be a no-op
    same = cli(paths, "reingest", f"file:{rel}")
    assert same.returncode == 1 and "unchanged" in same.stderr
    # the fix: drop the extra column, keep the evidence (--from)
    fixed = paths.root / "fixed.csv"
    fixed.write_text(HEADER + "\n" + "\n".join(metric_line(300 + i) for i in range(20)) + "\n")
    done = cli(paths, "reingest", f"file:{rel}", "--from", str(fixed), "--ingest")
    assert done.returncode == 0, done.stderr
    assert (paths.quarantine / "resolved" / "files" / rel).exists()  # the original bytes stay
    note = json.loads((paths.quarantine / "resolved" / "files" / (rel + ".reason.json")).read_text())
    assert note["resolution"]["action"] == "reingested" and note["reason"].startswith("schema:")
    ledger = duckdb.execute(f"SELECT status, rows_read, rows_written, rows_quarantined FROM "
                            f"read_parquet('{paths.ledger_export}') WHERE path = ?", [rel]).fetchone()
    assert ledger == ("ingested", 20, 20, 0)
    lake = duckdb.execute(f"SELECT count(*) FROM read_parquet('{paths.lake}/system_metrics/*/*.parquet')"
                          ).fetchone()[0]
    assert lake == 220
    gate = gate_rows(paths)
    assert gate["schema_violations"][0].passed and gate["ingestion_error_rate"][0].passed
    assert all(c.passed for c in gate["segment_rows_reconcile"] + gate["lake_matches_ledger"]
               + gate["quarantine_evidence"])
    assert "quarantine is empty" in cli(paths, "list").stdout
    assert "[reingested]" in cli(paths, "list", "--all").stdout


def test_rejected_rows_exported_fixed_and_reingested_as_a_new_segment(qpaths):
    paths = qpaths
    lines = [metric_line(400 + i, cpu=150.0 if i % 2 else 20.0) for i in range(10)]  # 5 out of range
    seg = landing_csv(paths, "system_metrics", "system_metrics-hot-0000.csv", HEADER + "\n" + "\n".join(lines) + "\n")
    rel = seg.relative_to(paths.landing).as_posix()
    ingest_landing(paths, now_us=NOW)
    gate = gate_rows(paths)
    rate = gate["ingestion_error_rate"]
    assert not rate[0].passed and any(c.partition == f"system_metrics {DAY}" and rel in c.detail for c in rate[1:])
    listed = cli(paths, "list", "--json")
    (item,) = [i for i in json.loads(listed.stdout) if i["kind"] == "rows"]
    assert item["rel"] == rel and item["rows"] == 5 and "cpu_percent above maximum 100" in item["reason"]
    out = paths.root / "rejects.csv"
    assert cli(paths, "export", f"rows:{rel}", str(out)).returncode == 0
    text = out.read_text().splitlines()
    assert text[0] == HEADER and len(text) == 6 and all(",150.0," in t for t in text[1:])
    out.write_text("\n".join([text[0]] + [t.replace(",150.0,", ",99.0,") for t in text[1:]]) + "\n")
    done = cli(paths, "reingest", f"rows:{rel}", "--from", str(out), "--ingest")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.split("\n}\n", 1)[1])
    assert summary["rows_written"] == 5 and summary["rows_quarantined"] == 0
    cpu = duckdb.execute(f"SELECT count(*) FILTER (WHERE cpu_percent = 99.0), count(*) FROM "
                         f"read_parquet('{paths.lake}/system_metrics/*/*.parquet')").fetchone()
    assert cpu == (5, 210)  # 200 + the 5 good rows of the segment + the 5 fixed ones
    gate = gate_rows(paths)
    assert gate["ingestion_error_rate"][0].passed
    assert all(c.passed for c in gate["segment_rows_reconcile"] + gate["lake_matches_ledger"]
               + gate["quarantine_evidence"])


def test_discard_accepts_a_loss_and_keeps_the_evidence(qpaths):
    paths = qpaths
    bad = landing_csv(paths, "input_counts", "input_counts-x-0000.csv",
                      "ts_us,bucket_s,key_presses,clicks,mouse_moves,mouse_distance_px\n1,5,0,0,0,0\n")
    rel = bad.relative_to(paths.landing).as_posix()
    ingest_landing(paths, now_us=NOW)
    assert not gate_rows(paths)["schema_violations"][0].passed
    r = cli(paths, "discard", rel, "--note", "collector 0.9 bug, no wheel column; rows unrecoverable")
    assert r.returncode == 0, r.stderr
    assert gate_rows(paths)["schema_violations"][0].passed
    kept = paths.quarantine / "resolved" / "files" / rel
    assert kept.exists() and "rows unrecoverable" in kept.with_name(kept.name + ".reason.json").read_text()
    assert cli(paths, "discard", rel, "--note", "again").returncode == 1  # nothing unresolved left


def test_path_fix_of_identical_bytes_is_refused_with_the_reason(qpaths):
    """A file quarantined for its path keeps its bytes; the ingest skips a checksum it has
    already processed, so the CLI says so instead of landing a silent no-op."""
    paths = qpaths
    p = paths.landing / "system_metrics" / "alice" / "lap1" / "16-11-2025" / "system_metrics-p-0000.csv"
    p.parent.mkdir(parents=True)
    p.write_text(HEADER + "\n" + metric_line(500) + "\n")
    ingest_landing(paths, now_us=NOW)
    rel = "system_metrics/alice/lap1/16-11-2025/system_metrics-p-0000.csv"
    r = cli(paths, "reingest", f"file:{rel}", "--as", f"system_metrics/alice/lap1/{DAY}/system_metrics-p-0000.csv")
    assert r.returncode == 1 and "already processed" in r.stderr
    assert cli(paths, "list").stdout.count("file:") == 1  # still unresolved, nothing landed
    assert not (paths.landing / "system_metrics" / "alice" / "lap1" / DAY / "system_metrics-p-0000.csv").exists()


# --- publish guard -------------------------------------------------------------------------------
def small_warehouse(paths: Paths, version: int) -> None:
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(paths.warehouse))
    con.execute("CREATE SCHEMA IF NOT EXISTS gold")
    con.execute("CREATE OR REPLACE TABLE gold.gld_user_daily AS SELECT ? AS version, range AS i "
                "FROM range(1000)", [version])
    con.close()


def test_publish_needs_a_passing_audit_of_the_unchanged_warehouse(tmp_path):
    paths = Paths(tmp_path)
    small_warehouse(paths, 1)
    with pytest.raises(PublishError, match="run the quality gate first"):
        publish_warehouse(paths)
    write_audit_stamp(paths, "run-failed", False, ["null_rate on bronze.brz_active_window"])
    with pytest.raises(PublishError, match="null_rate on bronze.brz_active_window"):
        publish_warehouse(paths)
    assert not paths.published.exists()
    write_audit_stamp(paths, "run-ok", True, [])
    manifest = publish_warehouse(paths)
    assert manifest["audit_run_id"] == "run-ok" and manifest["gold_rows"] == {"gld_user_daily": 1000}
    assert oct(paths.published.stat().st_mode & 0o777) == "0o444"
    before = paths.published.read_bytes()
    small_warehouse(paths, 2)  # a transform after the audit
    with pytest.raises(PublishError, match="changed after the audit"):
        publish_warehouse(paths)
    assert paths.published.read_bytes() == before
    assert not list(paths.published.parent.glob(".*tmp*"))


def test_lake_file_with_drifted_columns_fails_lake_schema(qpaths):
    """A Parquet file in the lake not written by the ingest, with an extra and without a column,
    is named by the lake_schema check (bronze views read the lake with union_by_name)."""
    paths = qpaths
    ingest_landing(paths, now_us=NOW)
    assert all(c.passed for c in C.lake_schema(duckdb.connect(), C.Ctx(paths, datetime(2026, 1, 1), None,
                                                                        set(), set())))
    part = next((paths.lake / "system_metrics").glob("date=*/*.parquet"))
    duckdb.execute(f"COPY (SELECT * EXCLUDE (swap_percent), 1.5 AS gpu_percent FROM read_parquet('{part}', "
                   "hive_partitioning = false)) "
                   f"TO '{part.with_name('foreign~tool.parquet')}' (FORMAT parquet)")
    rows = C.lake_schema(duckdb.connect(), C.Ctx(paths, datetime(2026, 1, 1), None, set(), set()))
    assert not rows[0].passed
    (bad,) = [r for r in rows[1:] if not r.passed]
    assert bad.partition.startswith("system_metrics/date=") and bad.partition.endswith("foreign~tool.parquet")
    assert "unexpected columns ['gpu_percent']" in bad.detail and "missing columns ['swap_percent']" in bad.detail
