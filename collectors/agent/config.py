"""Collector configuration: one TOML file, validated up front with clear errors.

Every key has a default (below); a config file only needs what differs. Unknown keys, wrong
types and out-of-range values are errors that name the key and the file: a typo must never
silently switch a stream off or a consent flag on.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from focuslake.schemas import ID_RE

from . import privacy as _privacy

DEFAULT_CONFIG_PATH = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "focuslake" / "collector.toml"
DEFAULT_STATE_DIR = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "focuslake-collector"


class ConfigError(ValueError):
    """A configuration problem, with the file and key it concerns."""


@dataclass
class Consent:
    keystroke_dynamics: bool = False   # key codes in the native events stream
    file_metadata: bool = False        # no collector exists for it yet: nothing is recorded


@dataclass
class PrivacyCfg:
    # collectors/agent/privacy.py applies these to every focused window before anything is written
    title_mode: str = "keep"          # keep | hash | drop
    redact: list[str] = field(default_factory=lambda: list(_privacy.DEFAULT_REDACT))
    exclude_apps: list[str] = field(default_factory=list)
    exclude_titles: list[str] = field(default_factory=lambda: list(_privacy.DEFAULT_EXCLUDE_TITLES))
    registry_check_seconds: float = 30.0   # how often the data root's consent registry is read again


@dataclass
class SystemCfg:
    enabled: bool = True
    interval_seconds: int = 5
    top_process: bool = True


@dataclass
class WindowCfg:
    enabled: bool = True
    heartbeat_seconds: int = 5


@dataclass
class InputCfg:
    enabled: bool = True
    bucket_seconds: int = 5


@dataclass
class IdleCfg:
    enabled: bool = True
    idle_seconds: float = 5.0
    afk_seconds: float = 180.0


@dataclass
class LockCfg:
    enabled: bool = True
    x11_screensaver: bool = True     # X screensaver on = screen locked (xss-lock, light-locker...)
    dbus: bool = True                # ScreenSaver ActiveChanged, logind LockedHint and PrepareForSleep
    detect_suspend: bool = True      # CLOCK_BOOTTIME - CLOCK_MONOTONIC jumps = the machine slept


@dataclass
class NetworkCfg:
    enabled: bool = True
    interval_seconds: int = 5
    route_files: list[str] = field(default_factory=lambda: ["/proc/net/route", "/proc/net/ipv6_route"])


@dataclass
class NativeCfg:
    enabled: bool = True
    binary: str = ""                 # "" = native/build/focus-capture of this checkout, else PATH
    rotate_seconds: float = 60.0
    restart_max_seconds: float = 60.0


@dataclass
class BackpressureCfg:
    max_pending_rows: int = 20000     # per stream, held in memory while the landing fails
    retry_seconds: float = 5.0


@dataclass
class Config:
    user_id: str = ""
    device_id: str = ""
    landing: str = ""                # "" = $FOCUSLAKE_DATA/landing (default <repo>/data/landing)
    state_dir: str = str(DEFAULT_STATE_DIR)
    display: str = ""                # "" = $DISPLAY
    rotate_seconds: float = 60.0
    rotate_bytes: int = 8 << 20
    flush_seconds: float = 1.0
    durable: bool = True
    consent: Consent = field(default_factory=Consent)
    privacy: PrivacyCfg = field(default_factory=PrivacyCfg)
    system: SystemCfg = field(default_factory=SystemCfg)
    window: WindowCfg = field(default_factory=WindowCfg)
    input: InputCfg = field(default_factory=InputCfg)
    idle: IdleCfg = field(default_factory=IdleCfg)
    lock: LockCfg = field(default_factory=LockCfg)
    network: NetworkCfg = field(default_factory=NetworkCfg)
    native: NativeCfg = field(default_factory=NativeCfg)
    backpressure: BackpressureCfg = field(default_factory=BackpressureCfg)
    source: str = "(defaults)"       # where it was read from (not a config key)

    @property
    def landing_path(self) -> Path:
        if not self.landing:
            from focuslake.config import Paths
            return Paths.from_env().landing
        return Path(self.landing).expanduser().resolve()

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir).expanduser().resolve()

    def public(self) -> dict:
        """The configuration as a plain dict (for `status`)."""
        def conv(obj):
            if is_dataclass(obj):
                return {f.name: conv(getattr(obj, f.name)) for f in fields(obj) if f.name != "source"}
            return obj
        return conv(self)


# (min, max) for numeric keys, by dotted name
_RANGES = {
    "rotate_seconds": (1, 86400), "rotate_bytes": (4096, 1 << 34), "flush_seconds": (0.05, 300),
    "system.interval_seconds": (1, 3600), "window.heartbeat_seconds": (1, 3600),
    "input.bucket_seconds": (1, 3600), "idle.idle_seconds": (0.1, 86400),
    "idle.afk_seconds": (0.1, 86400), "network.interval_seconds": (1, 3600),
    "native.rotate_seconds": (0.5, 86400), "native.restart_max_seconds": (1, 3600),
    "backpressure.max_pending_rows": (0, 10_000_000), "backpressure.retry_seconds": (0.05, 3600),
    "privacy.registry_check_seconds": (0.2, 3600),
}


def _typename(t) -> str:
    return getattr(t, "__name__", str(t))


def _apply(obj, data: dict, prefix: str, src: str) -> None:
    known = {f.name: f for f in fields(obj) if f.name != "source"}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(f"{src}: unknown key {dotted!r} (known: {', '.join(sorted(prefix + k for k in known))})")
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{src}: [{dotted}] must be a table, got {type(value).__name__}")
            _apply(current, value, dotted + ".", src)
            continue
        want = type(current)
        if want is bool:
            ok = isinstance(value, bool)
        elif want is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif want is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif want is list:
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        else:
            ok = isinstance(value, want)
        if not ok:
            raise ConfigError(f"{src}: {dotted} must be {_typename(want)}"
                              f"{' of strings' if want is list else ''}, got {value!r}")
        if dotted in _RANGES:
            lo, hi = _RANGES[dotted]
            if not lo <= value <= hi:
                raise ConfigError(f"{src}: {dotted} = {value!r} is out of range [{lo}, {hi}]")
        setattr(obj, key, value)


def validate(cfg: Config) -> Config:
    src = cfg.source
    for kind in ("user_id", "device_id"):
        v = getattr(cfg, kind)
        if not v:
            raise ConfigError(f"{src}: {kind} is required (letters, digits, _ . -; at most 20 bytes)")
        if not ID_RE.match(v):
            raise ConfigError(f"{src}: {kind} = {v!r} must match {ID_RE.pattern} "
                              "(letters, digits, _ . -; at most 20 bytes)")
    if cfg.idle.enabled and not cfg.input.enabled:
        raise ConfigError(f"{src}: idle.enabled needs input.enabled (idle is measured from input)")
    if cfg.privacy.title_mode not in _privacy.TITLE_MODES:
        raise ConfigError(f"{src}: privacy.title_mode must be one of {', '.join(_privacy.TITLE_MODES)}, "
                          f"got {cfg.privacy.title_mode!r}")
    try:
        _privacy.compile_rules(cfg.privacy.redact, cfg.privacy.exclude_titles)
    except _privacy.PrivacyRuleError as e:
        raise ConfigError(f"{src}: {e}") from None
    if cfg.idle.afk_seconds < cfg.idle.idle_seconds:
        raise ConfigError(f"{src}: idle.afk_seconds ({cfg.idle.afk_seconds}) must be >= "
                          f"idle.idle_seconds ({cfg.idle.idle_seconds})")
    return cfg


def load(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Read and validate a config file (None: defaults plus `overrides` only)."""
    cfg = Config()
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path).expanduser()
        cfg.source = str(p)
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist (write one with "
                              f"`python -m collectors.agent init-config {p}`)") from None
        except OSError as e:
            raise ConfigError(f"cannot read config file {p}: {e.strerror}") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ConfigError(f"{p}: not UTF-8 text ({e})") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: invalid TOML: {e}") from None
    _apply(cfg, data, "", cfg.source)
    if overrides:
        _apply(cfg, overrides, "", cfg.source + " (overrides)")
    if path is not None and cfg.landing and not Path(cfg.landing).expanduser().is_absolute():
        # relative paths in a file are relative to the file, not to wherever `start` runs
        cfg.landing = str(Path(path).expanduser().resolve().parent / cfg.landing)
    if path is not None and not Path(cfg.state_dir).expanduser().is_absolute():
        cfg.state_dir = str(Path(path).expanduser().resolve().parent / cfg.state_dir)
    return validate(cfg)


