"""Great Expectations (GX 1.x) side of the quality gate.

expectations/gx/ is a GX *file data context* committed to the repo: one expectation suite,
validation definition and checkpoint per table, and a pandas data source with one dataframe
asset per table. It is generated from focuslake/quality/suites.py (the one declaration):

    python -m focuslake.quality.gx sync     # rewrite expectations/gx/ from the declarations
    python -m focuslake.quality.gx check    # exit 1 if expectations/gx/ is out of date

GX has no DuckDB engine: each table is read from the working warehouse into a pandas DataFrame
(plus the derived columns the suites compare against, e.g. the device's first segment) and
passed to its checkpoint as the batch. Per-run values (the newest acceptable timestamp, the
row-count bounds) are suite parameters. Validation results go under the data root
(quality/gx_validations/) and Data Docs, a static site, to <data>/quality_docs/ -- nothing is
written into the repo at run time. GX is slow to import (seconds): only this module imports it,
and only inside functions, so DAG files never pay for it at parse time.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from focuslake.config import PROJECT_ROOT, Paths, apply_no_telemetry
from focuslake.importers import COLLECTOR, source_sql
from focuslake.quality.suites import (
    DUPLICATE_RATE_MAX,
    KINDS,
    SUITES,
    Suite,
)

CONTEXT_DIR = PROJECT_ROOT / "expectations" / "gx"
DATASOURCE = "focuslake"
BATCH = "whole_table"
FIRST_SEGMENT_COL = "_scope_first_segment"
# derived from segment_id (focuslake.importers): 'collector' or the importer's source; the
# collector-only null-rate bounds (Col.collector_only) are row conditions on it
ROW_SOURCE_COL = "_row_source"
GX_VERSION = "1.24.1"
_NS = uuid.UUID("5b0e8f0e-6f6c-4d8e-9b4f-6b1d6a9f7c10")
KEEP_RUNS = 20  # validation results kept per suite (the Data Docs index lists them all)


def _id(*parts: str) -> str:
    """Deterministic ids, so regenerating the context changes no file that did not change."""
    return str(uuid.uuid5(_NS, "/".join(parts)))


# --- the expectations of a suite (plain data: type, kwargs, meta) --------------------------------
# GX 1.x Condition (great_expectations.expectations.row_conditions) as its JSON form:
# Column("_row_source") == "collector"
COLLECTOR_ROWS = {"type": "comparison", "column": {"name": ROW_SOURCE_COL}, "operator": "==",
                  "parameter": COLLECTOR}


def _has_segments(suite: Suite) -> bool:
    return any(c.name == "segment_id" for c in suite.columns)


def expectations_for(suite: Suite) -> list[dict]:
    out: list[dict] = []

    def add(check: str, type_: str, column: str | None = None, **kwargs) -> None:
        kw = ({"column": column} if column else {}) | kwargs
        out.append({"type": type_, "kwargs": kw, "meta": {"check": check}})

    names = [c.name for c in suite.columns] + [FIRST_SEGMENT_COL]
    if _has_segments(suite):
        names.append(ROW_SOURCE_COL)
    add("schema_columns", "expect_table_columns_to_match_set", column_set=names,
        exact_match=suite.exact_columns)
    add("row_count", "expect_table_row_count_to_be_between",
        min_value={"$PARAMETER": "min_rows"}, max_value={"$PARAMETER": "max_rows"})
    for c in suite.columns:
        add("schema_types", "expect_column_values_to_be_in_type_list", c.name, type_list=KINDS[c.kind])
        if c.max_null_rate == 0:
            add("not_null", "expect_column_values_to_not_be_null", c.name)
        elif c.max_null_rate is not None:
            add("null_rate", "expect_column_values_to_not_be_null", c.name,
                mostly=round(1 - c.max_null_rate, 6),
                **({"row_condition": COLLECTOR_ROWS} if c.collector_only and _has_segments(suite) else {}))
        if c.min is not None or c.max is not None:
            add("range", "expect_column_values_to_be_between", c.name,
                **({"min_value": c.min} if c.min is not None else {}),
                **({"max_value": c.max} if c.max is not None else {}))
        if c.accepted:
            add("accepted_values", "expect_column_values_to_be_in_set", c.name,
                value_set=list(c.accepted))
    add("key_unique", "expect_compound_columns_to_be_unique", column_list=list(suite.key),
        mostly=round(1 - DUPLICATE_RATE_MAX, 6))
    add("ts_not_in_future", "expect_column_values_to_be_between", suite.ts,
        max_value={"$PARAMETER": "max_ts"})
    add("ts_not_before_first_segment", "expect_column_pair_values_a_to_be_greater_than_b",
        column_A=suite.ts, column_B=FIRST_SEGMENT_COL, or_equal=True,
        ignore_row_if="either_value_is_missing")
    for a, b in suite.pairs:
        add("column_order", "expect_column_pair_values_a_to_be_greater_than_b", column_A=a,
            column_B=b, or_equal=True, ignore_row_if="either_value_is_missing")
    return out


# --- generate the committed file data context ----------------------------------------------------
GX_YML = """\
# Great Expectations (1.x) file data context of focuslake.
# GENERATED by `python -m focuslake.quality.gx sync` from focuslake/quality/suites.py:
# edit the declarations there, then sync. Run-time outputs (validation results, Data Docs)
# live under the data root, given by focuslake.quality.gx at run time; nothing here changes.
config_version: 4.0
# This product records people's behaviour and never phones home (GX_ANALYTICS_ENABLED=false
# is also in focuslake.config.NO_TELEMETRY_ENV).
analytics_enabled: false
progress_bars:
  globally: false
  metric_calculations: false
