"""Housekeeping of the data root, run daily by the `focus_maintenance` DAG (or by hand:
``python -m focuslake.maintenance``).

* :func:`maintain_warehouse` -- the working DuckDB warehouse: ``CHECKPOINT`` (everything into the
  main file, the WAL emptied), then, when at least ``min_free_ratio`` of its blocks are free
  (incremental delete+insert and rebuilt tables leave free blocks: DuckDB never shrinks a file),
  a compaction: ``COPY FROM DATABASE`` into a new file beside it, every table's row count
  compared, fsync, then an atomic rename over the old file. Needs the single writer (the DAG runs
  it in pool ``warehouse_writer``); the analysts' published copy follows at the next publish.
* :func:`remove_orphan_temp_files` -- the ``.<name>.tmp-<pid>`` files that the atomic writers
  (ingest partitions, ledger export, publish) leave behind only when their process died between
  write and rename: removed when that process is gone and the file is older than a grace period.
* :func:`apply_retention` -- retention by data class (sensitive 7 days, general 30, system 90,
  configurable in ``<data>/privacy/policy.toml``) across landing, quarantine, lake, ledger,
  warehouse and the published copy: :mod:`focuslake.privacy.retention`.
* :func:`clean_airflow_metadata` -- Airflow's own records (DAG runs with their conf, task
  instances, XCom return values, the audit log table, asset events, jobs) older than the general
  class, purged by ``airflow db clean`` without archive tables (an archive would be one more copy).
  Not a task of the DAG: Airflow 3 blocks database access from task code, so this runs with the
  command line (``python -m focuslake.maintenance --airflow-metadata-only``, e.g. from cron).

Every function returns a JSON-able report of what it did.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

from focuslake.config import Paths
from focuslake.segments import fsync_dir, pid_alive

ORPHAN_RE = re.compile(r"^\..+\.tmp-(\d+)$")
DEFAULT_MIN_FREE_RATIO = 0.25
DEFAULT_ORPHAN_GRACE_S = 3600.0


def _table_counts(con, catalog: str) -> dict[str, int]:
    tables = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1, 2",
        [catalog]).fetchall()
    return {f"{s}.{t}": con.execute(f'SELECT count(*) FROM "{catalog}"."{s}"."{t}"').fetchone()[0]
            for s, t in tables}


def _size(con) -> tuple[int, int]:
    row = con.execute("SELECT total_blocks, free_blocks FROM pragma_database_size() "
                      "WHERE database_name = current_database()").fetchone()
    return int(row[0]), int(row[1])


def maintain_warehouse(paths: Paths | None = None, *, min_free_ratio: float = DEFAULT_MIN_FREE_RATIO) -> dict:
    """Checkpoint the working warehouse and compact it when enough of it is free space."""
    paths = paths or Paths.from_env()
    db = paths.warehouse
    if not db.exists():
        return {"warehouse": str(db), "action": "none: no working warehouse yet"}
    report = {"warehouse": str(db), **compact(db, min_free_ratio=min_free_ratio)}
    return report


def compact(db: Path, *, min_free_ratio: float = 0.0) -> dict:
    """``CHECKPOINT`` a DuckDB file and, when at least ``min_free_ratio`` of its blocks are free,
    rewrite it: ``COPY FROM DATABASE`` into a new file beside it, every table's row count
    compared, fsync, atomic rename over the old one. With ``min_free_ratio=0`` it always
    rewrites -- what deletions for privacy need: DuckDB leaves deleted rows' bytes in free
    blocks until then. Needs the file's single writer."""
    import duckdb

    report: dict = {"bytes_before": db.stat().st_size}
    tmp = db.with_name(f".{db.name}.tmp-{os.getpid()}")
    con = duckdb.connect(str(db))
    try:
        con.execute("CHECKPOINT")
        total, free = _size(con)
        ratio = free / total if total else 0.0
        report.update(total_blocks=total, free_blocks=free, free_ratio=round(ratio, 4))
        if total == 0 or ratio < min_free_ratio:
            report["action"] = f"checkpoint (free {ratio:.0%} < {min_free_ratio:.0%}: no compaction)"
            return report
        tmp.unlink(missing_ok=True)
        catalog = con.execute("SELECT current_database()").fetchone()[0]
        con.execute(f"ATTACH '{tmp}' AS compacted")
        try:
            con.execute(f'COPY FROM DATABASE "{catalog}" TO compacted')
            before, after = _table_counts(con, catalog), _table_counts(con, "compacted")
            if before != after:
                raise RuntimeError(f"compaction of {db} lost rows, kept the old file: {before} != {after}")
            con.execute("CHECKPOINT compacted")
        finally:
            con.execute("DETACH compacted")
        report["tables"] = len(before)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    if Path(f"{tmp}.wal").exists():
        raise RuntimeError(f"compacted copy {tmp} still has a WAL after its checkpoint; kept the old file")
    mode = db.stat().st_mode & 0o777
    os.chmod(tmp, mode)
    fsync_dir(tmp)
    # The old file was checkpointed and closed: a WAL left beside it would be replayed against
    # the new file on the next open, so it goes first.
    Path(f"{db}.wal").unlink(missing_ok=True)
    os.replace(tmp, db)  # readers holding the old file keep it until they close it
    dir_fd = os.open(db.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    report["bytes_after"] = db.stat().st_size
    report["action"] = "checkpoint + compaction"
    return report


def remove_orphan_temp_files(paths: Paths | None = None, *, grace_s: float = DEFAULT_ORPHAN_GRACE_S,
                             now: float | None = None) -> dict:
    """Remove ``.<name>.tmp-<pid>`` files of dead writers older than ``grace_s`` seconds.

    Looks in the lake, the warehouse and published folders (where the atomic writers put them);
    never in landing/ (collectors own their ``.part`` files) or quarantine/.
    """
    paths = paths or Paths.from_env()
    now = time.time() if now is None else now
    removed, kept = [], []
    for base in (paths.lake, paths.warehouse.parent, paths.published.parent):
        if not base.exists():
            continue
        for f in base.rglob(".*.tmp-*"):
            m = ORPHAN_RE.match(f.name)
            if not m or not f.is_file():
                continue
            age = now - f.stat().st_mtime
            if age >= grace_s and not pid_alive(int(m.group(1))):
                f.unlink(missing_ok=True)
                removed.append(str(f.relative_to(paths.root)))
            else:
                kept.append(str(f.relative_to(paths.root)))
    return {"removed": sorted(removed), "kept_in_progress": sorted(kept)}


def apply_retention(paths: Paths | None = None) -> dict:
    """Retention by data class (:func:`focuslake.privacy.retention.apply_retention`): everything
    past its class's age, in every layer; returns what was removed."""
    from focuslake.privacy.retention import apply_retention as by_class

    return by_class(paths or Paths.from_env())


# What `airflow db clean` purges here: a DAG run and everything hanging off it (its conf, task
# instances and their history, XCom values), the log table, asset events and old jobs. Not the
# DAG and DAG-version rows (the DAGs in use), connections or variables.
AIRFLOW_CLEAN_TABLES = ("dag_run", "task_instance", "task_instance_history", "task_reschedule", "xcom", "log",
                        "asset_event", "job")


def clean_airflow_metadata(paths: Paths | None = None, *, now=None) -> dict:
    """Purge Airflow's metadata records older than the general class's retention
    (``<data>/privacy/policy.toml``, default 30 days) with ``airflow db clean --skip-archive``.

    A DAG run keeps what was passed to it (a forget's or an export's conf) and its tasks' return
    values (XCom): this is where they age out. Uses the Airflow of this environment (the project's
    ``.airflow`` unless ``AIRFLOW_HOME``, ``FOCUSLAKE_AIRFLOW_DB`` or a database URL is set); with
    no metadata DB there yet, nothing is done. Inside an Airflow task it raises (see above).
    """
    import subprocess
    import sys
    from datetime import UTC, datetime, timedelta

    from focuslake.airflow_env import airflow_env
    from focuslake.privacy.policy import GENERAL, load_policy

    paths = paths or Paths.from_env()
    now = now or datetime.now(UTC)
    before = now - timedelta(days=load_policy(paths).days[GENERAL])
    # the project's settings for this home (FOCUSLAKE_AIRFLOW_DB or the SQLite file), under whatever
    # the environment sets itself (a deployment's AIRFLOW__DATABASE__SQL_ALCHEMY_CONN wins)
    home = Path(os.environ["AIRFLOW_HOME"]) if os.environ.get("AIRFLOW_HOME") else None
    env = {**airflow_env(home), **os.environ}
    url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if url.startswith("airflow-db-not-allowed"):  # what Airflow 3 gives a task's process
        raise RuntimeError("Airflow's metadata DB cannot be cleaned from inside an Airflow task (Airflow 3 "
                           "blocks database access from task code): run `python -m focuslake.maintenance` "
                           "from cron or by hand")
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///").split("?")[0]).exists():
        return {"before": before.isoformat(), "skipped": "no Airflow metadata DB"}
    cmd = [str(Path(sys.executable).with_name("airflow")), "db", "clean", "--clean-before-timestamp",
           before.isoformat(), "--tables", ",".join(AIRFLOW_CLEAN_TABLES), "--skip-archive", "--yes",
           "--error-on-cleanup-failure"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db clean failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return {"before": before.isoformat(), "tables": list(AIRFLOW_CLEAN_TABLES)}


def run_maintenance(paths: Paths | None = None) -> dict:
    """Everything above, in order: retention, orphan temp files, warehouse checkpoint/compaction,
    Airflow's metadata records."""
    paths = paths or Paths.from_env()
    return {"retention": apply_retention(paths), "orphans": remove_orphan_temp_files(paths),
            "warehouse": maintain_warehouse(paths), "airflow_metadata": clean_airflow_metadata(paths)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m focuslake.maintenance", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="data root (default: FOCUSLAKE_DATA or data/)")
    parser.add_argument("--airflow-metadata-only", action="store_true",
                        help="only purge Airflow's old metadata records (for cron: the rest runs in the "
                        "focus_maintenance DAG, in the warehouse writer pool)")
    args = parser.parse_args(argv)
    paths = Paths(args.data.resolve()) if args.data else Paths.from_env()
    report = ({"airflow_metadata": clean_airflow_metadata(paths)} if args.airflow_metadata_only
              else run_maintenance(paths))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
