"""Run the project's DAGs in tests against an isolated Airflow (tmp AIRFLOW_HOME, SQLite).

Order matters: Airflow reads its configuration once, when it is first imported. So
``tests/conftest.py`` calls :func:`configure_airflow_env` at import time, before any test module
imports Airflow; tests then call :func:`prepare_airflow` (once per process: db migrate, the
``warehouse_writer`` pool, ``dbt parse``) and :func:`run_dag`.

Nothing here imports Airflow at module level.
"""
from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from focuslake.airflow_env import apply_airflow_env, setup_airflow

BUNDLE = "dags-folder"  # Airflow's default bundle: [core] dags_folder
_prepared: dict[str, Any] = {}


def configure_airflow_env(home: Path | None = None, data_root: Path | None = None) -> dict[str, str]:
    """Point this process's Airflow at ``home`` and the pipeline at ``data_root``.

    ``home`` defaults to a new tmp dir, removed when the process exits; ``data_root`` defaults
    to ``<home>/data``. Sets ``os.environ`` (everything :func:`focuslake.airflow_env.airflow_env`
    returns, FOCUSLAKE_DATA included); call it before Airflow is imported anywhere in the
    process. Returns the variables set.
    """
    if home is None:
        home = Path(tempfile.mkdtemp(prefix="focuslake-airflow-"))
        atexit.register(shutil.rmtree, home, ignore_errors=True)
    home = Path(home).resolve()
    data_root = Path(data_root or home / "data").resolve()
    os.environ["FOCUSLAKE_DATA"] = str(data_root)  # airflow_env() reads it (made absolute)
    env = apply_airflow_env(home)
    settings = sys.modules.get("airflow.settings")
    if settings is not None and getattr(settings, "SQL_ALCHEMY_CONN", None) not in (
        None, env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    ):
        # Airflow was imported (and bound its DB) before us: fail instead of testing the wrong setup.
        raise RuntimeError("configure_airflow_env() called after Airflow was imported with another config; "
                           "call it from tests/conftest.py at import time")
    return env


def prepare_airflow(parse_dbt: bool = True) -> dict[str, str]:
    """Migrate the metadata DB, create the pool and (optionally) run ``dbt parse``, once per
    process, for the home set by :func:`configure_airflow_env`. Returns the Airflow env."""
    if "env" not in _prepared or (parse_dbt and not _prepared.get("parsed")):
        home = os.environ.get("AIRFLOW_HOME")
        if not home:
            raise RuntimeError("call configure_airflow_env() first (tests/conftest.py)")
        _prepared["env"] = setup_airflow(Path(home), parse_dbt=parse_dbt)
        _prepared["parsed"] = _prepared.get("parsed") or parse_dbt
    return _prepared["env"]


def dags_folder() -> Path:
    """The configured ``[core] dags_folder`` (``<repo>/dags`` with :func:`configure_airflow_env`)."""
    from airflow.configuration import conf

    return Path(conf.get("core", "dags_folder"))


def load_dagbag():
    """Parse the DAGs folder as the DAG processor would (safe mode on, ``dags-folder`` bundle)."""
    from airflow.dag_processing.dagbag import DagBag

    folder = dags_folder()
    return DagBag(dag_folder=folder, safe_mode=True, bundle_path=folder, bundle_name=BUNDLE)


