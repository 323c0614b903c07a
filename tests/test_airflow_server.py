"""The project's Airflow as its users meet it: a real `airflow standalone` (scheduler, DAG
processor, triggerer, API server/UI; SQLite metadata, LocalExecutor -- the embedded default),
started by the launcher `make airflow` runs, on a free port of 127.0.0.1, with its own
AIRFLOW_HOME and a data root holding 3 simulated days (D1, D2, D3 = the 3 UTC days before today).

One server for the module (it takes a minute to start); the tests run in order:
1. the UI needs a login and listens on loopback only;
2. writer runs triggered at once (the daily metrics DAG for D1 and D2, the maintenance DAG)
   queue and share the one-slot pool: all succeed at their first try, no two warehouse tasks
   ever overlap (a DuckDB lock error would fail a try);
3. headless Chromium (Debian's, through Selenium): log in, see every DAG and no import error,
   trigger the daily DAG (it computes yesterday, D3) and watch it succeed; screenshot saved;
4. `airflow backfill create` over D1..D3, after dropping the daily gold tables: identical rows to
   the day-by-day runs of 2 and 3, each run computing exactly its day;
5. clearing (rerunning) a backfill run changes nothing.

The scheduler creates no scheduled runs here (`[scheduler] use_job_schedule = False`): only the
runs the tests trigger or backfill execute, so their timing and the pool are theirs alone.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from airflow_server import AirflowServer

from focuslake.airflow_env import DBT_MANIFEST, WAREHOUSE_POOL
from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, Paths

pytestmark = pytest.mark.slow

ALL_DAGS = {"focus_ingest", "focus_transform", "focus_quality", "focus_publish", "focus_maintenance", "focus_forget_user",
            "focus_export", "focus_metrics_hourly", "focus_metrics_daily", "focus_metrics_weekly", "focus_metrics_monthly"}
DAILY = "focus_metrics_daily"
RUN_TIMEOUT = 900  # seconds; a daily run takes ~45 s on a busy 2-core machine
STATE: dict = {}  # what the ordered tests hand on: the day-by-day gold snapshot, run ids


def _day(d) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _prepare_data(data: Path, first_day) -> None:
    """3 simulated days -> landing -> lake -> the whole dbt project (silver, hourly gold...)."""
    from collectors.simulate import simulate
    from focuslake import pipeline

    simulate(data, users=2, days=3, seed=11, start=first_day, hours=2, durable=False)
    pipeline.ingest(Paths(data))
    scratch = Path(tempfile.mkdtemp(prefix="focuslake-dbt-"))
    try:  # dbt's target/ and logs/ outside the shared project dir
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "dbt"), "build", "--profiles-dir", str(DBT_PROJECT_DIR),
             "--target-path", str(scratch / "target"), "--log-path", str(scratch / "logs")],
            cwd=DBT_PROJECT_DIR, env={**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(data)},
            capture_output=True, text=True, timeout=600, check=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert proc.returncode == 0, f"dbt build failed:\n{proc.stdout[-4000:]}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("airflow-server")
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n) for n in (3, 2, 1)]
    srv = AirflowServer(root / "home", root / "data", paused_at_creation=False,
                        extra_env={"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"})
    srv.start()  # boots while the data is prepared
    try:
        _prepare_data(srv.data, days[0])
        srv.wait_ready(ALL_DAGS, timeout=400)
        srv.days = days
        yield srv
    finally:
        srv.stop()


def _daily_tables() -> list[str]:
    """`schema.table` of the dbt models tagged `daily` (what the daily DAG rebuilds)."""
    manifest = json.loads(DBT_MANIFEST.read_text())
    return sorted(f"{n['schema']}.{n.get('alias') or n['name']}" for n in manifest["nodes"].values()
                  if n["resource_type"] == "model" and "daily" in n["config"].get("tags", [])
                  and n["config"].get("materialized") != "view")


def _gold(db: Path, tables: list[str]) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
    finally:
        con.close()


def _interval(srv: AirflowServer, run_id: str) -> dict:
    import urllib.parse

    ti = srv.get(f"/api/v2/dags/{DAILY}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/dbt_build")
    return ti["rendered_fields"]["vars"]


def _vars_for(day) -> dict:
    start = _day(day)
    return {"interval_start": start.isoformat(), "interval_end": (start + timedelta(days=1)).isoformat()}


def _local_ip() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # UDP connect: picks a route, sends nothing
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


# 1 ------------------------------------------------------------------------------------------------
def test_ui_requires_login_and_listens_on_loopback_only(server):
    status, _ = server.request("GET", "/api/v2/dags", auth=False)
    assert status == 401
    assert server.login("admin", "not-the-password")[0] == 401
    status, payload = server.login("admin", server.admin_password())
    assert status == 201 and payload["access_token"]
    # the password was generated at first start, private, and shown once in the launcher's banner
    pw_file = Path(server.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    assert pw_file.parent == server.home and (pw_file.stat().st_mode & 0o077) == 0
    assert server.log_path.read_text().count(server.admin_password()) == 1
    dags = {d["dag_id"]: d for d in server.get("/api/v2/dags?limit=100")["dags"]}
    assert set(dags) == ALL_DAGS
    assert server.get("/api/v2/importErrors")["total_entries"] == 0
    ip = _local_ip()
    if ip is not None:  # the machine has another address: nothing answers there
        with pytest.raises(OSError):
            socket.create_connection((ip, server.port), timeout=3).close()


# 2 ------------------------------------------------------------------------------------------------
def test_concurrent_writer_runs_queue_and_never_overlap(server):
    d1, d2, _ = server.days
    with ThreadPoolExecutor(3) as pool:  # three writer runs triggered at the same moment
        futures = [pool.submit(server.trigger, DAILY, run_after=_day(d1 + timedelta(days=1))),
                   pool.submit(server.trigger, DAILY, run_after=_day(d2 + timedelta(days=1))),
                   pool.submit(server.trigger, "focus_maintenance")]
        daily1, daily2, maint = (f.result() for f in futures)
    states = server.wait_runs(DAILY, [daily1, daily2], timeout=RUN_TIMEOUT)
    states.update(server.wait_runs("focus_maintenance", [maint], timeout=RUN_TIMEOUT))
    assert set(states.values()) == {"success"}, states
    assert _interval(server, daily1) == _vars_for(d1) and _interval(server, daily2) == _vars_for(d2)
    # max_active_runs=1: one daily run waited for the other
    r1, r2 = server.run(DAILY, daily1), server.run(DAILY, daily2)
    first, second = sorted([r1, r2], key=lambda r: r["start_date"])
    assert second["start_date"] >= first["end_date"]
    # the pool: no two warehouse tasks of any run at the same time; nothing needed a retry
    tis = server.task_instances(DAILY, daily1) + server.task_instances(DAILY, daily2) + \
        server.task_instances("focus_maintenance", maint)
    assert {t["try_number"] for t in tis if t["state"] == "success"} == {1}, "a task needed a retry"
    spans = sorted((t["start_date"], t["end_date"], t["dag_id"], t["task_id"]) for t in tis
                   if t["pool"] == WAREHOUSE_POOL and t["state"] == "success")
    assert len(spans) == 8  # 2 x (dbt_build, check_quality, publish) + retention + maintain_warehouse
    for (_, e1, *a), (s2, _, *b) in itertools.pairwise(spans):
        assert e1 <= s2, f"{a} and {b} overlapped in pool {WAREHOUSE_POOL}"
    assert {t["task_id"]: t["state"] for t in tis if t["dag_id"] == "focus_maintenance"} == {
        "retention": "success", "remove_orphan_temp_files": "success", "maintain_warehouse": "success"}
    STATE["day_by_day"] = {d1: daily1, d2: daily2}


# 3 ------------------------------------------------------------------------------------------------
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000"]


@pytest.fixture
def browser(tmp_path):
    if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
        pytest.fail("Debian's chromium and chromium-driver are required (Makefile APT_PACKAGES; make sysdeps)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"  # never a downloaded browser
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def _wait_for(driver, predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate(driver)
        except Exception:  # noqa: BLE001  (the page is still rendering: elements come and go)
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; at {driver.current_url}:\n"
                         f"{driver.find_element('tag name', 'body').text[:1500]}")


def test_browser_login_sees_every_dag_and_the_daily_dag_succeeds(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    def body(d):
        return d.find_element(By.TAG_NAME, "body").text

    browser.get(f"{server.base}/dags")
    _wait_for(browser, lambda d: "/auth/login" in d.current_url and d.find_elements(By.NAME, "username"),
              60, "the login page (the DAG list needs a login)")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(server.admin_password())
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait_for(browser, lambda d: "/auth/login" not in d.current_url, 60, "the login to go through")

    browser.get(f"{server.base}/dags")
    text = _wait_for(browser, lambda d: (t := body(d)) and f"{len(ALL_DAGS)} Dags" in t and t, 90,
                     f"the DAG list with {len(ALL_DAGS)} DAGs")
    lines = set(text.splitlines())
    assert ALL_DAGS <= lines, f"missing from the UI: {ALL_DAGS - lines}"
    assert "import error" not in text.lower()
    browser.save_screenshot(str(tmp_path / "dags.png"))

    browser.get(f"{server.base}/dags/{DAILY}")
    _wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=trigger-dag-button]"), 60,
              "the Trigger button").click()
    _wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=trigger-dag-submit]"), 30,
              "the trigger dialog").click()
    run_id = _wait_for(browser, lambda d: (m := re.search(rf"/dags/{DAILY}/runs/([^/?#]+)$", d.current_url))
                       and m.group(1), 30, "the new run's page")
    from urllib.parse import unquote

    run_id = unquote(run_id)
    header = re.compile(re.escape(run_id) + r"\s*\n\s*(Success|Failed)\b")

    def finished(d):
        time.sleep(4)
        d.refresh()
        return _wait_for(d, lambda d2: (m := header.search(body(d2))) and m.group(1), 20, "the run header")

    state = _wait_for(browser, finished, RUN_TIMEOUT, "the triggered run to finish")
    if state == "Success":  # the task table refreshes on its own clock: let it catch up for the picture
        browser.refresh()
        _wait_for(browser, lambda d: body(d).count("Success") >= 4, 60, "every task shown as Success")
    shot = tmp_path / "daily_run.png"
    browser.save_screenshot(str(shot))
    print(f"screenshots: {tmp_path / 'dags.png'} {shot}")
    assert state == "Success", f"the UI shows the run {state}; server log:\n{server.log_tail()}"
    page = body(browser)
    for task in ("dbt_build", "check_quality", "publish"):
        assert task in page
    assert server.run(DAILY, run_id)["state"] == "success"
    # the UI's trigger (logical date = now) computed yesterday: D3
    assert _interval(server, run_id) == _vars_for(server.days[2]), "the UI-triggered run must compute yesterday"
    STATE.setdefault("day_by_day_ui", {})[server.days[2]] = run_id
    if os.environ.get("FOCUSLAKE_KEEP_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["FOCUSLAKE_KEEP_SCREENSHOTS"]) / "airflow_daily_run.png")


# 4 ------------------------------------------------------------------------------------------------
def test_backfill_equals_the_day_by_day_runs(server):
    if len(STATE.get("day_by_day", {})) + len(STATE.get("day_by_day_ui", {})) < 3:
        pytest.skip("needs the day-by-day runs of the two tests above")
    tables = _daily_tables()
    assert tables, "no dbt model is tagged `daily`"
    paths = Paths(server.data)
    day_by_day = _gold(paths.published, tables)
    assert any(day_by_day.values()), "the day-by-day runs produced no daily gold rows"
    STATE["day_by_day_gold"] = day_by_day
    # the backfill must produce the rows itself: the daily tables go first (no run is active now)
    con = duckdb.connect(str(paths.warehouse))
    try:
        for t in tables:
            con.execute(f"DROP TABLE {t}")
    finally:
        con.close()

    d1, _, d3 = server.days
    proc = server.cli("backfill", "create", "--dag-id", DAILY, "--from-date", d1.isoformat(),
                      "--to-date", d3.isoformat())
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [r for r in server.runs(DAILY) if r["run_type"] == "backfill"]
    assert len(runs) == 3, runs
    states = server.wait_runs(DAILY, [r["dag_run_id"] for r in runs], timeout=3 * RUN_TIMEOUT)
    assert set(states.values()) == {"success"}, states
    got = {r["data_interval_start"][:10]: _interval(server, r["dag_run_id"]) for r in runs}
    assert got == {d.isoformat(): _vars_for(d) for d in server.days}, "each backfill run computes its own day"
    # backfill runs are not limited by the DAG's max_active_runs (a backfill has its own, 10 by
    # default): the one-slot pool is what keeps the single writer
    tis = [t for r in runs for t in server.task_instances(DAILY, r["dag_run_id"])]
    spans = sorted((t["start_date"], t["end_date"]) for t in tis if t["pool"] == WAREHOUSE_POOL)
    assert len(spans) == 9 and all(e1 <= s2 for (_, e1), (s2, _) in itertools.pairwise(spans))
    assert _gold(paths.published, tables) == day_by_day
    STATE["backfill_runs"] = sorted(r["dag_run_id"] for r in runs)


# 5 ------------------------------------------------------------------------------------------------
def test_rerunning_a_backfill_run_changes_nothing(server):
    if "backfill_runs" not in STATE:
        pytest.skip("needs the backfill of the test above")
    import urllib.parse

    run_id = STATE["backfill_runs"][1]
    server.post(f"/api/v2/dags/{DAILY}/dagRuns/{urllib.parse.quote(run_id, safe='')}/clear", {"dry_run": False})
    assert server.wait_runs(DAILY, [run_id], timeout=RUN_TIMEOUT) == {run_id: "success"}
    tries = {t["task_id"]: t["try_number"] for t in server.task_instances(DAILY, run_id)}
    assert tries == {"dbt_build": 2, "check_quality": 2, "publish": 2, "render_reports": 2}, "the run really ran again"
    tables = _daily_tables()
    assert _gold(Paths(server.data).published, tables) == STATE["day_by_day_gold"]


# 6 ------------------------------------------------------------------------------------------------
def _landing_events(srv: AirflowServer) -> list[dict]:
    (asset,) = [a for a in srv.get("/api/v2/assets?limit=100")["assets"] if a["name"] == "focus_landing"]
    return srv.get(f"/api/v2/assets/events?asset_id={asset['id']}&limit=100")["asset_events"]


def test_the_landing_watcher_runs_in_the_triggerer(server):
    """The live triggerer runs focus_landing's watcher (focuslake.landing_watch.LandingTrigger):
    the segments prepared at start were reported, and a segment that lands now is reported within
    a minute. (This server creates no runs from events, `use_job_schedule = False`; the freshness
    benchmark times the whole chain the events start.)"""
    from focuslake.landing_watch import read_watermark

    deadline = time.monotonic() + 120
    while not (before := _landing_events(server)) and time.monotonic() < deadline:
        time.sleep(2)
    assert before, "no focus_landing event for the prepared segments:\n" + server.log_tail()
    assert all(e["source_dag_id"] is None for e in before)  # from the watcher, not from a task
    mark = read_watermark(server.data)
    seg = next(p for p in (server.data / "landing").rglob("*") if p.is_file() and not p.name.startswith("."))
    copy = seg.with_name(seg.name.replace("-", "-late-", 1))
    shutil.copy(seg, copy)
    t0 = time.monotonic()
    while len(_landing_events(server)) == len(before) and time.monotonic() - t0 < 60:
        time.sleep(1)
    assert len(_landing_events(server)) > len(before), "the new segment was not reported:\n" + server.log_tail()
    assert read_watermark(server.data) >= copy.stat().st_ctime_ns > mark
    copy.unlink()
