"""`make airflow`: the Airflow UI and scheduler on this machine, with a login.

    .venv/bin/python -m focuslake.airflow_ui [--home DIR] [--port 8080]

Runs ``airflow standalone`` (scheduler, DAG processor, triggerer and API server/UI; SQLite
metadata and LocalExecutor, the embedded default) with the project's settings
(:mod:`focuslake.airflow_env`): DAGs from ``dags/``, bound to 127.0.0.1 only, telemetry off.

Login: Airflow's SimpleAuthManager with one user, ``admin``. No password is in the repository:

* ``AIRFLOW_ADMIN_PASSWORD`` set in the environment -> that password (written to the password
  file, mode 0600, on every start);
* otherwise, at the first start, a random password is generated, written to
  ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated`` (mode 0600, git-ignored like all
  of ``.airflow/``) and shown once; later starts print where it is.

The setup (``airflow db migrate``, the ``warehouse_writer`` pool, ``dbt parse`` when the manifest
is stale) runs first unless ``--no-setup``, so this also works on a fresh clone.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
from pathlib import Path

from focuslake.airflow_env import DEFAULT_AIRFLOW_HOME, airflow_env, dbt_manifest_is_fresh, setup_airflow

ADMIN_USER = "admin"
PASSWORD_ENV = "AIRFLOW_ADMIN_PASSWORD"


def password_file(env: dict[str, str]) -> Path:
    return Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def ensure_admin_password(env: dict[str, str], environ: dict[str, str] | None = None) -> tuple[str, str | None]:
    """Make sure the SimpleAuthManager password file has a password for ``admin``.

    Returns ``(how, password_to_show)``: ``how`` is "environment", "generated" or "existing";
    the password is returned only when it was generated now (to be shown once).
    """
    environ = os.environ if environ is None else environ
    path = password_file(env)
    existing: dict[str, str] = {}
    if path.exists():
        text = path.read_text().strip()
        try:
            existing = json.loads(text) if text else {}
        except json.JSONDecodeError as e:
            raise SystemExit(f"{path} is not valid JSON ({e}); fix or delete it to generate a new password")
        if not isinstance(existing, dict):
            raise SystemExit(f"{path} must hold a JSON object {{user: password}}; fix or delete it")
    from_env = environ.get(PASSWORD_ENV)
    if from_env is not None:
        if len(from_env) < 8:
            raise SystemExit(f"{PASSWORD_ENV} must be at least 8 characters long")
        if existing.get(ADMIN_USER) != from_env or path.stat().st_mode & 0o077:
            _write_private(path, json.dumps({**existing, ADMIN_USER: from_env}) + "\n")
        return "environment", None
    if existing.get(ADMIN_USER):
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return "existing", None
    password = secrets.token_urlsafe(18)
    _write_private(path, json.dumps({**existing, ADMIN_USER: password}) + "\n")
    return "generated", password


def login_banner(env: dict[str, str], how: str, password: str | None) -> str:
    url = env["AIRFLOW__API__BASE_URL"]
    path = password_file(env)
    lines = [f"Airflow UI: {url}  (bound to {env['AIRFLOW__API__HOST']} only)", f"User: {ADMIN_USER}"]
    if how == "generated":
        lines.append(f"Password (generated now, shown once): {password}")
        lines.append(f"It is stored in {path} (mode 0600, never committed).")
    elif how == "environment":
        lines.append(f"Password: the value of {PASSWORD_ENV} (also stored in {path}, mode 0600).")
    else:
        lines.append(f"Password: in {path} (generated at the first start; delete the file for a new one).")
    lines.append(f"Data root: {env['FOCUSLAKE_DATA']}   AIRFLOW_HOME: {env['AIRFLOW_HOME']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m focuslake.airflow_ui", description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=None, help=f"AIRFLOW_HOME (default {DEFAULT_AIRFLOW_HOME})")
    parser.add_argument("--port", type=int, default=None, help="UI port on 127.0.0.1 (default 8080 or "
                        "FOCUSLAKE_AIRFLOW_PORT)")
    parser.add_argument("--no-setup", action="store_true", help="skip db migrate / pool / dbt parse")
    args = parser.parse_args(argv)
    if args.port is not None:
        os.environ["FOCUSLAKE_AIRFLOW_PORT"] = str(args.port)
    env = (airflow_env(args.home) if args.no_setup
           else setup_airflow(args.home, parse_dbt=not dbt_manifest_is_fresh()))
    how, password = ensure_admin_password(env)
    print(login_banner(env, how, password), flush=True)
    airflow = shutil.which("airflow", path=env.get("PATH", os.environ.get("PATH")))
    if airflow is None:
        raise SystemExit("the `airflow` command is not on PATH: run `make setup` first")
    full_env = {**os.environ, **env}
    full_env.pop(PASSWORD_ENV, None)  # not needed by Airflow's processes
    os.execve(airflow, [airflow, "standalone"], full_env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