def serialize_dag_to_db(dag) -> None:
    """Write ``dag`` to the metadata DB (DagModel, SerializedDagModel, DagVersion).

    Since Airflow 3.1, ``dag.test()`` / ``create_dagrun()`` need those rows (astronomer-cosmos
    ``tests/utils.py`` does the same with a "test_bundle"). We register the DAG under the real
    ``dags-folder`` bundle, like the DAG processor does, so ``dag.test()``'s own re-sync of that
    bundle (Airflow 3.3) finds it where it expects it.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    folder = dags_folder()
    bag = DagBag(dag_folder=folder, collect_dags=False, bundle_path=folder, bundle_name=BUNDLE)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, bundle_name=BUNDLE, bundle_version=None)


class _Tee(io.TextIOBase):
    """A text stream writing to another stream and to a buffer."""

    def __init__(self, stream, buffer: io.StringIO):
        self._stream, self._buffer = stream, buffer

    def write(self, text: str) -> int:
        self._buffer.write(text)
        try:
            self._stream.write(text)
        except ValueError:  # the original stream was closed meanwhile
            pass
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def _capture_output():
    """Copy what a ``dag.test()`` prints into a buffer, still printing it.

    ``dag.test()`` runs tasks in this process and writes no task log files: task logs go to
    stdout through structlog loggers created at run time (so swapping ``sys.stdout`` catches
    them) and through stdlib handlers created earlier (their stream is swapped too).
    """
    buffer = io.StringIO()
    saved_out, saved_err = sys.stdout, sys.stderr
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)
                and not isinstance(h, logging.FileHandler)]
    saved_streams = [h.stream for h in handlers]
    sys.stdout, sys.stderr = _Tee(saved_out, buffer), _Tee(saved_err, buffer)
    for h, stream in zip(handlers, saved_streams):
        h.setStream(_Tee(stream, buffer))
    try:
        yield buffer
    finally:
        sys.stdout, sys.stderr = saved_out, saved_err
        for h, stream in zip(handlers, saved_streams):
            h.setStream(stream)


_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")


def _task_logs(output: str) -> dict[str, str]:
    """Split ``dag.test()`` output into each task's part (the last attempt of each task)."""
    parts: dict[str, str] = {}
    matches = list(_TASK_START.finditer(output))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(output)
        parts[m.group(1)] = output[m.start():end]
    return parts


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:]) if text else "(no output captured for this task)"


def run_dag(
    dag_id: str,
    logical_date: datetime | None = None,
    conf: dict[str, Any] | None = None,
    *,
    retries: int | None = 0,
    expect_success: bool = True,
):
    """Parse ``dag_id`` from ``<repo>/dags``, serialize it, run it with ``dag.test()``.

    Returns the final DagRun state (``"success"`` ...). Unless ``expect_success`` is False, any
    other state raises AssertionError naming the failed task ids with their log tails.
    ``retries`` overrides every task's retries for the run (default 0: a failing task would
    otherwise make ``dag.test()`` sleep through the exponential retry delays); None keeps them.
    """
    from airflow.sdk import timezone

    bag = load_dagbag()
    errors = {f: e for f, e in bag.import_errors.items()}
    if dag_id not in bag.dags:
        raise AssertionError(f"DAG {dag_id!r} not found in {dags_folder()}; import errors: {errors}")
    dag = bag.dags[dag_id]
    if retries is not None:
        for task in dag.tasks:
            task.retries = retries
    serialize_dag_to_db(dag)
    logical_date = logical_date or timezone.utcnow()
    started = time.perf_counter()
    with _capture_output() as output:
        dr = dag.test(logical_date=logical_date, run_conf=conf)
    elapsed = time.perf_counter() - started
    state = str(dr.state.value if hasattr(dr.state, "value") else dr.state)
    if expect_success and state != "success":
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            tis = session.query(TaskInstance).filter(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == dr.run_id
            ).all()
            bad = {ti.task_id: str(ti.state) for ti in tis if str(ti.state) not in ("success", "skipped")}
        logs = _task_logs(output.getvalue())
        details = "\n".join(
            f"== {task_id} [{st}] log tail:\n{_tail(logs.get(task_id, ''))}" for task_id, st in sorted(bad.items())
        )
        raise AssertionError(
            f"DAG {dag_id} run {dr.run_id} ended {state!r} after {elapsed:.1f}s; "
            f"failed/unfinished tasks: {sorted(bad)}\n{details}"
        )
    return state


def last_run(dag_id: str) -> dict[str, Any]:
    """The latest run of ``dag_id``: its run_id, state, task states and the assets it updated
    (``{"run_id": ..., "state": ..., "tasks": {task_id: state}, "asset_events": [asset name...]}``)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        dr = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        if dr is None:
            raise AssertionError(f"DAG {dag_id!r} has no run")
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id,
                                                 TaskInstance.run_id == dr.run_id).all()
        events = (session.query(AssetModel.name)
                  .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
                  .filter(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == dr.run_id).all())
        return {"run_id": dr.run_id, "state": str(dr.state),
                "tasks": {ti.task_id: str(ti.state) for ti in tis}, "asset_events": sorted(n for (n,) in events)}
