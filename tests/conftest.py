# --- Airflow test isolation (from tests/airflow_harness.py) --------------------------------
# Must run at import time, before any test module imports Airflow: Airflow reads its config
# (AIRFLOW_HOME, the metadata DB, dags folder...) once, when first imported. This gives the whole
# pytest process a tmp AIRFLOW_HOME (SQLite DB, removed at exit) and a tmp FOCUSLAKE_DATA
# (<home>/data), with the project's Airflow settings and every telemetry switch off.
# Tests that need the DB call airflow_harness.prepare_airflow() (db migrate, pool, dbt parse).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import airflow_harness`, package or not

from airflow_harness import configure_airflow_env

configure_airflow_env()
# --- end Airflow test isolation ----------------------------------------------------------------


import pytest


@pytest.fixture(scope="session")
def airflow_ready() -> dict[str, str]:
    """Metadata DB migrated, pool created, dbt manifest fresh (parse only if stale)."""
    from airflow_harness import prepare_airflow

    from focuslake.airflow_env import dbt_manifest_is_fresh

    return prepare_airflow(parse_dbt=not dbt_manifest_is_fresh())
