"""Run a receiver as a separate process on a loopback port (tests and the benchmark use it:
the real server, real HTTP, a real process that can be killed)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

from focuslake.config import PROJECT_ROOT, apply_no_telemetry


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ReceiverProcess:
    """`python -m focuslake.receiver serve` in a child process. `args` are extra serve flags."""

    def __init__(self, data_root: Path, *args: str, port: int | None = None, log: Path | None = None):
        self.data_root = Path(data_root)
        self.args = list(args)
        self.port = port or free_port()
        self.log = log or self.data_root / f"receiver-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ReceiverProcess:
        self.data_root.mkdir(parents=True, exist_ok=True)
        env = apply_no_telemetry(dict(os.environ))
        env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self._fh = open(self.log, "ab")  # noqa: SIM115  (closed by stop/kill)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "focuslake.receiver", "--data", str(self.data_root), "serve",
             "--port", str(self.port), "--log-level", "warning", *self.args],
            stdout=self._fh, stderr=subprocess.STDOUT, env=env, cwd=PROJECT_ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"receiver exited with {self.proc.returncode}: "
                                   f"{self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"receiver not healthy after {timeout} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup -- a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()
            self._fh = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
