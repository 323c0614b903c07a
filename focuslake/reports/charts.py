"""The report's charts: PNG files drawn with matplotlib's Agg canvas (no display, no pyplot state).

Each function takes the report dict (focuslake.reports.data.build) and a target path, draws
one chart from numbers already in the report, and returns its description for the page. All
times are UTC and say so on their axis.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from focuslake.reports import fmt

DPI = 110
# Okabe-Ito (colour-blind safe) by category; anything unknown gets a neutral grey.
CATEGORY_COLORS = {
    "ide": "#0072B2", "productivity": "#009E73", "browser": "#56B4E9", "communication": "#E69F00",
    "other": "#8C8C8C", "pseudo_productive": "#CC79A7", "entertainment": "#D55E00",
}
AFK_COLOR = "#D9D9D9"
PREVIOUS_COLOR, CURRENT_COLOR = "#B0B0B0", "#0072B2"
FILES = {"timeline": "timeline.png", "categories": "categories.png", "score": "score_trend.png",
         "switches": "context_switches.png", "comparison": "comparison.png"}


def color(category: str) -> str:
    return CATEGORY_COLORS.get(category, "#5F5F5F")


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=None)  # naive UTC for mdates


def _figure(width: float, height: float, *, left: float = 0.85, right: float = 0.3, top: float = 0.45,
            bottom: float = 0.65, **space) -> Figure:
    """A figure with fixed margins in inches (room for the labels, the title and a legend on the
    right). Fixed margins instead of matplotlib's constrained layout, which draws every figure
    several times to place its texts: a whole report renders about 1.3x faster
    (`python -m focuslake.reports.bench`), and the texts here have bounded lengths."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                        **space)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})


def _who(report: dict) -> str:
    return f"{report['user_id']}, {report['period']['title']}"


def _ordered_categories(report: dict, present: set[str]) -> list[str]:
    order = [m["category"] for m in report["category_meta"]]
    return [c for c in order if c in present] + sorted(present - set(order))


def _category_label(report: dict, category: str) -> str:
    meta = {m["category"]: m for m in report["category_meta"]}.get(category)
    return f"{category} ({meta['productivity_category']})" if meta else category


def _hour_axis(ax, lo: datetime, hi: datetime, label: str = "time of day (UTC)") -> None:
    ax.set_xlim(mdates.date2num(lo), mdates.date2num(hi))
    span_h = (hi - lo).total_seconds() / 3600
    ax.xaxis.set_major_locator(mdates.HourLocator(interval=1 if span_h <= 14 else 2))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_xlabel(label)


def _active_span(starts: list[datetime], day0: datetime, window_s: int) -> tuple[datetime, datetime]:
    """Whole hours around the day's windows (the full day when there are none)."""
    if not starts:
        return day0, day0 + timedelta(days=1)
    lo = min(starts).replace(minute=0, second=0, microsecond=0)
    hi = (max(starts) + timedelta(seconds=window_s)).replace(minute=0, second=0, microsecond=0)
    if hi < max(starts) + timedelta(seconds=window_s):
        hi += timedelta(hours=1)
    return max(lo, day0), min(hi, day0 + timedelta(days=1))


# --- timeline ---------------------------------------------------------------------------------
def timeline(report: dict, path: Path) -> dict:
    tl = report["timeline"]
    cols = {c: i for i, c in enumerate(tl["columns"])}
    rows = tl["rows"]
    window_s, threshold = tl["window_seconds"], tl["focused_score_min"]
    width = window_s / 86400  # matplotlib date units are days
    present = {r[cols["category"]] for r in rows if r[cols["active_seconds"]] > 0}
    cats = _ordered_categories(report, present)
    handles = [Patch(color=color(c), label=_category_label(report, c)) for c in cats]
    handles.append(Patch(color=AFK_COLOR, label="no active time (AFK)"))
    day0 = _ts(report["period"]["start"])
    if report["report"] == "daily":
        _timeline_day(report, path, rows, cols, width, threshold, window_s, handles, day0)
        what = (f"Every {window_s}-second window of the day in which a window was focused on an unlocked screen "
                f"(gold.gld_focus_scores): bar height = focus score (0-100), colour = category of the focused app, "
                f"grey = no active time in the window (away from keyboard). Dashed line: the focused threshold "
                f"({threshold}); the strip below marks focused windows. Times are UTC.")
    else:
        _timeline_week(report, path, rows, cols, width, threshold, window_s, handles, day0)
        what = (f"One row per day (UTC) of the week: each {window_s}-second window with a focused app "
                f"(gold.gld_focus_scores), coloured by category; faded = score below {threshold} (not focused), "
                "grey = no active time (away from keyboard). Gaps are time with no focused window "
                "(screen locked, machine off, no activity).")
    return {"file": path.name, "title": "Focus timeline", "description": what}


