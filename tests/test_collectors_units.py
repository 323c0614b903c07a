"""Collector parts that need no X server: config validation, .part recovery, connectivity and
suspend detection, and the daemon CLI (start / status / stop) for real."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from collector_harness import DEVICE, ROOT, USER, write_config

from collectors.agent import config as cfgmod
from collectors.agent.recovery import recover_landing
from collectors.agent.sinks import app_bytes
from collectors.agent.system import SuspendDetector, SystemSampler, network_online
from focuslake import events as ev
from focuslake.config import Paths
from focuslake.ingest import ingest_landing
from focuslake.segments import CsvSegmentWriter, EventSegmentWriter

pytestmark = pytest.mark.timeout(60)
T0 = 1_795_000_000_000_000


# ------------------------------------------------------------------------------ config
@pytest.mark.parametrize(("text", "message"), [
    ('user_id = "u"\ndevice_id = "d"\nflush_secs = 1\n', "unknown key 'flush_secs'"),
    ('user_id = "u"\ndevice_id = "d"\n[consent]\nkeystrokes = true\n', "unknown key 'consent.keystrokes'"),
    ('user_id = "u"\ndevice_id = "d"\n[consent]\nkeystroke_dynamics = "yes"\n',
     "consent.keystroke_dynamics must be bool"),
    ('user_id = "u"\ndevice_id = "d"\n[system]\ninterval_seconds = 0\n', "system.interval_seconds = 0 is out of range"),
    ('user_id = "bad id!"\ndevice_id = "d"\n', "user_id = 'bad id!' must match"),
    ('device_id = "d"\n', "user_id is required"),
    ('user_id = "u"\ndevice_id = "d"\n[idle]\nidle_seconds = 10\nafk_seconds = 5\n', "afk_seconds (5.0) must be >="),
    ('user_id = "u"\ndevice_id = "d"\n[input]\nenabled = false\n', "idle.enabled needs input.enabled"),
    ('user_id = "u"\ndevice_id = "d"\nsystem = 5\n', "[system] must be a table"),
    ('user_id = "u"\ndevice_id = \n', "invalid TOML"),
    ('user_id = "u"\ndevice_id = "d"\n[privacy]\ntitle_mode = "encrypt"\n', "privacy.title_mode must be one of"),
    ('user_id = "u"\ndevice_id = "d"\n[privacy]\nredact = ["([a-z => x"]\n', "privacy.redact rule"),
    ('user_id = "u"\ndevice_id = "d"\n[privacy]\nexclude_titles = ["(?P<"]\n', "privacy.exclude_titles rule"),
    ('user_id = "u"\ndevice_id = "d"\n[privacy]\nexclude_apps = "keepassxc"\n', "privacy.exclude_apps must be list"),
])
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(cfgmod.ConfigError) as e:
        cfgmod.load(p)
    assert message in str(e.value) and str(p) in str(e.value)
    r = subprocess.run([sys.executable, "-m", "collectors.agent", "start", "-f", "--config", str(p)],
                       cwd=ROOT, capture_output=True, text=True, check=False)
    assert r.returncode == 1 and "config error" in r.stderr and message in r.stderr
    assert not (tmp_path / "landing").exists()


def test_missing_config_and_template(tmp_path):
    with pytest.raises(cfgmod.ConfigError, match="does not exist.*init-config"):
        cfgmod.load(tmp_path / "nope.toml")
    p = tmp_path / "collector.toml"
    r = subprocess.run([sys.executable, "-m", "collectors.agent", "init-config", str(p), "--user", "ann",
                        "--device", "desk-1", "--landing", "landing", "--state-dir", "state"],
                       cwd=ROOT, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    c = cfgmod.load(p)
    assert (c.user_id, c.device_id) == ("ann", "desk-1")
    assert c.landing_path == tmp_path / "landing"              # relative to the file
    assert c.consent.keystroke_dynamics is False and c.consent.file_metadata is False
    assert (c.idle.idle_seconds, c.idle.afk_seconds, c.input.bucket_seconds) == (5.0, 180.0, 5)
    r = subprocess.run([sys.executable, "-m", "collectors.agent", "init-config", str(p), "--user", "x",
                        "--device", "y"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert r.returncode == 1 and "exists" in r.stderr


# ------------------------------------------------------------------------------ recovery
def _write_parts(landing: Path) -> dict:
    """Leave .part files as a killed writer would: flushed rows plus a cut tail."""
    out = {}
    w = CsvSegmentWriter(landing, "system_events", USER, DEVICE)
    for i in range(3):
        w.write_row((T0 + i, "lock" if i % 2 else "unlock"))
    w.flush()
    part = w._part
    w._fh.close()
    with open(part, "ab") as fh:
        fh.write(b"17950000000000")                   # a row cut mid-way (no newline)
    out["csv"] = part
    w = CsvSegmentWriter(landing, "input_counts", USER, DEVICE)
    w.write_row((T0, 5, 1, 0, 0, 0, 0.0))
    w._fh.flush()
    w._fh.close()
    part = w._part
    part.write_bytes(part.read_bytes()[:10])          # killed before the header was complete
    out["csv_empty"] = part
    w = EventSegmentWriter(landing, USER, DEVICE)
    recs = np.zeros(5, ev.EVENT_DTYPE)
    recs["timestamp_us"] = T0 + np.arange(5)
    recs["event_type"] = ev.EventType.MOUSE_CLICK
    w.write_records(recs)
    w.flush()
    part = w._part
    w._fh.close()
    with open(part, "ab") as fh:
        fh.write(b"\x01" * 40)                        # a record cut mid-way
    out["bin"] = part
    return out


def test_recovery_keeps_the_valid_prefix_and_the_ingest_accepts_it(tmp_path):
    landing = tmp_path / "landing"
    parts = _write_parts(landing)
    other = landing / "system_events" / "someone" / "else" / "2026-11-18"
    other.mkdir(parents=True)
    (other / "system_events-x-0000.csv.part").write_text("ts_us,event\n")   # not ours: untouched
    rep = recover_landing(landing, USER, DEVICE)
    assert (rep.recovered, rep.discarded, rep.rows_recovered) == (2, 1, 3 + 5)
    assert not parts["csv"].exists() and not parts["csv_empty"].exists() and not parts["bin"].exists()
    csv_final = Path(str(parts["csv"])[:-5])
    assert csv_final.read_text().splitlines() == ["ts_us,event", f"{T0},unlock", f"{T0 + 1},lock",
                                                  f"{T0 + 2},unlock"]
    _, recs = ev.read_segment(Path(str(parts["bin"])[:-5]))
    assert len(recs) == 5 and recs["timestamp_us"].tolist() == list(range(T0, T0 + 5))
    assert (other / "system_events-x-0000.csv.part").exists()
    again = recover_landing(landing, USER, DEVICE)      # idempotent
    assert (again.recovered, again.discarded) == (0, 0)
    summary = ingest_landing(Paths(tmp_path), now_us=T0 + 1)
    assert summary["segments_ingested"] == 2 and summary["segments_quarantined"] == 0
    assert summary["rows_written"] == 8


def test_recovery_of_a_sealed_but_not_renamed_segment(tmp_path):
    landing = tmp_path / "landing"
    d = landing / "events" / USER / DEVICE / "2026-11-18"
    d.mkdir(parents=True)
    recs = np.zeros(3, ev.EVENT_DTYPE)
    recs["timestamp_us"] = T0
    recs["event_type"] = ev.EventType.KEY_PRESS
    body = recs.tobytes()
    whole = ev.pack_header(USER, DEVICE, T0) + body + ev.pack_footer(3, zlib.crc32(body))
    (d / "events-x-n0000.bin.part").write_bytes(whole)  # crashed between footer and rename
    rep = recover_landing(landing, USER, DEVICE)
    assert (rep.recovered, rep.rows_recovered, rep.bytes_cut) == (1, 3, 16)
    assert (d / "events-x-n0000.bin").read_bytes() == whole


def test_app_name_is_cut_at_a_character_boundary():
    assert app_bytes("a" * 40) == b"a" * 31
    name = "日本語エディタ日本語エディタ"                       # 3 bytes per character
    assert app_bytes(name) == name.encode()[:30] and app_bytes(name).decode()


# ------------------------------------------------------------------------------ network, suspend
def test_network_online_reads_the_routing_table(tmp_path):
    v4, v6 = tmp_path / "route", tmp_path / "ipv6_route"
    head = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
    v4.write_text(head + "eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n")
    assert network_online([str(v4)])
    v4.write_text(head + "lo\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n"
                  + "eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n")
    assert not network_online([str(v4)])                # loopback and a LAN route only
    z = "0" * 32
    v6.write_text(f"{z} 00 {z} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 wlan0\n")
    assert network_online([str(v4), str(v6)])
    v6.write_text(f"{z} 00 {z} 00 {z} ffffffff 00000001 00000000 00200200 lo\n")   # reject route
    assert not network_online([str(v4), str(v6), str(tmp_path / "missing")])


def test_suspend_detector_sees_boottime_jump_away_from_monotonic():
    clock = {"boot": 1_000, "mono": 1_000, "wall": T0}
    det = SuspendDetector(2.0, clocks=lambda: (clock["boot"], clock["mono"], clock["wall"]))
    for _ in range(3):                                  # awake: both clocks advance together
        for k in clock:
            clock[k] += 1_000_000
        assert det.check() is None
    before = clock["wall"]
    clock["boot"] += 3_600_000_000 + 500_000            # an hour asleep, half a second awake
    clock["mono"] += 500_000
    clock["wall"] += 3_600_000_000 + 500_000
    assert det.check() == (before + 500_000, clock["wall"])


# ------------------------------------------------------------------------------ daemon CLI
def test_daemon_start_status_stop(tmp_path):
    landing, state = tmp_path / "landing", tmp_path / "state"
    cfg = write_config(tmp_path / "c.toml", landing, state, rotate_seconds=1,
                       system={"interval_seconds": 1, "top_process": True}, window={"enabled": False},
                       input={"enabled": False}, idle={"enabled": False}, lock={"enabled": False},
                       native={"enabled": False})
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "collectors.agent", *args, "--config", str(cfg)],
                              cwd=ROOT, capture_output=True, text=True, env=env, check=False, timeout=60)

    r = cli("status")
    assert r.returncode == 3 and "not running" in r.stdout
    r = cli("start")
    assert r.returncode == 0 and "collector started (pid" in r.stdout, r.stderr
    pid = int(r.stdout.split("pid ")[1].split(")")[0])
    try:
        r2 = cli("start")
        assert r2.returncode == 1 and "already running" in r2.stderr
        end = time.monotonic() + 20
        while time.monotonic() < end:                   # a couple of samples, sealed each second
            doc = json.loads((state / "status.json").read_text())
            if doc["streams"]["system_metrics"]["segments_sealed"] >= 1:
                break
            time.sleep(0.1)
        r = cli("status", "--json")
        assert r.returncode == 0
        doc = json.loads(r.stdout)
        assert doc["running"] and doc["pid"] == pid
        st = doc["status"]
        assert st["consent"] == {"keystroke_dynamics": False, "file_metadata": False,
                                 "keystroke_dynamics_effective": False, "registry": None, "withdrawn_streams": []}
        assert st["privacy"]["title_mode"] == "keep" and st["privacy"]["redaction_rules"] == 1
        assert st["streams"]["system_metrics"]["enabled"] and not st["streams"]["active_window"]["enabled"]
        assert st["streams"]["system_metrics"]["segments_sealed"] >= 1 and st["last_seal"]
        human = cli("status").stdout
        assert f"running (pid {pid})" in human and "system_metrics" in human and "never recorded" in human
    finally:
        r = cli("stop")
    assert r.returncode == 0 and f"stopped (pid {pid})" in r.stdout
    assert cli("status").returncode == 3
    assert "collector started" in (state / "collector.log").read_text()
    rows = (landing / "system_events" / USER / DEVICE).rglob("*.csv")
    text = "".join(p.read_text() for p in rows)
    assert "collector_start" in text and "collector_stop" in text
    assert ingest_landing(Paths(tmp_path))["segments_quarantined"] == 0


def test_collector_records_suspend_and_resume(tmp_path, monkeypatch):
    """The collector's own loop with the suspend detector's clocks injected: suspend/resume
    land in system_events at the right times and no sample is dated inside the sleep."""
    from collectors.agent.service import Collector
    from collectors.agent.system import SuspendDetector
    monkeypatch.delenv("DISPLAY", raising=False)
    landing, state = tmp_path / "landing", tmp_path / "state"
    cfg = cfgmod.load(write_config(tmp_path / "c.toml", landing, state, rotate_seconds=1,
                                   system={"interval_seconds": 1, "top_process": False},
                                   window={"enabled": False}, input={"enabled": False},
                                   idle={"enabled": False}, native={"enabled": False},
                                   lock={"x11_screensaver": False}, network={"enabled": False}))
    col = Collector(cfg)
    col.start()
    try:
        now = time.time_ns() // 1000
        clock = {"boot": 5_000_000, "mono": 5_000_000, "wall": now}
        col.suspend = SuspendDetector(2.0, clocks=lambda: (clock["boot"], clock["mono"], clock["wall"]))
        slept = 600_000_000                                   # ten minutes asleep
        clock["boot"] += slept + 100_000
        clock["mono"] += 100_000
        clock["wall"] += slept + 100_000
        col.step(clock["wall"])
        assert col.suspends == 1
        assert col.next_sys > clock["wall"]                   # samples restart after the wake
    finally:
        col.shutdown()
    se = [line.split(",") for p in sorted((landing / "system_events").rglob("*.csv"))
          for line in p.read_text().splitlines()[1:]]
    got = {e: int(t) for t, e in se if e in ("suspend", "resume")}
    assert got == {"suspend": now + 100_000, "resume": now + slept + 100_000}
    sm = [int(line.split(",")[0]) for p in (landing / "system_metrics").rglob("*.csv")
          for line in p.read_text().splitlines()[1:]]
    assert not any(got["suspend"] < t < got["resume"] for t in sm)


# ------------------------------------------------------------------------------ D-Bus lock/suspend
def _dbus_daemon(tmp_path: Path, name: str) -> tuple[subprocess.Popen, str]:
    import shutil
    if shutil.which("dbus-daemon") is None:
        pytest.fail("dbus-daemon missing: run `make sysdeps` (APT_PACKAGES: dbus-daemon)", pytrace=False)
    p = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1",
                          f"--address=unix:path={tmp_path / name}"], stdout=subprocess.PIPE, text=True)
    return p, p.stdout.readline().strip()


def test_dbus_lock_and_suspend_signals(tmp_path):
    """Private session and 'system' buses (real dbus-daemons); the signals GNOME/KDE and
    systemd-logind send, emitted with jeepney; the collector records them."""
    from jeepney import DBusAddress, new_signal
    from jeepney.io.blocking import open_dbus_connection

    from collectors.agent.dbus import bus_path_encode
    session, session_addr = _dbus_daemon(tmp_path, "session.sock")
    system, system_addr = _dbus_daemon(tmp_path, "system.sock")
    landing, state = tmp_path / "landing", tmp_path / "state"
    cfg = write_config(tmp_path / "c.toml", landing, state, rotate_seconds=1, flush_seconds=0.1,
                       system={"enabled": False}, window={"enabled": False}, input={"enabled": False},
                       idle={"enabled": False}, native={"enabled": False}, network={"enabled": False},
                       lock={"x11_screensaver": False, "detect_suspend": False})
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env.update(DBUS_SESSION_BUS_ADDRESS=session_addr, DBUS_SYSTEM_BUS_ADDRESS=system_addr, XDG_SESSION_ID="c2")
    from collector_harness import start_collector
    run = start_collector(cfg, state, env)
    try:
        st = run.status()
        assert {"dbus-screensaver", "logind-locked-hint", "logind-prepare-for-sleep"} <= set(st["lock"]["sources"])
        s_conn = open_dbus_connection(bus=session_addr)
        y_conn = open_dbus_connection(bus=system_addr)
        gnome = DBusAddress("/org/gnome/ScreenSaver", interface="org.gnome.ScreenSaver")
        sess = DBusAddress(bus_path_encode("/org/freedesktop/login1/session", "c2"),
                           interface="org.freedesktop.DBus.Properties")
        other = DBusAddress("/org/freedesktop/login1/session/_33", interface="org.freedesktop.DBus.Properties")
        mgr = DBusAddress("/org/freedesktop/login1", interface="org.freedesktop.login1.Manager")

        def hint(addr, v):
            return new_signal(addr, "PropertiesChanged", "sa{sv}as",
                              ("org.freedesktop.login1.Session", {"LockedHint": ("b", v)}, []))

        s_conn.send(new_signal(gnome, "ActiveChanged", "b", (True,)))
        run.wait_status(lambda s: s["lock"]["locked"], 10, "locked by GNOME ScreenSaver")
        s_conn.send(new_signal(gnome, "ActiveChanged", "b", (False,)))
        run.wait_status(lambda s: not s["lock"]["locked"], 10, "unlocked")
        y_conn.send(hint(other, True))                 # another user's session: ignored
        y_conn.send(hint(sess, True))
        run.wait_status(lambda s: s["lock"]["locked"] and s["lock"]["locks"] == 2, 10, "logind LockedHint")
        y_conn.send(hint(sess, False))
        run.wait_status(lambda s: not s["lock"]["locked"], 10, "logind unlock")
        y_conn.send(new_signal(mgr, "PrepareForSleep", "b", (True,)))
        run.wait_status(lambda s: s["lock"]["asleep"], 10, "PrepareForSleep(true)")
        time.sleep(0.3)
        y_conn.send(new_signal(mgr, "PrepareForSleep", "b", (False,)))
        run.wait_status(lambda s: not s["lock"]["asleep"] and s["lock"]["suspends"] == 1, 10, "resume")
        s_conn.close()
        y_conn.close()
    finally:
        assert run.stop() == 0
        for p in (session, system):
            p.terminate()
            p.wait(5)
    from collector_harness import csv_rows
    events = [r["event"] for r in csv_rows(landing, "system_events")]
    assert events == ["collector_start", "lock", "unlock", "lock", "unlock", "suspend", "resume",
                      "collector_stop"]


# ------------------------------------------------------------------------------ window privacy
def test_window_policy_excludes_redacts_and_hashes_before_anything_is_written(tmp_path):
    from collectors.agent.privacy import EXCLUDED_APP, WindowPolicy
    from collectors.agent.x11 import WindowInfo

    cfg = cfgmod.load(None, {"user_id": "u", "device_id": "d", "privacy": {
        "exclude_apps": ["KeePassXC"], "redact": [r"[\w.+-]+@[\w-]+(\.[\w-]+)+ => [email]", r"\b\d{6,}\b"]}})
    pol = WindowPolicy(cfg.privacy, tmp_path)
    mail = pol.apply(WindowInfo(7, "thunderbird", "Re: rent - ann.lee@example.org - account 12345678", 42))
    assert mail == WindowInfo(7, "thunderbird", "Re: rent - [email] - account [redacted]", 42)
    assert pol.apply(WindowInfo(8, "keepassxc", "Passwords.kdbx", 43)) == WindowInfo(8, EXCLUDED_APP, "[excluded]", 0)
    assert pol.apply(WindowInfo(9, "firefox", "News - Mozilla Firefox Private Browsing", 44)).app == EXCLUDED_APP
    assert pol.excluded == 2
    assert pol.apply(WindowInfo.none()) == WindowInfo.none()
    hashed = WindowPolicy(cfgmod.load(None, {"user_id": "u", "device_id": "d",
                                             "privacy": {"title_mode": "hash"}}).privacy, tmp_path)
    a, b = (hashed.apply(WindowInfo(1, "code", t, 1)).title for t in ("main.py - focuslake", "main.py - focuslake"))
    assert a == b and a.startswith("h:") and "main" not in a and len(a) == 26
    assert (tmp_path / "title.key").stat().st_mode & 0o077 == 0   # the key is the user's alone
    other_key = WindowPolicy(hashed_cfg := cfgmod.load(None, {"user_id": "u", "device_id": "d",
                                                             "privacy": {"title_mode": "hash"}}).privacy,
                             tmp_path / "elsewhere")
    assert other_key.apply(WindowInfo(1, "code", "main.py - focuslake", 1)).title != a  # keyed, not a plain hash
    assert hashed_cfg.title_mode == "hash"
    dropped = WindowPolicy(cfgmod.load(None, {"user_id": "u", "device_id": "d",
                                              "privacy": {"title_mode": "drop"}}).privacy, tmp_path)
    assert dropped.apply(WindowInfo(1, "code", "secret.txt", 1)) == WindowInfo(1, "code", "[not recorded]", 1)


_BUSY = "import ctypes, sys\nctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)\nwhile True: pass\n"


def test_an_excluded_app_is_never_named_as_the_top_process():
    """The system stream's top_process names whatever used the most CPU: an app the window policy
    excludes (privacy.exclude_apps) is "[excluded]" there too, not its name. A busy process
    named like an excluded app; the positive control is a sampler without the exclusion."""
    name = "focusapp-secret"
    busy = subprocess.Popen([sys.executable, "-c", _BUSY, name])
    try:
        plain, guarded = SystemSampler(True), SystemSampler(True, {"FocusApp-Secret"})
        seen_plain, seen_guarded = [], []
        for i in range(100):  # until both were seen (at most 30 s: on a loaded machine, e.g. beside
            time.sleep(0.3)   # another test worker, the busy loop is on top only now and then)
            seen_plain.append(plain.sample(i)["top_process"])
            seen_guarded.append(guarded.sample(i)["top_process"])
            if name in seen_plain and "[excluded]" in seen_guarded:
                break
    finally:
        busy.kill()
        busy.wait()
    assert name in seen_plain, seen_plain                  # the busy process does get on top
    assert "[excluded]" in seen_guarded and name not in seen_guarded, seen_guarded
