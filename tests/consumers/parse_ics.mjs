// Reads an iCalendar file with ical.js (Mozilla's parser) and prints its events as JSON:
// [{uid, summary, start (UTC ISO or date), recurring, status, sequence}]. Used by the tests as a
// real, independent consumer of tributary's calendar.ics.
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

const text = readFileSync(process.argv[2], "utf8");
const comp = new ICAL.Component(ICAL.parse(text));
for (const tz of comp.getAllSubcomponents("vtimezone")) {
  ICAL.TimezoneService.register(tz);
}
const out = comp.getAllSubcomponents("vevent").map((v) => {
  const ev = new ICAL.Event(v);
  const start = ev.startDate;
  return {
    uid: ev.uid,
    summary: ev.summary,
    start: start.isDate ? start.toString() : start.toJSDate().toISOString(),
    recurring: ev.isRecurring(),
    status: v.getFirstPropertyValue("status") || "",
    sequence: ev.sequence,
  };
});
process.stdout.write(JSON.stringify(out));