def _timeline_day(report, path, rows, cols, width, threshold, window_s, handles, day0) -> None:
    starts = [_ts(r[cols["window_start"]]) for r in rows]
    lo, hi = _active_span(starts, day0, window_s)
    fig = _figure(13, 5.2, right=3.0, hspace=0.08)
    ax, strip = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [5, 0.6]})
    x = mdates.date2num(starts) if starts else []
    colors = [color(r[cols["category"]]) if r[cols["active_seconds"]] > 0 else AFK_COLOR for r in rows]
    # one polygon per window in one collection (a Rectangle artist per bar is ~10x slower to draw)
    verts = [[(x0, 0), (x0, r[cols["focus_score"]]), (x0 + width, r[cols["focus_score"]]), (x0 + width, 0)]
             for x0, r in zip(x, rows)]
    ax.add_collection(PolyCollection(verts, facecolors=colors, edgecolors="none", linewidths=0))
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1)
    handles = [*handles, Line2D([], [], color="black", linestyle="--", linewidth=1,
                                label=f"focused threshold ({threshold})")]
    ax.set_ylim(0, 105)
    ax.set_ylabel("focus score (0\u2013100)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False, fontsize=9,
              title="category (seed 003 group)", title_fontsize=9)
    focused = [(mdates.date2num(_ts(r[cols["window_start"]])), width) for r in rows if r[cols["is_focused"]]]
    strip.broken_barh(focused, (0, 1), color="#222222")
    strip.set_ylim(0, 1)
    strip.set_yticks([0.5], ["focused"])
    strip.tick_params(axis="y", length=0)
    _hour_axis(strip, lo, hi)
    tl = report["timeline"]
    ax.set_title(f"Focus timeline \u2014 {_who(report)} \u2014 {tl['windows']:,} windows of {window_s} s, "
                 f"{tl['focused_windows']:,} focused", loc="left", fontsize=12)
    _save(fig, path)


def _timeline_week(report, path, rows, cols, width, threshold, window_s, handles, day0) -> None:
    fig = _figure(13, 5.0, left=1.15, right=3.0)
    ax = fig.subplots()
    days = [day0 + timedelta(days=i) for i in range(7)]
    by_day: dict[int, list] = {i: [] for i in range(7)}
    for r in rows:
        t = _ts(r[cols["window_start"]])
        by_day[(t - day0).days].append((t, r))
    all_times = [t - timedelta(days=(t - day0).days) for i in by_day for t, _ in by_day[i]]
    lo, hi = _active_span(all_times, day0, window_s)
    for i, d in enumerate(days):
        y = 6 - i  # Monday on top
        for focused_state in (False, True):
            segs_by_color: dict[str, list] = {}
            for t, r in by_day[i]:
                if bool(r[cols["is_focused"]]) != focused_state:
                    continue
                c = color(r[cols["category"]]) if r[cols["active_seconds"]] > 0 else AFK_COLOR
                segs_by_color.setdefault(c, []).append((mdates.date2num(t - timedelta(days=i)), width))
            for c, segs in segs_by_color.items():
                ax.broken_barh(segs, (y - 0.38, 0.76), color=c, alpha=1.0 if focused_state else 0.35, linewidth=0)
        if not by_day[i]:
            ax.text(0.5, y, "no data", transform=ax.get_yaxis_transform(), ha="center", va="center",
                    color="#777777", fontsize=9)
    ax.set_yticks([6 - i for i in range(7)], [f"{d:%a %d %b}" for d in days])
    ax.set_ylim(-0.6, 6.6)
    ax.grid(axis="x", alpha=0.3)
    _hour_axis(ax, lo, hi)
    handles = [*handles, Patch(color="#555555", alpha=0.35, label=f"faded: score < {threshold} (not focused)")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False, fontsize=9,
              title="category (seed 003 group)", title_fontsize=9)
    tl = report["timeline"]
    ax.set_title(f"Focus timeline \u2014 {_who(report)} \u2014 {tl['windows']:,} windows of {window_s} s, "
                 f"{tl['focused_windows']:,} focused", loc="left", fontsize=12)
    _save(fig, path)


