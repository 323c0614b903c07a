"""Forget a user: remove every row and file of theirs from every layer, and write a receipt.

    python -m focuslake.privacy forget --user USER        (or --user hmac-sha256:<hash>)
    Airflow: trigger DAG `focus_forget_user` with {"user": "<id or hash>"}

In order (each step idempotent, so a forget interrupted anywhere is finished by running it again):

1. the consent registry: the user's grants and withdrawals go; a keyed-hash tombstone dated now
   stays, so rows of theirs timed before now are refused by every later ingest (an offline
   laptop's queue cannot bring them back); newer data is a new beginning;
2. files: landing, quarantine (files, rows, receiver event rejects, resolved), lake partitions
   (``<user>~<device>.parquet``), the receiver's chunked uploads, reports, exports, and the
   simulator's ground truth;
3. SQLite: the segment ledger (and its Parquet snapshot), and every other SQLite file's rows of
   theirs -- the receiver's tokens (the devices can no longer upload), segments and batches, the
   ActivityWatch import records; vacuumed and checkpointed (no old pages left);
4. quality records: check results naming the user, GX validation files mentioning them;
5. the working warehouse and the published copy: every row with their ``user_id`` deleted,
   tables with no user column built from theirs (team DAU/WAU/MAU, retention cohorts, the
   app/title catalogue) rebuilt by dbt, then each file rewritten (deleted bytes gone);
6. any other text file under the data root that names them (logs): the id replaced; likewise in
   the log folders of this environment outside the data root (:func:`log_roots`: Airflow's task
   logs, dbt's log);
7. a scan of the whole data root and of those log folders for the id; the receipt says what it
   found (nothing, or the forget fails loudly).

The receipt (``<data>/privacy/receipts/<time>-<hash prefix>.json``) holds counts per layer, the
time and who ran it -- and of the user only the keyed hash (:func:`keys.user_hash`).
Not reached: Airflow's metadata DB (a DAG run's conf holds what was typed: pass the hash there;
XCom holds task return values) and copies outside the data root and those log folders.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from focuslake.config import Paths
from focuslake.privacy import access_log
from focuslake.privacy.consent import Registry, registry_path
from focuslake.privacy.keys import user_hash
from focuslake.privacy.policy import load_policy
from focuslake.privacy.warehouse import Plan, apply_plan, apply_to_published, describe, load_manifest
from focuslake.schemas import ID_RE

HASH_PREFIX = "hmac-sha256:"
_ID_CHARS = "A-Za-z0-9_.-"
TEXT_SUFFIXES = {".json", ".jsonl", ".log", ".txt", ".csv", ".html", ".md", ".yml", ".yaml", ".toml", ".out", ".err"}


class ForgetError(RuntimeError):
    pass


def mention_re(user_id: str) -> re.Pattern:
    """The user id as a whole token (``user01`` is not found inside ``user010``)."""
    return re.compile(rf"(?<![{_ID_CHARS}]){re.escape(user_id)}(?![{_ID_CHARS}])")


def known_users(paths: Paths) -> set[str]:
    """Every user id the data root holds anything of (for resolving a hash)."""
    users: set[str] = set()
    for stream_dir in (paths.landing.iterdir() if paths.landing.exists() else []):
        if stream_dir.is_dir():
            users |= {d.name for d in stream_dir.iterdir() if d.is_dir()}
    for f in paths.lake.glob("*/date=*/*~*.parquet"):
        users.add(f.name.split("~", 1)[0])
    if paths.ledger.exists():
        con = sqlite3.connect(paths.ledger)
        try:
            users |= {u for (u,) in con.execute("SELECT DISTINCT user_id FROM segments WHERE user_id IS NOT NULL")}
        finally:
            con.close()
    with Registry(paths) as reg:
        users |= set(reg.users())
    return {u for u in users if ID_RE.match(u)}


def devices_of(paths: Paths, uid: str) -> set[str]:
    """Device ids only this user has (a shared name like "laptop" is not theirs to remove)."""
    mine: set[str] = set()
    others: set[str] = set()
    for f in paths.lake.glob("*/date=*/*~*.parquet"):
        u, d = f.stem.split("~", 1)
        (mine if u == uid else others).add(d)
    for stream_dir in (paths.landing.iterdir() if paths.landing.exists() else []):
        for udir in (stream_dir.iterdir() if stream_dir.is_dir() else []):
            if udir.is_dir():
                (mine if udir.name == uid else others).update(d.name for d in udir.iterdir() if d.is_dir())
    if paths.ledger.exists():
        con = sqlite3.connect(paths.ledger)
        try:
            for u, d in con.execute("SELECT DISTINCT user_id, device_id FROM segments WHERE device_id IS NOT NULL"):
                (mine if u == uid else others).add(d)
        finally:
            con.close()
    return {d for d in mine - others if ID_RE.match(d)}


def resolve_user(paths: Paths, user: str) -> str:
    """A user id, or the keyed hash of one (what the receipt and the access log show)."""
    if user.startswith(HASH_PREFIX):
        for u in known_users(paths):
            if user_hash(paths, u) == user:
                return u
        raise ForgetError(f"no data of a user with hash {user} under {paths.root}")
    if not ID_RE.match(user):
        raise ForgetError(f"bad user id {user!r}: letters, digits, '_', '.', '-'; at most 20")
    return user


# -- files -------------------------------------------------------------------------------------------
def _remove_tree(p: Path, tally: Counter) -> None:
    if p.is_dir():
        for f in p.rglob("*"):
            if f.is_file():
                tally["files"] += 1
                tally["bytes"] += f.stat().st_size
        shutil.rmtree(p)
    elif p.exists():
        tally["files"] += 1
        tally["bytes"] += p.stat().st_size
        p.unlink()


def _user_dirs(root: Path, uid: str, depth: int) -> list[Path]:
    """``root/<x>/.../<uid>`` folders with the user at path component ``depth`` (0-based)."""
    if not root.exists():
        return []
    return sorted(p for p in root.glob("/".join(["*"] * depth + [uid])) if p.is_dir())


def _forget_files(paths: Paths, uid: str) -> dict:
    out = {}
    places = {
        "landing": _user_dirs(paths.landing, uid, 1),
        "quarantine": (_user_dirs(paths.quarantine / "files", uid, 1) + _user_dirs(paths.quarantine / "rows", uid, 1)
                       + _user_dirs(paths.quarantine / "resolved" / "files", uid, 1)
                       + _user_dirs(paths.quarantine / "resolved" / "rows", uid, 1)
                       + _user_dirs(paths.quarantine / "events", uid, 0)),
        "lake": sorted(paths.lake.glob(f"*/date=*/{uid}~*.parquet")),
        "receiver_uploads": _user_dirs(paths.root / "receiver" / "uploads", uid, 1),
        "reports": _user_dirs(paths.root / "reports", uid, 0),
        "exports": _user_dirs(paths.root / "exports", uid, 0),
    }
    for layer, found in places.items():
        tally: Counter = Counter()
        for p in found:
            _remove_tree(p, tally)
        out[layer] = dict(tally)
    for base in (paths.lake, paths.quarantine, paths.landing):
        _prune(base)
    return out


def _prune(root: Path) -> None:
    if root.exists():
        for dirpath, _d, _f in sorted(os.walk(root), key=lambda t: -len(t[0])):
            d = Path(dirpath)
            if d != root and not any(d.iterdir()):
                d.rmdir()


def _filter_parquet(f: Path, uid: str, rx: re.Pattern) -> int:
    """Rewrite a Parquet file without the user's rows (a ``user_id`` column equal to the id, or any
    text column naming them). Returns rows removed."""
    from focuslake.ledger import write_parquet_atomic

    t = pq.read_table(f)
    drop = pa.array([False] * t.num_rows)
    for name, col in zip(t.column_names, t.columns, strict=True):
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            hit = pc.equal(col, uid) if name == "user_id" else pc.match_substring_regex(col, _arrow_rx(uid))
            drop = pc.or_(drop, pc.fill_null(hit, False))
    n = pc.sum(drop).as_py() or 0
    if n:
        write_parquet_atomic(t.filter(pc.invert(drop)), f)
    return int(n)


def _arrow_rx(uid: str) -> str:
    # RE2 has no look-behind: the same whole-token rule with explicit boundaries
    return rf"(^|[^{_ID_CHARS}]){re.escape(uid)}($|[^{_ID_CHARS}])"


def _forget_truth(paths: Paths, uid: str, rx: re.Pattern) -> dict:
    out = {"rows": 0}
    for f in sorted(paths.truth.glob("*.parquet")) if paths.truth.exists() else []:
        out["rows"] += _filter_parquet(f, uid, rx)
    man = paths.truth / "manifest.json"
    if man.exists():
        doc = json.loads(man.read_text())
        profiles = doc.get("profiles") or []
        keep = [p for p in profiles if p.get("user_id") != uid]
        if len(keep) != len(profiles):
            doc["profiles"] = keep
            man.write_text(json.dumps(doc, indent=2))
            out["profiles"] = len(profiles) - len(keep)
    return out


# -- SQLite -----------------------------------------------------------------------------------------
def _sqlite_delete(db: Path, where: dict[str, tuple[str, tuple]]) -> dict:
    if not db.exists():
        return {}
    con = sqlite3.connect(db, timeout=60, isolation_level=None)
    try:
        have = {t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        out = {}
        con.execute("BEGIN IMMEDIATE")
        for table, (cond, args) in where.items():
            if table in have:
                out[table] = con.execute(f"DELETE FROM {table} WHERE {cond}", args).rowcount
        con.execute("COMMIT")
        con.execute("VACUUM")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no copy of the old pages in the WAL either
    finally:
        con.close()
    return {k: v for k, v in out.items() if v}


def _forget_other_sqlite(paths: Paths, uid: str) -> dict:
    """Every other SQLite file under the data root (the receiver's tokens and state, the
    ActivityWatch import records...): rows of every table with a ``user_id`` column."""
    out = {}
    skip = {paths.ledger.resolve(), registry_path(paths).resolve()}
    for f in sorted(paths.root.rglob("*")):
        if not f.is_file() or f.resolve() in skip or f.suffix not in (".sqlite", ".db", ".sqlite3"):
            continue
        con = sqlite3.connect(f, timeout=30)
        try:
            tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                      if any(c[1] == "user_id" for c in con.execute(f'PRAGMA table_info("{t}")'))]
        finally:
            con.close()
        if tables:
            done = _sqlite_delete(f, {t: ("user_id = ?", (uid,)) for t in tables})
            if done:
                out[f.relative_to(paths.root).as_posix()] = done
    return out


# -- quality records ---------------------------------------------------------------------------------
def _forget_quality(paths: Paths, uid: str, rx: re.Pattern) -> dict:
    out: Counter = Counter()
    results = paths.root / "quality" / "results"
    for f in sorted(results.glob("*.parquet")) if results.exists() else []:
        out["check_rows"] += _filter_parquet(f, uid, rx)
    for base in (paths.root / "quality" / "gx_validations", paths.root / "quality_docs"):
        for f in sorted(base.rglob("*")) if base.exists() else []:
            if f.is_file() and f.suffix in TEXT_SUFFIXES and rx.search(f.read_text(errors="replace")):
                out["gx_files"] += 1
                f.unlink()
    # the last passing audit's record of the partitions (focuslake.quality.scope) names users:
    # without it the next audit validates every partition
    baseline = paths.root / "quality" / "baseline.json"
    if baseline.exists() and rx.search(baseline.read_text(errors="replace")):
        out["gx_files"] += 1
        baseline.unlink()
    return dict(out)


# -- DuckDB files -----------------------------------------------------------------------------------
def _plan(con, manifest: dict, policy, uid: str) -> Plan:
    """Delete the user's rows; rebuild what is built from every user's rows; and in tables with
    neither (quality results, reference data) delete rows whose text names them."""
    plan = Plan()
    rx = _arrow_rx(uid).replace("'", "''")
    for t in describe(con, manifest, policy):
        if "user_id" in t.columns:
            plan.deletes[t.qualified] = f"user_id = '{uid}'"
        elif t.model is not None and t.klass is not None:
            if t.materialized == "incremental":
                raise ForgetError(f"incremental model {t.model} has no user_id column: it cannot be rebuilt")
            plan.rebuild.append(t.model)
        elif text := [c for c, ty in t.columns.items() if ty == "VARCHAR"]:
            plan.deletes[t.qualified] = " OR ".join(f"regexp_matches(\"{c}\", '{rx}')" for c in text)
    return plan


def _forget_duckdb(paths: Paths, uid: str) -> dict:
    import duckdb

    policy = load_policy(paths)
    manifest = load_manifest()
    out = {}
    if paths.warehouse.exists():
        con = duckdb.connect(str(paths.warehouse))
        try:
            plan = _plan(con, manifest, policy, uid)
        finally:
            con.close()
        out["warehouse"] = apply_plan(paths.warehouse, paths, plan)

    def forget_plan(con):
        """forget a user"""
        return _plan(con, manifest, policy, uid)

    out["published"] = apply_to_published(paths, forget_plan)
    return out


# -- the sweep and the scan --------------------------------------------------------------------------
def log_roots(paths: Paths, environ=None) -> list[Path]:
    """The log folders of this environment outside the data root, where a task or a dbt run may
    have written a user's id (a path, an export's summary line): Airflow's task logs
    (``AIRFLOW__LOGGING__BASE_LOG_FOLDER``, else ``$AIRFLOW_HOME/logs``, else the project's
    ``.airflow/logs``) and dbt's log (``DBT_LOG_PATH``, else ``dbt_project/logs``). Those that
    exist, each once. A folder that is not absolute, or that is (or holds) ``/``, the home
    directory, the repository, the dbt project or the data root, is refused: forget rewrites and
    retention deletes files there."""
    from focuslake.airflow_env import DEFAULT_AIRFLOW_HOME
    from focuslake.config import DBT_PROJECT_DIR, PROJECT_ROOT

    environ = os.environ if environ is None else environ
    home = Path(environ.get("AIRFLOW_HOME") or DEFAULT_AIRFLOW_HOME)
    candidates = [Path(environ.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER") or home / "logs"),
                  Path(environ.get("DBT_LOG_PATH") or DBT_PROJECT_DIR / "logs")]
    never = [Path("/"), Path.home().resolve(), PROJECT_ROOT.resolve(), DBT_PROJECT_DIR.resolve(), paths.root.resolve()]
    out: list[Path] = []
    for c in candidates:
        if not c.is_absolute():
            raise ForgetError(f"log folder {c} is not an absolute path: set it absolute (AIRFLOW__LOGGING__"
                              "BASE_LOG_FOLDER / DBT_LOG_PATH)")
        c = c.resolve()
        if any(c == n or n.is_relative_to(c) for n in never):
            raise ForgetError(f"log folder {c} is, or holds, {'/' if c == Path('/') else 'a folder that is not a log'}"
                              " folder: refusing to sweep or age out files there")
        if c.is_dir() and c not in out and not c.is_relative_to(paths.root.resolve()):
            out.append(c)
    return out


_ROTATED_LOG = re.compile(r"\.log\.\d+$")  # dbt.log.1 ... (RotatingFileHandler)


def _text_files(root: Path, skip: Path | None = None):
    for f in root.rglob("*"):
        if (f.is_file() and (f.suffix in TEXT_SUFFIXES or _ROTATED_LOG.search(f.name))
                and not (skip and f.is_relative_to(skip))):
            yield f


def _sweep_text(paths: Paths, uid: str, rx: re.Pattern, replacement: str, root: Path | None = None) -> int:
    """Replace the id in any remaining text file under the data root (logs), or under ``root``;
    returns files changed. In place: a log still being appended to keeps its inode."""
    n = 0
    for f in (_text_files(root) if root else _text_files(paths.root, skip=paths.root / "privacy")):
        try:
            text = f.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if rx.search(text):
            f.write_text(rx.sub(replacement, text))
            n += 1
    return n


def _remove_named_logs(roots: list[Path], rx: re.Pattern) -> int:
    """Log files whose own path names the user (a run or task id carrying it) go whole."""
    n = 0
    for root in roots:
        for f in [f for f in root.rglob("*") if f.is_file() and rx.search(f.relative_to(root).as_posix())]:
            f.unlink(missing_ok=True)
            n += 1
    return n


def scan_logs(roots: list[Path], user_id: str) -> list[str]:
    """Files under ``roots`` whose path or bytes still name the user (the id hidden in the
    findings, as :func:`scan` does). A file gone while scanning (rotated) is no finding."""
    rx, found = mention_re(user_id), []
    for root in roots:
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            where = f"{root.name}/{f.relative_to(root).as_posix()}"
            if rx.search(where):
                found.append(f"log path: {rx.sub('[id]', where)}")
                continue
            try:
                data = f.read_bytes()
            except OSError:
                continue
            if rx.search(data.decode("utf-8", "replace")):
                found.append(f"log text: {where}")
    return found


def scan(paths: Paths, user_id: str) -> list[str]:
    """Every place under the data root that still holds the user id: file paths, bytes of any
    file, values in Parquet files (decompressed), rows of DuckDB and SQLite files. Returns the
    findings with the id replaced by its hash (this list may be logged)."""
    import duckdb

    rx = mention_re(user_id)
    needle = user_id.encode()
    h = user_hash(paths, user_id)
    found = []
    for f in sorted(p for p in paths.root.rglob("*") if p.is_file()):
        rel = f.relative_to(paths.root).as_posix()
        where = rx.sub(h, rel)
        if rx.search(rel):
            found.append(f"path: {where}")
            continue
        data = f.read_bytes()
        if needle in data and re.search(rb"(?<![A-Za-z0-9_.-])" + re.escape(needle) + rb"(?![A-Za-z0-9_.-])", data):
            found.append(f"bytes: {where}")
            continue
        if data[:4] == b"PAR1":
            t = pq.read_table(f)
            for col in t.columns:
                if pa.types.is_string(col.type) and pc.any(pc.match_substring_regex(col, _arrow_rx(user_id))).as_py():
                    found.append(f"parquet value: {where}")
                    break
        elif data[:16].startswith(b"SQLite format 3"):
            con = sqlite3.connect(f"file:{f}?mode=ro", uri=True)
            try:
                for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                    if any(rx.search(str(v)) for row in con.execute(f'SELECT * FROM "{t}"') for v in row if v):
                        found.append(f"sqlite row: {where} {t}")
            finally:
                con.close()
        elif data[8:12] == b"DUCK":
            con = duckdb.connect(str(f), read_only=True)
            try:
                cols = con.execute("""SELECT schema_name, table_name, column_name FROM duckdb_columns()
                                      WHERE database_name = current_database() AND data_type = 'VARCHAR'
                                        AND (schema_name, table_name) IN (SELECT (schema_name, table_name)
                                            FROM duckdb_tables() WHERE database_name = current_database())""").fetchall()
                for s, t, c in cols:
                    if con.execute(f'SELECT count(*) FROM "{s}"."{t}" WHERE regexp_matches("{c}", ?)',
                                   [_arrow_rx(user_id)]).fetchone()[0]:
                        found.append(f"duckdb row: {where} {s}.{t}.{c}")
            finally:
                con.close()
    return found


# -- the whole forget ---------------------------------------------------------------------------------
def forget_user(paths: Paths | None, user: str, *, now_us: int | None = None) -> dict:
    """Forget ``user`` (an id, or its keyed hash) everywhere under the data root. Returns the
    receipt (also written to ``<data>/privacy/receipts/``). Raises ForgetError if the final scan
    still finds them."""
    paths = paths or Paths.from_env()
    uid = resolve_user(paths, user)
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    t0 = time.monotonic()
    rx = mention_re(uid)
    h = user_hash(paths, uid)
    devices = devices_of(paths, uid)  # before their files go
    with Registry(paths) as reg:
        consent_rows = reg.forget(uid, now_us)   # first: a concurrent ingest starts refusing them now
    removed: dict = {"consent_rows": consent_rows}
    removed["files"] = _forget_files(paths, uid)
    removed["truth"] = _forget_truth(paths, uid, rx)
    removed["ledger"] = _sqlite_delete(paths.ledger, {"segments": ("user_id = ? OR path LIKE ?", (uid, f"%/{uid}/%"))})
    if paths.ledger.exists():
        from focuslake.ledger import Ledger
        led = Ledger(paths.ledger)
        try:
            led.export_parquet(paths.ledger_export)
        finally:
            led.close()
    removed["sqlite"] = _forget_other_sqlite(paths, uid)   # receiver tokens/state, import records...
    _sqlite_delete(registry_path(paths), {})  # vacuum + checkpoint: the deleted consent rows' pages
    removed["quality"] = _forget_quality(paths, uid, rx)
    removed["duckdb"] = _forget_duckdb(paths, uid)
    logs = log_roots(paths)
    removed["log_files_removed"] = _remove_named_logs(logs, rx)
    removed["text_files_redacted"], removed["log_files_redacted"] = 0, 0
    for ident, replacement in [(uid, "[forgotten]")] + [(d, "[forgotten-device]") for d in sorted(devices)]:
        ident_rx = mention_re(ident)  # the id, then their own devices' names, in logs
        removed["text_files_redacted"] += _sweep_text(paths, ident, ident_rx, replacement)
        removed["log_files_redacted"] += sum(_sweep_text(paths, ident, ident_rx, replacement, root) for root in logs)
    residue = (scan(paths, uid) + scan_logs(logs, uid)
               + [f"device: {x}" for d in sorted(devices) for x in scan(paths, d) + scan_logs(logs, d)])
    receipt = {"user_hash": h, "forgotten_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_us / 1e6)),
               "data_root": str(paths.root), "removed": removed, "residue": residue,
               "seconds": round(time.monotonic() - t0, 2), "by": access_log.actor(),
               "log_roots": [str(r) for r in logs],
               "not_reached": ["Airflow metadata DB (DAG run conf, XCom)",
                               "copies outside the data root and the log roots"]}
    rdir = paths.root / "privacy" / "receipts"
    rdir.mkdir(parents=True, exist_ok=True)
    target = rdir / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now_us / 1e6))}-{h.split(':')[1][:16]}.json"
    target.write_text(json.dumps(receipt, indent=2, default=str))
    receipt["receipt"] = str(target)
    access_log.record(paths, "forget", user_id=uid, receipt=target.name, residue=len(residue))
    if residue:
        raise ForgetError(f"forget of {h} left {len(residue)} traces (receipt {target}): {residue[:10]}")
    return receipt
