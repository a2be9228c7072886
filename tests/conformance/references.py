"""Independent reference readers for the conformance harness: what a corpus file holds, read by
maintained third-party libraries (icalendar + recurring-ical-events, feedparser) or, where no reader
exists, by the written expectations in expected/. Nothing here looks at tributary's output."""

import json
import warnings
import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from html import unescape
from pathlib import Path

import feedparser
import icalendar
import recurring_ical_events

# The occurrence window both sides are expanded over, and the most occurrences kept per series
# (a FREQ=SECONDLY series must not make the judge itself unbounded).
WINDOW_START = datetime(2000, 1, 1, tzinfo=timezone.utc)
WINDOW_END = datetime(2031, 1, 1, tzinfo=timezone.utc)
PER_SERIES_CAP = 500

warnings.filterwarnings("ignore")


def norm_title(s):
    """Titles compared across readers: entities decoded, tags dropped, case and spacing folded."""
    s = unescape(unescape(s or ""))
    s = re.sub(r"<[^>]+>", " ", s)
    s = unicodedata.normalize("NFKC", s)
    return " ".join(s.split()).casefold()


def instant(v):
    """One start or end as a comparable token: `Z…` a UTC instant, `F…` a floating wall-clock time,
    `D…` a calendar date (all-day)."""
    if isinstance(v, datetime):
        if v.tzinfo is None:
            return "F" + v.strftime("%Y-%m-%dT%H:%M:%S")
        return "Z" + v.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(v, date):
        return "D" + v.isoformat()
    return None


def token_utc(tok):
    """A token's position on the time line, for windowing (floating and dates read as UTC)."""
    if tok is None:
        return None
    if tok[0] == "D":
        return datetime.fromisoformat(tok[1:]).replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(tok[1:]).replace(tzinfo=timezone.utc)


def _uid(comp):
    return str(comp.get("UID", "") or "").strip()


def _dt(comp, name):
    p = comp.get(name)
    try:
        return p.dt if p is not None else None
    except Exception:  # noqa: BLE001 - a broken value is no value for the reference either
        return None


def read_calendars(data, strip_x_wr=True):
    """Every VCALENDAR in the bytes, parsed strictly by icalendar; X-WR-TIMEZONE removed so the
    reading is plain RFC 5545 (as a strict client does)."""
    # icalendar keeps the zones of VTIMEZONEs it has read in a process-wide cache, so a custom
    # TZID one file defines would change how the next file in the same worker reads; start every
    # file with the provider's own zones only, so the reference never depends on file order.
    icalendar.timezone.tzp.use(icalendar.timezone.tzp.name)
    cals = icalendar.Calendar.from_ical(data, multiple=True)
    if strip_x_wr:
        for cal in cals:
            if "X-WR-TIMEZONE" in cal:
                del cal["X-WR-TIMEZONE"]
    return cals


def ical_series(cals):
    """Reference events of parsed calendars: one per UID (a master and its RECURRENCE-ID overrides
    are one event), one per UID-less component (keyed by title and start)."""
    series = {}
    for ci, cal in enumerate(cals):
        for comp in cal.walk("VEVENT"):
            uid = _uid(comp)
            start = _dt(comp, "DTSTART")
            title = str(comp.get("SUMMARY", "") or "")
            key = uid or "title+start:%s|%s" % (norm_title(title), instant(start))
            s = series.setdefault(
                key, {"uid": uid, "title": title, "start": instant(start), "cal": ci, "parts": []}
            )
            if comp.get("RECURRENCE-ID") is None:
                s["title"], s["start"] = title, instant(start)
            s["parts"].append(comp)
    return series


def _sub_calendar(cal, parts):
    sub = icalendar.Calendar()
    for k, v in cal.items():
        sub[k] = v
    for tz in cal.walk("VTIMEZONE"):
        sub.add_component(tz)
    for p in parts:
        sub.add_component(p)
    return sub


def expand(cal, parts, raw=False):
    """Occurrences of one series in the window as (start, end) tokens (or, with `raw`, values),
    at most PER_SERIES_CAP, cancelled ones left out. Returns (occurrences, error or None)."""
    sub = _sub_calendar(cal, parts)
    out = []
    try:
        for ev in recurring_ical_events.of(sub).after(WINDOW_START):
            start = _dt(ev, "DTSTART")
            s = instant(start)
            if s is None or token_utc(s) >= WINDOW_END:
                break
            if str(ev.get("STATUS", "")).upper() == "CANCELLED":
                continue
            end = _dt(ev, "DTEND")
            if raw:
                out.append((start, end))
            else:
                e = instant(end) if end is not None else None
                out.append((s, e if e else (one_day_after(s) if s[0] == "D" else s)))
            if len(out) >= PER_SERIES_CAP:
                break
    except Exception as e:  # noqa: BLE001 - the reader's own limits are reported, not fatal
        return out, "%s: %s" % (type(e).__name__, str(e)[:120])
    return out, None


def reference_ical(path):
    data = Path(path).read_bytes()
    try:
        cals = read_calendars(data)
    except Exception as e:  # noqa: BLE001
        return {"reader_error": "%s: %s" % (type(e).__name__, str(e)[:160]), "events": {}}
    series = ical_series(cals)
    events = {}
    errors = []
    for key, s in series.items():
        occ, err = expand(cals[s["cal"]], s["parts"])
        if err:
            errors.append(err)
        events[key] = {
            "uid": s["uid"],
            "title": s["title"],
            "start": s["start"],
            "occurrences": occ,
            "expand_error": err,
        }
    return {"events": events, "reader_error": None, "expand_errors": errors}


_DATE_KEYS = re.compile(r"(^|_)(startdate|dtstart)$")


def reference_rss(path):
    """feedparser's entries; an entry carries an event date when it has a machine-readable start
    (RSS event module `ev:startdate`, xCal or RDF Calendar `dtstart`), whatever prefix the feed
    binds those namespaces to."""
    d = feedparser.parse(Path(path).read_bytes())
    entries = []
    for i, e in enumerate(d.entries):
        dated = any(_DATE_KEYS.search(k) for k in e.keys())
        entries.append(
            {
                "key": e.get("id") or e.get("link") or "entry-%d" % i,
                "id": e.get("id"),
                "link": e.get("link"),
                "title": e.get("title", ""),
                "dated": dated,
            }
        )
    err = None
    if d.bozo and not d.entries:
        err = "%s" % (type(d.get("bozo_exception")).__name__,)
    return {"entries": entries, "reader_error": err, "version": d.get("version", "")}


def reference_expected(expected_dir, fmt, name):
    """The written expectation for a file: expected/<format>/<name>.json."""
    p = Path(expected_dir) / fmt / (name + ".json")
    if not p.exists():
        return None
    return json.loads(p.read_text())


def expected_start(s):
    """A written start (RFC 3339, or a date) as a token comparable with tributary's."""
    if s is None:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        return "D" + s
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return instant(t)


def one_day_after(tok):
    return "D" + (date.fromisoformat(tok[1:]) + timedelta(days=1)).isoformat()
