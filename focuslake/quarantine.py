"""The quarantine: what the ingest refused, with its reason, and how it comes back.

    python -m focuslake.quarantine list [--all] [--json]
    python -m focuslake.quarantine show ITEM [--rows N]
    python -m focuslake.quarantine export ITEM OUT.csv          # rejected CSV rows, to fix
    python -m focuslake.quarantine reingest ITEM [--from FIXED] [--as STREAM/USER/DEVICE/DAY/NAME]
    python -m focuslake.quarantine discard ITEM --note "why the loss is accepted"

Layout under <data>/quarantine/ (the ingest writes the first two):
  files/<landing path>              a whole segment, with files/<landing path>.reason.json
  rows/<landing path>.rejects.parquet   the bad rows of an ingested segment (line, reason, raw)
  resolved/files/..., resolved/rows/... items dealt with, each with a `resolution` record:
                                    nothing is deleted, the evidence stays.

ITEM is `file:<landing path>` or `rows:<landing path>` as `list` prints them (a bare landing path
means the file item if there is one, else the rows item).

Re-ingest puts the fixed bytes back into the landing zone the way a collector does (write
`<segment>.part`, fsync, rename) and moves the item to resolved/; the next ingest run processes
it. The ledger keys segments by path and checksum: a fixed file has a new checksum and is
ingested again (its ledger row replaces the quarantined one when the path is the same), while
unchanged bytes at the same path would be a no-op, so that is refused. Rejected CSV rows come
back as a new segment beside the original (`<name>.fix-<sha8>.csv`): `export` writes them as a
CSV with the stream's header, you fix it, `reingest rows:<path> --from fixed.csv` lands it.

Unresolved items are what the quality gate counts (schema violations, ingestion error rate):
`discard` records that a loss is accepted, so the gate stops blocking on it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from focuslake.config import Paths

REASON_SUFFIX = ".reason.json"
REJECTS_SUFFIX = ".rejects.parquet"
RESOLUTION_SUFFIX = ".resolution.json"


class QuarantineError(RuntimeError):
    pass


@dataclass
class Item:
    kind: str          # "file" | "rows"
    rel: str           # landing path of the segment
    path: str          # where the evidence is
    reason: str
    rows: int
    checksum: str | None
    quarantined_at: str | None
    resolution: dict | None = None

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.rel}"

    @property
    def resolved(self) -> bool:
        return self.resolution is not None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_items(root: Path, resolved: bool) -> list[Item]:
    out = []
    for note in sorted(root.rglob("*" + REASON_SUFFIX)) if root.exists() else []:
        evidence = note.with_name(note.name[: -len(REASON_SUFFIX)])
        try:
            meta = json.loads(note.read_text())
        except (OSError, ValueError) as e:
            meta = {"reason": f"unreadable reason file: {e}"}
        rel = meta.get("segment") or evidence.relative_to(root).as_posix()
        out.append(Item("file", rel, str(evidence), meta.get("reason", "?"), int(meta.get("rows") or 0),
                        meta.get("checksum"), meta.get("quarantined_at"),
                        meta.get("resolution") if resolved else None))
    return out


def _row_items(root: Path, resolved: bool) -> list[Item]:
    import pyarrow.parquet as pq

    out = []
    for f in sorted(root.rglob("*" + REJECTS_SUFFIX)) if root.exists() else []:
        rel = f.relative_to(root).as_posix()[: -len(REJECTS_SUFFIX)]
        t = pq.read_table(f, columns=["reason"])
        reasons = sorted(set(t.column("reason").to_pylist()))
        res = None
        note = f.with_name(f.name[: -len(REJECTS_SUFFIX)] + RESOLUTION_SUFFIX)
        if resolved:
            res = json.loads(note.read_text()) if note.exists() else {"action": "unknown"}
        out.append(Item("rows", rel, str(f), "; ".join(str(r) for r in reasons)[:500], t.num_rows,
                        None, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(f.stat().st_mtime)), res))
    return out


def items(paths: Paths, include_resolved: bool = False) -> list[Item]:
    q = paths.quarantine
    out = _file_items(q / "files", False) + _row_items(q / "rows", False)
    if include_resolved:
        out += _file_items(q / "resolved" / "files", True) + _row_items(q / "resolved" / "rows", True)
    return sorted(out, key=lambda i: (i.resolved, i.kind, i.rel))


def find(paths: Paths, item_id: str) -> Item:
    kind, _, rel = item_id.partition(":") if item_id.split(":", 1)[0] in ("file", "rows") else ("", "", item_id)
    matches = [i for i in items(paths) if i.rel == rel and (not kind or i.kind == kind)]
    if not matches:
        raise QuarantineError(f"no unresolved quarantine item {item_id!r} (see `list`)")
    return matches[0]


# --- show / export -------------------------------------------------------------------------------
def describe(paths: Paths, item: Item, max_rows: int = 20) -> str:
    lines = [f"{item.id}", f"  reason:          {item.reason}", f"  rows:            {item.rows}",
             f"  evidence:        {item.path}", f"  quarantined at:  {item.quarantined_at}"]
    if item.checksum:
        lines.append(f"  sha256:          {item.checksum}")
    if item.resolution:
        lines.append(f"  resolution:      {json.dumps(item.resolution)}")
    p = Path(item.path)
    if item.kind == "file" and p.exists():
        data = p.read_bytes()
        lines.append(f"  size:            {len(data)} bytes")
        if p.name.endswith(".csv") or not p.name.endswith(".bin"):
            text = data[:4000].decode("utf-8", "replace").splitlines()[:max_rows]
            lines += ["  first lines:"] + [f"    {t}" for t in text]
        else:
            lines.append(f"  first 64 bytes:  {data[:64].hex()}")
    elif item.kind == "rows" and p.exists():
        import pyarrow.parquet as pq

        t = pq.read_table(p).slice(0, max_rows).to_pylist()
        lines.append("  rejected rows (line | reason | raw):")
        lines += [f"    {r['line']} | {r['reason']} | {str(r['raw'])[:160]}" for r in t]
    return "\n".join(lines)


def _stream_of(rel: str) -> str:
    return rel.split("/", 1)[0]


def export_rows(paths: Paths, item: Item, out: Path) -> int:
    """Write a rows item of a CSV stream as a CSV with the stream's header, ready to fix."""
    import csv

    import pyarrow.parquet as pq

    from focuslake.schemas import CSV_STREAMS

    if item.kind != "rows" or _stream_of(item.rel) not in CSV_STREAMS:
        raise QuarantineError("export works on rows items of CSV streams; binary records are "
                              "kept as hex in the evidence (`show`)")
    names = CSV_STREAMS[_stream_of(item.rel)].names
    rows = pq.read_table(item.path).to_pylist()
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(names)
        for r in rows:
            raw = r["raw"] or ""
            try:  # rows that parsed but broke a rule: the raw value is the row as JSON
                obj = json.loads(raw)
                w.writerow(["" if obj.get(n) is None else obj.get(n) for n in names])
            except ValueError:  # rows that did not parse: the raw CSV line as it was
                fh.write(raw.rstrip("\r\n") + "\n")
    return len(rows)


