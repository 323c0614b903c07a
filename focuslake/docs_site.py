"""dbt docs as one static HTML file (`make docs`), and a loopback-only server for it (`make docs-serve`).

    python -m focuslake.docs_site build [--out DIR]     writes DIR/index.html (default <data>/docs/)
    python -m focuslake.docs_site serve [--port 8088]   builds, then serves DIR on 127.0.0.1 only
                                                      (--no-build: serve the page as it is)

``dbt docs generate --static`` (dbt-core 1.11) writes ``static_index.html``: the docs app with the
manifest and catalog embedded, so it opens from disk (``file://``) without a server. The catalog
(column types) is read from a **copy** of the published warehouse (or, before the first publish,
of the working one): dbt-duckdb opens its database read-write, and the pipeline's working file
has one writer. dbt's target and log folders go to a temporary directory, not the project.

What the page loads: everything is inline (scripts, styles, fonts, icons). Its only outside
reference is dbt's Snowplow tracker, which it injects only when the embedded manifest says
``send_anonymous_usage_stats: true``; the project sets that flag false (dbt_project.yml), and
:func:`build` refuses to write a page whose manifest says otherwise. tests/test_docs_site.py
opens the page in headless Chromium and checks that no request leaves the file.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, Paths

HOST = "127.0.0.1"
DEFAULT_PORT = 8088
_MANIFEST_META = re.compile(r'"send_anonymous_usage_stats":\s*(true|false)')


class DocsError(RuntimeError):
    pass


def default_out(paths: Paths) -> Path:
    return paths.root / "docs"


def build(paths: Paths | None = None, out: Path | None = None) -> Path:
    """Generate the static dbt docs page into ``out``/index.html (atomically); returns its path."""
    paths = paths or Paths.from_env()
    out = Path(out) if out else default_out(paths)
    source = paths.published if paths.published.exists() else paths.warehouse
    dbt = str(Path(sys.executable).with_name("dbt"))
    with tempfile.TemporaryDirectory(prefix="focuslake-docs-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        (data / "warehouse").mkdir(parents=True)
        args = [dbt, "docs", "generate", "--static", "--profiles-dir", str(DBT_PROJECT_DIR),
                "--project-dir", str(DBT_PROJECT_DIR), "--target-path", str(tmp / "target"),
                "--log-path", str(tmp / "logs"), "--quiet"]
        if source.exists():
            shutil.copyfile(source, data / "warehouse" / "focus.duckdb")  # 0444 source: the copy is ours
            os.chmod(data / "warehouse" / "focus.duckdb", 0o644)
        else:
            args.append("--empty-catalog")  # no warehouse yet: models and docs, no column types
        env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(data)}
        r = subprocess.run(args, check=False, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)
        page = tmp / "target" / "static_index.html"
        if r.returncode or not page.exists():
            raise DocsError(f"dbt docs generate failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
        flags = set(_MANIFEST_META.findall(page.read_text(encoding="utf-8")))
        if flags != {"false"}:
            raise DocsError(f"the page's manifest has send_anonymous_usage_stats {flags or 'missing'}: the docs app "
                            "would load dbt's tracker; keep flags.send_anonymous_usage_stats false in dbt_project.yml")
        out.mkdir(parents=True, exist_ok=True)
        target = out / "index.html"
        part = out / f".index.html.tmp-{os.getpid()}"
        shutil.copyfile(page, part)
        os.replace(part, target)
    return target


def serve(directory: Path, port: int = DEFAULT_PORT) -> None:
    """Serve ``directory`` on 127.0.0.1 only (the standard library's http.server), until Ctrl-C."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    with http.server.ThreadingHTTPServer((HOST, port), handler) as httpd:
        print(f"dbt docs on http://{HOST}:{port}/ (loopback only; Ctrl-C stops)", flush=True)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m focuslake.docs_site", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=("build", "serve"))
    ap.add_argument("--out", type=Path, help="folder for index.html (default: <data>/docs)")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--no-build", action="store_true", help="serve: the page already built, as it is")
    args = ap.parse_args(argv)
    page = (args.out or default_out(Paths.from_env())) / "index.html"
    if not (args.no_build and args.command == "serve"):
        try:
            page = build(out=args.out)
        except DocsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    elif not page.exists():
        print(f"error: no {page}: run `make docs` first", file=sys.stderr)
        return 1
    print(f"dbt docs: {page} (one file; open it directly: file://{page})")
    if args.command == "serve":
        serve(page.parent, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
