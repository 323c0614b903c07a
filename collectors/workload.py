"""The people model of the synthetic workload: who works when, in which windows, and how their
keyboard and mouse behave. Pure numpy; nothing here touches the disk.

One call of `simulate_day` turns (profile, carried state, date) into everything a collector
would have recorded that day: the binary event records, the four CSV streams' rows, and the
ground truth computed from the generated timeline per docs/metrics.md. Input generation is
vectorised per day (all activity segments at once); the only Python loops are the day planner
(a few hundred blocks) and small per-session lists.

Time is integer microseconds since the Unix epoch (UTC) throughout.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np

from collectors.apps import ACTIVITIES, APP_NAMES, CATALOG, CATEGORIES, PROJECTS, ide_pages, pages_for
from focuslake.events import EVENT_DTYPE, EventType

US = 1_000_000
MINUTE_US = 60 * US
HOUR_US = 3600 * US
GRID_US = 5 * US                 # poll interval / input_counts bucket / system_metrics period
PULSETIME_US = GRID_US + 1 * US  # docs/metrics.md: poll interval + 1 s
AFK_TIMEOUT_US = 180 * US
IDLE_AFTER_US = 5 * US
SCREEN_W, SCREEN_H = 1920, 1080

ACT = {a: i for i, a in enumerate(ACTIVITIES)}
APP_OF_PAGE = np.array([APP_NAMES.index(p.app) for p in CATALOG], dtype=np.int32)
CAT_OF_PAGE = np.array([CATEGORIES.index(p.category) for p in CATALOG], dtype=np.int32)
ACT_OF_PAGE = np.array([ACT[p.activity] for p in CATALOG], dtype=np.int32)
IDE_APPS = {"code", "pycharm", "gnome-terminal-server"}

# Input behaviour per activity kind:
#   p_type, p_mouse, p_scroll  action mix (sums to 1)
#   pause_med [s], pause_sigma lognormal pause between actions
#   p_long, long_med [s]       heavy tail: reading / listening / thinking pauses
#   burst_mult                 typing burst length relative to the person's mean
#   p_click                    mouse episodes ending in a click
#   scroll_mean                wheel notches per scroll run
_PARAMS = {
    "code":     (0.50, 0.38, 0.12, 2.5, 1.0, 0.010, 40, 1.0, 0.55, 4),
    "terminal": (0.70, 0.22, 0.08, 2.2, 1.0, 0.030, 30, 0.6, 0.35, 3),
    "read":     (0.05, 0.40, 0.55, 3.0, 0.9, 0.030, 50, 0.5, 0.45, 6),
    "browse":   (0.04, 0.40, 0.56, 2.5, 0.9, 0.020, 40, 0.5, 0.55, 7),
    "watch":    (0.02, 0.88, 0.10, 25., 1.0, 0.150, 120, 0.3, 0.50, 3),
    "chat":     (0.60, 0.32, 0.08, 2.5, 1.0, 0.030, 30, 0.7, 0.60, 4),
    "mail":     (0.35, 0.40, 0.25, 2.5, 1.0, 0.020, 40, 0.8, 0.65, 5),
    "meeting":  (0.12, 0.80, 0.08, 25., 1.1, 0.150, 120, 0.3, 0.45, 3),
    "doc":      (0.55, 0.35, 0.10, 2.5, 1.0, 0.020, 40, 0.9, 0.60, 4),
    "misc":     (0.05, 0.85, 0.10, 1.8, 0.8, 0.010, 20, 0.3, 0.80, 3),
    "music":    (0.00, 0.95, 0.05, 3.0, 0.8, 0.050, 30, 0.3, 0.90, 2),
    "idle":     (0.00, 0.00, 0.00, 1.0, 1.0, 0.000, 1, 0.0, 0.00, 1),
}
PARAMS = np.array([_PARAMS[a] for a in ACTIVITIES], dtype=np.float64)

# Plausible X11 keycodes with rough frequencies (only written with --consent-keys).
_KEYS = ([(c, 1.0) for c in (*range(24, 34), *range(38, 47), *range(52, 59))]
         + [(65, 6.0), (22, 3.0), (36, 1.5), (50, 1.5), (23, 0.5), (60, 0.7), (59, 0.5), (37, 1.0)]
         + [(c, 0.3) for c in range(10, 20)] + [(c, 0.4) for c in (111, 113, 114, 116)])
KEYCODES = np.array([k for k, _ in _KEYS], dtype=np.uint32)
KEY_P = np.array([w for _, w in _KEYS]) / sum(w for _, w in _KEYS)

# UI hotspots where the pointer goes (x, y, sigma_x, sigma_y, weight) on a 1920x1080 screen
_HOT = np.array([
    (960, 540, 420, 260, 0.40),   # content
    (600, 30, 450, 12, 0.15),     # tab bar / title bar
    (150, 500, 90, 300, 0.15),    # side bar / file tree
    (1900, 540, 10, 350, 0.08),   # scroll bar
    (960, 1060, 500, 10, 0.07),   # task bar / status line
    (1700, 120, 150, 80, 0.15),   # toolbar buttons
])

SYSTEM_EVENTS = ("collector_start", "resume", "unlock", "lock", "suspend")


# ----------------------------------------------------------------------------------------
# Profiles and carried state
# ----------------------------------------------------------------------------------------
@dataclass
class Profile:
    index: int
    user_id: str
    device_id: str
    laptop: bool
    start_hour: float        # UTC work start (people live in different time zones)
    day_len_h: float         # unlock -> end-of-day lock, lunch included
    iki_median: float        # median inter-key interval in a burst [s]
    iki_sigma: float
    burst_mean: float        # mean keys per typing burst
    distractibility: float   # 0..1
    lunch_offset_h: float
    lunch_len_min: float
    meeting_rate: float      # meetings per weekday (Poisson)
    break_rate: float        # idle breaks without locking per day
    coffee_rate: float       # short screen locks per day
    p_weekend: float         # chance of a light weekend session
    p_evening: float         # chance of a short evening session on a weekday
    apps: frozenset
    pools: dict
    project_p: np.ndarray
    pids: dict
    windows: dict
    mem_base: float
    has_swap: bool


def make_profile(seed: int, index: int, n_users: int) -> Profile:
    rng = np.random.default_rng([seed, index, 0x9E0F11E])
    laptop = bool(rng.random() < 0.75)
    ide = str(rng.choice(["code", "pycharm"], p=[0.7, 0.3]))
    browser = str(rng.choice(["firefox", "chrome"], p=[0.6, 0.4]))
    chat = str(rng.choice(["slack", "teams-for-linux"], p=[0.7, 0.3]))
    mail_native = bool(rng.random() < 0.5)
    apps = {ide, browser, chat, "gnome-terminal-server", "soffice.bin", "obsidian", "evince",
            "spotify", "nautilus", "gnome-control-center", "keepassxc", "telegram-desktop"}
    if mail_native:
        apps.add("thunderbird")
    meeting_app = "teams-for-linux" if chat == "teams-for-linux" else str(
        rng.choice(["zoom", "meet"], p=[0.75, 0.25]))
    if meeting_app == "zoom":
        apps.add("zoom")
    apps = frozenset(apps)
    pools = {
        "ide": {p: ide_pages(ide, p) for p in PROJECTS},
        "terminal": pages_for("terminal", apps),
        "work_web": pages_for("work_web", apps),
        "docs": pages_for("docs", apps) + pages_for("docs_web", apps),
        "fun": pages_for("fun", apps) + pages_for("music", apps),
        "pseudo": pages_for("pseudo", apps),
        "chat": pages_for("chat", apps),
        "chat_private": pages_for("chat_private", apps),
        "mail": pages_for("mail", apps) if mail_native else pages_for("mail_web", apps),
        "music": pages_for("music", apps),
        "other": pages_for("other", apps),
        "meeting": (pages_for("meet_web", apps) if meeting_app == "meet"
                    else [i for i in pages_for("meeting", apps) if CATALOG[i].app == meeting_app]),
    }
    for name, pool in pools.items():
        if name == "ide":
            assert all(pool.values()), pool
        else:
            assert pool, name
    app_list = sorted(apps)
    pids = dict(zip(app_list, (1200 + rng.choice(64000, size=len(app_list), replace=False)
                               ).tolist()))
    windows = dict(zip(app_list, (0x2000000 + 0x100000 * rng.choice(
        0x60, size=len(app_list), replace=False) + 7).tolist()))  # X11-style window ids
    # stratified over 06:00-14:00 UTC so users sit in different time zones
    start_hour = 6.0 + 8.0 * (index + rng.random()) / max(n_users, 1)
    return Profile(
        index=index, user_id=f"user{index + 1:02d}",
        device_id=f"{'laptop' if laptop else 'desktop'}{index + 1:02d}", laptop=laptop,
        start_hour=start_hour, day_len_h=float(rng.uniform(7.8, 9.0)),
        iki_median=float(rng.uniform(0.12, 0.25)), iki_sigma=float(rng.uniform(0.3, 0.45)),
        burst_mean=float(rng.uniform(7, 14)), distractibility=float(rng.uniform(0.15, 0.9)),
        lunch_offset_h=float(rng.uniform(3.5, 5.0)), lunch_len_min=float(rng.uniform(32, 58)),
        meeting_rate=float(rng.uniform(0.5, 2.5)), break_rate=float(rng.uniform(1.0, 3.0)),
        coffee_rate=float(rng.uniform(0.5, 2.0)), p_weekend=float(rng.uniform(0.0, 0.5)),
        p_evening=float(rng.uniform(0.0, 0.3)), apps=apps, pools=pools,
        project_p=np.array([0.6, 0.3, 0.1]), pids=pids, windows=windows,
        mem_base=float(rng.uniform(30, 55)), has_swap=bool(rng.random() < 0.7),
    )


@dataclass
class UserState:
    """What carries from one user-day to the next."""
    page: int                         # focused window (catalog index)
    cursor: tuple[int, int] = (SCREEN_W // 2, SCREEN_H // 2)
    started: bool = False             # collector_start already happened
    last_off_us: int = 0              # end of the previous timeline (suspend)
    last_input_us: int | None = None  # for IDLE_END after the night
    last_move: tuple[int, int] | None = None  # for input_counts.mouse_distance_px
    # truth carry (kept apart from the generator's own state on purpose)
    t_prev_app: int | None = None     # app of the device's previous window interval
    t_last_move: tuple[int, int] | None = None
    t_last_input_us: int | None = None


def initial_state(prof: Profile) -> UserState:
    return UserState(page=prof.pools["terminal"][0])


# ----------------------------------------------------------------------------------------
# Day planner: sessions, locks, and the window segments (Python, a few hundred items a day)
# ----------------------------------------------------------------------------------------
def _lognorm(rng, median, sigma, lo, hi):
    return float(np.clip(median * np.exp(sigma * rng.standard_normal()), lo, hi))


class DayPlan:
    def __init__(self, rng: np.random.Generator, prof: Profile, state: UserState):
        self.rng, self.prof = rng, prof
        self.page = state.page
        self.first = not state.started
        self.segs: list[list] = []        # [t0, t1, page, activity]
        self.unlocked: list[tuple[int, int, bool]] = []  # (u0, u1, via unlock event)
        self.on: list[tuple[int, int]] = []
        self.sysev: list[tuple[int, str]] = []
        self.t = 0
        self.u0: int | None = None
        self.via_unlock = False
        self.on_start = 0
        self.project = "focuslake"
        self.ide_page: int | None = None

    # -- primitives -----------------------------------------------------------------------
    def add(self, page: int, t1: float, act: str | None = None) -> None:
        t1 = int(t1)
        if t1 <= self.t:
            return
        a = ACT[act] if act else int(ACT_OF_PAGE[page])
        if (t1 - self.t < 3 * US and self.segs and self.segs[-1][1] == self.t
                and self.segs[-1][0] >= self.u0):
            self.segs[-1][1] = t1          # too short to be a window of its own
        else:
            self.segs.append([self.t, t1, page, a])
            self.page = page
        self.t = t1

    def power_on(self, t: int) -> None:
        self.on_start = t
        if self.first:
            self.first = False
            self.sysev.append((t, "collector_start"))
            self._unlock(t, via=False)
        else:
            self.sysev.append((t, "resume"))
            self._unlock(t + int(self.rng.uniform(4, 40) * US), via=True)

    def _unlock(self, t: int, via: bool) -> None:
        if via:
            self.sysev.append((t, "unlock"))
        self.u0, self.t, self.via_unlock = t, t, via
        # the person looks at the window left open, then carries on
        self.add(self.page, t + self.rng.uniform(5, 40) * US)

    def lock(self) -> None:
        self.sysev.append((self.t, "lock"))
        self.unlocked.append((self.u0, self.t, self.via_unlock))
        self.u0 = None

    def lock_for(self, dur_us: float) -> None:
        self.lock()
        self._unlock(self.t + int(dur_us), via=True)

    def power_off(self) -> None:
        if self.u0 is not None:
            self.lock()
        off = self.t + int(self.rng.uniform(30, 900) * US)
        self.sysev.append((off, "suspend"))
        self.on.append((self.on_start, off))
        self.t = off

    # -- choosing windows ---------------------------------------------------------------
    def pick(self, pool: str) -> int:
        pages = self.prof.pools[pool]
        return int(pages[self.rng.integers(len(pages))])

    def work_piece(self) -> tuple[int, float]:
        rng = self.rng
        kind = rng.choice(4, p=[0.45, 0.25, 0.20, 0.10])
        if kind == 0:
            ide = self.prof.pools["ide"][self.project]
            if self.ide_page is None or rng.random() < 0.5:
                self.ide_page = int(ide[rng.integers(len(ide))])
            return self.ide_page, _lognorm(rng, 360, 0.6, 60, 1500)
        if kind == 1:
            return self.pick("terminal"), _lognorm(rng, 70, 0.7, 12, 360)
        if kind == 2:
            return self.pick("work_web"), _lognorm(rng, 150, 0.7, 20, 600)
        return self.pick("docs"), _lognorm(rng, 300, 0.6, 60, 900)

    def distraction(self) -> tuple[int, float]:
        rng = self.rng
        kind = rng.choice(6, p=[0.30, 0.30, 0.15, 0.15, 0.05, 0.05])
        pool, med, lo, hi = [("fun", 150, 60, 480), ("chat", 60, 30, 180), ("mail", 120, 60, 300),
                             ("pseudo", 180, 60, 480), ("music", 20, 10, 60),
                             ("other", 40, 15, 120)][kind]
        return self.pick(pool), _lognorm(rng, med, 0.5, lo, hi)

    def light_piece(self) -> tuple[int, float]:
        rng = self.rng
        pool = ("fun", "pseudo", "chat_private", "mail", "work_web", "terminal")[
            rng.choice(6, p=[0.35, 0.25, 0.15, 0.05, 0.10, 0.10])]
        return self.pick(pool), _lognorm(rng, 240, 0.7, 30, 1800)

    # -- blocks -------------------------------------------------------------------------
    def focus_block(self, until: int) -> None:
        p_distract = 0.08 + 0.25 * self.prof.distractibility
        while self.t < until - 3 * US:
            page, dur = self.distraction() if self.rng.random() < p_distract else self.work_piece()
            self.add(page, min(self.t + dur * US, until))

    def meeting(self, end: int) -> None:
        page = self.pick("meeting")
        n_side = int(self.rng.integers(0, 3))
        side_at = sorted(self.rng.uniform(self.t + 5 * MINUTE_US, end - 3 * MINUTE_US, n_side))
        for ts in side_at:
            if ts <= self.t:
                continue
            self.add(page, ts)
            side = self.pick("chat") if self.rng.random() < 0.6 else self.pick("work_web")
            self.add(side, self.t + self.rng.uniform(20, 90) * US)
        self.add(page, end)

    # -- days ---------------------------------------------------------------------------
    def workday(self, day0: int, hours: float | None) -> None:
        rng, prof = self.rng, self.prof
        self.project = str(rng.choice(list(PROJECTS), p=prof.project_p))
        self.power_on(day0 + int((prof.start_hour * 3600 + rng.normal(0, 600)) * US))
        u = self.u0
        length_h = float(np.clip(rng.normal(prof.day_len_h, 0.4), 7.5, 9.5))
        if hours is not None:
            length_h = min(length_h, hours)
        end = u + int(length_h * HOUR_US)
        appts: list[tuple[int, int, str]] = []
        ls = u + int((prof.lunch_offset_h + rng.normal(0, 0.25)) * HOUR_US)
        ll = int(np.clip(rng.normal(prof.lunch_len_min, 6), 30, 60) * MINUTE_US)
        if ls + ll < end - 10 * MINUTE_US:
            appts.append((ls, ls + ll, "lunch"))
        for _ in range(min(int(rng.poisson(prof.meeting_rate)), 4)):
            lo, hi = u + 30 * MINUTE_US, end - 45 * MINUTE_US
            if hi <= lo:
                break
            slot = int(rng.uniform(lo, hi))
            slot += (-slot) % (30 * MINUTE_US)                # meetings start on :00 / :30
            ms = slot + int(rng.uniform(0, 180) * US)          # people join late
            me = slot + int((rng.choice([30, 30, 45, 60]) - rng.uniform(0, 5)) * MINUTE_US)
            if me > end - 5 * MINUTE_US or any(ms < b + 5 * MINUTE_US and a < me + 5 * MINUTE_US
                                               for a, b, _ in appts):
                continue
            appts.append((ms, me, "meeting"))
        appts.sort()
        breaks_left = int(rng.poisson(prof.break_rate))
        coffee_left = int(rng.poisson(prof.coffee_rate))
        while self.t < end - 30 * US:
            while appts and appts[0][0] < self.t:
                appts.pop(0)                                   # passed while locked: skipped
            nxt = appts[0] if appts else None
            limit = min(nxt[0], end) if nxt else end
            if limit - self.t < 90 * US:
                self.add(self.page, limit)
                if nxt and self.t >= nxt[0]:
                    appts.pop(0)
                    if nxt[2] == "lunch":
                        self.lock_for(nxt[1] - self.t)
                    else:
                        self.meeting(nxt[1])
                continue
            free = limit - self.t
            w = np.array([1.0, 0.12 * (breaks_left > 0), 0.08 * (coffee_left > 0),
                          0.15 * prof.distractibility])
            kind = rng.choice(4, p=w / w.sum())
            if kind == 1 and free > 11 * MINUTE_US:
                breaks_left -= 1
                self.add(self.page, self.t + rng.uniform(180, 600) * US, "idle")
            elif kind == 2 and free > 16 * MINUTE_US:
                coffee_left -= 1
                self.lock_for(rng.uniform(300, 900) * US)
            elif kind == 3:
                for _ in range(int(rng.integers(1, 4))):
                    page, dur = self.distraction()
                    self.add(page, min(self.t + dur * US, limit))
            else:
                self.focus_block(min(self.t + int(rng.uniform(25, 90) * MINUTE_US), limit))
        if rng.random() < 0.3:  # walked away; the screensaver locks after 5 min
            self.add(self.page, self.t + 300 * US, "idle")
        self.power_off()
        if hours is None and rng.random() < prof.p_evening:
            self.light_session(self.t + int(rng.uniform(2, 4) * HOUR_US),
                               rng.uniform(15, 60) * MINUTE_US)

    def light_session(self, start: int, length_us: float) -> None:
        self.power_on(start)
        end = self.t + int(length_us)
        while self.t < end - 3 * US:
            page, dur = self.light_piece()
            self.add(page, min(self.t + dur * US, end))
        self.power_off()

    def weekend(self, day0: int, hours: float | None) -> None:
        rng, prof = self.rng, self.prof
        if rng.random() >= prof.p_weekend:
            return
        length_h = rng.uniform(0.3, 2.0)
        if hours is not None:
            length_h = min(length_h, hours)
        start = day0 + int((prof.start_hour + rng.uniform(0, 6)) * HOUR_US)
        self.light_session(start, length_h * HOUR_US)


# ----------------------------------------------------------------------------------------
# Input generation (vectorised over all segments of a day)
# ----------------------------------------------------------------------------------------
def _seg_offsets(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each group (groups are consecutive runs of `counts`)."""
    c = np.cumsum(values)
    first = np.cumsum(counts) - counts
    return c - np.repeat(c[first] - values[first], counts)


