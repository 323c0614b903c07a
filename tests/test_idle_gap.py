"""An idle period whose IDLE_END never came (the collector stopped inside it; the next data is
another day's) is not "open until now": it ends at the device's next input. Found by the
freshness benchmark: 125 feature windows had idle_time_30s up to 60 s because the previous
day's last idle period stretched over the new day's periods."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from duck import q

from collectors.simulate import simulate
from focuslake import pipeline
from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, Paths

pytestmark = pytest.mark.slow


def test_an_unended_idle_period_ends_at_the_next_input(tmp_path):
    data = tmp_path / "data"
    simulate(data, users=1, days=1, seed=3, start=date(2026, 11, 30), hours=2, durable=False)
    simulate(data, users=1, days=1, seed=4, start=date(2026, 12, 1), hours=1, durable=False)
    pipeline.ingest(Paths(data))
    r = subprocess.run([str(Path(sys.executable).with_name("dbt")), "build", "--select", "+gld_focus_features", "--indirect-selection", "cautious",
                        "--profiles-dir", ".", "--target-path", str(tmp_path / "target"),
                        "--log-path", str(tmp_path / "logs")],
                       cwd=DBT_PROJECT_DIR, env={**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(data)},
                       capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == 0, r.stdout[-3000:]
    wh = Paths(data).warehouse
    # the case: an IDLE_START followed by another IDLE_START, no IDLE_END between
    unended = q(wh, """SELECT count(*) FROM (SELECT event_type, lead(event_type) OVER (
                         PARTITION BY user_id, device_id ORDER BY ts_us, event_type) AS nxt
                         FROM silver.slv_events WHERE event_type IN (10, 11)) WHERE event_type = 10 AND nxt = 10""")
    assert unended[0][0] >= 1
    overlaps = q(wh, """SELECT count(*) FROM (SELECT start_us, lag(coalesce(end_us, 9223372036854775807))
                          OVER (PARTITION BY user_id, device_id ORDER BY start_us) AS prev_end
                          FROM silver.slv_idle_periods) WHERE prev_end > start_us""")
    assert overlaps == [(0,)]
    assert q(wh, "SELECT count(*), max(idle_time_30s) <= 30 FROM gold.gld_focus_features")[0][1] is True
    assert q(wh, "SELECT count(*) FROM silver.slv_idle_periods WHERE is_open")[0][0] <= 1