# --- reingest / discard --------------------------------------------------------------------------
def _land(paths: Paths, rel: str, data: bytes) -> Path:
    """Put bytes into the landing zone the way a collector seals a segment."""
    target = paths.landing / rel
    if target.exists():
        raise QuarantineError(f"landing/{rel} already exists: choose another --as path")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    with open(part, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(part, target)
    return target


def _resolve_move(paths: Paths, item: Item, resolution: dict) -> Path:
    q = paths.quarantine
    src = Path(item.path)
    if item.kind == "file":
        dst = q / "resolved" / "files" / item.rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        note_src = src.with_name(src.name + REASON_SUFFIX)
        meta = json.loads(note_src.read_text()) if note_src.exists() else {"segment": item.rel}
        meta["resolution"] = resolution
        if src.exists():
            shutil.move(src, dst)
        dst.with_name(dst.name + REASON_SUFFIX).write_text(json.dumps(meta, indent=2))
        note_src.unlink(missing_ok=True)
    else:
        dst = q / "resolved" / "rows" / (item.rel + REJECTS_SUFFIX)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(src, dst)
        dst.with_name(dst.name[: -len(REJECTS_SUFFIX)] + RESOLUTION_SUFFIX).write_text(
            json.dumps(resolution, indent=2))
    return dst


def reingest(paths: Paths, item: Item, fixed: Path | None = None, as_rel: str | None = None) -> dict:
    """Land the fixed segment (or rows) again and mark the item resolved. Returns what was done."""
    from focuslake.ledger import Ledger

    if item.kind == "file":
        source = fixed or Path(item.path)
        data = source.read_bytes()
        target = as_rel or item.rel
        sha = _sha256(data)
        if target == item.rel and item.checksum and sha == item.checksum:
            raise QuarantineError(
                f"{item.id} is unchanged since it was quarantined (sha256 {sha[:12]}...): fix the file "
                f"({item.path}) or give --from FIXED, or --as a corrected landing path")
    else:
        if fixed is None:
            raise QuarantineError("rows items come back as a new segment: `export` them, fix the CSV, "
                                  "then reingest with --from FIXED.csv")
        data = fixed.read_bytes()
        sha = _sha256(data)
        base = as_rel or item.rel
        if not base.endswith(".csv"):
            raise QuarantineError("only rows of CSV streams can be re-ingested (binary rows: discard)")
        target = base[: -len(".csv")] + f".fix-{sha[:8]}.csv" if not as_rel else as_rel
    parts = target.split("/")
    if len(parts) != 5:
        raise QuarantineError(f"--as must be <stream>/<user_id>/<device_id>/<YYYY-MM-DD>/<segment>, got {target!r}")
    ledger = Ledger(paths.ledger)
    try:
        seen = ledger.checksum_status([sha])
    finally:
        ledger.close()
    if seen:
        raise QuarantineError(
            f"these bytes (sha256 {sha[:12]}...) were already processed by the ingest (ledger status "
            f"{seen[sha]!r}); the ingest skips a checksum it has seen, so landing them again would be "
            "a no-op: change the content, or see docs/quality.md (re-ingest)")
    landed = _land(paths, target, data)
    resolution = {"action": "reingested", "landing_path": target, "sha256": sha, "at": _now(),
                  "from": str(fixed) if fixed else "fixed in place"}
    moved = _resolve_move(paths, item, resolution)
    return {"item": item.id, "landed": str(landed), "evidence": str(moved), **resolution}


def discard(paths: Paths, item: Item, note: str) -> dict:
    if not note.strip():
        raise QuarantineError("discard needs --note saying why the loss is accepted")
    resolution = {"action": "discarded", "note": note, "at": _now()}
    moved = _resolve_move(paths, item, resolution)
    return {"item": item.id, "evidence": str(moved), **resolution}


def unresolved_rels(paths: Paths) -> dict[str, set[str]]:
    """Landing paths with an unresolved item, by kind (what the quality gate counts)."""
    out: dict[str, set[str]] = {"file": set(), "rows": set()}
    for i in items(paths):
        out[i.kind].add(i.rel)
    return out


# --- CLI -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m focuslake.quarantine",
                                 description="List quarantined segments and rows with their reasons; "
                                             "re-ingest them after a fix.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="items with reasons (unresolved; --all adds resolved)")
    ls.add_argument("--all", action="store_true")
    ls.add_argument("--json", action="store_true")
    sh = sub.add_parser("show", help="one item: reason, evidence, first lines or rejected rows")
    sh.add_argument("item")
    sh.add_argument("--rows", type=int, default=20)
    ex = sub.add_parser("export", help="rejected CSV rows as a CSV with the stream header, to fix")
    ex.add_argument("item")
    ex.add_argument("out", type=Path)
    ri = sub.add_parser("reingest", help="land the fixed item again (next ingest processes it)")
    ri.add_argument("item")
    ri.add_argument("--from", dest="fixed", type=Path, help="the fixed file (keeps the original as evidence)")
    ri.add_argument("--as", dest="as_rel", help="a corrected landing path <stream>/<user>/<device>/<day>/<name>")
    ri.add_argument("--ingest", action="store_true", help="run the ingest right away")
    dc = sub.add_parser("discard", help="accept the loss (the evidence stays in resolved/)")
    dc.add_argument("item")
    dc.add_argument("--note", required=True)
    a = ap.parse_args(argv)
    paths = Paths.from_env()
    try:
        if a.cmd == "list":
            found = items(paths, include_resolved=a.all)
            if a.json:
                print(json.dumps([asdict(i) | {"id": i.id} for i in found], indent=2))
                return 0
            if not found:
                print(f"quarantine is empty ({paths.quarantine})")
                return 0
            for i in found:
                state = f"  [{i.resolution.get('action')}]" if i.resolution else ""
                print(f"{i.id}\t{i.rows} rows\t{i.reason}{state}")
            print(f"{sum(not i.resolved for i in found)} unresolved item(s) in {paths.quarantine}")
            return 0
        if a.cmd == "show":
            item = next((i for i in items(paths, True) if i.id == a.item or i.rel == a.item), None)
            if item is None:
                raise QuarantineError(f"no quarantine item {a.item!r}")
            print(describe(paths, item, a.rows))
            return 0
        if a.cmd == "export":
            n = export_rows(paths, find(paths, a.item), a.out)
            print(f"wrote {n} rejected row(s) to {a.out}: fix them, then "
                  f"`python -m focuslake.quarantine reingest {a.item} --from {a.out}`")
            return 0
        if a.cmd == "reingest":
            done = reingest(paths, find(paths, a.item), a.fixed, a.as_rel)
            print(json.dumps(done, indent=2))
            if a.ingest:
                from focuslake import pipeline
                print(json.dumps(pipeline.ingest(paths), indent=2, default=str))
            return 0
        if a.cmd == "discard":
            print(json.dumps(discard(paths, find(paths, a.item), a.note), indent=2))
            return 0
    except QuarantineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
