"""The CSV single pass (focuslake.ingest.csv_single_pass) against the two-pass path.

A partition whose new segments are all good is parsed, validated and written in one pass; a
partition with any doubt (a bad row of any kind, a row of another day, no consent that day)
takes the two-pass path. Every rule of focuslake.schemas is broken once, in a segment of its
own, among good rows: the expected outcome of each case is known here (rows kept or rejected),
and the lake, ledger and quarantine must be the same as with the single pass switched off --
including on an incremental run that appends to and re-lands segments of existing partitions.
"""
from __future__ import annotations

import math
import shutil
import sqlite3

import duckdb
import pyarrow.parquet as pq
import pytest

from focuslake.config import Paths
from focuslake.ingest import _rules, ingest_landing
from focuslake.privacy import consent as C
from focuslake.schemas import CSV_STREAMS, MIN_TS_US

T0 = 1_763_300_000_000_000          # 2025-11-16 13:33:20 UTC
DAY = "2025-11-16"
MIDNIGHT = 1_763_337_600_000_000    # 2025-11-17 00:00 UTC
NOW = T0 + 3600 * 1_000_000
S = 1_000_000


def good_values(stream) -> list[str]:
    """A row (after ts_us) that satisfies every declared constraint of the stream."""
    out = []
    for c in stream.columns[1:]:
        if c.accepted:
            out.append(c.accepted[0])
        elif c.sql_type == "BOOLEAN":
            out.append("true")
        elif c.sql_type == "VARCHAR":
            out.append("x")
        else:
            v = max(1, c.min or 0)
            out.append(str(v) if c.sql_type in ("BIGINT", "INTEGER") else f"{v:.1f}")
    return out


def line(stream, ts, **override) -> str:
    vals = dict(zip(stream.names, [str(ts), *good_values(stream)], strict=True))
    vals.update(override)
    return ",".join(vals[n] for n in stream.names)


def cases() -> list[tuple[str, str, str, bool]]:
    """(stream, case name, the middle line, kept?) -- every rule broken once, plus values that
    look odd but break no rule (NaN and inf where only a minimum is declared)."""
    out = []
    for name, stream in CSV_STREAMS.items():
        for r in _rules(stream, NOW):
            if r.kind == "null":
                bad = ""
            elif r.kind == "below":
                bad = str(int(r.lo) - 1)
            elif r.kind == "above":
                bad = str(int(r.hi) + 1)
            elif r.kind == "outside":
                out.append((name, f"{r.column}-future", line(stream, NOW + 2 * 86_400 * S), False))
                bad = str(MIN_TS_US - 1)
            else:
                bad = "bogus"
            ts = T0 + S if r.column != "ts_us" else bad
            out.append((name, f"{r.column}-{r.kind}", line(stream, ts, **{r.column: bad} if r.column != "ts_us" else {}),
                        False))
        for c in stream.columns[1:]:
            if c.sql_type == "DOUBLE":
                has_max = c.max is not None
                out.append((name, f"{c.name}-nan", line(stream, T0 + S, **{c.name: "nan"}), not has_max))
                out.append((name, f"{c.name}-inf", line(stream, T0 + S, **{c.name: "inf"}), not has_max))
                if c.min is not None:
                    out.append((name, f"{c.name}-neginf", line(stream, T0 + S, **{c.name: "-inf"}), False))
            if c.sql_type in ("BIGINT", "INTEGER", "DOUBLE", "BOOLEAN"):
                out.append((name, f"{c.name}-unparseable", line(stream, T0 + S, **{c.name: "abc"}), False))
        out.append((name, "too-few-columns", line(stream, T0 + S).rsplit(",", 1)[0], False))
        out.append((name, "all-good", line(stream, T0 + S), True))
    return out


CASES = cases()


def put(paths: Paths, stream: str, device: str, name: str, lines: list[str], user="alice", day=DAY,
        reverse_columns=False):
    p = paths.landing / stream / user / device / day / f"{stream}-{name}.csv"
    p.parent.mkdir(parents=True, exist_ok=True)
    rows = [CSV_STREAMS[stream].names, *(ln.split(",") for ln in lines)]
    p.write_text("\n".join(",".join(r[::-1] if reverse_columns else r) for r in rows) + "\n")
    return p


def first_landing(paths: Paths) -> None:
    for i, (stream, _name, middle, _kept) in enumerate(CASES):
        st = CSV_STREAMS[stream]
        put(paths, stream, f"d{i:03d}", "0000", [line(st, T0), middle, line(st, T0 + 2 * S)])
    sm = CSV_STREAMS["system_metrics"]
    # one partition of three segments (one hour each), one out of time order
    for k in range(3):
        t = T0 + k * 3600 * S
        rows = [line(sm, t + j * 5 * S) for j in range(4)]
        put(paths, "system_metrics", "multi", f"{k:04d}", rows[::-1] if k == 1 else rows)
    # a segment dated DAY whose last rows are past midnight: two partitions, two passes; the next
    # day's own segment takes the single pass, and the two-pass rows are merged into its file
    put(paths, "system_metrics", "midnight", "0000", [line(sm, MIDNIGHT - 5 * S), line(sm, MIDNIGHT + 5 * S)])
    put(paths, "system_metrics", "midnight", "0001", [line(sm, MIDNIGHT + 60 * S), line(sm, MIDNIGHT + 65 * S)],
        day="2025-11-17")
    # the header's columns in another order (allowed): single pass
    put(paths, "input_counts", "reordered", "0000", [line(CSV_STREAMS["input_counts"], T0 + j * S) for j in range(3)],
        reverse_columns=True)
    # consent withdrawn for part of DAY: two passes, the rows in the gap dropped
    put(paths, "system_metrics", "lap1", "0000", [line(sm, T0 + j * 5 * S) for j in range(10)], user="carol")


