"""Privacy at the source, under a real X server with the native capture running: without
keystroke-dynamics consent no key code, scan code or typed character reaches landing, lake or
warehouse; excluded apps and titles are never recorded; titles are redacted before they leave
the collector; and the collector follows the data root's consent registry while it runs."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest
from collector_harness import (
    DEVICE,
    USER,
    all_records,
    csv_rows,
    event_segments,
    start_collector,
    write_config,
)
from test_collectors import native_built  # noqa: F401 - fixture
from x11 import xserver  # noqa: F401 - fixture

from focuslake.config import DBT_PROJECT_DIR, Paths
from focuslake.events import EventType as E
from focuslake.ingest import ingest_landing
from focuslake.privacy import consent
from focuslake.privacy.policy import KEYSTROKE_DYNAMICS

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
TYPED = "qzjxvkwqzj"
SECRET_APP, SECRET_TITLE = "focusapp-vault", "Vault - bank PINs"
MAIL_TITLE = "Inbox - ann.lee@example.org - Mail"


def files_with(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_nothing_sensitive_reaches_landing_lake_or_warehouse(xserver, native_built, tmp_path):  # noqa: F811
    root = tmp_path / "data"
    landing, state = root / "landing", tmp_path / "state"
    cfg = write_config(tmp_path / "collector.toml", landing, state, rotate_seconds=2, flush_seconds=0.2,
                       network={"enabled": False}, native={"rotate_seconds": 2},
                       idle={"idle_seconds": 30, "afk_seconds": 60},
                       privacy={"exclude_apps": [SECRET_APP]})
    mail = xserver.open_window("focusapp-mail", MAIL_TITLE, 20, 20)
    run = start_collector(cfg, state, xserver.env, wait_native=True)
    try:
        xserver.xdotool("type", "--delay", "15", TYPED)
        xserver.open_window(SECRET_APP, SECRET_TITLE, 300, 20)
        xserver.xdotool("type", "--delay", "15", TYPED)
        xserver.xdotool("windowactivate", str(mail))
        xserver.wait_active(mail)
        run.wait_status(lambda s: s["input"]["totals"]["key_presses"] == 2 * len(TYPED), 20, "keys counted")
        st = run.status()
        assert st["privacy"]["windows_excluded"] == 1 and st["consent"]["keystroke_dynamics_effective"] is False
    finally:
        assert run.stop() == 0
    # landing: the excluded window is "[excluded]" in both the CSV stream and the native records
    titles = {(r["app_name"], r["window_title"]) for r in csv_rows(landing, "active_window")}
    assert titles >= {("focusapp-mail", "Inbox - [email] - Mail"), ("[excluded]", "[excluded]")}
    nat = all_records(landing, native=True)
    keys = nat[nat["event_type"] == E.KEY_PRESS]
    assert len(keys) == 2 * len(TYPED) and not keys["data"].any()
    assert set(keys["app_name"].tolist()) == {b"focusapp-mail", b"[excluded]"}
    assert (keys["process_id"][keys["app_name"] == b"[excluded]"] == 0).all()
    assert all(not h.key_identity_consent for _, h, _ in event_segments(landing))
    # the lake and the warehouse (bronze -> silver -> gold over the collector's own data)
    assert ingest_landing(Paths(root))["segments_quarantined"] == 0
    env = {**os.environ, "FOCUSLAKE_DATA": str(root)}
    r = subprocess.run([str(Path(sys.executable).with_name("dbt")), "build", "--select", "+slv_events",
                        "+gld_user_app_hourly", "--indirect-selection", "cautious", "--profiles-dir", "."],
                       cwd=DBT_PROJECT_DIR, env=env,
                       capture_output=True, text=True, check=False, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:]
    con = duckdb.connect(str(Paths(root).warehouse), read_only=True)
    try:
        n, codes = con.execute("SELECT count(*), count(*) FILTER (WHERE key_code <> 0 OR scan_code <> 0 "
                               "OR key_flags <> 0) FROM silver.slv_events WHERE event_type IN (1, 2)").fetchone()
        apps = {a for (a,) in con.execute("SELECT DISTINCT app_name FROM gold.gld_user_app_hourly").fetchall()}
    finally:
        con.close()
    assert n == 4 * len(TYPED) and codes == 0 and "[excluded]" in apps and SECRET_APP not in apps
    for needle in (TYPED.encode(), TYPED[:4].encode(), SECRET_APP.encode(), SECRET_TITLE.encode(),
                   b"ann.lee@example.org"):
        assert files_with(root, needle) == [], needle


def test_the_collector_follows_the_consent_registry(xserver, native_built, tmp_path):  # noqa: F811
    root = tmp_path / "data"
    paths = Paths(root)
    landing, state = paths.landing, tmp_path / "state"
    with consent.Registry(paths) as reg:
        reg.grant(USER, KEYSTROKE_DYNAMICS, at_us=0)
    cfg = write_config(tmp_path / "collector.toml", landing, state, rotate_seconds=1, flush_seconds=0.2,
                       network={"enabled": False}, native={"rotate_seconds": 1},
                       idle={"idle_seconds": 30, "afk_seconds": 60}, consent={"keystroke_dynamics": True},
                       privacy={"registry_check_seconds": 0.5})
    xserver.open_window("focusapp-term", "term", 20, 20)
    run = start_collector(cfg, state, xserver.env, wait_native=True)
    try:
        assert run.status()["consent"]["keystroke_dynamics_effective"] is True
        xserver.xdotool("type", "--delay", "15", "qz")
        run.wait_status(lambda s: s["input"]["totals"]["key_presses"] == 2, 10, "2 keys")
        time.sleep(1.5)                                    # the capture seals its 1 s window
        t_withdraw = time.time_ns() // 1000
        with consent.Registry(paths) as reg:
            reg.withdraw(USER, KEYSTROKE_DYNAMICS, at_us=t_withdraw)
            reg.withdraw(USER, "active_window", at_us=t_withdraw)
        run.wait_status(lambda s: not s["consent"]["keystroke_dynamics_effective"]
                        and s["consent"]["withdrawn_streams"] == ["active_window"], 10, "withdrawal seen")
        run.wait_status(lambda s: s["native"]["running"], 10, "capture restarted")
        xserver.open_window("focusapp-other", "other", 300, 20)
        xserver.xdotool("type", "--delay", "15", "qz")
        run.wait_status(lambda s: s["input"]["totals"]["key_presses"] == 4, 10, "4 keys")
        run.wait_status(lambda s: s["streams"]["active_window"]["rows_no_consent"] >= 1, 10, "window not written")
    finally:
        assert run.stop() == 0
    segs = event_segments(landing)
    with_keys = [(h.key_identity_consent, r) for f, h, r in segs if f.stem.rsplit("-", 1)[-1].startswith("n")]
    before = np.concatenate([r for ok, r in with_keys if ok])
    after = np.concatenate([r for ok, r in with_keys if not ok])
    kb, ka = (x[x["event_type"] == E.KEY_PRESS] for x in (before, after))
    assert len(kb) == 2 and kb["data"][:, 0].all()        # granted: key codes recorded
    assert len(ka) == 2 and not ka["data"].any()           # withdrawn: the capture restarted without them
    assert int(kb["timestamp_us"].max()) < t_withdraw <= int(ka["timestamp_us"].min())
    aw = csv_rows(landing, "active_window")
    # the collector polls the registry: it stops within one check (+ the tick lag, + load); what
    # it wrote in that gap is dated after the withdrawal, and the ingest refuses it by date
    late = [r for r in aw if int(r["ts_us"]) >= t_withdraw]
    assert aw and all(int(r["ts_us"]) < t_withdraw + 3_000_000 for r in late)
    assert not any(r["app_name"] == "focusapp-other" for r in aw)
    s = ingest_landing(paths)
    assert s["segments_quarantined"] == 0 and s["rows_no_consent"] >= len(late)
    in_lake = duckdb.execute(f"SELECT count(*), count(*) FILTER (WHERE ts_us >= {t_withdraw}) "
                             f"FROM read_parquet('{paths.lake}/active_window/*/*.parquet')").fetchone()
    assert in_lake == (len(aw) - len(late), 0)             # nothing of the window after it
    codes = duckdb.execute(f"SELECT count(*) FILTER (WHERE data_0 <> 0) FROM read_parquet('{paths.lake}/events/*/*.parquet') "
                           f"WHERE event_type = 1 AND user_id = '{USER}' AND device_id = '{DEVICE}'").fetchone()[0]
    assert codes == 2  # the ingest keeps them only where the registry granted them