config_variables_file_path: uncommitted/config_variables.yml
plugins_directory: plugins/
stores:
  expectations_store:
    class_name: ExpectationsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: expectations/
  validation_results_store:
    class_name: ValidationResultsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: ${FOCUSLAKE_GX_VALIDATIONS}
  checkpoint_store:
    class_name: CheckpointStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      suppress_store_backend_id: true
      base_directory: checkpoints/
  validation_definition_store:
    class_name: ValidationDefinitionStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      suppress_store_backend_id: true
      base_directory: validation_definitions/
expectations_store_name: expectations_store
validation_results_store_name: validation_results_store
checkpoint_store_name: checkpoint_store
data_docs_sites:
  focuslake_quality:
    class_name: SiteBuilder
    show_how_to_buttons: false
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: ${FOCUSLAKE_QUALITY_DOCS}
    site_index_builder:
      class_name: DefaultSiteIndexBuilder
"""


def render_context() -> dict[str, str]:
    """Relative path -> text of every file of the generated context."""
    files: dict[str, str] = {}
    yml = [GX_YML, "fluent_datasources:\n", f"  {DATASOURCE}:\n", "    type: pandas\n",
           f"    id: {_id('datasource', DATASOURCE)}\n", "    assets:\n"]
    for name, suite in SUITES.items():
        asset_id, batch_id = _id("asset", name), _id("batch", name)
        yml += [f"      {name}:\n", "        type: dataframe\n", f"        id: {asset_id}\n",
                "        batch_metadata: {}\n", "        batch_definitions:\n",
                f"          {BATCH}:\n", f"            id: {batch_id}\n", "            partitioner:\n"]
        exps = [{"id": _id("expectation", name, str(i), e["type"]), "kwargs": e["kwargs"],
                 "meta": e["meta"], "severity": "critical", "type": e["type"]}
                for i, e in enumerate(expectations_for(suite))]
        files[f"expectations/{name}.json"] = _dump({
            "expectations": exps, "id": _id("suite", name),
            "meta": {"great_expectations_version": GX_VERSION,
                     "table": suite.table, "generated_from": "focuslake/quality/suites.py"},
            "name": name, "notes": suite.doc or None})
        files[f"validation_definitions/{name}.json"] = _dump({
            "data": {"asset": {"id": asset_id, "name": name},
                     "batch_definition": {"id": batch_id, "name": BATCH},
                     "datasource": {"id": _id("datasource", DATASOURCE), "name": DATASOURCE}},
            "id": _id("validation_definition", name), "name": name,
            "suite": {"id": _id("suite", name), "name": name}})
        files[f"checkpoints/{name}.json"] = _dump({
            "actions": [], "id": _id("checkpoint", name), "name": name,
            "result_format": {"result_format": "SUMMARY", "partial_unexpected_count": 10},
            "validation_definitions": [{"id": _id("validation_definition", name), "name": name}]})
    yml.append(f"data_context_id: {_id('context')}\n")
    files["great_expectations.yml"] = "".join(yml)
    files["expectations/.ge_store_backend_id"] = f"store_backend_id = {_id('context')}\n"
    return files


def _dump(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def stale_files(target: Path = CONTEXT_DIR) -> list[str]:
    """Files of the committed context that differ from the declarations (or should not exist)."""
    want = render_context()
    bad = [rel for rel, text in want.items()
           if not (target / rel).exists() or (target / rel).read_text() != text]
    for sub in ("expectations", "validation_definitions", "checkpoints"):
        for p in sorted((target / sub).glob("*.json")) if (target / sub).exists() else []:
            if p.relative_to(target).as_posix() not in want:
                bad.append(p.relative_to(target).as_posix())
    return bad


def sync(target: Path = CONTEXT_DIR) -> list[str]:
    want = render_context()
    changed = stale_files(target)
    for sub in ("expectations", "validation_definitions", "checkpoints"):
        if (target / sub).exists():
            for p in (target / sub).glob("*.json"):
                if p.relative_to(target).as_posix() not in want:
                    p.unlink()
    for rel, text in want.items():
        p = target / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists() or p.read_text() != text:
            p.write_text(text)
    return changed


# --- run -----------------------------------------------------------------------------------------
def quality_dirs(paths: Paths) -> tuple[Path, Path]:
    """(validation results store, Data Docs site) under the data root."""
    return paths.root / "quality" / "gx_validations", paths.root / "quality_docs"


def open_context(paths: Paths):
    """The committed file data context, with its run-time stores under this data root."""
    apply_no_telemetry()
    import great_expectations as gx

    validations, docs = (p.resolve() for p in quality_dirs(paths))  # a relative one would be the repo's
    validations.mkdir(parents=True, exist_ok=True)
    docs.mkdir(parents=True, exist_ok=True)
    return gx.get_context(mode="file", context_root_dir=str(CONTEXT_DIR), runtime_environment={
        "FOCUSLAKE_GX_VALIDATIONS": str(validations) + "/", "FOCUSLAKE_QUALITY_DOCS": str(docs) + "/"})


def prune_validations(paths: Paths, keep: int = KEEP_RUNS) -> None:
    """Keep the newest `keep` runs per suite, in the results store and in the Data Docs site
    (the index lists every page the site holds)."""
    validations, docs = quality_dirs(paths)
    for suite_dir in validations.iterdir() if validations.exists() else []:
        if not suite_dir.is_dir():
            continue
        runs = sorted((p for p in suite_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        for old in runs[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
            shutil.rmtree(docs / "validations" / suite_dir.name / old.name, ignore_errors=True)


def run_suite(context, suite: Suite, frame, params: dict, run_name: str, run_time=None):
    """Validate one DataFrame with its table's checkpoint; returns the GX result of the suite."""
    return _run_checkpoint(context, suite, frame, params, run_name, run_time)[1]


