"""Conformance harness: runs every corpus file through the real `tributary` binary (one partner per
file, its own store and config, paged formats served by a real HTTP server on 127.0.0.1), reads the
result back from the daemon's /v1/events, /v1/feeds/events, /v1/organisations and /calendar.ics, and
scores it against the independent readers in references.py. Writes docs/conformance.md with
CONFORMANCE_RECORD=1; otherwise fails when a recorded figure drops.

usage: harness.py --bin PATH [--only SUBSTRING] [--jobs N]
"""

import argparse
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
import references as ref  # noqa: E402
import scorecard  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
EXPECTED = HERE / "expected"
SLOW_SECONDS = 1.0
SYNC_TIMEOUT = 60
REQUEST_TIMEOUT = 20
MAX_EVENT_PAGES = 40  # 500 occurrences a page; past this the comparison is cut at the last start
WINDOW = "from=2000-01-01T00:00:00Z&to=2031-01-01T00:00:00Z"


# ---------------------------------------------------------------- the stand-in partner (HTTP)

SITE = {"handler": None}


class Partner(BaseHTTPRequestHandler):
    """Serves whatever the current file's handler answers; one worker process runs one file at a
    time, so one module-level slot is enough."""

    def do_GET(self):  # noqa: N802 - http.server's name
        h = SITE["handler"]
        status, ctype, body = h(self) if h else (404, "text/plain", b"no file")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def start_partner_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Partner)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


CTYPES = {
    "ical": "text/calendar; charset=utf-8",
    "rss": "application/xml",
    "jsonld": "text/html; charset=utf-8",
    "rpde": "application/json",
    "wp-events": "application/json",
    "oruk": "application/json",
}


def site_for(fmt, path, port):
    """The handler standing in for the partner's host, and the feed URL to configure. RPDE's and
    ORUK's recorded pages point at their real hosts or at pages that were not recorded: the stand-in
    is that host, so absolute `next` links are re-pointed at it and unrecorded pages answer as the
    end of the feed (an empty RPDE page, an empty ORUK page)."""
    base = "http://127.0.0.1:%d" % port
    if fmt == "oruk":
        files = {p.stem: p.read_bytes() for p in Path(path).glob("*.json")}

        def oruk(req):
            u = urlsplit(req.path)
            name = u.path.strip("/").split("/")[-1]
            if name not in files:
                return 404, "application/json", b'{"error":"not found"}'
            page = int((parse_qs(u.query).get("page") or ["1"])[0] or 1)
            if page == 1:
                return 200, CTYPES[fmt], files[name]
            doc = json.loads(files[name])
            doc.update({"contents": [], "page_number": page, "empty": True, "first_page": False})
            return 200, CTYPES[fmt], json.dumps(doc).encode()

        return oruk, base + "/"
    body = Path(path).read_bytes()
    if fmt == "rpde":
        doc = json.loads(body)
        nxt = doc.get("next")
        if isinstance(nxt, str) and re.match(r"https?://", nxt):
            u = urlsplit(nxt)
            doc["next"] = base + u.path + ("?" + u.query if u.query else "")
        first = json.dumps(doc).encode()

        def rpde(req):
            if req.path == "/feed":
                return 200, CTYPES[fmt], first
            end = {"next": base + req.path, "items": []}
            return 200, CTYPES[fmt], json.dumps(end).encode()

        return rpde, base + "/feed"
    name = "/" + Path(path).name

    def one(req):
        if urlsplit(req.path).path == name:
            return 200, CTYPES[fmt], body
        return 404, "text/plain", b"not found"

    return one, base + name


# ---------------------------------------------------------------- the daemon under test

