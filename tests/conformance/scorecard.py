"""The conformance scorecard: figures per format from the harness's per-file results, rendered to
docs/conformance.md (with the figures as a machine-readable floor) and docs/conformance-files.md,
and the check that fails when a figure drops below the recorded floor."""

import json
import re
from collections import Counter
from pathlib import Path

FORMATS = ["ical", "rss", "jsonld", "rpde", "oruk", "wp-events"]
# Figures where more is better (a drop fails CI) and where less is better (a rise fails CI).
HIGHER = ["synced", "landed", "landed_dated", "occ_api", "occ_ics"]
LOWER = ["panics", "slow_requests", "occ_api_extra", "occ_ics_extra", "rejected_events"]
MARKER = "<!-- figures: everything below is written by the harness -->"
FLOOR_RE = re.compile(r"<!-- conformance-floor\n(.*?)\n-->", re.S)


def reason_class(r):
    """A rejection reason without its particulars (quoted values, numbers), so alike ones group."""
    r = re.sub(r"^feed [a-z]+-\d+ \([^)]*\): ", "", r)
    r = re.sub(r"\([^)]*\)", "(…)", r)
    r = re.sub(r"https?://\S+", "URL", r)
    r = re.sub(r'"[^"]*"', '"…"', r)
    r = re.sub(r"\d+", "N", r)
    return " ".join(r.split())[:140]


def figures(results):
    out = {}
    for fmt in FORMATS + ["all"]:
        rs = [r for r in results if fmt == "all" or r["format"] == fmt]
        if not rs:
            continue
        f = {
            "files": len(rs),
            "synced": sum(1 for r in rs if r["synced"]),
            "reference": sum(r.get("reference", 0) for r in rs),
            "landed": sum(r.get("landed", 0) for r in rs),
            "reader_errors": sum(1 for r in rs if r.get("reader_error")),
            "panics": sum(r.get("panics", 0) for r in rs),
            "slow_requests": sum(len(r.get("slow", [])) for r in rs),
            "rejections": sum(len(r.get("rejections", [])) for r in rs),
            "warnings": sum(len(r.get("warnings", [])) for r in rs),
        }
        f["rejected_events"] = sum(r.get("rejected_events", 0) for r in rs)
        if fmt in ("ical", "all"):
            for k in ["occ_ref", "occ_api", "occ_api_extra", "occ_ics", "occ_ics_extra"]:
                f[k] = sum(r.get(k, 0) for r in rs)
        if fmt in ("rss", "all"):
            f["dated"] = sum(r.get("dated", 0) for r in rs)
            f["landed_dated"] = sum(r.get("landed_dated", 0) for r in rs)
        reasons = Counter(reason_class(x) for r in rs for x in r.get("rejections", []))
        f["top_reasons"] = reasons.most_common(8)
        warned = Counter(reason_class(x) for r in rs for x in r.get("warnings", []))
        f["top_warnings"] = warned.most_common(5)
        failures = Counter(reason_class(r["error"] or r["result"] or "?") for r in rs if not r["synced"])
        f["top_failures"] = failures.most_common(5)
        out[fmt] = f
    return out


def pct(a, b):
    return "–" if not b else "%.1f%%" % (100.0 * a / b)