def _run_checkpoint(context, suite: Suite, frame, params: dict, run_name: str, run_time=None):
    """(validation result identifier, suite result) of one checkpoint run on one DataFrame."""
    from great_expectations.core.run_identifier import RunIdentifier

    checkpoint = context.checkpoints.get(suite.name)
    result = checkpoint.run(batch_parameters={"dataframe": frame}, expectation_parameters=params,
                            run_id=RunIdentifier(run_name=run_name, run_time=run_time))
    ((key, suite_result),) = result.run_results.items()
    return key, suite_result


def build_site(context, resources: list | None = None, since_ns: int | None = None,
               paths: Paths | None = None) -> Path:
    """Build the Data Docs site (only the pages of `resources`, validation results and suites,
    when given: GX renders every stored result otherwise), then make it private and
    self-contained (see make_private; pages older than `since_ns` were made so already). GX's
    own index is not built when `paths` names the site: make_private writes a static one."""
    context.build_data_docs(resource_identifiers=resources or None, build_index=paths is None)
    if paths is not None:
        validations, site = (p.resolve() for p in quality_dirs(paths))
    else:
        urls = context.get_docs_sites_urls()
        index = Path(urls[0]["site_url"].removeprefix("file://")) if urls else Path()
        if not index.name:
            return index
        # the site is <data>/quality_docs, the results <data>/quality/gx_validations
        site, validations = index.parent, index.parent.parent / "quality" / "gx_validations"
    make_private(site, validations, since_ns)
    return site / "index.html"


