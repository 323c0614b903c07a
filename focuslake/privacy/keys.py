"""The installation's secret key and the keyed hashes made with it.

A user id is short and guessable: a plain SHA-256 of it is a lookup table away from the id.
Receipts and the access log therefore carry ``HMAC-SHA256(secret, user_id)``: whoever holds
the data root's secret (the operator) can check "was user X forgotten?" by recomputing it; the
receipt alone reveals nothing. The secret is 32 random bytes in ``<data>/privacy/secret.key``
(mode 0600), made on first use and never committed (``data/`` is git-ignored).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from focuslake.config import Paths


def secret_path(paths: Paths):
    return paths.root / "privacy" / "secret.key"


def secret(paths: Paths) -> bytes:
    """The data root's secret, created atomically (0600) the first time it is needed."""
    p = secret_path(paths)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        pass
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, secrets.token_bytes(32))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, p)  # first writer wins; a concurrent second one reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return p.read_bytes()


def keyed_hash(paths: Paths, value: str, *, purpose: str = "user") -> str:
    """``hmac-sha256:<hex>`` of ``value`` under the data root's secret (domain-separated by
    ``purpose`` so a user hash never equals a title hash of the same text)."""
    mac = hmac.new(secret(paths), f"{purpose}\0{value}".encode(), hashlib.sha256)
    return "hmac-sha256:" + mac.hexdigest()


def user_hash(paths: Paths, user_id: str) -> str:
    return keyed_hash(paths, user_id, purpose="user")
