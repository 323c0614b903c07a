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


def check_quality(paths: Paths | None = None) -> dict:
    """Audit the working warehouse; raises focuslake.quality.QualityError naming failed checks."""
    from focuslake.quality import run_checks
    return run_checks(paths or Paths.from_env())


def publish(paths: Paths | None = None) -> dict:
    """Atomically swap the analysts' read-only copy to the audited working warehouse."""
    from focuslake.publish import publish_warehouse
    return publish_warehouse(paths or Paths.from_env())
