"""The report's HTML page: one self-contained file (inline CSS, no script, no fonts or images
from anywhere but its own folder; a Content-Security-Policy forbids any other fetch).

Every number on the page is an element ``<span class="num" data-key="<path in report.json>"
data-value="<raw value>">formatted</span>``, so a reader (or a test) can trace each one back to
report.json and from there to its gold table.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from html import escape

from focuslake.reports import fmt

CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;background:#f6f7f9;
color:#1d2330}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:0 0 4px}h2{font-size:1.2rem;margin:28px 0 8px}
.meta{color:#5b6475;font-size:.9rem;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:10px 12px}
.card .label{font-size:.8rem;color:#5b6475}.card .value{font-size:1.35rem;font-weight:600}
.card .sub{font-size:.8rem;color:#5b6475}
table{border-collapse:collapse;background:#fff;border:1px solid #dde1e8;font-size:.9rem}
th,td{padding:5px 10px;border-bottom:1px solid #eceff3;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f0f2f5}
.up{color:#0a7d38}.down{color:#b3261e}.num{white-space:nowrap}
figure{background:#fff;border:1px solid #dde1e8;border-radius:8px;margin:14px 0;padding:10px}
figure img{max-width:100%;height:auto;display:block}figcaption{font-size:.85rem;color:#444;margin-top:6px}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:6px;vertical-align:middle}
details{margin:10px 0}summary{cursor:pointer;font-weight:600}
footer{color:#5b6475;font-size:.8rem;margin-top:30px}
"""
COMPARE_LABELS = {"active_seconds": "Active time", "focused_seconds": "Focused time",
                  "focus_score_avg": "Average focus score", "context_switches": "Context switches"}
# which direction is good, for colouring the change (context switches: fewer is better)
BETTER_UP = {"active_seconds": True, "focused_seconds": True, "focus_score_avg": True, "context_switches": False}


def num(key: str, value, text: str | None = None) -> str:
    """A number on the page, traceable to ``key`` in report.json."""
    shown = fmt.metric(key.rsplit(".", 1)[-1], value) if text is None else text
    raw = "" if value is None else json.dumps(value)
    return f'<span class="num" data-key="{escape(key)}" data-value="{escape(raw)}">{escape(shown)}</span>'


def _card(label: str, body: str, sub: str = "") -> str:
    return (f'<div class="card"><div class="label">{escape(label)}</div><div class="value">{body}</div>'
            + (f'<div class="sub">{sub}</div>' if sub else "") + "</div>")


def _summary(r: dict) -> str:
    s = r["summary"]
    k = "summary."
    cards = [
        _card("Active time", num(k + "active_seconds", s["active_seconds"])),
        _card("Focused time", num(k + "focused_seconds", s["focused_seconds"]),
              num(k + "focused_share", s["focused_share"]) + " of active time"),
        _card("Average focus score", num(k + "focus_score_avg", s["focus_score_avg"]),
              "windows from " + num(k + "focus_score_min", s["focus_score_min"]) + " to "
              + num(k + "focus_score_max", s["focus_score_max"])),
        _card("Context switches", num(k + "context_switches", s["context_switches"])),
        _card("Longest focus streak", num(k + "longest_focus_streak_minutes", s["longest_focus_streak_minutes"])),
        _card("Sessions / breaks", num(k + "sessions", s["sessions"]) + " / " + num(k + "breaks", s["breaks"]),
              "longest session " + num(k + "longest_session_minutes", s["longest_session_minutes"])),
        _card("Keystrokes", num(k + "keystrokes", s["keystrokes"])),
        _card("Clicks", num(k + "clicks", s["clicks"])),
        _card("Hours with activity", num(k + "active_hours", s["active_hours"])),
    ]
    return '<div class="cards">' + "".join(cards) + "</div>"


def _comparison(r: dict) -> str:
    prev, cur = r["previous_period"], r["period"]
    rows = []
    for m, label in COMPARE_LABELS.items():
        ch = r["comparison"][m]
        d = ch["delta"]
        cls = "" if not d else ("up" if (d > 0) == BETTER_UP[m] else "down")
        key = f"comparison.{m}."
        delta_text = fmt.delta(m, ch)
        rows.append(f"<tr><td>{escape(label)}</td><td>{num(key + 'previous', ch['previous'], fmt.metric(m, ch['previous']))}"
                    f"</td><td>{num(key + 'current', ch['current'], fmt.metric(m, ch['current']))}</td>"
                    f'<td class="{cls}">{num(key + "delta", d, delta_text)}</td></tr>')
    note = "" if prev["has_data"] else f"<p>No data for {escape(prev['title'])} in the warehouse.</p>"
    return (f"<table><thead><tr><th>metric</th><th>previous: {escape(prev['title'])}</th>"
            f"<th>this: {escape(cur['title'])}</th><th>change</th></tr></thead><tbody>{''.join(rows)}</tbody>"
            f"</table>{note}")


