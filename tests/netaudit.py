"""Record every attempt to reach beyond this machine: socket connects and name lookups, by
Python audit hooks (PEP 578) in this process and -- through a ``sitecustomize`` on PYTHONPATH --
in every Python child process (dbt, Airflow task runners...). Loopback, Unix sockets and this
machine's own name are local; anything else is recorded, whether or not it would have worked.

    with audit(tmp_path) as seen:
        ... run DAGs ...
    assert seen.outbound() == []
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

_SITE = '''
import os, sys
_log = os.environ.get("FOCUSLAKE_NET_AUDIT")
if _log:
    import json
    def _focuslake_net_audit(event, args):
        if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto"):
            try:
                target = args[1] if event in ("socket.connect", "socket.sendto") else args[0]
                with open(_log, "a") as fh:
                    fh.write(json.dumps({"pid": os.getpid(), "event": event, "target": repr(target)}) + "\\n")
            except Exception:
                pass
    sys.addaudithook(_focuslake_net_audit)
'''


def local_names() -> set[str]:
    names = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "", "None", socket.gethostname()}
    with contextlib.suppress(OSError):
        names.add(socket.getfqdn())
    return names


def is_local(target: str) -> bool:
    """``target`` is the repr of a connect address or a looked-up host name."""
    t = target.strip()
    if t.startswith(("'/", "b'/", "'\\x00", "b'\\x00", "'@")):
        return True  # Unix socket (path or abstract)
    host = t
    if t.startswith("("):  # ('host', port[, flow, scope])
        host = t[1:].split(",", 1)[0]
    host = host.strip().strip("'\"").removeprefix("b'")
    return host in local_names() or host.startswith("127.") or host in ("None", "")


@dataclass
class Seen:
    log: Path
    events: list[dict] = field(default_factory=list)

    def all(self) -> list[dict]:
        out = list(self.events)
        if self.log.exists():
            out += [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]
        return out

    def outbound(self) -> list[dict]:
        return [e for e in self.all() if not is_local(e["target"])]


_current: list[Seen] = []


def _hook(event, args):  # installed once per process; records only inside audit()
    if _current and event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto"):
        target = args[1] if event in ("socket.connect", "socket.sendto") else args[0]
        _current[-1].events.append({"pid": os.getpid(), "event": event, "target": repr(target)})


_installed = False


@contextlib.contextmanager
def audit(tmp: Path):
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    site = tmp / "netaudit-site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(_SITE)
    seen = Seen(tmp / "netaudit.jsonl")
    old = {k: os.environ.get(k) for k in ("PYTHONPATH", "FOCUSLAKE_NET_AUDIT")}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), old["PYTHONPATH"]) if p)
    os.environ["FOCUSLAKE_NET_AUDIT"] = str(seen.log)
    _current.append(seen)
    try:
        yield seen
    finally:
        _current.remove(seen)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
