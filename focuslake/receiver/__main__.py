"""`python -m focuslake.receiver serve | token create|list|revoke | totals`."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from focuslake.config import Paths, apply_no_telemetry
from focuslake.receiver.settings import Settings

DEFAULT_PORT = 8765


def _rate(v: str) -> float | None:
    return None if v.lower() in ("off", "none", "0") else float(v)


def main(argv: list[str] | None = None) -> int:
    apply_no_telemetry()
    ap = argparse.ArgumentParser(prog="python -m focuslake.receiver", description=__doc__)
    ap.add_argument("--data", type=Path, default=None,
                    help="data root (default: FOCUSLAKE_DATA, else <repo>/data)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the receiver (HTTP; put TLS in front of it across machines)")
    d = Settings(Path("."))
    s.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: loopback only)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    s.add_argument("--requests-per-s", type=_rate, default=d.requests_per_s,
                   help="per-device request rate ('off' to disable)")
    s.add_argument("--request-burst", type=float, default=d.request_burst)
    s.add_argument("--events-per-s", type=_rate, default=d.events_per_s,
                   help="per-device event rate ('off' to disable)")
    s.add_argument("--event-burst", type=float, default=d.event_burst)
    s.add_argument("--max-segment-body", type=int, default=d.max_segment_body,
                   help="bytes of one whole-segment PUT; larger segments go in chunks")
    s.add_argument("--max-chunk", type=int, default=d.max_chunk)
    s.add_argument("--max-segment-total", type=int, default=d.max_segment_total)
    s.add_argument("--max-events-body", type=int, default=d.max_events_body)
    s.add_argument("--max-events-per-batch", type=int, default=d.max_events_per_batch)
    s.add_argument("--events-linger-ms", type=float, default=d.events_linger_s * 1000,
                   help="group commit: how long accepted events wait for others to share a segment")
    s.add_argument("--log-level", default="info")
    s.add_argument("--access-log", action="store_true", help="log every request")

    t = sub.add_parser("token", help="per-device bearer tokens (stored hashed)")
    tsub = t.add_subparsers(dest="tcmd", required=True)
    tc = tsub.add_parser("create", help="issue a token for one user/device; printed once")
    tc.add_argument("--user", required=True)
    tc.add_argument("--device", required=True)
    tc.add_argument("--note")
    tc.add_argument("--json", action="store_true", help="print {token, token_id, user, device} as JSON")
    tsub.add_parser("list", help="token ids, owners, created/revoked (never the tokens)")
    tr = tsub.add_parser("revoke", help="revoke by token id (from `token list`)")
    tr.add_argument("token_id")

    sub.add_parser("totals", help="batches, events received/accepted/rejected, segments uploaded")

    a = ap.parse_args(argv)
    root = (a.data or Paths.from_env().root).resolve()

    if a.cmd == "serve":
        import uvicorn

        from focuslake.receiver.app import create_app

        logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
        settings = Settings(root, max_segment_body=a.max_segment_body, max_chunk=a.max_chunk,
                            max_segment_total=a.max_segment_total, max_events_body=a.max_events_body,
                            max_events_per_batch=a.max_events_per_batch, requests_per_s=a.requests_per_s,
                            request_burst=a.request_burst, events_per_s=a.events_per_s,
                            event_burst=a.event_burst, events_linger_s=a.events_linger_ms / 1000)
        if a.host not in ("127.0.0.1", "::1", "localhost"):
            print(f"warning: binding {a.host}: reachable beyond this machine; the receiver speaks "
                  "plain HTTP, put TLS in front of it", file=sys.stderr)
        uvicorn.run(create_app(settings), host=a.host, port=a.port, log_level=a.log_level,
                    access_log=a.access_log, server_header=False, timeout_keep_alive=30)
        return 0

    from focuslake.receiver.store import Store

    store = Store(root / "receiver" / "receiver.sqlite")
    if a.cmd == "token" and a.tcmd == "create":
        try:
            token, token_id = store.create_token(a.user, a.device, a.note)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if a.json:
            print(json.dumps({"token": token, "token_id": token_id, "user_id": a.user, "device_id": a.device}))
        else:
            print(token)
            print(f"token id {token_id} for {a.user}/{a.device}: shown once, stored only as a hash. "
                  "Give it to that device's uploader (a file readable only by its owner).", file=sys.stderr)
        return 0
    if a.cmd == "token" and a.tcmd == "list":
        for row in store.list_tokens():
            print(json.dumps(row))
        return 0
    if a.cmd == "token" and a.tcmd == "revoke":
        n = store.revoke_token(a.token_id)
        print(f"revoked {n} token(s)")
        return 0 if n else 1
    if a.cmd == "totals":
        print(json.dumps(store.totals()))
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
