"""The access log: one JSON line per export, forget, consent or retention command, with who
ran it, when, and from where (CLI or an Airflow task). The user the command concerned is kept
only as a keyed hash (:func:`focuslake.privacy.keys.user_hash`), so the log itself holds no
personal data and survives forgetting that user.

``<data>/privacy/access_log.jsonl``, appended with O_APPEND (one ``write`` per line, so
concurrent writers never interleave inside a line) and fsynced.
"""
from __future__ import annotations

import getpass
import json
import os
import socket
import time

from focuslake.config import Paths
from focuslake.privacy.keys import user_hash


def log_path(paths: Paths):
    return paths.root / "privacy" / "access_log.jsonl"


def actor() -> dict:
    """Who is acting: the OS user, and the Airflow DAG run/task when inside one."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = str(os.getuid())
    out = {"os_user": who, "host": socket.gethostname()}
    ctx = {k: os.environ[v] for k, v in (("dag_id", "AIRFLOW_CTX_DAG_ID"), ("run_id", "AIRFLOW_CTX_DAG_RUN_ID"),
                                         ("task_id", "AIRFLOW_CTX_TASK_ID")) if os.environ.get(v)}
    if ctx:
        out["airflow"] = ctx
    return out


def record(paths: Paths, action: str, *, user_id: str | None = None, **detail) -> dict:
    """Append one entry; ``detail`` must not hold personal data (paths, counts, formats...)."""
    entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "action": action, **actor()}
    if user_id is not None:
        entry["user_hash"] = user_hash(paths, user_id)
    if detail:
        entry["detail"] = detail
    p = log_path(paths)
    p.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


def entries(paths: Paths) -> list[dict]:
    p = log_path(paths)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