# GX 1.24's Data Docs pages load their logo from GX's S3 bucket with the data context id and the
# time as query parameters (a tracking pixel), and bootstrap/jQuery/vega from public CDNs: opening
# the site in a browser would phone home. Every remote <script>, stylesheet and image is removed
# (the pages stay readable with GX's local stylesheet), and the index, whose tables need those
# scripts, is replaced by a static one.
_REMOTE_TAGS = (
    (r"<script[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>", ""),
    (r"<link[^>]*\bhref=[\"']https?://[^>]*>", ""),
    (r"<img[^>]*\bsrc=[\"']https?://[^>]*>", ""),
)


def make_private(site: Path, validations: Path | None = None, since_ns: int | None = None) -> int:
    import re

    changed = 0
    for page in site.rglob("*.html"):
        if since_ns is not None and page.stat().st_mtime_ns < since_ns:
            continue
        text = page.read_text(encoding="utf-8")
        new = text
        for pattern, repl in _REMOTE_TAGS:
            new = re.sub(pattern, repl, new, flags=re.IGNORECASE | re.DOTALL)
        if new != text:
            page.write_text(new, encoding="utf-8")
            changed += 1
    _write_index(site, validations)
    return changed


def _write_index(site: Path, validations: Path | None) -> None:
    import html

    rows = []
    for page in sorted(site.glob("validations/*/*/*/*.html"), key=lambda p: p.parent.name, reverse=True):
        suite, run, when = page.parts[-4], page.parts[-3], page.parts[-2]
        status = "?"
        if validations is not None:
            result = validations / suite / run / when / (page.stem + ".json")
            if result.exists():
                status = "passed" if json.loads(result.read_text()).get("success") else "FAILED"
        rows.append(f"<tr class='{status}'><td>{html.escape(when)}</td><td>{html.escape(run)}</td>"
                    f"<td><a href='{page.relative_to(site).as_posix()}'>{html.escape(suite)}</a></td>"
                    f"<td>{status}</td></tr>")
    suites = "".join(f"<li><a href='{p.relative_to(site).as_posix()}'>{html.escape(p.stem)}</a></li>"
                     for p in sorted(site.glob("expectations/*.html")))
    (site / "index.html").write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>focuslake quality: Data Docs</title>
