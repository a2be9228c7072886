"""Drafts the written expectations in expected/<format>/ for formats no maintained reader covers
(schema.org JSON-LD, OpenActive RPDE, Open Referral UK, The Events Calendar), by the formats' own
rules and independently of tributary. The drafts are then read against each input and corrected by
hand; run it only for new corpus files (`--missing`), never over reviewed expectations.

What counts, by format (the rules the expectations follow):
- JSON-LD: every node of a schema.org Event type (or subtype) with a name and a startDate, found at
  the top of a block, in @graph, in an ItemList's items, or under an Organization's `event`/`events`;
  every top-level (or @graph / ItemList) node of an Organization type with a name. Nodes nested as
  another node's property (a performer, an organizer, a location) are not records of the page.
  Schema.org microdata and RDFa Lite items count by the same rules (a top-level item is one that
  is no other item's property); this script drafts from JSON-LD only, so write those by hand.
- RPDE: every `updated` item whose data is a SessionSeries, ScheduledSession, Event, HeadlineEvent,
  EventSeries, CourseInstance, Course or (modelling spec 1.0) Session with a name (its own, its
  superEvent's, or its container's) and a start (its startDate, or its eventSchedule's first
  occurrence); an item with embedded subEvents is expected as those sessions, not as itself.
  FacilityUse, Slot and Place items describe bookable facilities, not events: none expected.
- ORUK: every organisation of organizations.json, and every organisation a service embeds, by id.
- wp-events: every event of the page with a title and start_date (local time in its timezone).
"""

import argparse
import json
import re
import sys
from datetime import date, datetime, timedelta
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent.parent / "shared" / "corpus"

EVENT_TYPES = {
    "Event", "BusinessEvent", "ChildrensEvent", "ComedyEvent", "CourseInstance", "DanceEvent",
    "DeliveryEvent", "EducationEvent", "EventSeries", "ExhibitionEvent", "Festival", "FoodEvent",
    "Hackathon", "LiteraryEvent", "MusicEvent", "PublicationEvent", "BroadcastEvent",
    "OnDemandEvent", "SaleEvent", "ScreeningEvent", "SocialEvent", "SportsEvent", "TheaterEvent",
    "VisualArtsEvent", "SessionSeries", "ScheduledSession", "HeadlineEvent",
}
ORG_TYPES = {
    "Organization", "NGO", "Corporation", "LocalBusiness", "SportsTeam", "SportsOrganization",
    "EducationalOrganization", "GovernmentOrganization", "MedicalOrganization", "PerformingGroup",
    "MusicGroup", "TheaterGroup", "DanceGroup", "Project", "FundingScheme", "NewsMediaOrganization",
    "LibrarySystem", "Consortium", "CollegeOrUniversity", "School", "Airline", "OnlineBusiness",
    "ResearchOrganization", "WorkersUnion", "PoliticalParty", "Cooperative", "SearchRescueOrganization",
}


def types_of(node):
    # OpenActive's older modelling spec (1.0) writes `type`, schema.org JSON-LD `@type`.
    t = node.get("@type", node.get("type", []))
    t = t if isinstance(t, list) else [t]
    return {str(x).rsplit("/", 1)[-1].rsplit(":", 1)[-1] for x in t}


def iso_start(s):
    """A schema.org/ISO 8601 start as RFC 3339 (or a date), read as its author meant it:
    `+0100` is `+01:00`, OutSavvy's `T12:30:00:00+01:00` is 12:30:00 at +01:00."""
    if not isinstance(s, str):
        return None
    s = s.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        return s
    m = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?(?::\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?", s
    )
    if not m:
        return None
    day, hm, sec, _, off = m.groups()
    out = "%sT%s%s" % (day, hm, sec or ":00")
    if off:
        out += "+00:00" if off == "Z" else off[:3] + ":" + off[-2:]
    return out


# ------------------------------------------------------------------ JSON-LD


def jsonld_blocks(html):
    for m in re.finditer(
        r"<script[^>]*type=[\"']application/ld\+json[\"'][^>]*>(.*?)</script>", html, re.S | re.I
    ):
        try:
            yield json.loads(m.group(1), strict=False)
        except ValueError:
            continue


def jsonld_nodes(doc):
    """The record-level nodes of one block: its top, @graph, ItemList items, an org's events."""
    stack = doc if isinstance(doc, list) else [doc]
    for node in stack:
        if not isinstance(node, dict):
            continue
        if "@graph" in node:
            yield from jsonld_nodes(node["@graph"])
            continue
        yield node
        if "ItemList" in types_of(node):
            for el in node.get("itemListElement", []) or []:
                if isinstance(el, dict):
                    item = el.get("item", el)
                    if isinstance(item, dict) and item is not el or "ListItem" not in types_of(el):
                        yield from jsonld_nodes(item)
        if types_of(node) & ORG_TYPES:
            for k in ("event", "events"):
                ev = node.get(k)
                for e in ev if isinstance(ev, list) else [ev]:
                    if isinstance(e, dict) and types_of(e) & EVENT_TYPES:
                        yield e


