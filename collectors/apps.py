"""App and window-title catalog of the synthetic workload.

Every (app_name, window_title) pair the simulator can emit is listed here, once, with the
category it is *meant* to have. The truth files record these categories; the pipeline's
classification rules (regexes over app_name and window_title) must reproduce them.

Naming follows what a Linux/X11 collector really sees: `app_name` is the process name
(`code`, `gnome-terminal-server`, `soffice.bin` ...), `window_title` the _NET_WM_NAME.
Browser titles carry the browser's suffix ("<page> — Mozilla Firefox", "<page> - Google Chrome").

Category rules the catalog follows (so regexes can reproduce them):
- ide: code, pycharm, gnome-terminal-server (all titles).
- communication: slack, teams-for-linux, zoom, thunderbird, telegram-desktop; in a browser:
  Gmail ("... - Gmail") and Google Meet ("Meet - ...").
- productivity: soffice.bin, obsidian, evince; in a browser: Jira ("... - Jira"),
  Google Docs/Sheets ("... - Google Docs", "... - Google Sheets"), Google Calendar.
- entertainment: spotify; in a browser: YouTube videos *without* an educational keyword,
  Reddit, X, Netflix, Twitch.
- pseudo_productive: in a browser: YouTube titles containing one of
  Tutorial|Lecture|Explained|Talk|Course, Hacker News, LinkedIn, Medium.
- browser: every other browser page (GitHub, Stack Overflow, documentation, search).
- other: nautilus, gnome-control-center, keepassxc.
"""
from __future__ import annotations

from dataclasses import dataclass

CATEGORIES = ("ide", "browser", "communication", "entertainment", "productivity",
              "pseudo_productive", "other")

# Activity kinds: how a person uses the window (drives the input model in workload.py).
ACTIVITIES = ("code", "terminal", "read", "browse", "watch", "chat", "mail", "meeting", "doc",
              "misc", "music", "idle")


@dataclass(frozen=True)
class Page:
    app: str        # process name (app_name in both streams)
    title: str      # window title
    category: str   # intended category (ground truth)
    activity: str   # default activity kind
    pool: str       # role in the people model (which pages a person picks for what)


PROJECTS = {
    "focuslake": ("main.py", "simulate.py", "workload.py", "events.py", "segments.py",
                  "schemas.py", "ingest.py", "test_simulate.py", "fct_hourly_focus.sql",
                  "dbt_project.yml", "README.md"),
    "etl-jobs": ("dag_daily.py", "extract.py", "transform.sql", "load.py", "requirements.txt"),
    "dotfiles": (".zshrc", "init.lua", "config.toml"),
}

FIREFOX_SUFFIX = " — Mozilla Firefox"
CHROME_SUFFIX = " - Google Chrome"
BROWSERS = {"firefox": FIREFOX_SUFFIX, "chrome": CHROME_SUFFIX}