<link rel="stylesheet" href="static/styles/data_docs_default_styles.css">
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 12px;text-align:left}}
tr.FAILED td{{color:#b00020;font-weight:bold}} tr.passed td:last-child{{color:#1b5e20}}</style></head>
<body><h1>focuslake quality gate: Great Expectations Data Docs</h1>
<p>One suite per bronze stream and gold table (declared in focuslake/quality/suites.py). Every
check of every run, SQL and GX alike, is also a row of <code>audit.check_history</code>.</p>
<h2>Validation results (newest first)</h2>
<table><tr><th>run time (UTC)</th><th>quality run</th><th>suite</th><th>result</th></tr>
{"".join(rows)}</table>
<h2>Expectation suites</h2><ul>{suites}</ul></body></html>
""", encoding="utf-8")


def frame_columns(con, suite: Suite) -> list[str]:
    """The columns a suite reads: its declared columns the relation has (a missing one is left
    out, so `schema_columns` names it); columns no expectation reads are not fetched."""
    have = [r[0] for r in con.execute(f"DESCRIBE {suite.table}").fetchall()]
    declared = {c.name for c in suite.columns}
    return [c for c in have if c in declared]


def _frame_sql(suite: Suite, columns: list[str] | None = None, where: str = "") -> str:
    """The batch of a suite: its columns (default: all) of the rows `where` selects (default:
    every row), with the derived columns its expectations compare against."""
    scope = ", ".join(suite.scope)
    on = " AND ".join(f"r.{c} = f.{c}" for c in suite.scope)
    source = f", {source_sql('r.segment_id')} AS {ROW_SOURCE_COL}" if _has_segments(suite) else ""
    cols = ", ".join(f'r."{c}"' for c in columns) if columns is not None else "r.*"
    rel = f"(SELECT * FROM {suite.table} WHERE {where})" if where else suite.table
    return (f"SELECT {cols}, f.first_ts AS {FIRST_SEGMENT_COL}{source} FROM {rel} r LEFT JOIN "
            f"(SELECT {scope}, min(first_ts) AS first_ts FROM q_first_segment GROUP BY ALL) f ON {on}")


def _normalise(frame):
    """Dtypes GX computes fast and can name, without changing a column's kind (KINDS): text as
    pandas StringDtype() (pandas 3's default str dtype is a StringDtype GX cannot name);
    timestamps as datetime64[ns] and integers as int64 (float64 where NULLs make them nullable),
    the dtypes GX's range expectations compare vectorised -- others (datetime64[us] from DuckDB,
    uint32, Int64) it compares one Python value at a time, ~20x slower. Only columns of those
    kinds already are touched, so a column of another kind still fails its type expectation."""
    import numpy as np
    import pandas as pd

    for c in frame.columns:
        dt = frame[c].dtype
        if isinstance(dt, pd.StringDtype):
            frame[c] = frame[c].astype(pd.StringDtype())
        elif isinstance(dt, np.dtype) and dt.kind == "M" and dt != np.dtype("datetime64[ns]"):
            try:
                frame[c] = frame[c].astype("datetime64[ns]")
            except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
                pass  # outside 1677-2262: left as it is (compared per value)
        elif isinstance(dt, np.dtype) and dt.kind in "iu" and dt != np.dtype("int64"):
            if dt != np.dtype("uint64") or (len(frame) and frame[c].max() < 2**63):
                frame[c] = frame[c].astype("int64")
        elif isinstance(dt, pd.api.extensions.ExtensionDtype) and dt.kind in "iu" and dt.name != "int64":
            col = frame[c]
            frame[c] = col.astype("int64") if not col.isna().any() else col.astype("float64")
    return frame


def fetch_frame(con, sql: str):
    """A query's rows as a pandas DataFrame, through Arrow (about 5x faster here than DuckDB's
    own .df()), with the dtypes .df() gives: dates as datetime64, booleans with NULLs as
    pandas' nullable boolean; then _normalise."""
    import pandas as pd
    import pyarrow as pa

    con.complete()  # DuckDB 2: a relation may not start while an execute() result is unfinished
    table = con.sql(sql).to_arrow_table()
    bools = [f.name for f in table.schema if pa.types.is_boolean(f.type) and table[f.name].null_count]
    frame = table.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True)
    del table
    for c in bools:
        frame[c] = frame[c].astype(pd.BooleanDtype())
    return _normalise(frame)


