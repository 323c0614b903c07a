"""Helpers for the collector tests: write a config, run `python -m collectors.agent start -f`
as a real process, read what it landed."""
from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from focuslake import events as ev
from focuslake.segments import PART_SUFFIX

ROOT = Path(__file__).resolve().parents[1]
USER, DEVICE = "tester", "xvfb-box"


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def write_config(path: Path, landing: Path, state: Path, **sections) -> Path:
    """sections: top-level keys, and dicts for tables (e.g. idle={"idle_seconds": 1})."""
    top = {"user_id": USER, "device_id": DEVICE, "landing": str(landing), "state_dir": str(state)}
    tables = {}
    for k, v in sections.items():
        (tables if isinstance(v, dict) else top).__setitem__(k, v)
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for name, kv in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in kv.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class Running:
    def __init__(self, proc: subprocess.Popen, state: Path, log: Path):
        self.proc, self.state, self.log = proc, state, log

    def status(self) -> dict:
        return json.loads((self.state / "status.json").read_text())

    def wait_status(self, pred, timeout: float = 20, what: str = "condition") -> dict:
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                last = self.status()
                if pred(last):
                    return last
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None:
                raise AssertionError(f"collector exited ({self.proc.returncode}) waiting for {what}:\n"
                                     f"{self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; last status: {json.dumps(last)[:3000]}")

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("collector did not stop on SIGTERM:\n" + self.log.read_text()[-3000:]) from None

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def start_collector(config: Path, state: Path, env: dict, *, wait_native: bool = False,
                    timeout: float = 30) -> Running:
    """Start in the foreground; return once it is collecting (status.json says running)."""
    state.mkdir(parents=True, exist_ok=True)
    (state / "status.json").unlink(missing_ok=True)
    log = state / "foreground.log"
    env = {**env, "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "collectors.agent", "start", "--foreground",
                                 "--config", str(config)], cwd=ROOT, env=env, stdout=fh, stderr=fh)
    run = Running(proc, state, log)
    run.wait_status(lambda s: s.get("state") == "running", timeout, "status running")
    if wait_native:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if json.loads((state / "native-status.json").read_text()).get("state") == "running":
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        else:
            raise AssertionError("native capture never reported running:\n" + log.read_text()[-3000:])
    return run


def files(landing: Path, stream: str, parts: bool = False) -> list[Path]:
    base = landing / stream / USER / DEVICE
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*") if p.is_file() and p.name.endswith(PART_SUFFIX) == parts)


def csv_rows(landing: Path, stream: str) -> list[dict]:
    out = []
    for f in files(landing, stream):
        with open(f, newline="") as fh:
            out.extend(csv.DictReader(fh))
    return sorted(out, key=lambda r: int(r["ts_us"]))


def event_segments(landing: Path) -> list[tuple[Path, ev.SegmentHeader, np.ndarray]]:
    out = []
    for f in files(landing, "events"):
        h, recs = ev.read_segment(f)
        out.append((f, h, recs))
    return out


def all_records(landing: Path, native: bool | None = None) -> np.ndarray:
    """Every record landed; native=True only the capture's segments (-n####.bin)."""
    arrs = [r for f, _, r in event_segments(landing)
            if native is None or f.stem.rsplit("-", 1)[-1].startswith("n") == native]
    if not arrs:
        return np.zeros(0, ev.EVENT_DTYPE)
    a = np.concatenate(arrs)
    return a[np.argsort(a["timestamp_us"], kind="stable")]
