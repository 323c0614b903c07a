"""Landing -> lake -> warehouse -> published copy, checked against the synthetic workload's
recorded ground truth (focuslake.verify states the tolerances and why).

Two paths: the pipeline functions with `dbt build` run alone from dbt_project/ (as a user
would), and the real Airflow DAG chain (tests/test_dags_end_to_end.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from collectors.simulate import simulate
from focuslake import pipeline
from focuslake.config import DBT_PROJECT_DIR, Paths
from focuslake.verify import compare_with_truth, format_report

pytestmark = pytest.mark.slow
DBT = Path(sys.executable).with_name("dbt")


def dbt(*args: str, data: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FOCUSLAKE_DATA": str(data), "DO_NOT_TRACK": "1"}
    return subprocess.run([str(DBT), *args, "--profiles-dir", "."], cwd=DBT_PROJECT_DIR, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Paths:
    """2 users x 3 days (Mon-Wed): simulate, ingest, dbt build, quality, publish."""
    paths = Paths(tmp_path_factory.mktemp("e2e") / "data")
    simulate(paths.root, users=2, days=3, seed=11, start=date(2026, 11, 16), durable=False)
    summary = pipeline.ingest(paths)
    assert summary["segments_quarantined"] == 0 and summary["rows_quarantined"] == 0, summary
    r = dbt("build", data=paths.root)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "Completed successfully" in r.stdout
    pipeline.check_quality(paths)
    pipeline.publish(paths)
    return paths


def test_gold_hourly_and_daily_match_ground_truth(built):
    diffs = compare_with_truth(built.published, built.truth)
    report = format_report(diffs)
    print(report)
    assert all(d.ok for d in diffs), report
    by = {(d.metric, d.grain): d for d in diffs}
    # the comparison really covered the workload (not an empty join)
    assert by[("keystrokes", "user-hour")].compared >= 2 * 3 * 5
    assert by[("active_seconds", "user-hour-app")].compared > by[("active_seconds", "user-hour")].compared
    assert by[("context_switches", "user-day")].compared >= 2 * 3


def test_published_copy_is_read_only_and_has_quality_results(built):
    con = duckdb.connect(str(built.published), read_only=True)
    try:
        passed, total = con.execute("SELECT count(*) FILTER (WHERE passed), count(*) "
                                    "FROM audit.check_results WHERE severity = 'critical'").fetchone()
        assert total > 0 and passed == total
        with pytest.raises(duckdb.Error):
            con.execute("CREATE TABLE gold.nope AS SELECT 1")
        days = con.execute("SELECT count(DISTINCT day) FROM gold.gld_user_daily").fetchone()[0]
        assert days == 3
    finally:
        con.close()


def test_rerun_changes_nothing(built):
    """Ingest again (nothing new) and rebuild: gold is row-identical."""
    q = "SELECT * FROM gold.gld_user_hourly ORDER BY user_id, hour_start"
    before = duckdb.connect(str(built.warehouse), read_only=True).execute(q).fetchall()
    assert pipeline.ingest(built)["segments_new"] == 0
    r = dbt("build", data=built.root)
    assert r.returncode == 0, r.stdout[-3000:]
    after = duckdb.connect(str(built.warehouse), read_only=True).execute(q).fetchall()
    assert before == after and len(before) > 0


def test_dbt_docs_describe_every_gold_column(built):
    r = dbt("docs", "generate", data=built.root)
    assert r.returncode == 0, r.stdout[-3000:]
    import json
    target = DBT_PROJECT_DIR / os.environ.get("DBT_TARGET_PATH", "target")  # tests/conftest.py sets it
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and node["name"].startswith("gld_"):
            real_cols = set(catalog["nodes"][node["unique_id"]]["columns"])
            documented = {c for c, meta in node["columns"].items() if meta.get("description")}
            assert real_cols == documented, (node["name"], real_cols ^ documented)
