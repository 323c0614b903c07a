"""`make docs`: dbt docs as one static page (focuslake.docs_site), generated from a copy of a
published warehouse (tests/analyst_workload.py), opened in headless Chromium from disk with every
network request recorded -- none may leave the file -- and served on 127.0.0.1 only."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from analyst_workload import published_workload

from focuslake import docs_site

pytestmark = pytest.mark.slow
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1400,1000"]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    pub = published_workload()
    before = pub.published.stat().st_mtime_ns
    out = docs_site.build(pub, tmp_path_factory.mktemp("docs"))
    assert pub.published.stat().st_mtime_ns == before  # built from a copy
    return out


def test_the_page_embeds_the_project_with_its_descriptions_and_column_types(page):
    html = page.read_text(encoding="utf-8")
    assert page.name == "index.html" and len(html) > 1_000_000
    assert set(re.findall(r'"send_anonymous_usage_stats":\s*(true|false)', html)) == {"false"}
    for text in ("Analyst contract v1", "ISO day of week: 1 = Monday .. 7 = Sunday", "gld_focus_streaks",
                 "FeatureVector"):
        assert text in html, text
    # the catalog, read from the warehouse copy, is embedded too: gold's real column types
    assert "https://schemas.getdbt.com/dbt/catalog/" in html
    assert len(re.findall(r'"keystrokes": *\{"type": *"BIGINT"', html)) >= 4  # hourly, daily, weekly, monthly...


def test_opens_from_disk_with_no_request_leaving_the_file(page, tmp_path):
    if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
        pytest.fail("Debian's chromium and chromium-driver are required (Makefile APT_PACKAGES; make sysdeps)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.get(f"file://{page}#!/model/model.focuslake.user_daily")
        deadline, body = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            body = driver.find_element(By.TAG_NAME, "body").text
            if "weekday_name" in body and "English name of the day of week" in body:
                break
            time.sleep(0.5)
        driver.save_screenshot(str(tmp_path / "docs.png"))
        print(f"screenshot: {tmp_path / 'docs.png'}")
        assert "English name of the day of week" in body, body[:2000]
        assert "varchar" in body.lower()  # the column types are shown
        urls = [json.loads(e["message"])["message"]["params"].get("request", {}).get("url", "")
                for e in driver.get_log("performance")
                if json.loads(e["message"])["message"]["method"] == "Network.requestWillBeSent"]
    finally:
        driver.quit()
    assert urls, "the performance log recorded no request at all (not even the page)"
    leaving = [u for u in urls if not u.startswith(("file://", "data:", "blob:", "about:", "chrome"))]
    assert leaving == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:] + Path("/proc/net/tcp6").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, p = local.split(":")
        if int(p, 16) == port and state == "0A":  # LISTEN
            out.add(addr)
    return out


def test_serve_binds_loopback_only(page):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "focuslake.docs_site", "serve", "--no-build", "--out",
                             str(page.parent), "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert f"http://127.0.0.1:{port}/" in proc.stdout.readline() + proc.stdout.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert r.status == 200 and len(r.read()) == page.stat().st_size
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else (no 0.0.0.0, no ::)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
