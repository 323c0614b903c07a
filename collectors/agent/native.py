"""Supervise native/build/focus-capture: start it, restart it with backoff, stop it cleanly.

The capture writes its own binary segments (landing/events/...) and a status file; the
collector reads that file for `status`. A capture left over from a collector that was
killed is stopped (SIGTERM: it seals its segment) before the collector recovers `.part`
files, so recovery never races a live writer.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from focuslake.config import NATIVE_DIR

log = logging.getLogger("collectors.agent.native")
BINARY_NAME = "focus-capture"


def find_binary(configured: str = "") -> Path | None:
    if configured:
        p = Path(configured).expanduser()
        return p if p.is_file() and os.access(p, os.X_OK) else None
    built = NATIVE_DIR / "build" / BINARY_NAME
    if built.is_file() and os.access(built, os.X_OK):
        return built
    found = shutil.which(BINARY_NAME)
    return Path(found) if found else None


def _is_capture(pid: int) -> bool:
    """A live (not zombie) focus-capture process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    name, _, rest = stat.partition(" (")[2].rpartition(") ")
    return name == BINARY_NAME[:15] and not rest.startswith(("Z", "X"))


def stop_stale(pidfile: Path, timeout: float = 3.0) -> int | None:
    """Stop a capture a previous (killed) collector left running. Returns its pid if any."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    if not _is_capture(pid):
        pidfile.unlink(missing_ok=True)
        return None
    log.warning("stopping focus-capture pid %d left by a previous collector", pid)
    _terminate(pid, timeout)
    pidfile.unlink(missing_ok=True)
    return pid


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not _is_capture(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)   # it would not stop: only its .part stays, recovered later
    except ProcessLookupError:
        pass


class NativeSupervisor:
    def __init__(self, *, binary: str, landing: Path, user_id: str, device_id: str, state_dir: Path,
                 display: str | None, rotate_seconds: float, rotate_bytes: int, consent_keys: bool,
                 restart_max_seconds: float = 60.0, exclude_apps: list[str] | None = None):
        self.binary = find_binary(binary)
        self.configured = binary
        self.landing, self.user_id, self.device_id = landing, user_id, device_id
        self.state_dir = state_dir
        self.display = display
        self.rotate_seconds, self.rotate_bytes = rotate_seconds, rotate_bytes
        self.consent_keys = consent_keys
        self.exclude_apps = list(exclude_apps or [])
        self.restart_max = restart_max_seconds
        self.proc: subprocess.Popen | None = None
        self.pidfile = state_dir / "native.pid"
        self.status_file = state_dir / "native-status.json"
        self.log_file = state_dir / "native.log"
        self.starts = 0
        self.restarts = 0
        self.last_exit: int | None = None
        self.error: str | None = None
        self._backoff = 1.0
        self._next_start = 0.0
        self._started_at = 0.0
        self.stopping = False

    @property
    def available(self) -> bool:
        return self.binary is not None

    def start(self) -> bool:
        if self.binary is None:
            self.error = (f"{self.configured} is not an executable file" if self.configured else
                          f"{BINARY_NAME} not built (run `make -C native`; needs libx11-dev libxtst-dev)")
            return False
        cmd = [str(self.binary), "--landing", str(self.landing), "--user", self.user_id,
               "--device", self.device_id, "--rotate-seconds", repr(float(self.rotate_seconds)),
               "--rotate-bytes", str(self.rotate_bytes), "--status-file", str(self.status_file)]
        if self.consent_keys:
            cmd.append("--consent-keys")
        for app in self.exclude_apps:
            cmd += ["--exclude-app", app]
        if self.display:
            cmd += ["--display", self.display]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.starts == 0:
            self.status_file.unlink(missing_ok=True)   # a previous run's numbers
        try:
            with open(self.log_file, "ab") as err:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                             close_fds=True)
        except OSError as e:
            self.error = f"cannot start {self.binary}: {e}"
            return False
        self.pidfile.write_text(f"{self.proc.pid}\n")
        self.starts += 1
        self._started_at = time.monotonic()
        log.info("focus-capture started (pid %d)", self.proc.pid)
        return True

    def poll(self) -> None:
        """Restart a capture that exited (exponential backoff up to restart_max_seconds)."""
        if self.stopping or self.binary is None:
            return
        now = time.monotonic()
        if self.proc is not None:
            rc = self.proc.poll()
            if rc is None:
                if now - self._started_at > 30:
                    self._backoff = 1.0            # ran fine for a while: reset the backoff
                return
            self.last_exit = rc
            self.error = f"focus-capture exited with status {rc} (see {self.log_file})"
            log.error("%s; restarting in %.0f s", self.error, self._backoff)
            self.proc = None
            self._next_start = now + self._backoff
            self._backoff = min(self._backoff * 2, self.restart_max)
            return
        if now >= self._next_start and self.start():
            self.restarts += 1

    def restart(self, consent_keys: bool) -> bool:
        """Seal and stop the running capture, then start it again with another key consent."""
        self.stop()
        self.stopping = False
        self.consent_keys = consent_keys
        return self.start()

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping = True
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.last_exit = self.proc.returncode
        self.pidfile.unlink(missing_ok=True)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def status(self) -> dict:
        out = {"binary": str(self.binary) if self.binary else None, "running": self.running(),
               "pid": self.proc.pid if self.running() else None, "starts": self.starts,
               "restarts": self.restarts, "last_exit": self.last_exit, "error": self.error,
               "key_identity_consent": self.consent_keys}
        try:
            st = json.loads(self.status_file.read_text())
            out["capture"] = {k: st.get(k) for k in ("state", "events_seen", "events_sealed",
                                                     "events_dropped", "segments", "last_error")}
        except (OSError, ValueError):
            pass
        return out