def _categories(r: dict) -> str:
    from focuslake.reports.charts import color

    meta = {m["category"]: m for m in r["category_meta"]}
    rows = []
    for i, c in enumerate(r["categories"]):
        m = meta.get(c["category"], {})
        rows.append(f'<tr><td><span class="swatch" style="background:{color(c["category"])}"></span>'
                    f"{escape(c['category'])}</td><td>{escape(m.get('productivity_category', ''))}</td>"
                    f"<td>{num(f'categories.{i}.active_seconds', c['active_seconds'])}</td>"
                    f"<td>{num(f'categories.{i}.share', c['share'], fmt.percent(c['share']))}</td></tr>")
    return ("<table><thead><tr><th>category</th><th>group</th><th>active time</th><th>share</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _series_table(r: dict) -> str:
    daily = r["report"] == "daily"
    name, key, first = ("hours", "hour_start", "hour (UTC)") if daily else ("days", "day", "day (UTC)")
    rows = []
    for i, h in enumerate(r[name]):
        if daily:
            t = datetime.fromisoformat(h[key])
            label = f"{t:%H:%M}\u2013{t + timedelta(hours=1):%H:%M}"
        else:
            label = f"{datetime.fromisoformat(h[key]):%a %d %b}"
        cells = "".join(f"<td>{num(f'{name}.{i}.{c}', h[c])}</td>" for c in
                        ("active_seconds", "focused_seconds", "focus_score_avg", "focus_score_min",
                         "focus_score_max", "context_switches"))
        rows.append(f"<tr><td>{escape(label)}</td>{cells}</tr>")
    return (f"<table><thead><tr><th>{first}</th><th>active</th><th>focused</th><th>score avg</th>"
            "<th>score min</th><th>score max</th><th>context switches</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def render(r: dict, charts: list[dict], generated_at: str) -> str:
    kind = "Daily" if r["report"] == "daily" else "Weekly"
    title = f"{kind} focus report \u2014 {r['user_id']} \u2014 {r['period']['title']}"
    src = r["source"]
    published = f", published {escape(src['published_at'])}" if src.get("published_at") else ""
    figures = "".join(
        f'<figure id="{escape(c["file"].removesuffix(".png"))}"><img src="{escape(c["file"])}" '
        f'alt="{escape(c["title"])}" width="{c["width"]}" height="{c["height"]}">'
        f"<figcaption><strong>{escape(c['title'])}.</strong> {escape(c['description'])}</figcaption></figure>"
        for c in charts)
    tl = r["timeline"]
    series = "Per hour" if r["report"] == "daily" else "Per day"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{STYLE}</style>
</head>
<body><main>
<h1>{escape(title)}</h1>
<p class="meta">All times UTC ({escape(r['period']['start'])} to {escape(r['period']['end'])}). From the
published read-only warehouse{published}; generated {escape(generated_at)}. Private: this page holds one
person's activity data; it loads nothing from the network. The numbers are in <code>report.json</code>.</p>
<h2>Summary</h2>
{_summary(r)}
<h2>Compared with the previous {'day' if r['report'] == 'daily' else 'ISO week'}</h2>
{_comparison(r)}
<h2>Charts</h2>
<p class="meta">Timeline: {num('timeline.windows', tl['windows'])} windows of {tl['window_seconds']} s,
{num('timeline.active_windows', tl['active_windows'])} with active time,
{num('timeline.focused_windows', tl['focused_windows'])} focused (score \u2265 {tl['focused_score_min']}).</p>
{figures}
<h2>Category breakdown</h2>
{_categories(r)}
<details open><summary>{series}: the numbers behind the charts</summary>
{_series_table(r)}
</details>
<footer>Definitions (docs/metrics.md): active time = window intervals intersected with not-AFK periods (AFK after
180 s without input); a 30 s window is focused when its focus score is at least {tl['focused_score_min']}, and
focused time is the active time of focused windows; a context switch is a change of app. Sources:
{escape(', '.join(dict.fromkeys(src['tables'])))}.</footer>
</main></body>
</html>
"""