# --- categories --------------------------------------------------------------------------------
def categories(report: dict, path: Path) -> dict:
    cats = report["categories"]
    if report["report"] == "daily":
        fig = _figure(10, 0.55 * max(len(cats), 3) + 1.6, left=2.45)
        ax = fig.subplots()
        names = [c["category"] for c in cats][::-1]
        hours = [c["active_seconds"] / 3600 for c in cats][::-1]
        bars = ax.barh([_category_label(report, n) for n in names], hours, color=[color(n) for n in names])
        for b, c in zip(bars, cats[::-1]):
            ax.text(b.get_width(), b.get_y() + b.get_height() / 2,
                    f"  {fmt.duration(c['active_seconds'])} ({fmt.percent(c['share'])})", va="center", fontsize=9)
        ax.set_xlim(0, max(hours, default=1) * 1.3)
        ax.set_xlabel("active time (hours)")
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(f"Active time per category \u2014 {_who(report)} \u2014 total "
                     f"{fmt.duration(sum(c['active_seconds'] for c in cats))}", loc="left", fontsize=12)
        what = ("Active time (window intervals intersected with not-AFK periods) per category of the focused app, "
                "from gold.gld_user_category_daily; share = part of the day's categorised active time.")
    else:
        fig = _figure(11, 4.8, left=1.15, right=2.75)
        ax = fig.subplots()
        day0 = _ts(report["period"]["start"]).date()
        days = [day0 + timedelta(days=i) for i in range(7)]
        present = {r["category"] for r in report["categories_by_day"]}
        seconds = {(r["day"], r["category"]): r["active_seconds"] for r in report["categories_by_day"]}
        ys = [6 - i for i in range(7)]
        left = [0.0] * 7
        for cat in _ordered_categories(report, present):
            widths = [seconds.get((d.isoformat(), cat), 0.0) / 3600 for d in days]
            ax.barh(ys, widths, left=left, color=color(cat), label=_category_label(report, cat), height=0.7)
            left = [a + b for a, b in zip(left, widths)]
        for y, total in zip(ys, left):
            ax.text(total, y, f"  {fmt.duration(total * 3600)}" if total else "  no data", va="center", fontsize=9)
        ax.set_yticks(ys, [f"{d:%a %d %b}" for d in days])
        ax.set_xlim(0, max(left, default=1) * 1.22 or 1)
        ax.set_xlabel("active time (hours)")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False, fontsize=9,
                  title="category (seed 003 group)", title_fontsize=9)
        ax.set_title(f"Active time per category and day \u2014 {_who(report)} \u2014 week total "
                     f"{fmt.duration(sum(c['active_seconds'] for c in cats))}", loc="left", fontsize=12)
        what = ("Active time per day (UTC) and category of the focused app, stacked (gold.gld_user_category_daily); "
                "the week's totals per category are in the table below.")
    _save(fig, path)
    return {"file": path.name, "title": "Category breakdown", "description": what}