def lake_expects_rows(con, suite: Suite) -> bool:
    """The ledger says rows of this table's stream were ingested (gold: of the event stream)."""
    stream = suite.name.removeprefix("brz_") if suite.table.startswith("bronze.") else "events"
    return bool(con.execute("SELECT count(*) > 0 FROM q_ledger WHERE status = 'ingested' AND "
                            "rows_written > 0 AND stream = ?", [stream]).fetchone()[0])


def suite_parameters(con, suite: Suite, ctx, where: str = "", expect: bool | None = None) -> dict:
    """Per-batch values of the suite parameters: the newest acceptable timestamp (the checker's
    clock + FUTURE_SKEW_S), and the row-count bounds of the rows `where` selects (at least one
    row when the lake has rows for it -- `expect`, default: the ledger has rows of the stream;
    at most the cadence's rows per device or user and day they cover)."""
    import pandas as pd

    from focuslake.quality.suites import FUTURE_SKEW_S

    if expect is None:
        expect = lake_expects_rows(con, suite)
    max_rows = None
    if suite.max_rows_per_scope_day:
        units = con.execute(f"SELECT count(DISTINCT ({', '.join(suite.scope)}, ({suite.day}))) "
                            f"FROM {suite.table}" + (f" WHERE {where}" if where else "")).fetchone()[0]
        # no row selected though the lake has some (bronze not reading the lake file the scope
        # names): a bound of at least one row, so that row_count fails naming the counts
        max_rows = max(int(units * suite.max_rows_per_scope_day), 1 if expect else 0)
    return {"max_ts": pd.Timestamp(ctx.now) + pd.Timedelta(seconds=FUTURE_SKEW_S),
            "min_rows": 1 if expect else 0, "max_rows": max_rows}


def _describe(value) -> str:
    return str(value)[:60]


def _raised(er) -> dict | None:
    exc = (er.exception_info or {}) if isinstance(er.exception_info, dict) else {}
    if exc and "raised_exception" not in exc:
        return next((v for v in exc.values() if isinstance(v, dict) and v.get("raised_exception")), None)
    return exc if exc.get("raised_exception") else None


def _merge(results: list, params: list[dict]) -> list[dict]:
    """The expectation results of a suite's batches merged into one per expectation: counts
    summed, `mostly` bounds judged on the sums (as over one frame of all the rows), every
    other expectation passed only if it passed on every batch."""
    merged = []
    for i, er in enumerate(results[0].results):
        ers = [r.results[i] for r in results]
        cfg = er.expectation_config
        res = [e.result or {} for e in ers]
        m = {"cfg": cfg, "success": all(e.success for e in ers), "raised": next(
            (x for e in ers if not e.success and (x := _raised(e))), None), "res": res, "params": params}
        counted = [r for r in res if "unexpected_count" in r and r.get("element_count")]
        if counted:
            n = sum(r["element_count"] for r in counted)
            bad = sum(r["unexpected_count"] or 0 for r in counted)
            missing = sum(r.get("missing_count") or 0 for r in counted)
            mostly = float(cfg.kwargs.get("mostly", 1.0))
            m.update(n=n, bad=bad, partial=[v for r in counted for v in (r.get("partial_unexpected_list") or [])])
            if mostly < 1 and m["raised"] is None:
                den = n if cfg.type == "expect_column_values_to_not_be_null" else n - missing
                m["success"] = den <= 0 or (den - bad) / den >= mostly - 1e-12
        merged.append(m)
    return merged


def flatten(suite: Suite, suite_result, params: dict) -> list:
    """One quality-table row per expectation result (of one batch)."""
    return _rows(suite, _merge([suite_result], [params]))


