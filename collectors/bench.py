"""Collector overhead on a real X server: `python -m collectors.bench [--seconds 60]`.

Starts Xvfb + JWM on a free display, a window to type into, and the collector with its
default configuration (5 s sampling, window watcher, pynput counters, idle/lock/network, the
native capture), then measures, in alternating 10 s phases (interleaved, so machine noise hits
both alike):
  * idle   - nothing happens: the cost of sampling (system metrics, heartbeats, buckets);
  * active - xdotool injects typing and mouse motion (about 10 keys/s and 40 moves/s, faster
             than a person), the cost of listening.
CPU is scheduler CPU time (all threads) of the collector and, separately, of focus-capture,
divided by wall time: % of one core. Peak RSS is the kernel's high-water mark (VmHWM).

Native capture cost per event: focus-capture alone records a burst of injected events; its
CPU time divided by the events it wrote. The Python listener's cost per event (pynput, in the
collector) is shown beside it.

Goals (issue 4): collector <= 1 % of one core and <= 60 MB RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from focuslake.config import NATIVE_DIR, PROJECT_ROOT

JWMRC = '<?xml version="1.0"?>\n<JWM><FocusModel>click</FocusModel></JWM>\n'


def _xserver(tmp: Path) -> tuple[str, list[subprocess.Popen]]:
    for t in ("Xvfb", "jwm", "xdotool"):
        if shutil.which(t) is None:
            sys.exit(f"collectors.bench needs {t} (make sysdeps)")
    r, w = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(r, 16)
        if not chunk:
            break
        buf += chunk
    os.close(r)
    display = f":{buf.decode().strip()}"
    (tmp / "jwmrc").write_text(JWMRC)
    env = {**os.environ, "DISPLAY": display}
    jwm = subprocess.Popen(["jwm", "-f", str(tmp / "jwmrc")], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    win = subprocess.Popen(["xmessage", "-geometry", "400x300+20+20", "bench window"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    return display, [win, jwm, xvfb]


def _cpu(p: psutil.Process | None) -> float:
    """CPU seconds of all the process's threads, from the scheduler's nanosecond accounting
    (/proc/<pid>/task/*/schedstat; cpu_times() only has 10 ms ticks)."""
    if p is None:
        return 0.0
    total = 0
    try:
        for task in Path(f"/proc/{p.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return 0.0
    return total / 1e9


def _hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _inject(env: dict, seconds: float) -> int:
    """Type and move for `seconds`; returns the number of input events injected."""
    n = 0
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        args = []
        for k in range(8):   # 8 moves + 2 keys per batch, one xdotool process per batch
            args += ["mousemove", str(100 + (i * 37 + k * 13) % 900), str(100 + (i * 23 + k * 7) % 600)]
        args += ["key", "--delay", "0", "e", "t"]
        subprocess.run(["xdotool", *args], env=env, check=False)
        n += 8 + 4           # 8 motions, 2 presses + 2 releases
        i += 1
        time.sleep(0.2)
    return n


def bench_collector(display: str, tmp: Path, seconds: float) -> dict:
    env = {**os.environ, "DISPLAY": display}
    cfg = tmp / "collector.toml"
    cfg.write_text(f'user_id = "bench"\ndevice_id = "xvfb"\nlanding = "{tmp / "landing"}"\n'
                   f'state_dir = "{tmp / "state"}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "collectors.agent", "start", "-f", "--config", str(cfg)],
                            cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status = tmp / "state" / "status.json"
    end = time.monotonic() + 30
    while time.monotonic() < end and not status.exists():
        time.sleep(0.05)
    time.sleep(2.0)   # let start-up (imports, recovery, first samples) settle: not steady state
    col = psutil.Process(proc.pid)
    kids = [c for c in col.children() if c.name().startswith("focus-capture")]
    cap = kids[0] if kids else None
    phases = {"idle": [0.0, 0.0, 0.0, 0], "active": [0.0, 0.0, 0.0, 0]}   # wall, cpu col, cpu cap, events
    half = 10.0
    rounds = max(1, int(seconds // (2 * half)))
    for r in range(rounds):
        for name in (("idle", "active") if r % 2 == 0 else ("active", "idle")):
            c0, k0, t0 = _cpu(col), _cpu(cap), time.monotonic()
            n = _inject(env, half) if name == "active" else (time.sleep(half) or 0)
            ph = phases[name]
            ph[0] += time.monotonic() - t0
            ph[1] += _cpu(col) - c0
            ph[2] += _cpu(cap) - k0
            ph[3] += n
    out = {"rss_peak_mb": round(_hwm_mb(proc.pid), 1),
           "capture_rss_peak_mb": round(_hwm_mb(cap.pid), 1) if cap else None}
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    for name, (wall, c, k, n) in phases.items():
        out[name] = {"seconds": round(wall, 1), "collector_cpu_pct": round(100 * c / wall, 3),
                     "capture_cpu_pct": round(100 * k / wall, 3), "events": n}
    act, idl = out["active"], out["idle"]
    if act["events"]:
        extra = (act["collector_cpu_pct"] - idl["collector_cpu_pct"]) / 100 * act["seconds"]
        out["python_listener_us_per_event"] = round(max(0.0, extra) / act["events"] * 1e6, 1)
    return out


def bench_native(display: str, tmp: Path, events: int) -> dict:
    exe = NATIVE_DIR / "build" / "focus-capture"
    if not exe.exists():
        subprocess.run(["make", "-s", "-C", str(NATIVE_DIR)], check=True)
    env = {**os.environ, "DISPLAY": display}
    st = tmp / "cap.json"
    p = subprocess.Popen([str(exe), "--landing", str(tmp / "native-landing"), "--user", "bench", "--device",
                          "xvfb", "--status-file", str(st)], env=env, stderr=subprocess.DEVNULL)
    while not st.exists():
        time.sleep(0.02)
    proc = psutil.Process(p.pid)
    c0 = _cpu(proc)
    sent = 0
    while sent < events:   # one xdotool process sends 500 motions
        args = []
        for k in range(500):
            args += ["mousemove", str(100 + (sent + k) % 1000), str(100 + (sent * 3 + k) % 600)]
        subprocess.run(["xdotool", *args], env=env, check=True)
        sent += 500
    time.sleep(0.5)
    cpu = _cpu(proc) - c0
    rss = _hwm_mb(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait(10)
    doc = json.loads(st.read_text())
    n = doc["events_sealed"]
    return {"events_injected": sent, "events_written": n, "cpu_seconds": round(cpu, 3),
            "ns_per_event": round(cpu / max(n, 1) * 1e9), "rss_peak_mb": round(rss, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m collectors.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="total of idle + active phases")
    ap.add_argument("--native-events", type=int, default=20000)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="focuslake-collector-bench-"))
    display, procs = _xserver(tmp)
    try:
        col = bench_collector(display, tmp, args.seconds)
        nat = bench_native(display, tmp, args.native_events)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    i, a = col["idle"], col["active"]
    print(f"collector overhead (defaults, Xvfb, {i['seconds'] + a['seconds']:.0f} s interleaved)")
    print(f"  {'phase':8s} {'collector CPU % core':>20s} {'focus-capture CPU %':>20s} {'input events':>13s}")
    for name, ph in (("idle", i), ("active", a)):
        print(f"  {name:8s} {ph['collector_cpu_pct']:>20.3f} {ph['capture_cpu_pct']:>20.3f} {ph['events']:>13d}")
    print(f"  total while active: {a['collector_cpu_pct'] + a['capture_cpu_pct']:.3f} % of one core "
          f"(goal <= 1 %); ratio active/idle = "
          f"{(a['collector_cpu_pct'] / i['collector_cpu_pct']) if i['collector_cpu_pct'] else float('inf'):.1f}x")
    print(f"  peak RSS: collector {col['rss_peak_mb']} MB (goal <= 60 MB), "
          f"focus-capture {col['capture_rss_peak_mb']} MB")
    print(f"native capture: {nat['events_written']} events, {nat['ns_per_event']} ns CPU per event "
          f"(XRecord receive + decode + 64-byte record + CRC + buffered write), "
          f"peak RSS {nat['rss_peak_mb']} MB")
    if "python_listener_us_per_event" in col:
        py_ns = col["python_listener_us_per_event"] * 1000
        print(f"python listener (pynput counting): {py_ns:.0f} ns per event -> native is "
              f"{py_ns / max(nat['ns_per_event'], 1):.1f}x cheaper per event")
    if args.json:
        args.json.write_text(json.dumps({"collector": col, "native": nat}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
