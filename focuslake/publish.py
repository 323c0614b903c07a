"""Write-audit-publish: analysts never open the pipeline's working file.

The quality gate (focuslake.quality.run_checks) leaves an audit stamp, <data>/quality/audited.json:
the run id, whether every critical check passed, and the working warehouse file's size and
mtime after the audit. `publish_warehouse` publishes only a warehouse whose stamp says passed
and whose file has not changed since (a transform that ran after the audit must be audited
again). It copies the working file to a temp file beside the published copy, fsyncs it, makes
it read-only and renames it over the published copy in one atomic step, then fsyncs the
directory. An analyst holding the old file open keeps reading the old, consistent version (the
rename does not touch the open inode, and a read-only DuckDB connection's shared lock does not
block it); new connections see the new one. If anything fails, the published copy stays as it
was: the last good state.
"""
from __future__ import annotations

import json
import os
import shutil
import time

from focuslake.config import Paths

GOLD_TABLES = ("gld_user_hourly", "gld_user_daily", "gld_user_app_hourly", "gld_user_app_daily")


class PublishError(RuntimeError):
    pass


def audit_stamp_path(paths: Paths):
    return paths.root / "quality" / "audited.json"


def _fingerprint(path) -> dict:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def write_audit_stamp(paths: Paths, run_id: str, passed: bool, failed: list[str], scope: dict | None = None) -> dict:
    """scope: what the GX suites validated (focuslake.quality.scope.Plan.describe: full or the
    partitions touched since the last passing audit)."""
    stamp = {"run_id": run_id, "passed": passed, "failed_checks": failed,
             "audited_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             **({"scope": scope} if scope else {}),
             "warehouse": str(paths.warehouse), **_fingerprint(paths.warehouse)}
    _write_json_atomic(audit_stamp_path(paths), stamp)
    return stamp


def _write_json_atomic(target, obj) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, target)


def check_audit(paths: Paths) -> dict:
    """The audit stamp, if it allows publishing the working warehouse as it is now."""
    p = audit_stamp_path(paths)
    if not p.exists():
        raise PublishError(f"no audit of {paths.warehouse}: run the quality gate first "
                           "(`python -m focuslake quality`)")
    stamp = json.loads(p.read_text())
    if not stamp.get("passed"):
        raise PublishError(f"the last audit ({stamp.get('run_id')}) failed: "
                           f"{', '.join(stamp.get('failed_checks') or [])}; the published copy stays "
                           "at the last good state")
    now = _fingerprint(paths.warehouse)
    if any(stamp.get(k) != v for k, v in now.items()):
        raise PublishError(f"the working warehouse changed after the audit {stamp.get('run_id')} "
                           "(a transform ran since?): audit it again before publishing")
    return stamp


def gold_counts(db) -> dict[str, int]:
    """Rows per gold table of a DuckDB file (opened read-only)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        have = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() "
                                          "WHERE schema_name = 'gold'").fetchall()}
        return {t: con.execute(f"SELECT count(*) FROM gold.{t}").fetchone()[0]
                for t in sorted(have) if t in GOLD_TABLES or t.startswith("gld_")}
    finally:
        con.close()


def write_published_manifest(paths: Paths, note: str) -> dict:
    """Refresh the published copy's manifest after retention or forget removed rows from it
    (the audit it came from stays named; ``purged_at`` says it has been purged since)."""
    target = paths.published.with_suffix(".json")
    manifest = json.loads(target.read_text()) if target.exists() else {"path": str(paths.published)}
    manifest.update(gold_rows=gold_counts(paths.published), purged_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    purge=note.strip().splitlines()[0])
    _write_json_atomic(target, manifest)
    return manifest


def publish_warehouse(paths: Paths, require_audit: bool = True) -> dict:
    src, dst = paths.warehouse, paths.published
    if not src.exists():
        raise FileNotFoundError(f"no working warehouse at {src}: run the transform first")
    stamp = check_audit(paths) if require_audit else {}
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)  # the audit checkpointed the file: nothing is left in a WAL
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        if require_audit and any(stamp.get(k) != v for k, v in _fingerprint(src).items()):
            raise PublishError("the working warehouse changed while it was being copied: not published")
        # count from the copy: the working file may be held open in this process (dbt-duckdb run
        # in-process by Cosmos keeps its database open), and DuckDB refuses a second connection
        # to one file with another configuration (read_only)
        counts = gold_counts(tmp)
        os.chmod(tmp, 0o444)  # read-only for analysts
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    dfd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)  # the rename itself survives a crash
    finally:
        os.close(dfd)
    manifest = {"published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "source": str(src), "path": str(dst), "audit_run_id": stamp.get("run_id"),
                "gold_rows": counts}
    _write_json_atomic(dst.with_suffix(".json"), manifest)
    return manifest