def _rows(suite: Suite, merged: list[dict]) -> list:
    from focuslake.quality.checks import Check

    out = []
    for m in merged:
        cfg, res, params, ok = m["cfg"], m["res"], m["params"], m["success"]
        kw, meta = cfg.kwargs, cfg.meta or {}
        check = "gx_" + meta.get("check", cfg.type)
        column = kw.get("column") or kw.get("column_A") or ",".join(kw.get("column_list") or [])
        detail = ""
        if "n" in m:
            n, bad = m["n"], m["bad"]
            observed, threshold = bad / n, round(1 - float(kw.get("mostly", 1.0)), 6)
            if not ok:
                values = ", ".join(_describe(v) for v in m["partial"][:5])
                rows = "collector rows" if kw.get("row_condition") else "rows"
                detail = f"{bad} of {n} {rows} unexpected ({observed:.2%}); e.g. {values}"
        elif cfg.type == "expect_table_columns_to_match_set":
            extra = sorted({c for r in res for c in ((r.get("details") or {}).get("mismatched") or {}).get(
                "unexpected", [])})
            missing = sorted({c for r in res for c in ((r.get("details") or {}).get("mismatched") or {}).get(
                "missing", [])})
            observed, threshold = float(len(extra) + len(missing)), 0.0
            if not ok:
                detail = f"unexpected columns {extra}; missing columns {missing}"
        elif cfg.type == "expect_table_row_count_to_be_between":
            observed = float(sum(r.get("observed_value") or 0 for r in res))
            lo = sum(p["min_rows"] for p in params)
            hi = None if any(p.get("max_rows") is None for p in params) else sum(p["max_rows"] for p in params)
            threshold = float(hi if hi is not None else lo)
            if not ok:
                bad = [(int(r.get("observed_value") or 0), p) for r, p in zip(res, params)
                       if not (p["min_rows"] <= (r.get("observed_value") or 0) <= (p["max_rows"] or float("inf")))]
                detail = (f"{int(observed)} rows, expected between {lo} and {hi if hi is not None else 'no bound'}"
                          + (f"; a batch of {bad[0][0]} rows, expected between {bad[0][1]['min_rows']} and "
                             f"{bad[0][1]['max_rows'] or 'no bound'}" if bad and len(res) > 1 else ""))
        elif cfg.type == "expect_column_values_to_be_in_type_list":
            observed, threshold = 0.0 if ok else 1.0, 0.0
            if not ok:
                dtype = next((r.get("observed_value") for r in res if r.get("observed_value") is not None), None)
                detail = f"dtype {dtype} is not one of {kw.get('type_list')}"
        else:
            observed, threshold = (0.0 if ok else 1.0), 0.0
        raised = m["raised"]
        if raised and not ok:
            msg = str(raised.get("exception_message") or "")[:300]
            detail = f"could not evaluate: {msg}" if not detail else detail + f" ({msg})"
        out.append(Check(check, suite.table, observed, threshold, bool(ok), detail, column=column, source="gx"))
    return out


def _scope_note(plan, name: str, s, rows: int, batches: int) -> str:
    what = "every partition" if s.whole else f"{len(s.parts)} of {s.total_parts} partitions"
    why = ("full validation: " + plan.reason) if plan.mode == "full" else \
        f"{plan.reason} (run {plan.baseline_run})"
    return f"validated {what} ({rows} rows) in {batches} batch(es); {why}"


