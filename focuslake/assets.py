"""The Airflow Assets that chain the pipeline's DAGs, defined once.

    (landing) ──LANDING──▶ focus_ingest ──LAKE──▶ focus_transform ──WAREHOUSE──▶ focus_quality ──AUDITED_WAREHOUSE──▶
    focus_publish ──PUBLISHED_WAREHOUSE──▶ (analysts)

A DAG that produces an asset lists it in a task's ``outlets``; the next DAG is scheduled on it.
URIs use an ``x-`` scheme, which Airflow keeps as given (no normalizer, no path of a particular
machine baked into the asset's identity: tests with another FOCUSLAKE_DATA see the same assets).

LANDING is updated by no DAG: its AssetWatcher (focuslake.landing_watch.LandingTrigger, run by the
triggerer) updates it when sealed segments land, so ingest starts seconds after a segment lands.

Import-light on purpose: DAG files import this at parse time (``airflow.sdk`` and Airflow's
trigger base class).
"""
from __future__ import annotations

from airflow.sdk import Asset, AssetWatcher

from focuslake.landing_watch import LandingTrigger

LANDING_POKE_S = 5.0
"""How often the landing watcher looks for new segments (seconds)."""

LANDING = Asset(name="focus_landing", uri="x-focuslake://landing",
                watchers=[AssetWatcher(name="focus_landing_watcher", trigger=LandingTrigger(LANDING_POKE_S))])
"""Sealed segments in FOCUSLAKE_DATA/landing: updated by its watcher, schedules focus_ingest."""

LAKE = Asset(name="focus_lake", uri="x-focuslake://lake")
"""Parquet lake under FOCUSLAKE_DATA/lake, updated by focus_ingest."""

WAREHOUSE = Asset(name="focus_warehouse", uri="x-focuslake://warehouse/working")
"""The pipeline's working DuckDB file, rebuilt by dbt in focus_transform."""

AUDITED_WAREHOUSE = Asset(name="focus_warehouse_audited", uri="x-focuslake://warehouse/audited")
"""The working warehouse after focus_quality's checks passed."""

PUBLISHED_WAREHOUSE = Asset(name="focus_warehouse_published", uri="x-focuslake://warehouse/published")
"""The analysts' read-only copy, swapped in by focus_publish."""

ALL = (LANDING, LAKE, WAREHOUSE, AUDITED_WAREHOUSE, PUBLISHED_WAREHOUSE)
