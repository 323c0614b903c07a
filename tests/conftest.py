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

# --- dbt's target/ and logs/ per test process ------------------------------------------------
# `make test` runs the modules on two pytest-xdist workers at once. dbt writes its manifest,
# partial-parse state, run results and log under the project (dbt_project/target, logs) unless
# told otherwise: two builds in different processes would overwrite each other's. Each process
# gets its own (removed at exit); dbt reads these variables as --target-path / --log-path.
# `dbt parse` for the DAGs (focuslake.airflow_env.dbt_parse) names dbt_project/target itself.
import atexit
import os
import shutil
import tempfile

_dbt_scratch = Path(tempfile.mkdtemp(prefix="focuslake-dbt-"))
atexit.register(shutil.rmtree, _dbt_scratch, ignore_errors=True)
os.environ["DBT_TARGET_PATH"] = str(_dbt_scratch / "target")
os.environ["DBT_LOG_PATH"] = str(_dbt_scratch / "logs")
# --- end dbt isolation -------------------------------------------------------------------------


import pytest


@pytest.fixture(scope="session")
def airflow_ready() -> dict[str, str]:
    """Metadata DB migrated, pool created, dbt manifest fresh (parse only if stale)."""
    from airflow_harness import prepare_airflow

    from focuslake.airflow_env import dbt_manifest_is_fresh

    return prepare_airflow(parse_dbt=not dbt_manifest_is_fresh())


# --- heaviest modules first ------------------------------------------------------------------
# With two workers taking whole modules (`make test`: -n 2 --dist loadfile --no-loadscope-reorder)
# the run ends when the last module does: started last, the Airflow server module (~3.5 min) was
# the whole tail. Seconds per module, measured serially (--durations, 2026-12-02, quiet machine):
# airflow_server 204, incremental 129, privacy 75, quality_scope 59, quality_gate 55, models 51,
# collectors_crash 44, docs_site 41, end_to_end 38. The sort is stable: the order of the tests
# within a module, and of every other module, is kept.
HEAVY_FIRST = ("test_airflow_server.py", "test_incremental.py", "test_privacy.py", "test_quality_scope.py",
               "test_quality_gate.py", "test_models.py", "test_collectors_crash.py", "test_docs_site.py",
               "test_end_to_end.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
