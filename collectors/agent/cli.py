"""python -m collectors.agent start|stop|status|init-config

  start [--config FILE] [--foreground]   run the collector (daemon by default)
  stop [--config FILE] [--timeout S]     stop it (SIGTERM; it seals every segment)
  status [--config FILE] [--json]        what is collected, segments, last flush, consent, errors
  init-config FILE --user U --device D   write a commented config file

Exit codes: 0 ok, 1 error (bad config, cannot start), 3 `status`: not running.
"""
from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import signal
import sys
import time
from pathlib import Path

from . import config as cfgmod
from .config import ConfigError


def _load(args) -> cfgmod.Config:
    path = args.config or os.environ.get("FOCUSLAKE_COLLECTOR_CONFIG") or cfgmod.DEFAULT_CONFIG_PATH
    return cfgmod.load(path)


def _setup_logging(cfg: cfgmod.Config, to_file: bool) -> None:
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    if to_file:
        cfg.state_path.mkdir(parents=True, exist_ok=True)
        h = logging.handlers.RotatingFileHandler(cfg.state_path / "collector.log", maxBytes=1 << 20,
                                                 backupCount=3)
    else:
        h = logging.StreamHandler(sys.stderr)
    h.setFormatter(fmt)
    root.addHandler(h)


def _run(cfg: cfgmod.Config, on_ready=None) -> int:
    from .service import Collector, install_signal_handlers
    col = Collector(cfg)
    install_signal_handlers(col)
    return col.run(on_ready)


def cmd_start(args) -> int:
    from .service import AlreadyRunning, pid_running
    cfg = _load(args)
    running = pid_running(cfg.state_path / "collector.pid")
    if running:
        print(f"collector already running (pid {running})", file=sys.stderr)
        return 1
    if args.foreground:
        _setup_logging(cfg, to_file=False)
        try:
            return _run(cfg)
        except AlreadyRunning as e:
            print(str(e), file=sys.stderr)
            return 1
    # daemon: double fork; the parent waits until the child is collecting (or failed)
    r, w = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(w)
        with os.fdopen(r) as fh:
            msg = fh.read()
        os.waitpid(pid, 0)
        if msg.startswith("ok "):
            print(f"collector started (pid {msg.split()[1]}); logs: {cfg.state_path / 'collector.log'}")
            return 0
        print(f"collector failed to start: {msg.strip() or 'no message (see collector.log)'}", file=sys.stderr)
        return 1
    os.close(r)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    code = 1
    try:
        os.chdir("/")
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        _setup_logging(cfg, to_file=True)
        # stray output (a C library's warning, a traceback at exit) goes beside the log, which
        # the logging handler rotates itself
        log_fd = os.open(cfg.state_path / "daemon.err", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)

        def ready():
            os.write(w, f"ok {os.getpid()}\n".encode())
            os.close(w)

        code = _run(cfg, ready)
    except BaseException as e:
        try:
            os.write(w, f"{type(e).__name__}: {e}\n".encode())
        except OSError:
            pass
        logging.getLogger("collectors.agent").exception("collector failed")
    finally:
        os._exit(code)


