"""Render reports into ``<out>/<user_id>/<daily|weekly>/<label>/`` atomically.

A report is built in a temporary sibling folder ``.<label>.tmp-<pid>`` (index.html, the PNGs,
report.json, each fsynced) and then put in place with one rename: where the report already
exists, Linux's ``renameat2(RENAME_EXCHANGE)`` swaps the two folders atomically, so a reader
sees the old report or the new one, never half of either (elsewhere: old -> aside, new -> in
place, a moment with no report at all, never a half one). Temporary folders of dead renderers
are removed on the next render of the same folder.

Each rendered report is an export of one person's data: it is recorded in the access log
(focuslake.privacy.access_log) with the user as a keyed hash.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import struct
import time
from pathlib import Path

from focuslake.config import Paths
from focuslake.reports import data
from focuslake.reports.periods import Period
from focuslake.segments import fsync_dir, pid_alive

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_TMP = re.compile(r"^\.(?P<label>.+)\.tmp-(?P<pid>\d+)$")
AT_FDCWD, RENAME_EXCHANGE = -100, 2


def reports_root(paths: Paths, out: Path | None = None) -> Path:
    return Path(out).resolve() if out else paths.root / "reports"


def report_dir(root: Path, user_id: str, period: Period) -> Path:
    if not _SAFE_ID.match(user_id):
        raise data.ReportError(f"user id {user_id!r} cannot name a folder safely")
    return root / user_id / period.kind / period.label


def _remove_orphans(parent: Path, label: str) -> None:
    for p in parent.glob(f".{label}.tmp-*"):
        m = _TMP.match(p.name)
        if m and m.group("label") == label and int(m.group("pid")) != os.getpid() and not pid_alive(int(m.group("pid"))):
            shutil.rmtree(p, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def publish_dir(tmp: Path, target: Path) -> None:
    """Put the finished folder ``tmp`` at ``target`` in one step (see the module doc)."""
    try:
        os.rename(tmp, target)  # no report there yet
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR):
            raise
        if _exchange(tmp, target):
            shutil.rmtree(tmp)  # now holds the old report
        else:
            aside = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.rename(target, aside)
            os.rename(tmp, target)
            shutil.rmtree(aside)
    fsync_dir(target.parent)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (raises ValueError if it is not a PNG)."""
    head = Path(path).read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    return struct.unpack(">II", head[16:24])


def _published_manifest(paths: Paths) -> dict:
    p = paths.published.with_suffix(".json")
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def write_report(report: dict, target: Path) -> Path:
    """Draw the charts and write index.html + report.json for ``report`` at ``target``."""
    from focuslake.reports import charts, page

    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(target.parent, target.name)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        drawn = charts.draw_all(report, tmp)
        for c in drawn:
            c["width"], c["height"] = png_size(tmp / c["file"])
        generated_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        report = {**report, "generated_at": generated_at, "charts": drawn}
        (tmp / "report.json").write_text(json.dumps(report, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        (tmp / "index.html").write_text(page.render(report, drawn, generated_at), encoding="utf-8")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(tmp)
        publish_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def render_reports(period: Period, users: list[str] | None = None, *, paths: Paths | None = None,
                   out: Path | None = None, progress: bool = False) -> list[dict]:
    """Render ``period``'s report for each of ``users`` (None: every user with data in it).

    Reads only the published warehouse, read-only. Returns one entry per report: user_id, dir,
    files. Raises ReportError when a named user has no data for the period.
    """
    from focuslake.privacy import access_log

    paths = paths or Paths.from_env()
    root = reports_root(paths, out)
    manifest = _published_manifest(paths)
    results = []
    con = data.connect(paths.published)
    try:
        with_data = data.users_with_data(con, period)
        if users is None:
            users = with_data
        for u in users:  # a named user without data fails the batch before anything is written
            report_dir(root, u, period)
            if u not in with_data:
                data.build(con, period, u)  # raises ReportError saying why
        with _progress(progress) as bar:
            task = bar.add_task(f"{period.kind} reports {period.label}", total=len(users))
            for u in users:
                bar.update(task, description=f"{period.kind} {period.label} {u}")
                r = data.build(con, period, u, db=paths.published)
                r["source"]["published_at"] = manifest.get("published_at")
                r["source"]["audit_run_id"] = manifest.get("audit_run_id")
                target = write_report(r, report_dir(root, u, period))
                files = sorted(p.name for p in target.iterdir())
                access_log.record(paths, "report", user_id=u, kind=period.kind, period=period.label,
                                  files=len(files), out=str(root))
                results.append({"user_id": u, "dir": str(target), "files": files})
                bar.advance(task)
    finally:
        con.close()
    return results


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), disable=not enabled, transient=False)
