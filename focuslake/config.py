"""Where things live. Every path derives from one data root so tests and demos can point
the whole pipeline at a temporary directory with one environment variable.

FOCUSLAKE_DATA  -- data root (default: <repo>/data)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
NATIVE_DIR = PROJECT_ROOT / "native"

# Environment that switches off every tool's usage telemetry. This product records people's
# behaviour and never phones home. Applied by the Makefile, the DAGs' subprocesses and tests.
NO_TELEMETRY_ENV = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    "SCARF_ANALYTICS": "false",
    "SCARF_NO_ANALYTICS": "true",
}


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def from_env(cls) -> Paths:
        return cls(Path(os.environ.get("FOCUSLAKE_DATA", PROJECT_ROOT / "data")).resolve())

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.sqlite"

    @property
    def ledger_export(self) -> Path:
        """Parquet snapshot of the ledger, read by dbt for reconciliation."""
        return self.lake / "_ledger" / "segments.parquet"

    @property
    def warehouse(self) -> Path:
        """The pipeline's working DuckDB file (one writer: the Airflow pool enforces it)."""
        return self.root / "warehouse" / "focus.duckdb"

    @property
    def published(self) -> Path:
        """The analysts' read-only copy, swapped in atomically after quality passed."""
        return self.root / "published" / "focus.duckdb"

    @property
    def exports(self) -> Path:
        """Per-user data exports (focuslake.export): exports/<user_id>/<stamp>/."""
        return self.root / "exports"

    @property
    def truth(self) -> Path:
        """Ground truth recorded by the synthetic workload generator."""
        return self.root / "truth"

    def ensure(self) -> Paths:
        for p in (self.landing, self.lake, self.quarantine, self.warehouse.parent,
                  self.published.parent, self.truth):
            p.mkdir(parents=True, exist_ok=True)
        return self


def apply_no_telemetry(env: dict | None = None) -> dict:
    """Set the no-telemetry variables (without overriding explicit user choices)."""
    target = os.environ if env is None else env
    for k, v in NO_TELEMETRY_ENV.items():
        target.setdefault(k, v)
    return target
