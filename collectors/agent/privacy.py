"""What of the focused window leaves the collector (config ``[privacy]``), applied once to every
window the X11 watcher reports -- before anything is written, so the active_window stream, the
binary records' app names and the native capture (``--exclude-app``) all see the same result:

* ``exclude_apps``   -- process names (case-insensitive) never recorded: the window becomes
  ``[excluded]`` (app and title) with no pid (its time and input are still counted, as "excluded");
  the system sampler's ``top_process`` names it ``[excluded]`` too (collectors/agent/system.py);
* ``exclude_titles`` -- regexes: a window whose title matches is excluded the same way;
* ``redact``         -- ``"REGEX => REPLACEMENT"`` rules applied to titles in order (a rule
  without ``=>`` replaces with ``[redacted]``); by default e-mail addresses become ``[email]``;
* ``title_mode``     -- ``keep`` (after redaction), ``hash`` (only a keyed hash: equal titles
  stay equal, so switches and durations still count, but the text never leaves the machine;
  the key is ``<state_dir>/title.key``, 0600, made on first use) or ``drop`` (every title is
  ``[not recorded]``).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from .x11 import WindowInfo

EXCLUDED_APP = "[excluded]"   # also what native/src/focus_capture.c writes
# Placeholders rather than empty titles: an empty CSV field is NULL, and a title that was never
# recorded on purpose is not a missing value (the quality gate's null-rate check counts those)
EXCLUDED_TITLE = "[excluded]"
DROPPED_TITLE = "[not recorded]"
DEFAULT_REDACT = [r"[\w.+-]+@[\w-]+(\.[\w-]+)+ => [email]"]
DEFAULT_EXCLUDE_TITLES = [r"(?i)\b(private browsing|incognito)\b"]
TITLE_MODES = ("keep", "hash", "drop")


class PrivacyRuleError(ValueError):
    pass


def compile_rules(redact: list[str], exclude_titles: list[str]) -> tuple[list[tuple[re.Pattern, str]], list[re.Pattern]]:
    """Compile the rules, naming the one that is not a valid regex."""
    out = []
    for rule in redact:
        pattern, sep, repl = rule.partition(" => ")
        try:
            out.append((re.compile(pattern), repl if sep else "[redacted]"))
        except re.error as e:
            raise PrivacyRuleError(f"privacy.redact rule {rule!r}: not a valid regex: {e}") from None
    excl = []
    for rule in exclude_titles:
        try:
            excl.append(re.compile(rule))
        except re.error as e:
            raise PrivacyRuleError(f"privacy.exclude_titles rule {rule!r}: not a valid regex: {e}") from None
    return out, excl


def _key(state_dir: Path) -> bytes:
    p = state_dir / "title.key"
    try:
        return p.read_bytes()
    except FileNotFoundError:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(32))
        finally:
            os.close(fd)
        return p.read_bytes()


class WindowPolicy:
    def __init__(self, cfg, state_dir: Path):
        self.mode = cfg.title_mode
        self.exclude_apps = {a.lower() for a in cfg.exclude_apps}
        self.redact, self.exclude_titles = compile_rules(cfg.redact, cfg.exclude_titles)
        self._key = _key(state_dir) if self.mode == "hash" else b""
        self.excluded = 0       # windows reported as excluded (for status)

    def title(self, title: str) -> str:
        for rx, repl in self.redact:
            title = rx.sub(repl, title)
        if self.mode == "drop":
            return DROPPED_TITLE
        if not title:
            return ""
        if self.mode == "hash":
            return "h:" + hmac.new(self._key, title.encode(), hashlib.sha256).hexdigest()[:24]
        return title

    def apply(self, info: WindowInfo) -> WindowInfo:
        if not info.wid:
            return info
        if info.app.lower() in self.exclude_apps or any(rx.search(info.title) for rx in self.exclude_titles):
            self.excluded += 1
            return WindowInfo(info.wid, EXCLUDED_APP, EXCLUDED_TITLE, 0)  # pid 0, as the native capture writes
        return WindowInfo(info.wid, info.app, self.title(info.title), info.pid)