def cmd_stop(args) -> int:
    from .service import pid_running
    cfg = _load(args)
    pid = pid_running(cfg.state_path / "collector.pid")
    if not pid:
        print("collector is not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + args.timeout
    while time.monotonic() < end:
        if not pid_running(cfg.state_path / "collector.pid"):
            print(f"collector stopped (pid {pid})")
            return 0
        time.sleep(0.05)
    print(f"collector (pid {pid}) did not stop within {args.timeout} s", file=sys.stderr)
    return 1


def _fmt_status(doc: dict, running: int | None) -> str:
    lines = [(f"collector: {f'running (pid {running})' if running else 'not running'}"
             f"  [{doc.get('state', '?')} at {doc.get('updated')}]"),
             f"user/device: {doc.get('user_id')}/{doc.get('device_id')}   landing: {doc.get('landing')}",
             (f"consent: keystroke_dynamics={doc['consent']['keystroke_dynamics']} "
             f"file_metadata={doc['consent']['file_metadata']}"),
             (f"landing: {'ok' if doc.get('landing_ok') else 'ERROR ' + json.dumps(doc.get('landing_errors'))}"
             f"   rows dropped: {doc.get('rows_dropped')}   native events dropped: {doc.get('native_events_dropped')}"),
             (f"segments sealed: {doc.get('segments_sealed')}   last flush: {doc.get('last_flush')}   "
             f"last seal: {doc.get('last_seal')}"),
             "streams:"]
    for name, s in doc.get("streams", {}).items():
        if not s.get("enabled"):
            lines.append(f"  {name:15s} off")
            continue
        lines.append(f"  {name:15s} rows {s['rows_written']:>7}  segments {s['segments_sealed']:>4}  "
                     f"pending {s['rows_pending']:>5}  dropped {s['rows_dropped']:>5}"
                     + (f"  ERROR {s['error']}" if s.get("error") else ""))
    nat = doc.get("native", {})
    if nat.get("enabled"):
        cap = nat.get("capture") or {}
        lines.append(f"  {'native capture':15s} {'running' if nat.get('running') else 'NOT running'}"
                     f"  events {cap.get('events_sealed')} sealed / {cap.get('events_seen')} seen"
                     f"  dropped {cap.get('events_dropped')}  restarts {nat.get('restarts')}"
                     + (f"  ERROR {nat.get('error')}" if nat.get("error") else ""))
    act = doc.get("activity", {})
    lines.append(f"activity: {act.get('state')}  last input {act.get('last_input')}  "
                 f"afk since {act.get('afk_since')}")
    lines.append(f"screen: {'locked' if doc.get('lock', {}).get('locked') else 'unlocked'}   "
                 f"network: {'online' if doc.get('network', {}).get('online') else 'offline'}")
    rec = doc.get("recovery") or {}
    lines.append(f"recovered at start: {rec.get('recovered', 0)} .part files "
                 f"({rec.get('rows_recovered', 0)} rows), discarded {rec.get('discarded', 0)}")
    lines.append("never recorded: " + "; ".join(doc.get("never_recorded", [])))
    return "\n".join(lines)


def cmd_status(args) -> int:
    from .service import pid_running
    cfg = _load(args)
    running = pid_running(cfg.state_path / "collector.pid")
    try:
        doc = json.loads((cfg.state_path / "status.json").read_text())
    except (OSError, ValueError):
        doc = None
    if args.json:
        print(json.dumps({"running": bool(running), "pid": running, "status": doc}, indent=1))
    elif doc is None:
        print("collector: " + (f"running (pid {running}), no status yet" if running else "not running, never started"))
    else:
        print(_fmt_status(doc, running))
    return 0 if running else 3


def cmd_init_config(args) -> int:
    p = Path(args.path).expanduser()
    if p.exists() and not args.force:
        print(f"{p} exists (use --force to overwrite)", file=sys.stderr)
        return 1
    text = cfgmod.render_template(args.user, args.device, args.landing, args.state_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    cfgmod.load(p)   # the template must itself be valid
    print(f"wrote {p}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m collectors.agent", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("start", "stop", "status"):
        sp = sub.add_parser(name)
        sp.add_argument("--config", help=f"config file (default: $FOCUSLAKE_COLLECTOR_CONFIG or "
                                         f"{cfgmod.DEFAULT_CONFIG_PATH})")
        if name == "start":
            sp.add_argument("--foreground", "-f", action="store_true", help="run in this terminal")
        if name == "stop":
            sp.add_argument("--timeout", type=float, default=15.0)
        if name == "status":
            sp.add_argument("--json", action="store_true")
    sp = sub.add_parser("init-config")
    sp.add_argument("path")
    sp.add_argument("--user", required=True)
    sp.add_argument("--device", required=True)
    sp.add_argument("--landing")
    sp.add_argument("--state-dir")
    sp.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    try:
        return {"start": cmd_start, "stop": cmd_stop, "status": cmd_status,
                "init-config": cmd_init_config}[args.cmd](args)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 1