TEMPLATE = """\
# focuslake collector configuration (python -m collectors.agent start --config THIS_FILE)
# Every key is optional except user_id and device_id; the values shown are the defaults.

user_id = "{user_id}"          # letters, digits, _ . -; at most 20 bytes
device_id = "{device_id}"
landing = "{landing}"          # landing zone root (relative paths: relative to this file)
state_dir = "{state_dir}"      # pidfile, status.json, logs
display = ""                   # X display; "" = $DISPLAY
rotate_seconds = 60            # segments are sealed (published) at the end of each window
rotate_bytes = 8388608         # ... or when they reach this size
flush_seconds = 1              # written rows are flushed + fsynced at least this often
durable = true                 # fsync on flush and seal

[consent]                      # sensitive streams: off unless you switch them on
keystroke_dynamics = false     # true: the native capture stores key codes (which key)
file_metadata = false          # reserved: no file-metadata collector exists yet

[privacy]                      # applied to every window before anything leaves the collector
title_mode = "keep"            # keep | hash (keyed hash only) | drop (no titles)
redact = ['[\\w.+-]+@[\\w-]+(\\.[\\w-]+)+ => [email]']   # "REGEX => REPLACEMENT", in order
exclude_apps = []              # process names never recorded, e.g. ["keepassxc", "signal-desktop"]
exclude_titles = ['(?i)\\b(private browsing|incognito)\\b']   # regexes: such windows never recorded
registry_check_seconds = 30      # the consent registry (shared data root only) is re-read this often

[system]
enabled = true
interval_seconds = 5
top_process = true             # name + CPU % of the busiest process

[window]
enabled = true
heartbeat_seconds = 5

[input]
enabled = true                 # counts only: never which key
bucket_seconds = 5

[idle]
enabled = true
idle_seconds = 5
afk_seconds = 180

[lock]
enabled = true
x11_screensaver = true         # the X screensaver switching on counts as a screen lock
dbus = true                    # D-Bus: ScreenSaver.ActiveChanged, logind LockedHint / PrepareForSleep
detect_suspend = true

[network]
enabled = true                 # passive: reads the routing table, sends nothing
interval_seconds = 5

[native]
enabled = true                 # focus-capture (XRecord) writes the binary input events
binary = ""                    # "" = native/build/focus-capture of this checkout, else PATH
rotate_seconds = 60

[backpressure]
max_pending_rows = 20000       # per stream, kept in memory while the landing is unwritable
retry_seconds = 5
"""


def render_template(user_id: str = "me", device_id: str = "laptop", landing: str | None = None,
                    state_dir: str | None = None) -> str:
    return TEMPLATE.format(user_id=user_id, device_id=device_id,
                           landing=landing or str(Path.home() / "focuslake" / "landing"),
                           state_dir=state_dir or str(DEFAULT_STATE_DIR))
