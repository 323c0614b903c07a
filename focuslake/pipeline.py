"""The pipeline's public steps. Each Airflow task calls exactly one of these; tests call them
directly without Airflow. (Implementation is filled in by focuslake.ingest / .quality / .publish.)
"""
from __future__ import annotations

from focuslake.config import Paths


def ingest(paths: Paths | None = None) -> dict:
    """Landing -> Parquet lake. Returns counts (segments seen/ingested/quarantined/duplicate,
    rows read/written/quarantined)."""
    from focuslake.ingest import ingest_landing
    return ingest_landing(paths or Paths.from_env())


def check_quality(paths: Paths | None = None, full: bool | None = None) -> dict:
    """Audit the working warehouse; raises focuslake.quality.QualityError naming failed checks.
    full: GX validates every partition (True), or only those touched since the last passing
    audit (None, the default: a full validation when no audit, or no full one for a week, is
    recorded, or FOCUSLAKE_QUALITY_FULL=1; docs/quality.md)."""
    from focuslake.quality import run_checks
    return run_checks(paths or Paths.from_env(), full=full)


def publish(paths: Paths | None = None) -> dict:
    """Atomically swap the analysts' read-only copy to the audited working warehouse."""
    from focuslake.publish import publish_warehouse
    return publish_warehouse(paths or Paths.from_env())