# --- focus score trend -------------------------------------------------------------------------
def score_trend(report: dict, path: Path) -> dict:
    threshold = report["timeline"]["focused_score_min"]
    tl = report["timeline"]
    cols = {c: i for i, c in enumerate(tl["columns"])}
    active = [r for r in tl["rows"] if r[cols["active_seconds"]] > 0]  # gold's statistics use these windows
    fig = _figure(11, 4.4, bottom=0.85)
    ax = fig.subplots()
    nan = float("nan")
    if report["report"] == "daily":
        day0 = _ts(report["period"]["start"])
        starts = [_ts(r["hour_start"]) for r in report["hours"]]
        lo, hi = _active_span(starts, day0, 3600) if starts else (day0, day0 + timedelta(days=1))
        by_hour = {_ts(r["hour_start"]): r["focus_score_avg"] for r in report["hours"]}
        slots = [lo + timedelta(hours=i) for i in range(int((hi - lo).total_seconds() // 3600))]
        x = [mdates.date2num(t + timedelta(minutes=30)) for t in slots]
        avg = [nan if by_hour.get(t) is None else by_hour[t] for t in slots]  # gaps: hours without windows
        ax.scatter([mdates.date2num(_ts(r[cols["window_start"]]) + timedelta(seconds=tl["window_seconds"] / 2))
                    for r in active], [r[cols["focus_score"]] for r in active], s=4, color="#7A7A7A", alpha=0.25,
                   linewidths=0, label=f"one {tl['window_seconds']} s window (with active time)")
        _hour_axis(ax, lo, hi, "hour of day (UTC); line points: the hour's average, at mid-hour")
        label, source, unit = "hourly", "gold.gld_user_hourly", "hour"
        dots = f"grey dots: each {tl['window_seconds']}-second window's score (gold.gld_focus_scores)"
    else:
        day0 = _ts(report["period"]["start"])
        by_day = {r["day"]: r["focus_score_avg"] for r in report["days"]}
        x = list(range(7))
        avg = [nan if by_day.get((day0 + timedelta(days=i)).date().isoformat()) is None
               else by_day[(day0 + timedelta(days=i)).date().isoformat()] for i in x]
        hx, hy = [], []
        for r in report["hours"]:  # each hour's average inside its day's slot, 00:00 left to 24:00 right
            if r["focus_score_avg"] is None:
                continue
            t = _ts(r["hour_start"])
            hx.append((t - day0).days - 0.4 + 0.8 * (t.hour + 0.5) / 24)
            hy.append(r["focus_score_avg"])
        ax.scatter(hx, hy, s=14, color="#7A7A7A", alpha=0.6, linewidths=0,
                   label="one hour's average (00-24 UTC, left to right within the day)")
        ax.set_xticks(x, [f"{day0 + timedelta(days=i):%a\n%d %b}" for i in x])
        ax.set_xlim(-0.5, 6.5)
        ax.set_xlabel("day (UTC)")
        label, source, unit = "daily", "gold.gld_user_daily", "day"
        dots = "grey dots: the average of each hour of the day (gold.gld_user_hourly)"
    ax.plot(x, avg, marker="o", color=CURRENT_COLOR, linewidth=2.2, label=f"average focus score ({label})")
    for xi, v in zip(x, avg):
        if not math.isnan(v):
            ax.annotate(fmt.score(v), (xi, v), textcoords="offset points", xytext=(0, 9), ha="center",
                        fontsize=8, color=CURRENT_COLOR, fontweight="bold",
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"focused threshold ({threshold})")
    ax.set_ylim(0, 105)
    ax.set_ylabel("focus score (0\u2013100)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8.5, framealpha=0.9)
    ax.set_title(f"Focus score trend ({label}) \u2014 {_who(report)} \u2014 period average "
                 f"{fmt.score(report['summary']['focus_score_avg'])}", loc="left", fontsize=12)
    what = (f"Blue line: the average focus score per {unit} over the windows with active time ({source}); "
            f"{dots}; dashed line: the focused threshold ({threshold}). No point: no window that {unit}.")
    _save(fig, path)
    return {"file": path.name, "title": "Focus score trend", "description": what}


# --- context switches --------------------------------------------------------------------------
def context_switches(report: dict, path: Path) -> dict:
    total = report["summary"]["context_switches"]
    if report["report"] == "daily":
        fig = _figure(11, 4.0)
        ax = fig.subplots()
        hours = report["hours"]
        starts = [_ts(r["hour_start"]) for r in hours]
        x = [mdates.date2num(t) for t in starts]
        bars = ax.bar(x, [r["context_switches"] for r in hours], width=1 / 24 * 0.85, align="edge",
                      color="#E69F00")
        for b, r in zip(bars, hours):
            ax.text(b.get_x() + b.get_width() / 2, b.get_height(), str(r["context_switches"]), ha="center",
                    va="bottom", fontsize=8)
        day0 = _ts(report["period"]["start"])
        lo, hi = _active_span(starts, day0, 3600) if starts else (day0, day0 + timedelta(days=1))
        _hour_axis(ax, lo, hi, "hour of day (UTC)")
        ax.set_ylabel("context switches (app changes)")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, max([r["context_switches"] for r in hours], default=1) * 1.18 + 1)
        ax.grid(axis="y", alpha=0.3)
        what = ("Context switches per UTC hour (gold.gld_user_hourly): window intervals whose app differs from the "
                "previous interval's app, counted in the hour the new one starts; a title change within one app "
                "is not a switch.")
    else:
        import numpy as np

        day0 = _ts(report["period"]["start"])
        grid = np.full((7, 24), np.nan)
        for r in report["hours"]:
            t = _ts(r["hour_start"])
            grid[(t - day0).days, t.hour] = r["context_switches"]
        used = [h for h in range(24) if not np.all(np.isnan(grid[:, h]))]
        h0, h1 = (min(used), max(used) + 1) if used else (0, 24)
        sub = grid[:, h0:h1]
        fig = _figure(13, 4.6, left=1.15, right=0.2)
        ax = fig.subplots()
        im = ax.imshow(np.ma.masked_invalid(sub), aspect="auto", cmap="Oranges",
                       extent=(h0, h1, 6.5, -0.5), vmin=0)
        for i in range(7):
            for j, h in enumerate(range(h0, h1)):
                v = sub[i, j]
                if not np.isnan(v):
                    ax.text(h + 0.5, i, f"{int(v)}", ha="center", va="center", fontsize=8,
                            color="white" if v > np.nanmax(sub) * 0.6 else "black")
        ax.set_xticks(range(h0, h1 + 1), [f"{h:02d}:00" for h in range(h0, h1 + 1)], fontsize=8)
        ax.set_yticks(range(7), [f"{(day0 + timedelta(days=i)):%a %d %b}" for i in range(7)])
        ax.set_xlabel("hour of day (UTC); blank = no activity that hour")
        cb = fig.colorbar(im, ax=ax, pad=0.01)
        cb.set_label("context switches in the hour")
        what = ("Context switches (app changes) per day and UTC hour (gold.gld_user_hourly); the number in each "
                "cell is that hour's count, blank cells had no activity.")
    ax.set_title(f"Context switches per hour \u2014 {_who(report)} \u2014 total {fmt.count(total)}",
                 loc="left", fontsize=12)
    _save(fig, path)
    return {"file": path.name, "title": "Context switches per hour", "description": what}


# --- comparison with the previous period ---------------------------------------------------------
COMPARISON_PANELS = (("active_seconds", "active time", 3600, "hours"),
                     ("focused_seconds", "focused time", 3600, "hours"),
                     ("focus_score_avg", "average focus score", 1, "score (0\u2013100)"),
                     ("context_switches", "context switches", 1, "count"))


def comparison(report: dict, path: Path) -> dict:
    prev_label, cur_label = report["previous_period"]["label"], report["period"]["label"]
    fig = _figure(12, 3.8, left=0.7, right=0.15, top=0.85, bottom=0.7, wspace=0.42)
    axes = fig.subplots(1, 4)
    for ax, (m, title, scale, unit) in zip(axes, COMPARISON_PANELS):
        ch = report["comparison"][m]
        vals = [ch["previous"], ch["current"]]
        heights = [0 if v is None else v / scale for v in vals]
        bars = ax.bar([0, 1], heights, color=[PREVIOUS_COLOR, CURRENT_COLOR], width=0.6)
        for b, v in zip(bars, vals):
            ax.text(b.get_x() + b.get_width() / 2, b.get_height(), fmt.metric(m, v), ha="center", va="bottom",
                    fontsize=9)
        ax.set_xticks([0, 1], [f"previous\n{prev_label}", f"this\n{cur_label}"], fontsize=9)
        ax.set_ylim(0, max(heights + [1e-9]) * 1.25 if m != "focus_score_avg" else 105)
        ax.set_ylabel(unit)
        ax.set_title(f"{title}\n{fmt.delta(m, ch)}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    period = "day" if report["report"] == "daily" else "ISO week"
    fig.suptitle(f"This {period} vs the previous one \u2014 {_who(report)}", x=0.01, ha="left", fontsize=12)
    _save(fig, path)
    what = (f"This {period} next to the previous {period} ({report['previous_period']['title']}): active time, "
            "focused time, average focus score and context switches, with the change (absolute and relative).")
    if not report["previous_period"]["has_data"]:
        what += f" The previous {period} has no data in the warehouse."
    return {"file": path.name, "title": f"Compared with the previous {period}", "description": what}


CHARTS = (("timeline", timeline), ("categories", categories), ("score", score_trend),
          ("switches", context_switches), ("comparison", comparison))


def draw_all(report: dict, folder: Path) -> list[dict]:
    """Every chart of the report into ``folder``; returns their descriptions in page order."""
    return [fn(report, folder / FILES[key]) for key, fn in CHARTS]
