"""`python -m focuslake.query`: run a SQL query on the published warehouse, read-only.

    python -m focuslake.query NAME [--user U]       an example of docs/queries.md by name
    python -m focuslake.query --sql "SELECT ..."    any SQL (or --file query.sql)
    python -m focuslake.query --list                the examples

The examples live in one place, docs/queries.md: each is a fenced block whose info string is
``sql <name>``. ``--user`` sets the DuckDB variable ``user_id`` the examples read with
``getvariable('user_id')``. The database is opened with ``read_only=True`` (the published copy
is mode 0444 anyway): a query cannot change it.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from focuslake.config import PROJECT_ROOT, Paths
from focuslake.schemas import ID_RE

QUERIES_MD = PROJECT_ROOT / "docs" / "queries.md"
_BLOCK = re.compile(r"^```sql[ \t]+([a-z0-9-]+)[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_TITLE = re.compile(r"^## (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Example:
    name: str
    title: str
    sql: str

    @property
    def needs_user(self) -> bool:
        return "getvariable('user_id')" in self.sql


def examples(path: Path = QUERIES_MD) -> dict[str, Example]:
    """The named SQL blocks of docs/queries.md, in page order, with the heading above each."""
    text = path.read_text(encoding="utf-8")
    titles = [(m.start(), m.group(1).strip()) for m in _TITLE.finditer(text)]
    out: dict[str, Example] = {}
    for m in _BLOCK.finditer(text):
        name = m.group(1)
        if name in out:
            raise ValueError(f"{path}: two queries named {name!r}")
        title = next((t for pos, t in reversed(titles) if pos < m.start()), name)
        out[name] = Example(name, title, m.group(2).strip())
    return out


def run(sql: str, db: Path, user_id: str | None = None):
    """Execute ``sql`` on ``db`` read-only; returns (column names, rows)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        if user_id is not None:
            con.execute("SET VARIABLE user_id = ?", [user_id])
        cur = con.execute(sql)
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    ap = argparse.ArgumentParser(prog="python -m focuslake.query", description=__doc__.split("\n\n")[0])
    ap.add_argument("name", nargs="?", help="an example of docs/queries.md (see --list)")
    ap.add_argument("--sql", help="SQL to run instead of an example")
    ap.add_argument("--file", type=Path, help="a file of SQL to run instead of an example")
    ap.add_argument("--user", help="sets the DuckDB variable user_id (getvariable('user_id'))")
    ap.add_argument("--db", type=Path, help="database file (default: the published copy under FOCUSLAKE_DATA)")
    ap.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    ap.add_argument("--list", action="store_true", help="list the examples")
    args = ap.parse_args(argv)
    known = examples()
    if args.list:
        for e in known.values():
            print(f"{e.name:<28} {e.title}{'  (--user)' if e.needs_user else ''}")
        return 0
    if sum(x is not None for x in (args.name, args.sql, args.file)) != 1:
        ap.error("give one of: an example name, --sql or --file")
    if args.name is not None and args.name not in known:
        ap.error(f"no example {args.name!r} in {QUERIES_MD}; known: {', '.join(known)}")
    sql = known[args.name].sql if args.name else args.sql if args.sql is not None else args.file.read_text()
    if args.name and known[args.name].needs_user and not args.user:
        ap.error(f"example {args.name!r} is about one person: give --user USER_ID")
    if args.user is not None and not ID_RE.match(args.user):
        ap.error(f"--user {args.user!r} is not a valid user id")
    db = args.db or Paths.from_env().published
    if not db.exists():
        print(f"error: no database at {db} (run `make demo`, or set FOCUSLAKE_DATA / --db)", file=sys.stderr)
        return 2
    import duckdb

    try:
        cols, rows = run(sql, db, args.user)
    except duckdb.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.csv:
        import csv

        w = csv.writer(sys.stdout)
        w.writerow(cols)
        w.writerows(rows)
        return 0
    table = Table(title=known[args.name].title if args.name else None)
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    Console().print(table)
    print(f"{len(rows)} rows from {db}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
