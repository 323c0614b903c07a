"""focuslake.maintenance on real DuckDB files and a real data root (no Airflow)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import duckdb
import pytest

from focuslake import maintenance
from focuslake.config import Paths


def _warehouse(paths: Paths, rows: int = 400_000, keep: int = 1000) -> dict:
    """A warehouse with schemas, a view and a table most of whose rows were deleted."""
    paths.ensure()
    con = duckdb.connect(str(paths.warehouse))
    con.execute("CREATE SCHEMA gold; CREATE SCHEMA silver")
    con.execute(f"CREATE TABLE silver.events AS SELECT range AS id, repeat('x', 40) || range AS payload "
                f"FROM range({rows})")
    con.execute("CREATE TABLE gold.daily AS SELECT id % 7 AS day, count(*) AS n FROM silver.events GROUP BY ALL")
    con.execute("CREATE VIEW gold.v_daily AS SELECT day, n * 2 AS twice FROM gold.daily")
    con.execute(f"DELETE FROM silver.events WHERE id >= {keep}")
    con.execute("CHECKPOINT")
    content = {
        "events": con.execute("SELECT count(*), sum(id), min(payload), max(payload) FROM silver.events").fetchone(),
        "daily": con.execute("SELECT * FROM gold.daily ORDER BY day").fetchall(),
        "view": con.execute("SELECT * FROM gold.v_daily ORDER BY day").fetchall(),
    }
    con.close()
    return content


def _content(paths: Paths) -> dict:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return {
            "events": con.execute("SELECT count(*), sum(id), min(payload), max(payload) FROM silver.events").fetchone(),
            "daily": con.execute("SELECT * FROM gold.daily ORDER BY day").fetchall(),
            "view": con.execute("SELECT * FROM gold.v_daily ORDER BY day").fetchall(),
        }
    finally:
        con.close()


def test_compaction_shrinks_the_file_and_keeps_every_row_view_and_schema(tmp_path):
    paths = Paths(tmp_path / "data")
    before = _warehouse(paths)
    size = paths.warehouse.stat().st_size
    report = maintenance.maintain_warehouse(paths)
    assert report["action"] == "checkpoint + compaction", report
    assert report["free_ratio"] >= 0.25 and report["tables"] == 2
    assert report["bytes_after"] == paths.warehouse.stat().st_size < size / 2
    assert _content(paths) == before
    assert not list(paths.warehouse.parent.glob(".*tmp*")) and not paths.warehouse.with_suffix(".duckdb.wal").exists()
    # a second run finds nothing to compact and changes nothing
    again = maintenance.maintain_warehouse(paths)
    assert again["action"].startswith("checkpoint (free") and _content(paths) == before


def test_a_dense_warehouse_is_only_checkpointed(tmp_path):
    paths = Paths(tmp_path / "data")
    _warehouse(paths, rows=200_000, keep=200_000)
    inode = paths.warehouse.stat().st_ino
    report = maintenance.maintain_warehouse(paths)
    assert report["action"].startswith("checkpoint (free")
    assert paths.warehouse.stat().st_ino == inode  # not rewritten


def test_no_warehouse_yet(tmp_path):
    assert maintenance.maintain_warehouse(Paths(tmp_path))["action"].startswith("none")


def test_the_warehouse_is_kept_when_another_writer_holds_it(tmp_path):
    """Outside the pool, a second DuckDB writer is refused (the lock the pool exists for):
    the old file stays untouched and no temp file is left behind."""
    paths = Paths(tmp_path / "data")
    before = _warehouse(paths)
    hold = "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); print('locked', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(paths.warehouse)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(duckdb.IOException, match="[Ll]ock"):
            maintenance.maintain_warehouse(paths)
    finally:
        holder.kill()
        holder.wait()
    assert _content(paths) == before
    assert not list(paths.warehouse.parent.glob(".*tmp*"))


def test_orphan_temp_files_of_dead_writers_are_removed_and_nothing_else(tmp_path):
    paths = Paths(tmp_path / "data").ensure()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(dead.stdout)  # that process has exited
    part_dir = paths.lake / "events" / "date=2026-11-17"
    part_dir.mkdir(parents=True)
    files = {
        "orphan_lake": part_dir / f".u1~d1.parquet.tmp-{dead_pid}",
        "orphan_published": paths.published.parent / f".focus.duckdb.tmp-{dead_pid}",
        "young_orphan": part_dir / f".u2~d1.parquet.tmp-{dead_pid}",
        "live_writer": paths.warehouse.parent / f".focus.duckdb.tmp-{os.getpid()}",
        "partition": part_dir / "u1~d1.parquet",
        "landing_part": paths.landing / f"x.tmp-{dead_pid}",
        "quarantine": paths.quarantine / f".x.tmp-{dead_pid}",
    }
    for f in files.values():
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x")
    old = time.time() - 7200
    for name, f in files.items():
        if name != "young_orphan":
            os.utime(f, (old, old))
    report = maintenance.remove_orphan_temp_files(paths)
    assert sorted(report["removed"]) == sorted(str(files[n].relative_to(paths.root))
                                               for n in ("orphan_lake", "orphan_published"))
    assert sorted(report["kept_in_progress"]) == sorted(str(files[n].relative_to(paths.root))
                                                        for n in ("young_orphan", "live_writer"))
    assert {n for n, f in files.items() if f.exists()} == {"young_orphan", "live_writer", "partition",
                                                           "landing_part", "quarantine"}


def test_retention_runs_by_class_and_keeps_recent_data(tmp_path):
    """The maintenance step is retention by data class (tests/test_privacy.py covers what it
    removes); on a warehouse with nothing dated it removes nothing."""
    paths = Paths(tmp_path / "data")
    before = _warehouse(paths, rows=1000, keep=1000)
    report = maintenance.apply_retention(paths)
    assert report["days"] == {"sensitive": 7, "general": 30, "system": 90} and not report["dry_run"]
    assert _content(paths) == before


def test_cli_prints_a_json_report(tmp_path):
    paths = Paths(tmp_path / "data")
    _warehouse(paths)
    import json

    out = subprocess.run([sys.executable, "-m", "focuslake.maintenance", "--data", str(paths.root)],
                         capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    assert set(report) == {"retention", "orphans", "warehouse", "airflow_metadata"}
    assert report["warehouse"]["action"] == "checkpoint + compaction"


def test_airflow_metadata_older_than_the_general_class_is_purged(airflow_ready, tmp_path):
    """A real DAG run (with conf and an XCom value) in this process's metadata DB: kept while it is
    younger than the general class (30 days), purged by `airflow db clean` once it is older."""
    from datetime import UTC, datetime, timedelta

    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from airflow_harness import run_dag

    paths = Paths(tmp_path / "data")
    paths.ensure()
    run_dag("focus_maintenance", conf={"note": "user01 asked"})

    def count() -> tuple[int, int]:
        with create_session() as session:
            return (session.query(DagRun).filter(DagRun.dag_id == "focus_maintenance").count(),
                    session.query(XComModel).filter(XComModel.dag_id == "focus_maintenance").count())

    runs, xcoms = count()
    assert runs >= 1 and xcoms >= 1
    now = datetime.now(UTC)
    kept = maintenance.clean_airflow_metadata(paths, now=now)
    assert count() == (runs, xcoms) and kept["before"].startswith(str((now - timedelta(days=30)).date()))
    maintenance.clean_airflow_metadata(paths, now=now + timedelta(days=31))
    assert count() == (0, 0)
