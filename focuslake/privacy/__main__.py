"""``python -m focuslake.privacy`` -- consent, retention, forgetting a user, the access log.

    consent show     --user U
    consent grant    --user U PURPOSE [--at ISO-TIME] [--note TEXT]
    consent withdraw --user U PURPOSE [--at ISO-TIME] [--note TEXT]
    retention        [--now ISO-TIME] [--dry-run]
    forget           --user U|hmac-sha256:...
    hash             --user U          the keyed hash receipts and the access log show
    scan             --user U          every trace of U left under the data root
    access-log       [--last N]

The data root is FOCUSLAKE_DATA (default data/) or --data.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from focuslake.config import Paths, apply_no_telemetry


def _time(s: str) -> datetime:
    t = datetime.fromisoformat(s)
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{s!r}: give the time zone (e.g. 2026-12-01T09:00:00Z): times are UTC")
    return t.astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    from focuslake.privacy.policy import PURPOSES

    apply_no_telemetry()
    ap = argparse.ArgumentParser(prog="python -m focuslake.privacy", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--data", type=Path, default=None, help="data root (default: FOCUSLAKE_DATA or data/)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("consent", help="show, grant or withdraw consent")
    c.add_argument("action", choices=("show", "grant", "withdraw"))
    c.add_argument("purpose", nargs="?", choices=PURPOSES)
    c.add_argument("--user", required=True)
    c.add_argument("--at", type=_time, default=None, help="when it takes effect (UTC; default now)")
    c.add_argument("--note", default=None)
    r = sub.add_parser("retention", help="remove everything past its class's age")
    r.add_argument("--now", type=_time, default=None)
    r.add_argument("--dry-run", action="store_true", help="report what would go, remove nothing")
    for name, helptext in (("forget", "remove every row and file of a user"), ("hash", "the user's keyed hash"),
                           ("scan", "every trace of a user under the data root")):
        sub.add_parser(name, help=helptext).add_argument("--user", required=True)
    sub.add_parser("access-log", help="who ran which export/forget/consent/retention").add_argument(
        "--last", type=int, default=50)
    args = ap.parse_args(argv)
    paths = Paths(args.data.resolve()) if args.data else Paths.from_env()
    try:
        return _run(args, paths)
    except (ValueError, RuntimeError) as e:  # ConsentError, PolicyError, ForgetError...
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(args, paths: Paths) -> int:
    from focuslake.privacy import access_log, consent, keys

    if args.cmd == "consent":
        if args.action == "show":
            print(json.dumps(consent.state(paths, args.user), indent=2))
            return 0
        if not args.purpose:
            raise ValueError(f"consent {args.action} needs a purpose")
        at_us = None if args.at is None else int(args.at.timestamp() * 1_000_000)
        with consent.Registry(paths) as reg:
            change = getattr(reg, args.action)(args.user, args.purpose, at_us=at_us, actor=access_log.actor()["os_user"],
                                               note=args.note)
        access_log.record(paths, f"consent_{args.action}", user_id=args.user, purpose=args.purpose,
                          effective_us=change.effective_us)
        print(f"{args.action} {args.purpose} for {args.user} from "
              f"{datetime.fromtimestamp(change.effective_us / 1e6, UTC).isoformat()}")
        return 0
    if args.cmd == "retention":
        from focuslake.privacy.retention import apply_retention
        print(json.dumps(apply_retention(paths, now=args.now, dry_run=args.dry_run), indent=2, default=str))
        return 0
    if args.cmd == "forget":
        from focuslake.privacy.forget import forget_user
        receipt = forget_user(paths, args.user)
        print(json.dumps(receipt, indent=2, default=str))
        return 0
    if args.cmd == "hash":
        print(keys.user_hash(paths, args.user))
        return 0
    if args.cmd == "scan":
        from focuslake.privacy.forget import scan
        found = scan(paths, args.user)
        print("\n".join(found) or "nothing found")
        return 1 if found else 0
    for e in access_log.entries(paths)[-args.last:]:
        print(json.dumps(e, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