def validate_all(con, ctx, run_id: str, build_docs: bool = True, plan=None) -> tuple[list, Path | None]:
    """Validate every declared table present in the warehouse with its checkpoint: the
    partitions `plan` names (focuslake.quality.scope; default: every partition), in batches of
    at most scope.chunk_rows() rows, each a DataFrame of only the columns the suite reads."""
    from datetime import timedelta

    from focuslake.quality import scope as SC
    from focuslake.quality.checks import Check, relation_exists

    con.execute("""CREATE OR REPLACE TEMP VIEW q_first_segment AS
        SELECT user_id, device_id, min(day)::TIMESTAMP AS first_ts FROM q_ledger
        WHERE status = 'ingested' AND day IS NOT NULL GROUP BY ALL""")
    if plan is None:
        plan = SC.plan(con, ctx, full=True)
    out: list = []
    todo = []
    for suite in SUITES.values():
        if not relation_exists(con, suite.table):
            out.append(Check("gx_suite", suite.table, 0, 1, not suite.required,
                             "relation missing from the warehouse" if suite.required else
                             "not built yet: suite skipped", source="gx",
                             severity="critical" if suite.required else "info"))
            continue
        s = plan.suites.get(suite.name)
        if s is None or (not s.parts and not s.whole):
            out.append(Check("gx_suite", suite.table, 0, 0, True,
                             f"no partition changed since the last passing audit (run {plan.baseline_run}): "
                             "nothing to validate", source="gx", severity="info"))
            continue
        todo.append((suite, s))
    if not todo:  # nothing changed anywhere: GX is not even imported
        return out, None
    context = open_context(ctx.paths)
    prune_validations(ctx.paths)
    built_from = time.time_ns()
    resources: list = []
    t_run = datetime.now(UTC).replace(tzinfo=None)
    for suite, s in todo:
        try:
            columns = frame_columns(con, suite)
            batches = SC.chunks(s) if s.parts else [[]]
            whole = s.whole and len(batches) == 1
            expect_all = lake_expects_rows(con, suite)
            results, params_all, rows = [], [], 0
            for i, parts in enumerate(batches):
                where = SC.where_sql(suite, parts, whole)
                frame = fetch_frame(con, _frame_sql(suite, columns, where))
                expect = expect_all if whole else sum(p.rows for p in parts) > 0
                params = suite_parameters(con, suite, ctx, where, expect)
                key, result = _run_checkpoint(context, suite, frame, params, run_id,
                                              t_run + timedelta(milliseconds=len(resources) + i))
                rows += len(frame)
                del frame
                results.append(result)
                params_all.append(params)
                resources.append(key)
            checks = _rows(suite, _merge(results, params_all))
        except Exception as e:  # noqa: BLE001 -- recorded as a failed check, never a crash of the gate
            out.append(Check("gx_suite", suite.table, 1, 0, False, f"could not validate: {e!r}"[:500],
                             source="gx"))
            continue
        bad = [r for r in checks if not r.passed]
        note = _scope_note(plan, suite.name, s, rows, len(batches))
        out.append(Check("gx_suite", suite.table, float(len(bad)), 0, not bad,
                         "; ".join(f"{r.name}({r.column}): {r.detail}" for r in bad[:6]) + ("; " if bad else "")
                         + note, source="gx"))
        out += checks
    index = None
    if build_docs:
        try:
            from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

            suites = [ExpectationSuiteIdentifier(name=suite.name) for suite, _ in todo]
            index = build_site(context, resources + suites, since_ns=built_from, paths=ctx.paths)
        except Exception as e:  # noqa: BLE001 -- the docs are a view of the results: recorded only
            out.append(Check("gx_data_docs", "quality_docs", 1, 0, False, f"could not build: {e!r}"[:500],
                             source="gx", severity="info"))
    return out, index


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cmd = args[0] if args else "check"
    if cmd == "sync":
        changed = sync()
        print(f"expectations/gx: {len(changed)} file(s) rewritten" + "".join(f"\n  {c}" for c in changed))
        return 0
    if cmd == "check":
        bad = stale_files()
        if bad:
            print("expectations/gx is out of date with focuslake/quality/suites.py; run "
                  "`python -m focuslake.quality.gx sync`:\n  " + "\n  ".join(bad))
            return 1
        print(f"expectations/gx matches the declarations ({len(SUITES)} suites)")
        return 0
    print("usage: python -m focuslake.quality.gx sync|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