def generate_inputs(rng: np.random.Generator, prof: Profile, t0: np.ndarray, t1: np.ndarray,
                    act: np.ndarray, cursor: tuple[int, int]) -> dict:
    nseg = t0.size
    dur_s = (t1 - t0) / US
    P = PARAMS[act]
    e_pause = ((1 - P[:, 5]) * P[:, 3] * np.exp(P[:, 4] ** 2 / 2)
               + P[:, 5] * P[:, 6] * np.exp(0.32))
    e_act = (P[:, 0] * (prof.burst_mean * P[:, 7] * prof.iki_median + 0.1)
             + P[:, 1] * 0.7 + P[:, 2] * P[:, 9] * 0.055)
    live = act != ACT["idle"]
    ncand = np.where(live, np.ceil(2.0 * dur_s / (e_pause + e_act)).astype(np.int64) + 10, 0)
    cs = np.repeat(np.arange(nseg), ncand)
    N = cs.size
    Pc = P[cs]
    u = rng.random(N)
    typ = (u >= Pc[:, 0]).astype(np.int8) + (u >= Pc[:, 0] + Pc[:, 1])
    long_ = rng.random(N) < Pc[:, 5]
    z = rng.standard_normal(N)
    pause = np.clip(np.where(long_, Pc[:, 6] * np.exp(0.8 * z), Pc[:, 3] * np.exp(Pc[:, 4] * z)),
                    0.08, 1800.0)
    cdur = np.zeros(N)

    # typing bursts: geometric number of keys, lognormal inter-key intervals
    T = np.flatnonzero(typ == 0)
    kT = np.minimum(rng.geometric(1.0 / np.maximum(prof.burst_mean * Pc[T, 7], 1.0)), 200)
    K = int(kT.sum())
    iki = np.clip(prof.iki_median * np.exp(prof.iki_sigma * rng.standard_normal(K)), 0.05, 2.0)
    kfirst = np.cumsum(kT) - kT
    iki[kfirst] = 0.0
    koff = _seg_offsets(iki, kT)
    hold = rng.uniform(0.05, 0.12, K)
    if T.size:
        cdur[T] = np.maximum.reduceat(koff + hold, kfirst) + 0.01

    # mouse episodes: a path to a target, sampled every 16-33 ms, often ending in a click
    M = np.flatnonzero(typ == 1)
    D = np.clip(0.55 * np.exp(0.45 * rng.standard_normal(M.size)), 0.2, 1.5)
    nM = np.maximum(3, np.rint(D / 0.0245)).astype(np.int64)
    dt = rng.uniform(0.016, 0.033, int(nM.sum()))
    moff = _seg_offsets(dt, nM)
    mlast = np.cumsum(nM) - 1
    mdur = moff[mlast] if M.size else np.zeros(0)
    click = rng.random(M.size) < Pc[M, 8]
    dbl = click & (rng.random(M.size) < 0.08)
    cdelay = rng.uniform(0.06, 0.25, M.size)
    ddelay = rng.uniform(0.08, 0.16, M.size)
    button = np.where(dbl, 1, rng.choice(np.array([1, 3, 2]), size=M.size, p=[0.9, 0.08, 0.02]))
    hot = rng.choice(len(_HOT), size=M.size, p=_HOT[:, 4])
    tx = np.clip(np.rint(_HOT[hot, 0] + _HOT[hot, 2] * rng.standard_normal(M.size)), 0, SCREEN_W - 1)
    ty = np.clip(np.rint(_HOT[hot, 1] + _HOT[hot, 3] * rng.standard_normal(M.size)), 0, SCREEN_H - 1)
    bow = rng.normal(0, 0.06, M.size)
    cdur[M] = mdur + click * cdelay + dbl * ddelay + 0.01

    # wheel runs
    S = np.flatnonzero(typ == 2)
    mS = np.minimum(rng.geometric(1.0 / Pc[S, 9]), 60)
    sgap = np.clip(0.05 * np.exp(0.4 * rng.standard_normal(int(mS.sum()))), 0.015, 0.3)
    sfirst = np.cumsum(mS) - mS
    sgap[sfirst] = 0.0
    soff = _seg_offsets(sgap, mS)
    sdir = np.where(rng.random(S.size) < 0.75, -1, 1)
    if S.size:
        cdur[S] = soff[np.cumsum(mS) - 1] + 0.01

    # place actions back to back inside their segment; drop those running past its end
    step = pause + cdur
    nz = ncand[ncand > 0]
    end_off = _seg_offsets(step, nz) if N else np.zeros(0)
    start_off = end_off - cdur
    keep = end_off <= dur_s[cs] - 0.05
    base = t0[cs]

    def stamp(cand: np.ndarray, off: np.ndarray) -> np.ndarray:
        return base[cand] + np.rint((start_off[cand] + off) * US).astype(np.int64)

    out: dict = {}
    # keys
    kc = np.repeat(T, kT)
    kk = keep[kc]
    press = stamp(kc[kk], koff[kk])
    release = stamp(kc[kk], koff[kk] + hold[kk])
    out["key_press"], out["key_release"] = press, release
    out["keycode"] = rng.choice(KEYCODES, size=press.size, p=KEY_P)

    # mouse paths (cursor persists: each kept episode starts where the previous one ended)
    keepM = keep[M]
    ke = np.flatnonzero(keepM)
    sx = np.concatenate([[cursor[0]], tx[ke][:-1]]) if ke.size else np.zeros(0)
    sy = np.concatenate([[cursor[1]], ty[ke][:-1]]) if ke.size else np.zeros(0)
    local = np.full(M.size, -1)
    local[ke] = np.arange(ke.size)
    ep = np.repeat(np.arange(M.size), nM)
    smask = keepM[ep]
    ep_k = local[ep[smask]]
    tau = moff[smask] / mdur[ep[smask]]
    s = tau ** 3 * (10 - 15 * tau + 6 * tau ** 2)
    dx = tx[ke][ep_k] - sx[ep_k]
    dy = ty[ke][ep_k] - sy[ep_k]
    dist = np.maximum(np.hypot(dx, dy), 1.0)
    b = bow[ke][ep_k] * dist * np.sin(np.pi * tau)
    jit = rng.normal(0, 0.7, (ep_k.size, 2)) * (tau < 1)[:, None]
    mx = np.clip(np.rint(sx[ep_k] + dx * s - dy / dist * b + jit[:, 0]), 0, SCREEN_W - 1)
    my = np.clip(np.rint(sy[ep_k] + dy * s + dx / dist * b + jit[:, 1]), 0, SCREEN_H - 1)
    mts = stamp(M[ep[smask]], moff[smask])
    # X11 reports motion only when the position changes
    px = np.concatenate([[cursor[0]], mx[:-1]])
    py = np.concatenate([[cursor[1]], my[:-1]])
    moved = (mx != px) | (my != py)
    mx, my, mts, ep_k = mx[moved], my[moved], mts[moved], ep_k[moved]
    ep_start = stamp(M[ke], np.zeros(ke.size))
    first_in_ep = np.ones(mts.size, dtype=bool)
    first_in_ep[1:] = ep_k[1:] != ep_k[:-1]
    prev_ts = np.where(first_in_ep, ep_start[ep_k], np.concatenate([[0], mts[:-1]]))
    px = np.concatenate([[cursor[0]], mx[:-1]])
    py = np.concatenate([[cursor[1]], my[:-1]])
    step_px = np.hypot(mx - px, my - py)
    speed = np.rint(step_px / np.maximum((mts - prev_ts) / US, 1e-3))
    out["move_ts"], out["move_x"], out["move_y"] = mts, mx.astype(np.int64), my.astype(np.int64)
    out["move_speed"] = speed.astype(np.uint32)

    # clicks at the end of clicking episodes (plus the second click of a double click)
    ck = ke[click[ke]]
    c1 = stamp(M[ck], mdur[ck] + cdelay[ck])
    dk = ke[dbl[ke]]
    c2 = stamp(M[dk], mdur[dk] + cdelay[dk] + ddelay[dk])
    cts = np.concatenate([c1, c2])
    o = np.argsort(cts, kind="stable")
    out["click_ts"] = cts[o]
    out["click_x"] = np.concatenate([tx[ck], tx[dk]])[o].astype(np.int64)
    out["click_y"] = np.concatenate([ty[ck], ty[dk]])[o].astype(np.int64)
    out["click_button"] = np.concatenate([button[ck], button[dk]])[o].astype(np.uint32)

    # wheel
    sc = np.repeat(S, mS)
    skk = keep[sc]
    out["wheel_ts"] = stamp(sc[skk], soff[skk])
    out["wheel_dy"] = np.repeat(sdir, mS)[skk].astype(np.int64)

    new_cursor = (int(tx[ke[-1]]), int(ty[ke[-1]])) if ke.size else cursor
    return out | {"cursor": new_cursor}


