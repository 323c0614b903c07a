"""Removing rows from the DuckDB files -- the pipeline's working warehouse and the analysts'
published copy -- for retention and for forgetting a user, so that nothing is left behind:

1. ``DELETE``/``UPDATE`` row by row where a table says how (its dbt model's
   ``retention_last_day``/``sensitive_scrub`` meta in dbt_project.yml; ``user_id`` for forget);
2. the tables that cannot be purged row by row -- rollups over all time (streaks), team tables
   (DAU/WAU/MAU, cohorts: a forgotten user must not stay counted), the app/title catalogue -- are
   rebuilt by ``dbt run --select`` from what is left, with the same SQL as every other run;
3. the file is rewritten (:func:`focuslake.maintenance.compact`): DuckDB keeps deleted rows'
   bytes in free blocks until then.

The published copy is purged in a copy of itself and swapped in atomically (the analysts keep
their last good state, minus what had to go); the working file in place (its single writer:
the Airflow tasks that call this run in pool ``warehouse_writer``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, Paths
from focuslake.privacy.policy import Policy

# tables the pipeline writes outside dbt: (schema, table) -> (data class, the row's UTC day)
NON_DBT_TABLES = {("audit", "check_results"): ("system", "checked_at::DATE")}


@dataclass
class Table:
    schema: str
    name: str
    columns: dict[str, str]
    model: str | None = None          # dbt model name, if dbt builds it
    materialized: str | None = None
    meta: dict = field(default_factory=dict)
    klass: str | None = None          # data class (strictest upstream stream); None: reference data

    @property
    def qualified(self) -> str:
        return f'"{self.schema}"."{self.name}"'

    @property
    def last_day(self) -> str | None:
        if self.model is None:
            return NON_DBT_TABLES.get((self.schema, self.name), (None, None))[1]
        return self.meta.get("retention_last_day")


def load_manifest() -> dict:
    """dbt's manifest (parsed afresh when the project changed since the last parse)."""
    from focuslake.airflow_env import DBT_MANIFEST, dbt_manifest_is_fresh, dbt_parse

    if not dbt_manifest_is_fresh():
        dbt_parse({**NO_TELEMETRY_ENV})
    return json.loads(Path(DBT_MANIFEST).read_text())


def model_classes(manifest: dict, policy: Policy) -> dict[str, str | None]:
    """Every model's data class: the strictest of the lake streams upstream of it (bronze model
    ``brz_<stream>``); None for models on reference data only (seeds)."""
    nodes = {k: n for k, n in manifest["nodes"].items() if n["resource_type"] in ("model", "seed")}
    memo: dict[str, set[str]] = {}

    def streams(key: str) -> set[str]:
        if key not in memo:
            n = nodes.get(key)
            out: set[str] = set()
            if n is not None and n["resource_type"] == "model":
                if n["name"].startswith("brz_") and n["name"][4:] in policy.streams:
                    out.add(n["name"][4:])
                for parent in n["depends_on"]["nodes"]:
                    out |= streams(parent)
            memo[key] = out
        return memo[key]

    return {n["name"]: (policy.strictest({policy.stream_class(s) for s in streams(k)}) if streams(k) else None)
            for k, n in nodes.items() if n["resource_type"] == "model"}


def describe(con, manifest: dict, policy: Policy) -> list[Table]:
    """The base tables of an open DuckDB file, each with its dbt model, meta and data class."""
    by_relation = {}
    for n in manifest["nodes"].values():
        if n["resource_type"] == "model":
            by_relation[(n["schema"], n["alias"] or n["name"])] = n
    classes = model_classes(manifest, policy)
    cols: dict[tuple[str, str], dict[str, str]] = {}
    for s, t, c, ty in con.execute("""SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns()
                                      WHERE database_name = current_database() AND NOT internal
                                        AND (schema_name, table_name) IN (SELECT (schema_name, table_name)
                                            FROM duckdb_tables() WHERE database_name = current_database())
                                      ORDER BY schema_name, table_name, column_index""").fetchall():
        cols.setdefault((s, t), {})[c] = ty
    out = []
    for (s, t), c in sorted(cols.items()):
        n = by_relation.get((s, t))
        if n is not None:
            out.append(Table(s, t, c, n["name"], n["config"]["materialized"], n["config"].get("meta") or {},
                             classes.get(n["name"])))
        else:
            out.append(Table(s, t, c, klass=NON_DBT_TABLES.get((s, t), (None,))[0]))
    return out


def dbt_run(db: Path, paths: Paths, models: list[str]) -> str:
    """``dbt run --select models`` against ``db`` (the in-repo profile, FOCUSLAKE_WAREHOUSE),
    with its artefacts in a temp dir: the project's target/ (the manifest Cosmos renders the
    transform DAG from) is left alone."""
    from focuslake.airflow_env import dbt_executable

    if not models:
        return ""
    with tempfile.TemporaryDirectory(prefix="focuslake-dbt-") as tmp:
        env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(paths.root), "FOCUSLAKE_WAREHOUSE": str(db)}
        cmd = [str(dbt_executable()), "run", "--select", *models, "--project-dir", str(DBT_PROJECT_DIR),
               "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", f"{tmp}/target", "--log-path", f"{tmp}/logs"]
        proc = subprocess.run(cmd, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"dbt run of {' '.join(models)} on {db} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


@dataclass
class Plan:
    """What to do to one DuckDB file: WHERE clauses per table, scrubs, models to rebuild."""
    deletes: dict[str, str] = field(default_factory=dict)           # qualified table -> WHERE
    scrubs: dict[str, tuple[str, str]] = field(default_factory=dict)  # qualified -> (SET, WHERE)
    rebuild: list[str] = field(default_factory=list)                # dbt model names


def apply_plan(db: Path, paths: Paths, plan: Plan) -> dict:
    """Run a plan on one DuckDB file in place, then rebuild and compact it. Returns counts."""
    import duckdb

    from focuslake.maintenance import compact

    report: dict = {"path": str(db), "deleted": {}, "scrubbed": {}}
    con = duckdb.connect(str(db))
    try:
        con.execute("BEGIN")
        for table, where in plan.deletes.items():
            n = con.execute(f"DELETE FROM {table} WHERE {where}").fetchone()[0]
            if n:
                report["deleted"][table.replace('"', "")] = int(n)
        for table, (set_sql, where) in plan.scrubs.items():
            n = con.execute(f"UPDATE {table} SET {set_sql} WHERE {where}").fetchone()[0]
            if n:
                report["scrubbed"][table.replace('"', "")] = int(n)
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    if plan.rebuild:
        dbt_run(db, paths, plan.rebuild)
        report["rebuilt"] = list(plan.rebuild)
    report["compaction"] = compact(db)
    return report


def apply_to_published(paths: Paths, plan_for) -> dict | None:
    """Purge the analysts' copy: copy it, apply ``plan_for(con)``'s plan to the copy, then swap
    it in atomically (read-only again). None when nothing is published yet."""
    import duckdb

    from focuslake.publish import write_published_manifest

    dst = paths.published
    if not dst.exists():
        return None
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(dst, tmp)
        os.chmod(tmp, 0o644)
        con = duckdb.connect(str(tmp))
        try:
            plan = plan_for(con)
        finally:
            con.close()
        report = apply_plan(tmp, paths, plan)
        report["path"] = str(dst)
        os.chmod(tmp, 0o444)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    dfd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    write_published_manifest(paths, note=plan_for.__doc__ or "purged")
    return report