def second_landing(paths: Paths) -> None:
    """Incremental: a new segment for an existing partition, a re-landed (changed) one, and a
    changed case segment that is now all good."""
    sm = CSV_STREAMS["system_metrics"]
    put(paths, "system_metrics", "multi", "0003", [line(sm, T0 + 3 * 3600 * S + j * 5 * S) for j in range(4)])
    put(paths, "system_metrics", "multi", "0000", [line(sm, T0 + 7 * S, cpu_percent="55.5")])
    i = next(i for i, c in enumerate(CASES) if c[0] == "system_metrics" and c[1] == "cpu_percent-above")
    put(paths, "system_metrics", f"d{i:03d}", "0000", [line(sm, T0), line(sm, T0 + S, cpu_percent="99.0")])


def lake_state(paths: Paths) -> dict:
    """Every partition file's rows as written (order included; NaN compared by repr)."""
    out = {}
    for f in sorted(paths.lake.rglob("*.parquet")):
        rel = f.relative_to(paths.lake).as_posix()
        if rel.startswith(("_schemas/", "_ledger/")):
            continue
        rows = pq.read_table(f).to_pylist()
        out[rel] = [{k: repr(v) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    return out


def ledger(paths: Paths) -> dict:
    con = sqlite3.connect(paths.ledger)
    con.row_factory = sqlite3.Row
    rows = {r["path"]: {k: v for k, v in dict(r).items() if k not in ("run_id", "ingested_at_us", "mtime_ns")}
            for r in con.execute("SELECT * FROM segments")}
    con.close()
    return rows


def rejects(paths: Paths) -> dict:
    return {f.relative_to(paths.quarantine).as_posix(): pq.read_table(f).to_pylist()
            for f in sorted((paths.quarantine / "rows").rglob("*.parquet"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same landing ingested with the single pass and with two passes only, in two rounds."""
    base = tmp_path_factory.mktemp("single_pass")
    single, two = Paths(base / "single").ensure(), Paths(base / "two").ensure()
    first_landing(single)
    with C.Registry(single) as reg:
        reg.withdraw("carol", "system_metrics", at_us=T0 + 20 * S)
        reg.grant("carol", "system_metrics", at_us=T0 + 30 * S)
    shutil.rmtree(two.root)
    shutil.copytree(single.root, two.root)
    out = {"single": [], "two": []}
    for rnd in (0, 1):
        if rnd:
            second_landing(single)
            shutil.rmtree(two.landing)
            shutil.copytree(single.landing, two.landing)
        out["single"].append(ingest_landing(single, now_us=NOW))
        out["two"].append(ingest_landing(two, now_us=NOW, csv_single_pass=False))
        out.setdefault("state", []).append(tuple((lake_state(p), ledger(p), rejects(p)) for p in (single, two)))
    out["paths"], out["paths_two"] = single, two
    return out


def test_every_rule_broken_once_is_caught_and_good_odd_values_kept(runs):
    led = runs["state"][0][0][1]
    for i, (stream, name, _middle, kept) in enumerate(CASES):
        e = led[f"{stream}/alice/d{i:03d}/{DAY}/{stream}-0000.csv"]
        want = (3, 3, 0) if kept else (3, 2, 1)
        assert (e["rows_read"], e["rows_written"], e["rows_quarantined"]) == want, (stream, name, e)


def test_only_partitions_without_doubt_take_the_single_pass(runs):
    first, second = runs["single"][0], runs["single"][1]
    kept_cases = sum(kept for *_, kept in CASES)
    # all-good and odd-but-good cases, the three segments of the multi-segment partition, the
    # next day's segment beside the one crossing midnight, the reordered header
    assert first["csv_segments_single_pass"] == kept_cases + 3 + 1 + 1
    # round two: the multi partition (a new and a re-landed segment) and the fixed case segment
    assert second["csv_segments_single_pass"] == 3
    assert runs["two"][0]["csv_segments_single_pass"] == runs["two"][1]["csv_segments_single_pass"] == 0
    for a, b in zip(runs["single"], runs["two"], strict=True):
        for k in ("rows_read", "rows_written", "rows_quarantined", "rows_no_consent", "segments_ingested",
                  "partitions_written"):
            assert a[k] == b[k], k


@pytest.mark.parametrize("rnd", [0, 1])
def test_single_pass_gives_the_same_lake_ledger_and_quarantine(runs, rnd):
    (lake1, led1, rej1), (lake2, led2, rej2) = runs["state"][rnd]
    assert not list(runs["paths"].lake.rglob(".*.tmp-*")), "a declined single pass left its temp file"
    assert led1 == led2
    assert rej1 == rej2
    assert lake1.keys() == lake2.keys()
    for part in lake1:
        assert lake1[part] == lake2[part], part
        files = [p.lake / part for p in (runs["paths"], runs["paths_two"])]
        # names and types (DuckDB marks a column "required" wherever it knows there is no NULL,
        # on either path)
        a, b = ([(f.name, f.type) for f in pq.read_schema(x)] for x in files)
        assert a == b, part
        ts = [int(r["ts_us"]) for r in lake1[part]]
        assert ts == sorted(ts), f"{part} not in time order"


def test_incremental_round_merges_old_rows_and_replaces_relanded_ones(runs):
    lake, led, _ = runs["state"][1][0]
    (part,) = [p for p in lake if "/alice~multi." in p]
    rows = lake[part]
    by_seg = {}
    for r in rows:
        by_seg.setdefault(r["segment_id"].rsplit("-", 1)[1], []).append(r)
    assert {k: len(v) for k, v in by_seg.items()} == {"0000.csv": 1, "0001.csv": 4, "0002.csv": 4, "0003.csv": 4}
    assert by_seg["0000.csv"][0]["cpu_percent"] == "55.5"
    assert sum(e["rows_written"] for p, e in led.items() if "/multi/" in p) == len(rows)


def test_consent_gap_and_midnight_rows_handled_by_the_two_passes(runs):
    lake, led, _ = runs["state"][0][0]
    carol = led[f"system_metrics/carol/lap1/{DAY}/system_metrics-0000.csv"]
    assert (carol["rows_read"], carol["rows_written"], carol["rows_no_consent"]) == (10, 8, 2)
    assert sorted(p for p in lake if "alice~midnight" in p) == [
        "system_metrics/date=2025-11-16/alice~midnight.parquet", "system_metrics/date=2025-11-17/alice~midnight.parquet"]
    next_day = lake["system_metrics/date=2025-11-17/alice~midnight.parquet"]
    assert [(int(r["ts_us"]), r["segment_id"][-8:]) for r in next_day] == [
        (MIDNIGHT + 5 * S, "0000.csv"), (MIDNIGHT + 60 * S, "0001.csv"), (MIDNIGHT + 65 * S, "0001.csv")]
    reordered = lake[f"input_counts/date={DAY}/alice~reordered.parquet"]
    assert [int(r["ts_us"]) for r in reordered] == [T0, T0 + S, T0 + 2 * S]
    assert {r["bucket_s"] for r in reordered} == {1}


def test_lake_readable_with_hive_partitioning_and_nan_kept_where_no_maximum(runs):
    p = runs["paths"]
    n = duckdb.execute(f"SELECT count(*) FROM read_parquet('{p.lake}/input_counts/*/*.parquet', hive_partitioning=true) "
                       "WHERE isnan(mouse_distance_px)").fetchone()[0]
    assert n == 1
    assert not any(math.isnan(v) for (v,) in duckdb.execute(
        f"SELECT cpu_percent FROM read_parquet('{p.lake}/system_metrics/*/*.parquet')").fetchall())


def test_crash_before_the_ledger_is_redone_to_the_same_lake(tmp_path, monkeypatch):
    """Partitions renamed into place, then a crash before the ledger commit: the rerun redoes
    the segments (old rows of the same segments replaced, not duplicated) and gives the lake
    of a run that never crashed."""
    from focuslake import ledger as ledger_mod

    sm = CSV_STREAMS["system_metrics"]
    lakes = []
    for crash in (False, True):
        paths = Paths(tmp_path / f"crash{int(crash)}").ensure()
        put(paths, "system_metrics", "lap1", "0000", [line(sm, T0 + j * S) for j in range(5)])
        ingest_landing(paths, now_us=NOW)  # an earlier segment already in the partition
        for k in (1, 2):
            put(paths, "system_metrics", "lap1", f"{k:04d}", [line(sm, T0 + (10 * k + j) * S) for j in range(5)])
        if crash:
            def boom(self, entries):
                raise RuntimeError("simulated crash before the ledger commit")
            monkeypatch.setattr(ledger_mod.Ledger, "record", boom)
            with pytest.raises(RuntimeError):
                ingest_landing(paths, now_us=NOW)
            assert sum(len(v) for v in lake_state(paths).values()) == 15  # written, not recorded
            monkeypatch.undo()
        s = ingest_landing(paths, now_us=NOW)
        assert (s["segments_ingested"], s["csv_segments_single_pass"], s["rows_written"]) == (2, 2, 10)
        assert not list(paths.lake.rglob(".*.tmp-*")), "no temp file left behind"
        lakes.append(lake_state(paths))
    assert lakes[0] == lakes[1]
    (rows,) = lakes[0].values()
    assert [int(r["ts_us"]) for r in rows] == [T0 + j * S for j in (0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24)]
