"""One published warehouse for the analyst tests (test_queries, test_export, test_docs_site),
built once per test process: 3 users x 8 days, Thu 2026-10-29 .. Thu 2026-11-05 (a weekend, two
ISO weeks, two months), simulated, ingested, `dbt build` alone from dbt_project/ (as a user
would), audited and published -- the way tests/test_end_to_end.py builds one, without Airflow.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from functools import cache
from pathlib import Path

from focuslake.config import DBT_PROJECT_DIR, Paths

USERS, DAYS, START = 3, 8, date(2026, 10, 29)


@cache
def published_workload() -> Paths:
    from collectors.simulate import simulate
    from focuslake import pipeline

    root = Path(tempfile.mkdtemp(prefix="focuslake-analyst-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    paths = Paths(root / "data")
    simulate(paths.root, users=USERS, days=DAYS, seed=8, start=START, durable=False)
    summary = pipeline.ingest(paths)
    assert summary["segments_quarantined"] == 0, summary
    env = {**os.environ, "FOCUSLAKE_DATA": str(paths.root), "DO_NOT_TRACK": "1"}
    r = subprocess.run([str(Path(sys.executable).with_name("dbt")), "build", "--profiles-dir", "."], check=False,
                       cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    pipeline.check_quality(paths)
    pipeline.publish(paths)
    return paths