# (page title, category, activity, pool) for pages opened in a browser
WEB_PAGES: tuple[tuple[str, str, str, str], ...] = (
    # work browsing -> browser
    ("Pull request #42 · GitHub", "browser", "read", "work_web"),
    ("Pull request #57 · GitHub", "browser", "read", "work_web"),
    ("Pull request #63 · GitHub", "browser", "read", "work_web"),
    ("acme/focuslake: Focus telemetry lakehouse · GitHub", "browser", "read", "work_web"),
    ("Issues · acme/focuslake · GitHub", "browser", "read", "work_web"),
    ("Actions · acme/focuslake · GitHub", "browser", "read", "work_web"),
    ("python - How do I pivot a DataFrame? - Stack Overflow", "browser", "read", "work_web"),
    ("sql - Gaps and islands with window functions - Stack Overflow", "browser", "read", "work_web"),
    ("numpy - Vectorised cumulative sum per group - Stack Overflow", "browser", "read", "work_web"),
    ("numpy.searchsorted — NumPy v2.4 Manual", "browser", "read", "work_web"),
    ("Window Functions – DuckDB", "browser", "read", "work_web"),
    ("Incremental models | dbt Developer Hub", "browser", "read", "work_web"),
    ("DAGs — Airflow 3.3.2 Documentation", "browser", "read", "work_web"),
    ("pyarrow.parquet.write_table — Apache Arrow", "browser", "read", "work_web"),
    ("duckdb parquet partition pruning - Google Search", "browser", "read", "work_web"),
    # productivity in the browser
    ("FOCUS-123 Quarantine late segments - Jira", "productivity", "doc", "docs_web"),
    ("Sprint board - Jira", "productivity", "read", "docs_web"),
    ("Q4 planning - Google Docs", "productivity", "doc", "docs_web"),
    ("Capacity model - Google Sheets", "productivity", "doc", "docs_web"),
    ("Google Calendar - Week of November 16, 2026", "productivity", "read", "docs_web"),
    # communication in the browser
    ("Inbox (3) - work@acme.example - Gmail", "communication", "mail", "mail_web"),
    ("Re: Ingest incident follow-up - work@acme.example - Gmail", "communication", "mail",
     "mail_web"),
    ("Meet - xvb-qmto-kzr", "communication", "meeting", "meet_web"),
    # entertainment
    ("YouTube", "entertainment", "browse", "fun"),
    ("Top 10 Goals of the Season - YouTube", "entertainment", "watch", "fun"),
    ("Funniest Cat Videos 2026 - YouTube", "entertainment", "watch", "fun"),
    ("Lofi Hip Hop Radio 24/7 - YouTube", "entertainment", "watch", "fun"),
    ("Reddit - Dive into anything", "entertainment", "browse", "fun"),
    ("r/aww - Reddit", "entertainment", "browse", "fun"),
    ("r/soccer - Reddit", "entertainment", "browse", "fun"),
    ("Home / X", "entertainment", "browse", "fun"),
    ("Netflix", "entertainment", "watch", "fun"),
    ("Twitch", "entertainment", "watch", "fun"),
    # pseudo-productive
    ("Raft Consensus Explained - YouTube", "pseudo_productive", "watch", "pseudo"),
    ("PyCon 2026 Talk: Columnar Data at Speed - YouTube", "pseudo_productive", "watch", "pseudo"),
    ("MIT 6.824 Distributed Systems Lecture 1 - YouTube", "pseudo_productive", "watch", "pseudo"),
    ("SQL Window Functions Tutorial - YouTube", "pseudo_productive", "watch", "pseudo"),
    ("Hacker News", "pseudo_productive", "browse", "pseudo"),
    ("Show HN: A tiny columnar database | Hacker News", "pseudo_productive", "read", "pseudo"),
    ("Feed | LinkedIn", "pseudo_productive", "browse", "pseudo"),
    ("Jobs | LinkedIn", "pseudo_productive", "browse", "pseudo"),
    ("The Myth of Multitasking | by Dana Lee | Medium", "pseudo_productive", "read", "pseudo"),
)

