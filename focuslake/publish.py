"""Write-audit-publish: analysts never open the pipeline's working file. After the quality
gate passed, the working warehouse is checkpointed and copied to a temp file beside the
published copy, fsynced, and renamed over it in one atomic step. An analyst holding the old
file open keeps reading the old, consistent version; new connections see the new one.
"""
from __future__ import annotations

import json
import os
import shutil
import time

from focuslake.config import Paths

GOLD_TABLES = ("gld_user_hourly", "gld_user_daily", "gld_user_app_hourly", "gld_user_app_daily")


def publish_warehouse(paths: Paths) -> dict:
    import duckdb

    src, dst = paths.warehouse, paths.published
    if not src.exists():
        raise FileNotFoundError(f"no working warehouse at {src}: run the transform first")
    con = duckdb.connect(str(src))
    try:
        con.execute("CHECKPOINT")  # everything in the main file, nothing left in the WAL
        counts = {t: con.execute(f"SELECT count(*) FROM gold.{t}").fetchone()[0] for t in GOLD_TABLES}
    finally:
        con.close()
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    shutil.copyfile(src, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o444)  # read-only for analysts
    os.replace(tmp, dst)
    manifest = {"published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "source": str(src), "path": str(dst), "gold_rows": counts}
    dst.with_suffix(".json").write_text(json.dumps(manifest, indent=2))
    return manifest