KINDS = {
    "ical": ["events"],
    "rss": ["events"],
    "rpde": ["events"],
    "wp-events": ["events"],
    "oruk": ["organisations"],
    "jsonld": ["events", "organisations"],
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(dirpath, fmt, url, port):
    feeds = "".join(
        '\n[[partners.feeds]]\nkind = "%s"\nformat = "%s"\nurl = "%s"\n'
        "rate_limit_per_minute = 6000\nretries = 0\ntimeout_secs = 20\n" % (k, fmt, url)
        for k in KINDS[fmt]
    )
    cfg = (
        '[store]\npath = "store.db"\n\n[server]\nlisten = "127.0.0.1:%d"\n'
        'base_url = "http://127.0.0.1:%d"\n\n[admin]\ntoken_env = "TRIBUTARY_ADMIN_TOKEN"\n\n'
        '[[partners]]\nid = "corpus"\nname = "Corpus file"\nschedule = "0 0 0 1 1 *"\n'
        "max_delete_share = 1.0\n%s" % (port, port, feeds)
    )
    p = Path(dirpath) / "tributary.toml"
    p.write_text(cfg)
    return p


class Client:
    """GETs against the daemon, timing each one."""

    def __init__(self, base, token):
        self.base, self.token, self.slow, self.requests, self.runs = base, token, [], 0, None

    def get(self, path, auth=False):
        status, body, took = self._get(path, auth)
        if SLOW_SECONDS < took < REQUEST_TIMEOUT:
            # Asked again (an unknown parameter, ignored by the route, keeps the response cache
            # out of it): a busy machine's hiccup is not a slow route; a runaway one is slow twice.
            retry = path + ("&" if "?" in path else "?") + "conformance_retry=1"
            status, body, again = self._get(retry, auth)
            took = min(took, again)
        if took > SLOW_SECONDS:
            self.slow.append({"path": urlsplit(path).path, "seconds": round(took, 2)})
        return status, body

    def _get(self, path, auth):
        req = urllib.request.Request(self.base + path if path.startswith("/") else path)
        if auth:
            req.add_header("Authorization", "Bearer " + self.token)
        t = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        except (TimeoutError, urllib.error.URLError) as e:
            # No answer in time (or no answer at all): counted, and the file goes on.
            if not isinstance(e, TimeoutError) and not isinstance(e.reason, TimeoutError):
                raise
            status, body = 0, b""
        self.requests += 1
        return status, body, time.monotonic() - t

    def json(self, path, auth=False):
        status, body = self.get(path, auth)
        return status, (json.loads(body) if status == 200 else None)


def wait_ready(client, proc, seconds=20):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            if client.get("/healthz")[0] in (200, 503):
                return True
        except OSError:
            time.sleep(0.03)
    return False


def read_back(client, kinds):
    """Everything the daemon publishes for the file: entities from the change feeds, occurrences
    from /v1/events, organisations from /v1/organisations, and the calendar."""
    out = {"entities": {}, "occurrences": [], "truncated_at": None, "organisations": []}
    if "events" in kinds:
        url = "/v1/feeds/events?limit=500"
        for _ in range(200):
            st, page = client.json(url)
            if st != 200 or not page["items"]:
                break
            for it in page["items"]:
                if it.get("state") == "updated":
                    out["entities"][it["id"]] = it["data"]
            url = page["next"]
        url = "/v1/events?limit=500&" + WINDOW
        for n in range(MAX_EVENT_PAGES):
            st, page = client.json(url)
            if st != 200:
                out["events_error"] = st
                break
            out["occurrences"].extend(page["items"])
            if not page.get("next"):
                break
            url = page["next"]
            if n == MAX_EVENT_PAGES - 1 and out["occurrences"]:
                out["truncated_at"] = out["occurrences"][-1]["start"]
        # What a subscriber or an app asks first, timed like every request (a runaway series
        # shows here as a slow request).
        client.get("/v1/events")
        client.get("/calendar.ics")
        st, body = client.get("/calendar.ics?" + WINDOW)
        out["calendar"] = body if st == 200 else None
        out["calendar_status"] = st
    if "organisations" in kinds:
        url = "/v1/organisations?limit=500"
        for _ in range(200):
            st, page = client.json(url)
            if st != 200:
                break
            out["organisations"].extend(page["items"])
            if not page.get("next"):
                break
            url = page["next"]
    return out


def local(msg):
    """A message without the stand-in's and the daemon's ports, so recordings compare run to run."""
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1", msg or "")


def start_daemon(binary, tmp, fmt, url, env):
    """`tributary run` on a free port. A port taken between choosing and binding (the other worker's
    daemon) is caught by the admin token, unique to this run: a stranger's daemon refuses it."""
    for attempt in range(3):
        logf = open(Path(tmp) / "daemon.log", "ab")
        cfg = write_config(tmp, fmt, url, free_port())
        port = int(re.search(r'listen = "127.0.0.1:(\d+)"', cfg.read_text()).group(1))
        proc = subprocess.Popen(
            [binary, "--config", str(cfg), "run"], stdout=logf, stderr=logf, env=env
        )
        client = Client("http://127.0.0.1:%d" % port, env["TRIBUTARY_ADMIN_TOKEN"])
        if wait_ready(client, proc):
            st, runs = client.json("/admin/runs?partner=corpus&limit=5", auth=True)
            if st == 200 and proc.poll() is None:
                client.runs = runs
                return proc, client, logf
        stop(proc)
        logf.close()
    return proc, None, open(Path(tmp) / "daemon.log", "ab")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_file(binary, fmt, path, port):
    """One corpus file through `tributary sync`, then `tributary run` to read it back."""
    tmp = tempfile.mkdtemp(prefix="conformance-")
    token = "conformance-%s" % os.urandom(8).hex()
    env = dict(os.environ, TRIBUTARY_ADMIN_TOKEN=token, RUST_LOG="tributary=warn", NO_COLOR="1")
    result = {"panics": 0, "slow": [], "sync": "failed", "error": None, "rejections": []}
    try:
        SITE["handler"], url = site_for(fmt, path, port)
        dport = free_port()
        cfg = write_config(tmp, fmt, url, dport)
        t = time.monotonic()
        try:
            sync = subprocess.run(
                [binary, "--config", str(cfg), "sync"],
                capture_output=True,
                timeout=SYNC_TIMEOUT,
                env=env,
            )
            stderr = sync.stderr.decode("utf-8", "replace")
            result["sync_exit"] = sync.returncode
        except subprocess.TimeoutExpired:
            result["error"] = "sync took over %d s" % SYNC_TIMEOUT
            return result
        result["sync_seconds"] = round(time.monotonic() - t, 2)
        result["panics"] += stderr.count("panicked at")
        proc, client, logf = start_daemon(binary, tmp, fmt, url, env)
        try:
            if client is None:
                result["error"] = "daemon did not start"
                return result
            items = (client.runs or {}).get("runs", [])
            if items:
                st, run = client.json("/admin/runs/%s" % items[0]["id"], auth=True)
                if run:
                    result["sync"] = run.get("result")
                    result["error"] = local(run.get("error")) or None
                    # A panic caught by the runner shows in the run's error (and usually on
                    # stderr too: one panic, counted once).
                    caught = int("panicked" in (run.get("error") or ""))
                    result["panics"] = max(result["panics"], caught)
                    result["counts"] = run.get("counts")
                    rejected = run.get("rejections", [])
                    result["rejections"] = [local(r.get("reason")) for r in rejected]
                    result["rejected_ids"] = [r.get("record_id") or r.get("source_id") for r in rejected]
                    # Records that landed with a caveat: shown, but not a loss.
                    result["warnings"] = [local(r.get("reason")) for r in run.get("warnings", [])]
            result["read"] = read_back(client, KINDS[fmt])
            result["slow"] = client.slow
        finally:
            stop(proc)
            logf.close()
            log = (Path(tmp) / "daemon.log").read_text("utf-8", "replace")
            result["panics"] += log.count("panicked at")
        return result
    finally:
        SITE["handler"] = None
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- tributary's side as tokens


def as_token(v, kind, tz, all_day):
    """One of our starts or ends (an RFC 3339 string from the API, or a value our calendar.ics read
    back gives) as the token kind the reference uses: a UTC instant; for a floating reference, the
    wall-clock time in the event's own zone (its `timezone`); for a date, the local date of an
    all-day event (or of one starting at local midnight). Anything else cannot match (`N…`)."""
    if v is None:
        return None
    if isinstance(v, str):
        v = datetime.fromisoformat(v.replace("Z", "+00:00"))
    if not isinstance(v, datetime):
        return ("D" if kind == "D" else "N") + v.isoformat()
    if v.tzinfo is None:
        return ("F" if kind == "F" else "N") + v.strftime("%Y-%m-%dT%H:%M:%S")
    try:
        local = v.astimezone(ZoneInfo(tz)) if tz else v
    except Exception:  # noqa: BLE001 - an unknown zone name: the value's own offset
        local = v
    if kind == "D":
        if all_day or (local.hour, local.minute, local.second) == (0, 0, 0):
            return "D" + local.date().isoformat()
        return "N" + v.isoformat()
    if kind == "F":
        return "F" + local.strftime("%Y-%m-%dT%H:%M:%S")
    return "Z" + v.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def open_end(s, e):
    """RFC 5545's end for a component without one: the start, or the next day for a date."""
    if e is not None:
        return e
    return ref.one_day_after(s) if s and s[0] == "D" else s


def trib_tokens(item, kind_start, kind_end):
    """A /v1/events item's (start, end) as reference tokens."""
    tz, all_day = item.get("timezone"), bool(item.get("all_day"))
    s = as_token(item.get("start"), kind_start, tz, all_day)
    return (s, open_end(s, as_token(item.get("end"), kind_end, tz, all_day)))


def record_ids(entity):
    return [p.get("record_id", "") for p in entity.get("partners", []) if p]


def entities_for(key, series, entities, used_title):
    """The tributary entities holding one reference event: by its UID (the record id is the UID,
    or UID#RECURRENCE-ID for a separate override), else by title and start."""
    uid = series.get("uid")
    found = []
    if uid:
        for eid, e in entities.items():
            if any(r == uid or r.startswith(uid + "#") for r in record_ids(e)):
                found.append(eid)
        if found:
            return found
    t = ref.norm_title(series.get("title"))
    for eid, e in entities.items():
        if eid in used_title or ref.norm_title(e.get("title")) != t:
            continue
        start = series.get("start")
        if start is None or trib_tokens(e, start[0], start[0])[0] == start:
            found.append(eid)
            used_title.add(eid)
            break
    return found


def kinds_of(occ):
    if not occ:
        return ("Z", "Z")
    return (occ[0][0][0], occ[0][1][0] if occ[0][1] else occ[0][0][0])


def compare_occurrences(ref_occ, trib_items, cut):
    """(exact, extra): reference occurrences found with the same start and end instants, and
    occurrences tributary lists that the reference does not (both cut where the listing was)."""
    ks, ke = kinds_of(ref_occ)
    mine = set()
    for it in trib_items:
        if str(it.get("status", "")).lower() == "cancelled":
            continue
        mine.add(trib_tokens(it, ks, ke))
    want = set(tuple(o) for o in ref_occ)
    if cut is not None:
        want = {o for o in want if ref.token_utc(o[0]) < cut}
        mine = {o for o in mine if o[0] and o[0][0] in "ZFD" and ref.token_utc(o[0]) < cut}
    if len(ref_occ) >= ref.PER_SERIES_CAP and want:
        last = max(ref.token_utc(o[0]) for o in want)
        mine = {o for o in mine if o[0] and o[0][0] in "ZFD" and ref.token_utc(o[0]) <= last}
    return len(want & mine), len(mine - want), len(want)


def calendar_occurrences(body):
    """Our calendar.ics read back strictly (X-WR-TIMEZONE ignored) and expanded by the same reader:
    {entity id: [(start, end), …]}, or an error string."""
    try:
        cals = ref.read_calendars(body)
    except Exception as e:  # noqa: BLE001
        return None, "%s: %s" % (type(e).__name__, str(e)[:120])
    out = {}
    for ci, cal in enumerate(cals):
        groups = {}
        for comp in cal.walk("VEVENT"):
            groups.setdefault(ref._uid(comp), []).append(comp)
        for uid, parts in groups.items():
            occ, _ = ref.expand(cal, parts, raw=True)
            out.setdefault(uid.split("@")[0], []).extend(occ)
    return out, None


def score_ical(path, res):
    r = ref.reference_ical(path)
    read = res.get("read") or {}
    entities = read.get("entities", {})
    by_entity = {}
    for it in read.get("occurrences", []):
        by_entity.setdefault(it["id"], []).append(it)
    cut = read.get("truncated_at")
    cut = (
        datetime.fromisoformat(cut.replace("Z", "+00:00")) - timedelta(days=1)
        if cut
        else None
    )
    cal_occ, cal_err = (None, "no calendar")
    if read.get("calendar") is not None:
        cal_occ, cal_err = calendar_occurrences(read["calendar"])
    s = {
        "reference": len(r["events"]),
        "reader_error": r.get("reader_error"),
        "landed": 0,
        "occ_ref": 0,
        "occ_api": 0,
        "occ_api_extra": 0,
        "occ_ics": 0,
        "occ_ics_extra": 0,
        "calendar_error": cal_err if read else None,
        "missing": [],
    }
    # Rejections of records the reader reads as events (the issue wants rejections only where the
    # reader also finds no event).
    rejected = {i for i in res.get("rejected_ids", []) if i}
    s["rejected_events"] = sum(
        1 for e in r["events"].values() if e["uid"] and e["uid"] in rejected
    )
    used = set()
    for key, series in r["events"].items():
        ids = entities_for(key, series, entities, used)
        if ids:
            s["landed"] += 1
        else:
            s["missing"].append(series.get("title") or key)
        occ = series["occurrences"]
        items = [it for i in ids for it in by_entity.get(i, [])]
        exact, extra, total = compare_occurrences(occ, items, cut)
        s["occ_ref"] += total
        s["occ_api"] += exact
        s["occ_api_extra"] += extra
        ks, ke = kinds_of(occ)
        got = set()
        for i in ids:
            tz = entities.get(i, {}).get("timezone")
            for start, end in (cal_occ or {}).get(i, []):
                st = as_token(start, ks, tz, False)
                got.add((st, open_end(st, as_token(end, ke, tz, False))))
        want = set(tuple(o) for o in occ)
        if cut is not None:
            want = {o for o in want if ref.token_utc(o[0]) < cut}
            got = {o for o in got if o[0][0] in "ZFD" and ref.token_utc(o[0]) < cut}
        if len(occ) >= ref.PER_SERIES_CAP and want:
            last = max(ref.token_utc(o[0]) for o in want)
            got = {o for o in got if o[0][0] in "ZFD" and ref.token_utc(o[0]) <= last}
        s["occ_ics"] += len(want & got)
        s["occ_ics_extra"] += len(got - want)
    return s


def score_rss(path, res):
    r = ref.reference_rss(path)
    entities = (res.get("read") or {}).get("entities", {})
    ids = {}
    for eid, e in entities.items():
        for rid in record_ids(e):
            ids[rid] = eid
    titles = {ref.norm_title(e.get("title")) for e in entities.values()}
    s = {
        "reference": len(r["entries"]),
        "dated": sum(1 for e in r["entries"] if e["dated"]),
        "reader_error": r.get("reader_error"),
        "landed": 0,
        "landed_dated": 0,
        "missing": [],
    }
    rejected = {i for i in res.get("rejected_ids", []) if i}
    s["rejected_events"] = sum(
        1 for e in r["entries"] if e["dated"] and ({e["id"], e["link"]} & rejected)
    )
    for e in r["entries"]:
        hit = (e["id"] and e["id"] in ids) or (e["link"] and e["link"] in ids)
        hit = hit or (ref.norm_title(e["title"]) in titles and e["title"])
        if hit:
            s["landed"] += 1
            s["landed_dated"] += 1 if e["dated"] else 0
        elif e["dated"]:
            s["missing"].append(e["title"])
    return s


def score_expected(fmt, name, res):
    exp = ref.reference_expected(EXPECTED, fmt, name)
    read = res.get("read") or {}
    s = {"reference": 0, "landed": 0, "missing": [], "reader_error": None}
    if exp is None:
        s["reader_error"] = "no written expectation"
        return s
    # Each event's starts: its own, and every occurrence /v1/events lists for it (a written session
    # of a series is found among the series' occurrences). Each (event, start) matches once.
    starts = {}
    for eid, e in read.get("entities", {}).items():
        starts.setdefault(eid, [e.get("start")])
    for it in read.get("occurrences", []):
        starts.setdefault(it["id"], []).append(it.get("start"))
    entities = read.get("entities", {})
    taken = set()
    for ev in exp.get("events", []):
        s["reference"] += 1
        t, start = ref.norm_title(ev.get("title")), ref.expected_start(ev.get("start"))
        hit = None
        for eid, e in entities.items():
            if ref.norm_title(e.get("title")) != t:
                continue
            for st in starts.get(eid, []):
                tok = as_token(st, start[0], e.get("timezone"), e.get("all_day")) if start else None
                if (eid, st) not in taken and (start is None or tok == start):
                    hit = (eid, st)
                    break
            if hit:
                break
        if hit:
            taken.add(hit)
            s["landed"] += 1
        else:
            s["missing"].append("%s @ %s" % (ev.get("title"), ev.get("start")))
    orgs = list(read.get("organisations", []))
    for o in exp.get("organisations", []):
        s["reference"] += 1
        n = ref.norm_title(o.get("name"))
        hit = next((x for x in orgs if ref.norm_title(x.get("name")) == n), None)
        if hit is not None:
            orgs.remove(hit)
            s["landed"] += 1
        else:
            s["missing"].append(o.get("name"))
    return s


# ---------------------------------------------------------------- the run


def corpus_files(only):
    files = []
    for fmt in ["ical", "rss", "jsonld", "rpde", "oruk", "wp-events"]:
        d = CORPUS / fmt
        items = sorted(p for p in d.iterdir() if p.is_dir()) if fmt == "oruk" else sorted(
            p for p in d.iterdir() if p.is_file()
        )
        for p in items:
            if only and only not in str(p):
                continue
            files.append((fmt, p))
    return files


def _init_worker():
    SITE["port"] = start_partner_server()


def one(args):
    binary, fmt, path = args
    t = time.monotonic()
    try:
        res = run_file(binary, fmt, str(path), SITE["port"])
        if fmt == "ical":
            s = score_ical(str(path), res)
        elif fmt == "rss":
            s = score_rss(str(path), res)
        else:
            s = score_expected(fmt, path.name, res)
    except Exception as e:  # noqa: BLE001 - a harness fault is reported against the file
        res, s = {"sync": "harness-error", "error": repr(e)[:200], "panics": 0, "slow": []}, {
            "reference": 0,
            "landed": 0,
            "missing": [],
            "reader_error": None,
        }
    s.update(
        {
            "format": fmt,
            "file": path.name,
            "synced": res.get("sync") in ("ok", "unchanged"),
            "result": res.get("sync"),
            "error": (res.get("error") or "")[:200],
            "panics": res.get("panics", 0),
            "slow": res.get("slow", []),
            "rejections": res.get("rejections", []),
            "warnings": res.get("warnings", []),
            "seconds": round(time.monotonic() - t, 2),
        }
    )
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--dump", help="write every file's result as JSON here")
    a = ap.parse_args()
    if not CORPUS.is_dir():
        sys.exit("no corpus at %s (the shared data beside the repository)" % CORPUS)
    files = corpus_files(a.only)
    t = time.monotonic()
    with multiprocessing.Pool(a.jobs, initializer=_init_worker) as pool:
        results = pool.map(one, [(a.bin, f, p) for f, p in files], chunksize=1)
    took = time.monotonic() - t
    if a.dump:
        Path(a.dump).write_text(json.dumps(results, indent=1))
    figures = scorecard.figures(results)
    doc = ROOT / "docs" / "conformance.md"
    if os.environ.get("CONFORMANCE_RECORD") == "1":
        if a.only:
            sys.exit("CONFORMANCE_RECORD=1 records the whole corpus; drop --only")
        scorecard.write(doc, ROOT / "docs" / "conformance-files.md", figures, results, took)
        print("recorded %s (%d files, %.0f s)" % (doc, len(results), took))
        return 0
    print(scorecard.summary(figures))
    print("%d files in %.0f s" % (len(results), took))
    if a.only:
        return 0
    drops = scorecard.check(doc, figures, results)
    if drops:
        print("\nconformance dropped below the recorded figures (docs/conformance.md):")
        for d in drops:
            print("  " + d)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