# (app, title, category, activity, pool) for native applications
NATIVE_PAGES: tuple[tuple[str, str, str, str, str], ...] = (
    ("gnome-terminal-server", "dev@workstation: ~", "ide", "terminal", "terminal"),
    ("gnome-terminal-server", "htop", "ide", "terminal", "terminal"),
    ("gnome-terminal-server", "dev@build-server: ~/ci", "ide", "terminal", "terminal"),
    *(("gnome-terminal-server", f"dev@workstation: ~/src/{p}", "ide", "terminal", "terminal")
      for p in PROJECTS),
    ("slack", "#team-data | Acme - Slack", "communication", "chat", "chat"),
    ("slack", "#general | Acme - Slack", "communication", "chat", "chat"),
    ("slack", "#incidents | Acme - Slack", "communication", "chat", "chat"),
    ("slack", "#random | Acme - Slack", "communication", "chat", "chat"),
    ("slack", "Alice Martin (DM) | Acme - Slack", "communication", "chat", "chat"),
    ("teams-for-linux", "Chat | Data Team | Microsoft Teams", "communication", "chat", "chat"),
    ("teams-for-linux", "Activity | Microsoft Teams", "communication", "chat", "chat"),
    ("teams-for-linux", "Alice Martin | Microsoft Teams", "communication", "chat", "chat"),
    ("teams-for-linux", "Meeting in Data Team | Microsoft Teams", "communication", "meeting",
     "meeting"),
    ("zoom", "Zoom Meeting", "communication", "meeting", "meeting"),
    ("telegram-desktop", "Telegram", "communication", "chat", "chat_private"),
    ("thunderbird", "Inbox - work@acme.example - Mozilla Thunderbird", "communication", "mail",
     "mail"),
    ("thunderbird", "Write: Re: Weekly report - Mozilla Thunderbird", "communication", "mail",
     "mail"),
    ("soffice.bin", "Q4 metrics.ods - LibreOffice Calc", "productivity", "doc", "docs"),
    ("soffice.bin", "Design review.odt - LibreOffice Writer", "productivity", "doc", "docs"),
    ("soffice.bin", "All hands.odp - LibreOffice Impress", "productivity", "doc", "docs"),
    ("obsidian", "Daily note 2026-11 - notes - Obsidian v1.7.7", "productivity", "doc", "docs"),
    ("obsidian", "Pipeline design - notes - Obsidian v1.7.7", "productivity", "doc", "docs"),
    ("evince", "designing-data-intensive-applications.pdf", "productivity", "read", "docs"),
    ("spotify", "Spotify Premium", "entertainment", "music", "music"),
    ("spotify", "Daft Punk - Digital Love", "entertainment", "music", "music"),
    ("nautilus", "Downloads", "other", "misc", "other"),
    ("nautilus", "Home", "other", "misc", "other"),
    ("gnome-control-center", "Settings", "other", "misc", "other"),
    ("keepassxc", "Passwords.kdbx - KeePassXC", "other", "misc", "other"),
)


IDE_TITLE = {"code": "{file} - {project} - Visual Studio Code", "pycharm": "{project} – {file}"}


def _build() -> tuple[Page, ...]:
    pages: list[Page] = []
    for project, files in PROJECTS.items():
        for f in files:
            for app, fmt in IDE_TITLE.items():
                pages.append(Page(app, fmt.format(file=f, project=project), "ide", "code", "ide"))
    for app, suffix in BROWSERS.items():
        for title, cat, act, pool in WEB_PAGES:
            pages.append(Page(app, title + suffix, cat, act, pool))
    for app, title, cat, act, pool in NATIVE_PAGES:
        pages.append(Page(app, title, cat, act, pool))
    seen = set()
    for p in pages:
        assert p.category in CATEGORIES and p.activity in ACTIVITIES, p
        assert (p.app, p.title) not in seen, p
        assert len(p.app.encode()) <= 32, p
        seen.add((p.app, p.title))
    return tuple(pages)


CATALOG: tuple[Page, ...] = _build()
APP_NAMES: tuple[str, ...] = tuple(sorted({p.app for p in CATALOG}))
APP_INDEX = {a: i for i, a in enumerate(APP_NAMES)}


def pages_for(pool: str, apps: set[str] | frozenset[str]) -> list[int]:
    """Catalog indices of a pool's pages available with the given apps installed."""
    return [i for i, p in enumerate(CATALOG) if p.pool == pool and p.app in apps]


def ide_pages(app: str, project: str) -> list[int]:
    """Catalog indices of one IDE's windows on one project's files."""
    titles = {IDE_TITLE[app].format(file=f, project=project) for f in PROJECTS[project]}
    return [i for i, p in enumerate(CATALOG) if p.app == app and p.title in titles]
