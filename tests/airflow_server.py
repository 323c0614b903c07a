"""A real Airflow for tests: ``python -m focuslake.airflow_ui`` (what ``make airflow`` runs:
``airflow standalone`` = scheduler, DAG processor, triggerer, API server/UI, LocalExecutor) in
its own process group, on a free loopback port, with its own AIRFLOW_HOME and data root, and a
small client for its REST API (``/api/v2``, bearer token from ``/auth/token``).

Nothing here imports Airflow: the server runs in other processes, with other settings than the
pytest process's own (tests/conftest.py).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from focuslake.airflow_env import airflow_env
from focuslake.config import PROJECT_ROOT

TERMINAL = {"success", "failed"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiError(AssertionError):
    def __init__(self, status: int, method: str, path: str, body: str):
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:1000]}")
        self.status = status


class AirflowServer:
    """``airflow standalone`` through the project's launcher, plus a REST client."""

    def __init__(self, home: Path, data: Path, *, port: int | None = None, password: str | None = None,
                 paused_at_creation: bool = True, extra_env: dict[str, str] | None = None):
        self.home, self.data = Path(home).resolve(), Path(data).resolve()
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.password = password
        self.log_path = self.home / "standalone.log"
        self.proc: subprocess.Popen | None = None
        self._token: str | None = None
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(FOCUSLAKE_DATA=str(self.data), FOCUSLAKE_AIRFLOW_PORT=str(self.port),
                   AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=str(paused_at_creation))
        if password is not None:
            env["AIRFLOW_ADMIN_PASSWORD"] = password
        env.update(extra_env or {})
        self.launch_env = env
        # What the server's processes see (for CLI commands against the same metadata DB).
        self.env = {**env, **airflow_env(self.home, environ=env)}

    # -- process ---------------------------------------------------------------------------
    def start(self) -> AirflowServer:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "focuslake.airflow_ui", "--home", str(self.home), "--port", str(self.port)],
                cwd=PROJECT_ROOT, env=self.launch_env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,  # own process group: stop() ends it all
            )
        return self

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"airflow standalone exited with {self.proc.returncode}:\n{self.log_tail()}")

    def wait_ready(self, dag_ids: set[str], timeout: float = 300) -> float:
        """Wait until the UI answers, the scheduler, DAG processor and triggerer are healthy and
        every DAG in ``dag_ids`` is parsed. Returns the seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        last = "nothing yet"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                health = self.get("/api/v2/monitor/health", auth=False)
                states = {k: (v or {}).get("status") for k, v in health.items()}
                if all(states.get(k) == "healthy" for k in ("metadatabase", "scheduler", "dag_processor",
                                                              "triggerer")):
                    parsed = {d["dag_id"] for d in self.get("/api/v2/dags?limit=100")["dags"]}
                    if dag_ids <= parsed:
                        return time.monotonic() - started
                    last = f"healthy; DAGs parsed so far: {sorted(parsed)}"
                else:
                    last = f"health {states}"
            except (OSError, ApiError) as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(2)
        raise AssertionError(f"Airflow not ready after {timeout:.0f}s ({last}):\n{self.log_tail()}")

    def stop(self, timeout: float = 40) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session: the launcher leads its own process group
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # children (scheduler, workers...) may outlive the leader
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # -- REST API --------------------------------------------------------------------------
    def admin_password(self) -> str:
        if self.password is not None:
            return self.password
        return json.loads(Path(self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).read_text())["admin"]

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True,
                token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {token or self.token()}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def _ok(self, method: str, path: str, body: Any = None, **kw) -> Any:
        status, payload = self.request(method, path, body, **kw)
        if status >= 300:
            raise ApiError(status, method, path, str(payload))
        return payload

    def get(self, path: str, **kw) -> Any:
        return self._ok("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw) -> Any:
        return self._ok("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw) -> Any:
        return self._ok("PATCH", path, body, **kw)

    def login(self, username: str, password: str) -> tuple[int, Any]:
        return self.request("POST", "/auth/token", {"username": username, "password": password}, auth=False)

    def token(self) -> str:
        if self._token is None:
            status, payload = self.login("admin", self.admin_password())
            if status != 201:
                raise ApiError(status, "POST", "/auth/token", str(payload))
            self._token = payload["access_token"]
        return self._token

    # -- DAGs and runs ----------------------------------------------------------------------
    def unpause(self, dag_id: str) -> None:
        self.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, *, run_after: datetime | None = None, conf: dict | None = None,
                run_id: str | None = None) -> str:
        """Trigger a run without a logical date (so it never collides with scheduled or backfill
        runs); ``run_after`` in the past makes it runnable at once."""
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_after is not None:
            body["run_after"] = run_after.isoformat()
        if run_id is not None:
            body["dag_run_id"] = run_id
        return self.post(f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=id")["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str = "~", run_id: str = "~") -> list[dict]:
        q = urllib.parse.quote(run_id, safe="~")
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{q}/taskInstances?limit=500")["task_instances"]

    def wait_runs(self, dag_id: str, run_ids: list[str], timeout: float = 300) -> dict[str, str]:
        """Wait until every run is success/failed; returns {run_id: state}. On timeout, raises
        with each unfinished run's task states and the server log tail."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            self._check_alive()
            states = {r: self.run(dag_id, r)["state"] for r in run_ids}
            if all(s in TERMINAL for s in states.values()):
                return states
            time.sleep(3)
        detail = {r: {t["task_id"]: t["state"] for t in self.task_instances(dag_id, r)} for r in run_ids}
        raise AssertionError(f"{dag_id} runs not finished after {timeout:.0f}s: {states}\n{detail}\n"
                             f"{self.log_tail(30)}")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        q = urllib.parse.quote(run_id, safe="")
        payload = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{q}/taskInstances/{task_id}/logs/{try_number}"
                           "?full_content=true")
        content = payload.get("content", payload) if isinstance(payload, dict) else payload
        if isinstance(content, list):
            return "\n".join(c.get("event", str(c)) if isinstance(c, dict) else str(c) for c in content)
        return str(content)

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """``airflow <args>`` against this server's metadata DB, with its settings."""
        airflow = str(Path(sys.executable).parent / "airflow")
        return subprocess.run([airflow, *args], env=self.env, cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=timeout, check=False)