def summary(figs):
    lines = [
        "| format | files | synced | reference | landed | occurrences exact /v1/events | "
        "occurrences exact calendar.ics | rejections (of the reader's events) | "
        "warnings (records kept) | panics | slow (> 1 s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fmt, f in figs.items():
        ref = str(f["reference"])
        landed = "%d (%s)" % (f["landed"], pct(f["landed"], f["reference"]))
        if "dated" in f and fmt == "rss":
            ref = "%d entries, %d dated" % (f["reference"], f["dated"])
            landed = "%d (%d of the dated: %s)" % (
                f["landed"],
                f["landed_dated"],
                pct(f["landed_dated"], f["dated"]),
            )
        occ_api = occ_ics = "–"
        if "occ_ref" in f:
            occ_api = "%d / %d (%s), %d extra" % (
                f["occ_api"], f["occ_ref"], pct(f["occ_api"], f["occ_ref"]), f["occ_api_extra"])
            occ_ics = "%d / %d (%s), %d extra" % (
                f["occ_ics"], f["occ_ref"], pct(f["occ_ics"], f["occ_ref"]), f["occ_ics_extra"])
        name = "**all**" if fmt == "all" else "`%s`" % fmt
        rej = "%d" % f["rejections"]
        if fmt in ("ical", "rss", "all"):
            rej += " (%d)" % f["rejected_events"]
        lines.append(
            "| %s | %d | %d (%s) | %s | %s | %s | %s | %s | %d | %d | %d |"
            % (name, f["files"], f["synced"], pct(f["synced"], f["files"]), ref, landed,
               occ_api, occ_ics, rej, f["warnings"], f["panics"], f["slow_requests"])
        )
    return "\n".join(lines)


def reasons_section(figs):
    out = []
    for fmt, f in figs.items():
        if fmt == "all":
            continue
        out.append("### `%s`\n" % fmt)
        if f["top_failures"]:
            out.append("Files that did not sync, by error:\n")
            out += ["- %d × %s" % (n, r.replace("|", "\\|")) for r, n in f["top_failures"]]
            out.append("")
        if f["top_reasons"]:
            out.append("Rejections by reason (top %d):\n" % len(f["top_reasons"]))
            out += ["- %d × %s" % (n, r.replace("|", "\\|")) for r, n in f["top_reasons"]]
        else:
            out.append("No rejections.")
        if f["top_warnings"]:
            out.append("")
            out.append("Warnings (the record landed) by reason (top %d):\n" % len(f["top_warnings"]))
            out += ["- %d × %s" % (n, r.replace("|", "\\|")) for r, n in f["top_warnings"]]
        out.append("")
    return "\n".join(out)


def per_file(results):
    keep = {}
    for r in results:
        keys = ["landed", "landed_dated", "occ_api", "occ_ics", "occ_api_extra", "occ_ics_extra",
                "panics", "rejected_events"]
        f = {k: r.get(k, 0) for k in keys}
        f["synced"] = int(bool(r["synced"]))
        f["slow_requests"] = len(r.get("slow", []))
        keep["%s/%s" % (r["format"], r["file"])] = {k: v for k, v in f.items() if v}
    return keep


def floor_of(figs, results):
    formats = {
        fmt: {k: f[k] for k in HIGHER + LOWER if k in f} for fmt, f in figs.items()
    }
    return {"formats": formats, "files": per_file(results)}


def cell(s):
    return str(s).replace("|", "\\|").replace("\n", " ")[:120]


def write_files(path, results):
    lines = [
        "# Conformance per file",
        "",
        "Written by the conformance harness with `CONFORMANCE_RECORD=1` (see "
        "[conformance.md](conformance.md)); one row per corpus file. *ref* is what the independent "
        "reader (or the written expectation) finds; *api*/*ics* are occurrences exact in "
        "`/v1/events` and in `calendar.ics` read strictly; the reason is the sync's error or its "
        "first rejection.",
        "",
        "| format | file | result | ref | landed | occ ref | occ api | occ ics | rejections | panics | reason |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        ref = r.get("reference", 0)
        if r["format"] == "rss":
            ref = "%d (%d dated)" % (ref, r.get("dated", 0))
        why = r.get("error") or (r["rejections"][0] if r.get("rejections") else "")
        if r.get("reader_error"):
            why = ("reader: %s; " % r["reader_error"]) + (why or "")
        lines.append(
            "| %s | %s | %s | %s | %s | %s | %s | %s | %d | %d | %s |"
            % (r["format"], cell(r["file"]), r.get("result"), ref, r.get("landed", 0),
               r.get("occ_ref", "–") if r["format"] == "ical" else "–",
               r.get("occ_api", "–") if r["format"] == "ical" else "–",
               r.get("occ_ics", "–") if r["format"] == "ical" else "–",
               len(r.get("rejections", [])), r.get("panics", 0), cell(why))
        )
    Path(path).write_text("\n".join(lines) + "\n")


def write(doc, files_doc, figs, results, took):
    head = Path(doc).read_text().split(MARKER)[0].rstrip("\n") + "\n\n" if Path(doc).exists() else ""
    if not head.strip():
        head = "# Conformance\n\n"
    body = [
        MARKER,
        "## Figures (recorded)",
        "",
        "Recorded by `CONFORMANCE_RECORD=1` over %d files in %.0f s."
        % (figs["all"]["files"], took),
        "",
        summary(figs),
        "",
        "## Failures and rejections by reason",
        "",
        reasons_section(figs),
        "Per-file figures: [conformance-files.md](conformance-files.md).",
        "",
        "<!-- conformance-floor",
        json.dumps(floor_of(figs, results), sort_keys=True, separators=(",", ":")),
        "-->",
        "",
    ]
    Path(doc).write_text(head + "\n".join(body))
    write_files(files_doc, results)


def worse_at(k, now, was):
    return now < was if k in HIGHER else now > was


def check(doc, figs, results):
    """Every figure that dropped below (or, for panics, slow requests and extra occurrences, rose
    above) the recorded floor, and the files behind each drop."""
    m = FLOOR_RE.search(Path(doc).read_text()) if Path(doc).exists() else None
    if not m:
        return ["no recorded figures in %s: record them with CONFORMANCE_RECORD=1" % doc]
    floor = json.loads(m.group(1))
    now = floor_of(figs, results)
    drops = []
    for fmt, was in floor["formats"].items():
        cur = now["formats"].get(fmt, {})
        for k, v in was.items():
            c = cur.get(k, 0)
            if worse_at(k, c, v):
                files = [
                    f for f in sorted(set(floor["files"]) | set(now["files"]))
                    if (fmt == "all" or f.startswith(fmt + "/"))
                    and worse_at(k, now["files"].get(f, {}).get(k, 0), floor["files"].get(f, {}).get(k, 0))
                ]
                drops.append(
                    "%s %s: %s now, %s recorded%s"
                    % (fmt, k, c, v, (" (files: %s)" % ", ".join(files[:10])) if files else "")
                )
    return drops
