"""Event-driven ingest: an Airflow trigger that fires when a sealed segment lands.

`focus_ingest` is scheduled on the asset **focus_landing** (or every 5 minutes, whichever comes
first). The asset has an ``AssetWatcher`` whose trigger is :class:`LandingTrigger`: it runs in the
triggerer, polls the landing zone every ``poke_interval`` seconds and fires once a sealed segment
(not ``.part``, not hidden) appeared since the last segment it reported. Each event updates the
asset, which queues one `focus_ingest` run (events that arrive while a run is queued coalesce).

What "appeared" means: the segment's inode change time (``st_ctime_ns``) is newer than the
watermark. A collector seals a segment by renaming ``.part`` to its name, the receiver does the
same, and ``mv`` into the landing zone is a rename too: each updates the ctime, even when the
file keeps an old mtime. Only directories whose own mtime is newer than the watermark are listed
(a rename into a directory updates it), so a poll of a large landing zone stats directories, not
every segment.

The watermark is kept in ``<data>/.landing_watch`` (JSON), written before the event is emitted:
the triggerer restarts the trigger after every event (and after its own restarts), so the
trigger has no other memory. If the triggerer dies between the two, that event is lost and the
5-minute schedule ingests the segment instead. Ingest itself never depends on the watermark (its
ledger decides what is new), so a spurious event costs one skipped run.

Import-light: the DAG file imports this at parse time (only Airflow's trigger base class).
"""
from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

WATERMARK_FILE = ".landing_watch"


def watermark_path(root: Path) -> Path:
    return root / WATERMARK_FILE


def read_watermark(root: Path) -> int:
    try:
        return int(json.loads(watermark_path(root).read_text())["ctime_ns"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def write_watermark(root: Path, ctime_ns: int) -> None:
    path = watermark_path(root)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"ctime_ns": ctime_ns}))
    os.replace(tmp, path)


def newly_sealed(landing: Path, after_ns: int) -> tuple[int, int]:
    """(count, newest ctime_ns) of sealed segments under ``landing`` changed after ``after_ns``.

    Sealed as focuslake.ingest.discover counts them (not ``.part``, not hidden); unlike it, files
    of directories unchanged since ``after_ns`` are not stat'ed.
    """
    from focuslake.segments import PART_SUFFIX  # here, not at module level: numpy, not at DAG parse

    count, newest = 0, after_ns
    stack = [landing]
    while stack:
        d = stack.pop()
        try:
            if d.stat().st_mtime_ns <= after_ns and d != landing:
                # nothing was added or renamed in this directory since; look only deeper
                listing = [e for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
            else:
                listing = list(os.scandir(d))
        except FileNotFoundError:  # removed meanwhile (retention, forget)
            continue
        for e in listing:
            if e.name.startswith("."):
                continue
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
            elif not e.name.endswith(PART_SUFFIX):
                try:
                    c = e.stat(follow_symlinks=False).st_ctime_ns
                except FileNotFoundError:
                    continue
                if c > after_ns:
                    count, newest = count + 1, max(newest, c)
    return count, newest


class LandingTrigger(BaseEventTrigger):
    """Fires once when sealed segments landed since the last event (see the module docstring).

    The data root comes from ``FOCUSLAKE_DATA`` in the triggerer's environment, like every other
    path of the pipeline: nothing machine-specific is serialized into the DAG.
    """

    def __init__(self, poke_interval: float = 5.0) -> None:
        super().__init__()
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict]:
        return ("focuslake.landing_watch.LandingTrigger", {"poke_interval": self.poke_interval})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from focuslake.config import Paths

        root = Paths.from_env().root
        while True:
            mark = read_watermark(root)
            count, newest = await asyncio.to_thread(newly_sealed, root / "landing", mark)
            if count:
                write_watermark(root, newest)
                self.log.info("%d sealed segment(s) landed; updating focus_landing", count)
                yield TriggerEvent({"segments": count, "ctime_ns": newest})
                return
            await asyncio.sleep(self.poke_interval)