def draft_jsonld(path):
    html = path.read_text("utf-8", "replace")
    events, orgs = [], []
    for doc in jsonld_blocks(html):
        for n in jsonld_nodes(doc):
            t = types_of(n)
            name = n.get("name")
            name = name[0] if isinstance(name, list) and name else name
            if t & EVENT_TYPES and isinstance(name, str) and iso_start(n.get("startDate")):
                events.append({"title": unescape(name).strip(), "start": iso_start(n["startDate"])})
            elif t & ORG_TYPES and isinstance(name, str) and name.strip():
                orgs.append({"name": unescape(name).strip()})
    return {"events": events, "organisations": orgs}


# ------------------------------------------------------------------ RPDE

RPDE_EVENTS = {"SessionSeries", "ScheduledSession", "Event", "HeadlineEvent", "EventSeries",
               "CourseInstance", "Course", "Session"}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def schedule_start(sched):
    """The first occurrence of an OpenActive eventSchedule, in its scheduleTimezone."""
    if not isinstance(sched, dict) or not sched.get("startDate") or not sched.get("startTime"):
        return None
    try:
        d = date.fromisoformat(sched["startDate"][:10])
        hh, mm = (int(x) for x in sched["startTime"].split(":")[:2])
    except ValueError:
        return None
    days = [DAYS.index(x.rsplit("/", 1)[-1]) for x in sched.get("byDay", []) or []
            if x.rsplit("/", 1)[-1] in DAYS]
    for _ in range(7):
        if not days or d.weekday() in days:
            break
        d += timedelta(days=1)
    t = datetime(d.year, d.month, d.day, hh, mm)
    tz = sched.get("scheduleTimezone")
    if tz:
        t = t.replace(tzinfo=ZoneInfo(tz))
        return t.isoformat()
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def rpde_event(data, parent_name=None):
    t = types_of(data)
    if not t & RPDE_EVENTS:
        return None
    sup = data.get("superEvent")
    name = data.get("name") or (sup.get("name") if isinstance(sup, dict) else None) or parent_name
    start = iso_start(data.get("startDate"))
    if not start:
        sched = data.get("eventSchedule")
        sched = sched[0] if isinstance(sched, list) and sched else sched
        start = schedule_start(sched)
    if not isinstance(name, str) or not start:
        return None
    return {"title": unescape(name).strip(), "start": start}


def draft_rpde(path):
    doc = json.loads(path.read_text())
    events = []
    for item in doc.get("items", []):
        data = item.get("data")
        if item.get("state") != "updated" or not isinstance(data, dict):
            continue
        subs = data.get("subEvent") or []
        subs = [x for x in (subs if isinstance(subs, list) else [subs]) if isinstance(x, dict)]
        found = [e for e in (rpde_event(x, data.get("name")) for x in subs) if e]
        # A container with sessions is listed as its sessions; without, as itself.
        events += found or [e for e in [rpde_event(data)] if e]
    return {"events": events}


# ------------------------------------------------------------------ ORUK, wp-events


def draft_oruk(folder):
    orgs = {}
    org_file = folder / "organizations.json"
    if org_file.exists():
        for o in json.loads(org_file.read_text()).get("contents", []):
            if o.get("name"):
                orgs[o.get("id") or o["name"]] = o["name"]
    for s in json.loads((folder / "services.json").read_text()).get("contents", []):
        o = s.get("organization")
        if isinstance(o, dict) and o.get("name"):
            orgs.setdefault(o.get("id") or o["name"], o["name"])
    return {"organisations": [{"name": n} for n in orgs.values()]}


def draft_wp(path):
    doc = json.loads(path.read_text())
    events = []
    for e in doc.get("events", []):
        if not e.get("title") or not e.get("start_date"):
            continue
        tz = e.get("timezone")
        if e.get("all_day"):
            start = e["start_date"][:10]
        else:
            t = datetime.fromisoformat(e["start_date"].replace(" ", "T"))
            try:
                start = t.replace(tzinfo=ZoneInfo(tz)).isoformat()
            except (ValueError, KeyError, ZoneInfoNotFoundError):
                # Not an IANA name (TEC also writes "UTC+0"): start_date in UTC then.
                start = (e.get("utc_start_date") or "").replace(" ", "T") + "+00:00"
        events.append({"title": unescape(unescape(e["title"])).strip(), "start": start})
    return {"events": events}


DRAFTS = {"jsonld": draft_jsonld, "rpde": draft_rpde, "oruk": draft_oruk, "wp-events": draft_wp}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--missing", action="store_true", help="only files without an expectation")
    ap.add_argument("--print", action="store_true", help="print, do not write")
    a = ap.parse_args()
    for fmt, draft in DRAFTS.items():
        d = CORPUS / fmt
        for p in sorted(d.iterdir()):
            out = HERE / "expected" / fmt / (p.name + ".json")
            if a.missing and out.exists():
                continue
            exp = draft(p)
            exp["source"] = "../shared/corpus/%s/%s" % (fmt, p.name)
            if a.print:
                print(out.name, json.dumps(exp, ensure_ascii=False))
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(exp, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