def move_distances(x: np.ndarray, y: np.ndarray, last: tuple[int, int] | None) -> np.ndarray:
    """docs/metrics.md mouse_distance_px per MOUSE_MOVE: Euclidean distance from the device's
    previous MOUSE_MOVE (carried across days); the device's first move adds 0."""
    if x.size == 0:
        return np.zeros(0)
    px = np.concatenate([[last[0] if last else x[0]], x[:-1]]).astype(np.float64)
    py = np.concatenate([[last[1] if last else y[0]], y[:-1]]).astype(np.float64)
    return np.hypot(x - px, y - py)


def idle_events(inputs_ts: np.ndarray, last_input: int | None) -> tuple[np.ndarray, np.ndarray,
                                                                        np.ndarray]:
    """IDLE_START 5 s after an input followed by no input within 5 s (strictly: gap > 5 s, or
    no next input); IDLE_END at the next input with idle_duration_ms = floor(gap / 1 ms).
    `last_input` is the previous day's last input: its IDLE_START was emitted that day."""
    if inputs_ts.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    gaps = np.diff(inputs_ts)
    big = np.flatnonzero(gaps > IDLE_AFTER_US)
    starts = np.concatenate([inputs_ts[big] + IDLE_AFTER_US, inputs_ts[-1:] + IDLE_AFTER_US])
    ends = inputs_ts[big + 1]
    dur_ms = gaps[big] // 1000
    if last_input is not None and inputs_ts[0] - last_input > IDLE_AFTER_US:
        ends = np.concatenate([inputs_ts[:1], ends])
        dur_ms = np.concatenate([[(inputs_ts[0] - last_input) // 1000], dur_ms])
    return starts, ends, dur_ms


# ----------------------------------------------------------------------------------------
# Ground truth (docs/metrics.md), from the generated timeline
# ----------------------------------------------------------------------------------------
def _hour(ts: np.ndarray) -> np.ndarray:
    return ts - ts % HOUR_US


def day_truth(state: UserState, samples: dict, inputs: dict, idle_start: np.ndarray) -> tuple[
        dict, dict]:
    """Hourly metrics and seconds per (hour, app, category) for one user-day.

    samples: active_window rows as arrays ts, reason (0 change, 1 heartbeat, 2 close), page.
    inputs: timestamps per input type plus move x/y. Updates the truth carry in `state`.
    """
    # -- window intervals: a change/heartbeat starts one; it ends at the next sample if that
    #    comes within pulsetime, else at its own time. A close starts none.
    ts, reason, page = samples["ts"], samples["reason"], samples["page"]
    starts_iv = np.flatnonzero(reason != 2)
    nxt = np.minimum(starts_iv + 1, ts.size - 1)
    has_next = starts_iv + 1 < ts.size
    gap = ts[nxt] - ts[starts_iv]
    iv_s = ts[starts_iv]
    iv_e = np.where(has_next & (gap <= PULSETIME_US), ts[nxt], iv_s)
    iv_p = page[starts_iv]
    # heartbeat merge: consecutive intervals with equal (app, title) that touch
    new = np.ones(iv_s.size, dtype=bool)
    new[1:] = ~((iv_p[1:] == iv_p[:-1]) & (iv_s[1:] == iv_e[:-1]))
    g = np.cumsum(new) - 1
    m_s = iv_s[new]
    m_e = np.zeros(m_s.size, np.int64)
    np.maximum.at(m_e, g, iv_e)
    m_p = iv_p[new]
    m_app = APP_OF_PAGE[m_p]
    prev_app = np.concatenate([[-1 if state.t_prev_app is None else state.t_prev_app],
                               m_app[:-1]])
    switch = (m_app != prev_app) & (prev_app >= 0)
    if m_app.size:
        state.t_prev_app = int(m_app[-1])

    # -- not-AFK periods: runs of inputs split where consecutive inputs are > 180 s apart
    inp = np.sort(np.concatenate([inputs["key_press"], inputs["key_release"], inputs["move_ts"],
                                  inputs["click_ts"], inputs["wheel_ts"]]))
    if inp.size:
        if state.t_last_input_us is not None:
            # a run never spans the night: the simulator suspends for hours between days
            assert inp[0] - state.t_last_input_us > AFK_TIMEOUT_US
        cut = np.flatnonzero(np.diff(inp) > AFK_TIMEOUT_US)
        r_s = np.concatenate([inp[:1], inp[cut + 1]])
        r_e = np.concatenate([inp[cut], inp[-1:]])
        state.t_last_input_us = int(inp[-1])
    else:
        r_s = r_e = np.zeros(0, np.int64)

    # -- active = window intervals ∩ not-AFK periods, split at hour boundaries
    pts = [m_s, m_e, r_s, r_e]
    if m_s.size:
        lo, hi = _hour(m_s[:1])[0], m_e.max()
        pts.append(np.arange(lo, hi + HOUR_US, HOUR_US, dtype=np.int64))
    p = np.unique(np.concatenate(pts)) if m_s.size else np.zeros(0, np.int64)
    a_app_h: dict = {}
    if p.size > 1:
        a, b = p[:-1], p[1:]
        wi = np.searchsorted(m_s, a, side="right") - 1
        in_w = (wi >= 0) & (a < m_e[np.maximum(wi, 0)])
        ri = np.searchsorted(r_s, a, side="right") - 1
        in_r = (ri >= 0) & (a < r_e[np.maximum(ri, 0)])
        sel = in_w & in_r
        pg = m_p[wi[sel]]
        a_app_h = {"hour": _hour(a[sel]), "app": APP_OF_PAGE[pg], "cat": CAT_OF_PAGE[pg],
                   "us": b[sel] - a[sel]}
    else:
        a_app_h = {"hour": np.zeros(0, np.int64), "app": np.zeros(0, np.int32),
                   "cat": np.zeros(0, np.int32), "us": np.zeros(0, np.int64)}

    # -- per-hour counts
    dist = move_distances(inputs["move_x"], inputs["move_y"], state.t_last_move)
    if inputs["move_x"].size:
        state.t_last_move = (int(inputs["move_x"][-1]), int(inputs["move_y"][-1]))
    series = {
        "keystrokes": (inputs["key_press"], None),
        "clicks": (inputs["click_ts"], None),
        "mouse_distance_px": (inputs["move_ts"], dist),
        "active_us": (a_app_h["hour"], a_app_h["us"]),
        "context_switches": (m_s[switch], None),
        "idle_periods": (idle_start, None),
        "input_events": (inp, None),
    }
    hours = np.unique(np.concatenate([_hour(v[0]) for v in series.values()]))
    hourly: dict = {"hour": hours}
    for name, (tsv, w) in series.items():
        idx = np.searchsorted(hours, _hour(tsv))
        hourly[name] = np.bincount(idx, weights=w, minlength=hours.size)
    # app hourly: group (hour, app, category)
    if a_app_h["hour"].size:
        key = np.stack([a_app_h["hour"], a_app_h["app"], a_app_h["cat"]], axis=1)
        uk, inv = np.unique(key, axis=0, return_inverse=True)
        secs = np.bincount(inv.ravel(), weights=a_app_h["us"], minlength=len(uk))
        app_h = {"hour": uk[:, 0], "app": uk[:, 1], "cat": uk[:, 2], "us": secs}
    else:
        app_h = {"hour": np.zeros(0, np.int64), "app": np.zeros(0, np.int64),
                 "cat": np.zeros(0, np.int64), "us": np.zeros(0)}
    return hourly, app_h


# ----------------------------------------------------------------------------------------
# One user-day: plan -> inputs -> records, CSV rows, truth
# ----------------------------------------------------------------------------------------
@dataclass
class DayOutput:
    records: np.ndarray
    rows: dict = field(default_factory=dict)   # stream -> list of row tuples
    hourly: dict | None = None
    app_hourly: dict | None = None


def day_origin_us(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * US


def _grid(lo: int, hi: int) -> np.ndarray:
    """Epoch-aligned 5 s grid points g with lo <= g < hi."""
    first = lo + (-lo) % GRID_US
    return np.arange(first, hi, GRID_US, dtype=np.int64)


def simulate_day(prof: Profile, state: UserState, d: date, day_index: int, seed: int,
                 hours: float | None = None, consent_keys: bool = False) -> DayOutput:
    rng = np.random.default_rng([seed, prof.index, day_index, 0xDA7])
    plan = DayPlan(rng, prof, state)
    day0 = day_origin_us(d)
    if d.weekday() < 5:
        plan.workday(day0, hours)
    else:
        plan.weekend(day0, hours)
    if not plan.on:
        return DayOutput(records=np.zeros(0, EVENT_DTYPE),
                         rows={k: [] for k in ("system_metrics", "active_window", "input_counts",
                                               "system_events")})
    assert plan.on[0][0] > state.last_off_us + AFK_TIMEOUT_US, "user-days overlap"
    segs = np.array(plan.segs, dtype=np.int64)
    s_t0, s_t1, s_page, s_act = segs[:, 0], segs[:, 1], segs[:, 2].astype(np.int32), segs[:, 3]
    carry_page = state.page
    inputs = generate_inputs(rng, prof, s_t0, s_t1, s_act, state.cursor)

    # -- window runs: equal consecutive pages inside an unlocked period collapse into one run
    unl = np.array([(a, b) for a, b, _ in plan.unlocked], dtype=np.int64)
    period = np.searchsorted(unl[:, 0], s_t0, side="right") - 1
    new_run = np.ones(s_t0.size, dtype=bool)
    new_run[1:] = (s_page[1:] != s_page[:-1]) | (period[1:] != period[:-1])
    run_t = s_t0[new_run]
    run_page = s_page[new_run]
    run_period = period[new_run]
    first_in_period = np.ones(run_t.size, dtype=bool)
    first_in_period[1:] = run_period[1:] != run_period[:-1]
    prev_run_page = np.concatenate([[carry_page], run_page[:-1]])
    assert np.all(run_page[first_in_period] == prev_run_page[first_in_period])
    app_change = APP_OF_PAGE[run_page] != APP_OF_PAGE[prev_run_page]
    focus_ix = np.flatnonzero(app_change & ~first_in_period)
    title_ix = np.flatnonzero(~app_change & ~first_in_period)

    # -- active_window samples: change at run starts, heartbeats on the grid, close at lock
    hb = np.concatenate([_grid(a + 1, b) for a, b in unl])
    hb = hb[~np.isin(hb, run_t)]
    hb_page = run_page[np.searchsorted(run_t, hb, side="right") - 1]
    close_t = unl[:, 1]
    close_page = run_page[np.searchsorted(run_t, close_t, side="left") - 1]
    w_ts = np.concatenate([run_t, hb, close_t])
    w_reason = np.concatenate([np.zeros(run_t.size, np.int8), np.ones(hb.size, np.int8),
                               np.full(close_t.size, 2, np.int8)])
    w_page = np.concatenate([run_page, hb_page, close_page])
    o = np.lexsort((w_reason, w_ts))
    samples = {"ts": w_ts[o], "reason": w_reason[o], "page": w_page[o]}

    # -- focused page at any time (for app_name / pid / window of every record)
    def page_at(t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(run_t, t, side="right") - 1
        return np.where(i >= 0, run_page[np.maximum(i, 0)], carry_page)

    # -- binary records
    inp_all = np.sort(np.concatenate([inputs["key_press"], inputs["key_release"],
                                      inputs["move_ts"], inputs["click_ts"], inputs["wheel_ts"]]))
    i_start, i_end, i_dur = idle_events(inp_all, state.last_input_us)
    nk = inputs["key_press"].size
    kc = inputs["keycode"] if consent_keys else np.zeros(nk, np.uint32)
    sc = np.where(kc > 8, kc - 8, 0).astype(np.uint32) if consent_keys else kc
    zeros = lambda n: np.zeros(n, np.uint32)
    u32 = lambda a: np.asarray(a, np.int64).astype(np.int32).view(np.uint32)
    win_of_app = np.array([prof.windows.get(a, 0) for a in APP_NAMES], np.uint32)
    parts = [
        (inputs["key_press"], EventType.KEY_PRESS, (kc, sc, zeros(nk))),
        (inputs["key_release"], EventType.KEY_RELEASE, (kc, sc, zeros(nk))),
        (inputs["move_ts"], EventType.MOUSE_MOVE,
         (u32(inputs["move_x"]), u32(inputs["move_y"]), inputs["move_speed"])),
        (inputs["click_ts"], EventType.MOUSE_CLICK,
         (u32(inputs["click_x"]), u32(inputs["click_y"]), inputs["click_button"])),
        (inputs["wheel_ts"], EventType.MOUSE_WHEEL,
         (zeros(inputs["wheel_ts"].size), u32(inputs["wheel_dy"]), zeros(inputs["wheel_ts"].size))),
        (run_t[focus_ix], EventType.WINDOW_FOCUS_CHANGE,
         (win_of_app[APP_OF_PAGE[prev_run_page[focus_ix]]], win_of_app[APP_OF_PAGE[run_page[focus_ix]]],
          zeros(focus_ix.size))),
        (run_t[title_ix], EventType.WINDOW_TITLE_CHANGE,
         (win_of_app[APP_OF_PAGE[run_page[title_ix]]], zeros(title_ix.size), zeros(title_ix.size))),
        (i_start, EventType.IDLE_START, (np.full(i_start.size, 5000, np.uint32),
                                         zeros(i_start.size), zeros(i_start.size))),
        (i_end, EventType.IDLE_END, (i_dur.astype(np.uint32), zeros(i_end.size), zeros(i_end.size))),
        (close_t, EventType.SCREEN_LOCK, (zeros(close_t.size),) * 3),
        (np.array([a for a, _, via in plan.unlocked if via], np.int64), EventType.SCREEN_UNLOCK,
         None),
    ]
    n = sum(p[0].size for p in parts)
    rec = np.zeros(n, EVENT_DTYPE)
    prio = np.zeros(n, np.int8)
    i = 0
    for tsv, et, data in parts:
        j = i + tsv.size
        rec["timestamp_us"][i:j] = tsv
        rec["event_type"][i:j] = et
        prio[i:j] = _PRIO[et]
        if data is not None:
            for w in range(3):
                rec["data"][i:j, w] = data[w]
        i = j
    o = np.lexsort((prio, rec["timestamp_us"]))
    rec = rec[o]
    pg = page_at(rec["timestamp_us"].astype(np.int64))
    app = APP_OF_PAGE[pg]
    rec["app_name"] = np.array([a.encode() for a in APP_NAMES], dtype="S32")[app]
    rec["process_id"] = np.array([prof.pids.get(a, 0) for a in APP_NAMES], np.uint32)[app]
    rec["window_handle"] = win_of_app[app]
    # no input while locked or suspended
    inside = np.searchsorted(unl[:, 0], inp_all, side="right") - 1
    assert np.all(inside >= 0) and np.all(inp_all > unl[inside, 0]) and np.all(
        inp_all < unl[inside, 1]), "input outside an unlocked period"

    # -- CSV rows
    rows: dict = {}
    titles = [p.title for p in CATALOG]
    apps_of = [p.app for p in CATALOG]
    pid_of = [prof.pids.get(p.app, None) for p in CATALOG]
    rname = ("change", "heartbeat", "close")
    rows["active_window"] = [(t, apps_of[p], titles[p], pid_of[p], rname[r]) for t, p, r in zip(
        samples["ts"].tolist(), samples["page"].tolist(), samples["reason"].tolist())]

    mdist = move_distances(inputs["move_x"], inputs["move_y"], state.last_move)
    buckets = np.unique(np.concatenate([np.arange(a - a % GRID_US, b, GRID_US, dtype=np.int64)
                                        for a, b in unl]))
    nb = buckets.size

    def per_bucket(tsv, w=None):
        bi = np.searchsorted(buckets, tsv, side="right") - 1
        assert np.all(bi >= 0) and np.all(tsv < buckets[bi] + GRID_US)
        return np.bincount(bi, weights=w, minlength=nb)

    ic = [per_bucket(inputs["key_press"]).astype(np.int64),
          per_bucket(inputs["click_ts"]).astype(np.int64),
          per_bucket(inputs["wheel_ts"]).astype(np.int64),
          per_bucket(inputs["move_ts"]).astype(np.int64),
          np.round(per_bucket(inputs["move_ts"], mdist), 3)]
    rows["input_counts"] = list(zip(buckets.tolist(), [5] * nb, *(c.tolist() for c in ic)))

    rows["system_events"] = sorted(plan.sysev)
    rows["system_metrics"] = _system_metrics(rng, prof, plan, d, inp_all, page_at)

    # -- truth
    hourly, app_hourly = day_truth(state, samples, inputs, i_start)

    # -- carry
    state.page = plan.page
    state.cursor = inputs["cursor"]
    if inputs["move_x"].size:
        state.last_move = (int(inputs["move_x"][-1]), int(inputs["move_y"][-1]))
    state.started = True
    state.last_off_us = plan.on[-1][1]
    if inp_all.size:
        state.last_input_us = int(inp_all[-1])
        assert inp_all[-1] + IDLE_AFTER_US < plan.on[-1][1]
    return DayOutput(records=rec, rows=rows, hourly=hourly, app_hourly=app_hourly)


# sort order of records sharing a microsecond (only ever matters for readability)
_PRIO = {EventType.SCREEN_UNLOCK: 0, EventType.WINDOW_FOCUS_CHANGE: 1,
         EventType.WINDOW_TITLE_CHANGE: 2, EventType.IDLE_END: 3, EventType.KEY_PRESS: 4,
         EventType.KEY_RELEASE: 5, EventType.MOUSE_MOVE: 6, EventType.MOUSE_CLICK: 7,
         EventType.MOUSE_WHEEL: 8, EventType.IDLE_START: 9, EventType.SCREEN_LOCK: 10}


def _system_metrics(rng, prof: Profile, plan: DayPlan, d: date, inp_all: np.ndarray,
                    page_at) -> list[tuple]:
    """psutil-like samples every 5 s while the machine is on."""
    g = np.concatenate([_grid(a, b) for a, b in plan.on])
    n = g.size
    sess = np.concatenate([np.full(_grid(a, b).size, k) for k, (a, b) in enumerate(plan.on)])
    on_start = np.array([a for a, _ in plan.on], np.int64)[sess]
    # input activity in the 5 s before each sample
    act = np.searchsorted(inp_all, g) - np.searchsorted(inp_all, g - GRID_US)
    pg = page_at(g)
    app = APP_OF_PAGE[pg]
    pact = ACT_OF_PAGE[pg]
    unl = np.array([(a, b) for a, b, _ in plan.unlocked], np.int64)
    ui = np.searchsorted(unl[:, 0], g, side="right") - 1
    unlocked = (ui >= 0) & (g < unl[np.maximum(ui, 0), 1])
    ide = np.isin(app, [APP_NAMES.index(a) for a in IDE_APPS if a in APP_NAMES])
    meeting = (pact == ACT["meeting"]) & unlocked
    watch = (pact == ACT["watch"]) & unlocked
    # builds / test runs: CPU spikes of 10-90 s in IDE or terminal
    on_h = sum(b - a for a, b in plan.on) / HOUR_US
    k = int(rng.poisson(3.0 * on_h))
    sp_s = rng.uniform(g[0], g[-1] + 1, k).astype(np.int64) if n else np.zeros(0, np.int64)
    sp_e = sp_s + rng.uniform(10, 90, k).astype(np.int64) * US
    in_spike = np.zeros(n, bool)
    for a, b in zip(sp_s, sp_e):
        in_spike[np.searchsorted(g, a):np.searchsorted(g, b)] = True
    build = in_spike & ide & unlocked
    cpu = (rng.uniform(2, 6, n) + 0.25 * act + np.where(ide, 4, 0) + np.where(meeting, 35, 0)
           + np.where(watch, 18, 0) + np.where(build, rng.uniform(30, 85, n), 0)
           + rng.exponential(2.0, n))
    cpu = np.round(np.clip(cpu, 0.3, 100.0), 1)
    mem = np.round(np.clip(prof.mem_base + np.cumsum(rng.normal(0.002, 0.05, n))
                           + np.where(meeting, 8, 0) + np.where(build, 6, 0), 8, 95), 1)
    swap = (np.round(np.clip(rng.uniform(0, 3) + np.cumsum(rng.normal(0.0005, 0.01, n)), 0, 100), 1)
            if prof.has_swap else None)
    dr = np.rint(40e3 * np.exp(1.2 * rng.standard_normal(n)) * np.where(build, 20, 1))
    dw = np.rint(25e3 * np.exp(1.2 * rng.standard_normal(n)) * np.where(build, 10, 1))
    ns = np.where(meeting, 700e3 * np.exp(0.3 * rng.standard_normal(n)),
                  3e3 * np.exp(1.0 * rng.standard_normal(n)))
    nr = np.where(meeting, 1.4e6 * np.exp(0.3 * rng.standard_normal(n)),
                  np.where(watch, 2.5e6 * np.exp(0.3 * rng.standard_normal(n)),
                           (8e3 + 30.0 * act) * np.exp(1.3 * rng.standard_normal(n))))
    top_cpu = np.round(cpu * rng.uniform(0.3, 0.8, n), 1)
    if prof.laptop:
        weekday = d.weekday() < 5
        h = (g - on_start) / HOUR_US
        b0 = rng.uniform(55, 100)
        drain = rng.uniform(9, 14)
        plug_h = min(rng.uniform(0.5, 4.0), (b0 - 15) / drain) if weekday else np.inf
        charge = 35.0
        bat = np.where(h < plug_h, b0 - drain * h,
                       np.minimum(100.0, b0 - drain * plug_h + charge * (h - plug_h)))
        bat = np.round(np.clip(bat, 1, 100), 1)
        ac = np.where(h >= plug_h, "true", "false")
    else:
        bat, ac = None, np.full(n, "true")
    cols = [g.tolist(), cpu.tolist(), mem.tolist(),
            swap.tolist() if swap is not None else [None] * n,
            dr.astype(np.int64).tolist(), dw.astype(np.int64).tolist(),
            np.rint(ns).astype(np.int64).tolist(), np.rint(nr).astype(np.int64).tolist(),
            bat.tolist() if bat is not None else [None] * n, ac.tolist(),
            [APP_NAMES[a] for a in app.tolist()], top_cpu.tolist()]
    return list(zip(*cols))
