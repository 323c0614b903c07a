"""Importers: other trackers' history landed as segments of this project's own streams, so the
ingest, dbt and the quality gate treat it like collector data (docs/activitywatch.md).

The one rule that tells imported rows from collector rows (docs/quality.md, "Imported
history"): an importer names every segment by its content,

    <stream>-<source>-<YYYYMMDD>-<20 hex digits of a SHA-256>.csv

and lands it under its own stream's directory; collectors name theirs by time
(`<stream>-<YYYYMMDDTHHMMSSZ>-<nnnn>.csv|.bin`, focuslake.segments). Every row keeps its
segment's landing path as `segment_id` in the lake and in bronze, so a row's source is known for
as long as the row exists -- unlike the import records in <data>/imports/, which retention and
`forget` prune. A name that merely contains the source, or whose stream prefix is not the
directory's stream, is a collector's. This module is plain data and stdlib (the quality gate
imports it).
"""
from __future__ import annotations

import re

COLLECTOR = "collector"             # the source of every row not written by an importer
SOURCES = ("activitywatch",)        # one per importer module of this package
# the file name of an imported segment: (stream, source, day, digest)
NAME_RE = r"([a-z_]+)-(" + "|".join(SOURCES) + r")-([0-9]{8})-([0-9a-f]{20})\.csv$"
_PATH_RE = re.compile(r"^([a-z_]+)/[^/]+/[^/]+/[^/]+/" + NAME_RE)


def segment_name(stream: str, source: str, day: str, digest: str) -> str:
    """An importer's content-derived segment name (without the .csv suffix the writer adds)."""
    if source not in SOURCES:
        raise ValueError(f"unknown import source {source!r}; add it to focuslake.importers.SOURCES")
    return f"{stream}-{source}-{day.replace('-', '')}-{digest[:20]}"


def source_of(segment_id: str) -> str:
    """The source of a landed segment (its landing path, stream/user/device/day/name): the
    importer's name for an imported segment, else COLLECTOR."""
    m = _PATH_RE.match(segment_id)
    return m.group(3) if m and m.group(1) == m.group(2) else COLLECTOR


def source_sql(column: str = "segment_id") -> str:
    """DuckDB expression equal to source_of(column) (DuckDB's RE2 has no back-references: the
    name's stream prefix is compared with the path's first component separately)."""
    path = rf"^[a-z_]+/[^/]+/[^/]+/[^/]+/{NAME_RE}"
    return (f"CASE WHEN regexp_extract({column}, '{path}', 1) = split_part({column}, '/', 1) "
            f"THEN regexp_extract({column}, '{path}', 2) ELSE '{COLLECTOR}' END")
