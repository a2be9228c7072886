//! The `rpde` format: OpenActive Realtime Paged Data Exchange. Pages of `items` (each `updated`
//! with schema.org `data`, or `deleted`) are followed by their `next` links until a page comes
//! back empty; that page's `next` is the cursor the next sync resumes from. Both ordering modes
//! (`afterTimestamp`+`afterId`, `afterChangeNumber`) live in the links, so following them serves both.

use std::collections::HashMap;

use serde_json::Value;

use super::tributary_json::item_id;
use super::{json_page, schema_org, Collected, Harvested, PageRequest, ParseError};
use crate::model::{ParsedFeed, Payload, Rejection, SourceRecord};

const FORMAT: &str = "rpde";

/// Finds a `SessionSeries` by the reference a session's `superEvent` gives (its `@id`, RPDE id or
/// URL) outside this feed's harvest: another feed of the partner's (OpenActive's split layout) or
/// what an earlier sync kept. The caller supplies it; ingest knows no store.
pub type SeriesLookup = Box<dyn Fn(&str) -> Option<Value> + Send>;

#[derive(Default)]
pub struct Harvest {
    pub(super) incremental: bool,
    records: Collected,
    /// Tombstoned ids, each with when it was seen, so an update after it can lift it in O(1): a
    /// feed mixing tombstones and updates of the same ids was quadratic with a list.
    deleted: HashMap<String, usize>,
    rejections: Vec<Rejection>,
    /// Values dropped from records that still land (implausible `geo` points).
    warnings: Vec<Rejection>,
    /// SessionSeries seen in this harvest, so sessions that only reference theirs get its name.
    series: HashMap<String, Value>,
    /// Updated items by id (latest wins), in arrival order, mapped once `series` is complete.
    pending: HashMap<String, (usize, Option<String>, Value)>,
    seq: usize,
    cursor: Option<String>,
    lookup: Option<SeriesLookup>,
}

impl std::fmt::Debug for Harvest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("rpde::Harvest")
            .field("records", &self.records)
            .field("deleted", &self.deleted.len())
            .field("series", &self.series.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Harvest {
    /// Where sessions whose series is not in this harvest find it.
    pub fn set_series_lookup(&mut self, lookup: SeriesLookup) {
        self.lookup = Some(lookup);
    }

    /// The series this harvest has seen, by every key a session may reference them with, so a
    /// partner's other feeds can resolve their sessions against them.
    pub fn series(&self) -> &HashMap<String, Value> {
        &self.series
    }

    /// The series a session belongs to: embedded in full, or referenced by `@id`/id/URL and found
    /// in this harvest or through the lookup. An embedded stub carrying little more than an `@id`
    /// is completed from the full series when it can be found.
    fn parent_of(&self, session: &Value) -> Option<Value> {
        let reference = match session.get("superEvent") {
            Some(Value::String(r)) => Some(r.trim().to_string()),
            Some(o @ Value::Object(_)) => {
                if o.get("name").is_some() {
                    return None;
                }
                schema_org::node_id(o)
            }
            _ => None,
        }?;
        self.series
            .get(&reference)
            .cloned()
            .or_else(|| self.lookup.as_ref().and_then(|l| l(&reference)))
    }

    fn remember_series(&mut self, id: &str, data: &Value) {
        self.series.insert(id.to_string(), data.clone());
        for key in ["@id", "id", "url", "identifier"] {
            if let Some(k) = data.get(key).and_then(Value::as_str) {
                self.series.insert(k.trim().to_string(), data.clone());
            }
        }
    }

    pub fn add_page(&mut self, url: &str, bytes: &[u8]) -> Result<Vec<PageRequest>, ParseError> {
        let invalid = |reason: String| ParseError::Invalid {
            format: FORMAT,
            reason,
        };
        let page = json_page(FORMAT, url, bytes)?;
        let items = page
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid(format!("{url}: no \"items\" array")))?;
        let next = page
            .get("next")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(format!("{url}: no \"next\" link (every RPDE page has one)")))?;
        for (i, item) in items.iter().enumerate() {
            self.item(i, item);
        }
        // The last page is empty and links to itself; its `next` is where new changes will appear.
        self.cursor = Some(next.to_string());
        if items.is_empty() || next == url {
            Ok(Vec::new())
        } else {
            Ok(vec![PageRequest::listing(next)])
        }
    }

    fn item(&mut self, i: usize, item: &Value) {
        let id = match item_id(item) {
            Some(id) => id,
            None => {
                self.rejections.push(Rejection {
                    source_id: None,
                    reason: format!("item {}: no id", i + 1),
                });
                return;
            }
        };
        match item.get("state").and_then(Value::as_str) {
            Some("deleted") => {
                self.pending.remove(&id);
                self.seq += 1;
                self.deleted.insert(id, self.seq);
            }
            Some("updated") => {
                let Some(data) = item.get("data").filter(|d| d.is_object()) else {
                    self.rejections.push(Rejection {
                        source_id: Some(id),
                        reason: "updated item has no data object".into(),
                    });
                    return;
                };
                self.deleted.remove(&id);
                let url = data.get("url").and_then(Value::as_str).map(str::to_string);
                if schema_org::types(data)
                    .iter()
                    .any(|t| t == "SessionSeries" || t == "CourseInstance" || t == "Course")
                {
                    self.remember_series(&id, data);
                }
                self.seq += 1;
                self.pending.insert(id, (self.seq, url, data.clone()));
            }
            other => self.rejections.push(Rejection {
                source_id: Some(id),
                reason: format!("state {other:?} must be \"updated\" or \"deleted\""),
            }),
        }
    }

    fn map(&mut self, id: String, url: Option<String>, data: &Value, parent: Option<&Value>) {
        let mut notes = Vec::new();
        match schema_org::event_noting(data, parent, &mut notes) {
            Ok(e) => {
                self.warnings
                    .extend(notes.into_iter().map(|reason| Rejection {
                        source_id: Some(id.clone()),
                        reason,
                    }));
                self.records.put(SourceRecord {
                    source_id: id,
                    url,
                    updated_at: None,
                    payload: Payload::Event(e),
                })
            }
            Err(reason) => {
                let hint = if data.get("superEvent").is_some() && parent.is_none() {
                    " (its superEvent is in none of the partner's feeds, in this sync or before; \
                     publish the series, or its name on the session)"
                } else {
                    ""
                };
                self.rejections.push(Rejection {
                    source_id: Some(id),
                    reason: format!("{reason}{hint}"),
                })
            }
        }
    }

    pub fn finish(mut self) -> Harvested {
        let mut deleted: Vec<(String, usize)> =
            std::mem::take(&mut self.deleted).into_iter().collect();
        deleted.sort_by_key(|(_, seq)| *seq);
        let deleted: Vec<String> = deleted.into_iter().map(|(id, _)| id).collect();
        let mut pending: Vec<_> = std::mem::take(&mut self.pending).into_iter().collect();
        pending.sort_by_key(|(_, (seq, _, _))| *seq);
        for (id, (_, url, data)) in pending {
            if !schema_org::is_event(&data) {
                self.rejections.push(Rejection {
                    source_id: Some(id),
                    reason: format!(
                        "type {:?} is not an event or session",
                        schema_org::types(&data)
                    ),
                });
                continue;
            }
            if let Some(sessions) = course_sessions(&id, &data) {
                for (session_id, session) in sessions {
                    self.map(session_id, url.clone(), &session, Some(&data));
                }
                continue;
            }
            let parent = self.parent_of(&data);
            self.map(id, url, &data, parent.as_ref());
        }
        Harvested {
            parsed: ParsedFeed {
                records: self.records.into_records(),
                rejections: self.rejections,
                warnings: self.warnings,
            },
            deleted,
            complete: !self.incremental,
            cursor: self.cursor,
        }
    }
}

/// A container's embedded sessions (the `subEvent`s of a `CourseInstance`, `SessionSeries`,
/// `EventSeries`, …), each a record with the container as its series: it is attended at those
/// times, not as one span from its first day to its last. `None` when no embedded session has a
/// time of its own (the container then stands as one event or a schedule, as a `HeadlineEvent`
/// whose `subEvent`s only name its parts does).
fn course_sessions(course_id: &str, data: &Value) -> Option<Vec<(String, Value)>> {
    let subs: Vec<&Value> = match data.get("subEvent") {
        Some(Value::Array(a)) => a.iter().filter(|s| s.is_object()).collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => return None,
    };
    let timed = |s: &&Value| s.get("startDate").is_some() || s.get("eventSchedule").is_some();
    if !subs.iter().any(timed) {
        return None;
    }
    Some(
        subs.into_iter()
            .enumerate()
            .map(|(i, s)| {
                let id = schema_org::node_id(s).unwrap_or_else(|| format!("{course_id}#{}", i + 1));
                (id, s.clone())
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(next: &str, items: &str) -> Vec<u8> {
        format!(r#"{{"next": "{next}", "items": [{items}], "license": "https://creativecommons.org/licenses/by/4.0/"}}"#).into_bytes()
    }

    #[test]
    fn pages_are_followed_until_empty_and_deletions_kept() {
        let mut h = Harvest::default();
        let base = "https://example.org/feeds/sessions";
        let p1 = page(
            "https://example.org/feeds/sessions?afterTimestamp=2&afterId=b",
            r#"{"state":"updated","kind":"SessionSeries","id":"a","modified":1,"data":{"@type":"SessionSeries","name":"Chair Yoga","startDate":"2027-02-02T10:00:00Z"}},
               {"state":"updated","kind":"SessionSeries","id":"b","modified":2,"data":{"@type":"SessionSeries","startDate":"2027-02-02T10:00:00Z"}}"#,
        );
        let links = h.add_page(base, &p1).unwrap();
        assert_eq!(links.len(), 1);
        let p2_url = links[0].link.clone();
        let p2 = page(
            "https://example.org/feeds/sessions?afterTimestamp=3&afterId=a",
            r#"{"state":"deleted","kind":"SessionSeries","id":"a","modified":3},
               {"state":"weird","id":"c","modified":3}"#,
        );
        let links = h.add_page(&p2_url, &p2).unwrap();
        let last = links[0].link.clone();
        assert!(h.add_page(&last, &page(&last, "")).unwrap().is_empty());
        let out = h.finish();
        assert!(
            out.parsed.records.is_empty(),
            "a was deleted after its update"
        );
        assert_eq!(out.deleted, vec!["a"]);
        assert_eq!(
            out.parsed.rejections.len(),
            2,
            "{:?}",
            out.parsed.rejections
        );
        assert_eq!(out.cursor.as_deref(), Some(last.as_str()));
        assert!(out.complete);
    }

    #[test]
    fn a_page_without_next_fails_the_feed() {
        let mut h = Harvest::default();
        assert!(h.add_page("u", br#"{"items": []}"#).is_err());
        assert!(h.add_page("u", b"<html>").is_err());
    }

    fn harvest_of(h: &mut Harvest, base: &str, items: &str) {
        let next = format!("{base}?afterChangeNumber=9");
        h.add_page(base, &page(&next, items)).unwrap();
        assert!(h.add_page(&next, &page(&next, "")).unwrap().is_empty());
    }

    const SESSIONS: &str = r#"{"state":"updated","kind":"ScheduledSession","id":"s1","modified":1,
        "data":{"@type":"ScheduledSession","@id":"https://ex.org/sessions/s1",
                "superEvent":"https://ex.org/series/yoga","startDate":"2027-02-02T10:00:00Z",
                "endDate":"2027-02-02T11:00:00Z"}}"#;

    #[test]
    fn split_layout_sessions_resolve_their_series_through_the_lookup() {
        let mut series = Harvest::default();
        harvest_of(
            &mut series,
            "https://ex.org/feeds/series",
            r#"{"state":"updated","kind":"SessionSeries","id":"yoga","modified":1,
                "data":{"@type":"SessionSeries","@id":"https://ex.org/series/yoga","name":"Chair Yoga",
                        "location":{"@type":"Place","name":"Crewe Library"}}}"#,
        );
        let known = series.series().clone();
        let mut sessions = Harvest::default();
        sessions.set_series_lookup(Box::new(move |r| known.get(r).cloned()));
        harvest_of(&mut sessions, "https://ex.org/feeds/sessions", SESSIONS);
        let out = sessions.finish();
        assert_eq!(out.parsed.records.len(), 1, "{:?}", out.parsed.rejections);
        let Payload::Event(e) = &out.parsed.records[0].payload else {
            panic!()
        };
        assert_eq!(e.title, "Chair Yoga");
        assert_eq!(e.location.name.as_deref(), Some("Crewe Library"));

        // Without the series anywhere, the session is a rejection that says where to look.
        let mut alone = Harvest::default();
        harvest_of(&mut alone, "https://ex.org/feeds/sessions", SESSIONS);
        let out = alone.finish();
        assert!(out.parsed.records.is_empty());
        assert!(out.parsed.rejections[0].reason.contains("superEvent"));
    }

    #[test]
    fn a_course_instances_sessions_are_its_events() {
        let mut h = Harvest::default();
        harvest_of(
            &mut h,
            "https://ex.org/feeds/courses",
            r#"{"state":"updated","kind":"CourseInstance","id":"c1","modified":1,
                "data":{"@type":"CourseInstance","name":"Learn to swim","startDate":"2027-03-01",
                        "endDate":"2027-03-29",
                        "subEvent":[{"@type":"Event","@id":"https://ex.org/c1/1","startDate":"2027-03-01T18:00:00Z","endDate":"2027-03-01T19:00:00Z"},
                                    {"@type":"Event","startDate":"2027-03-08T18:00:00Z","duration":"PT1H"}]}}"#,
        );
        let out = h.finish();
        let got: Vec<(String, String)> = out
            .parsed
            .records
            .iter()
            .map(|r| match &r.payload {
                Payload::Event(e) => (
                    r.source_id.clone(),
                    format!("{} {}", e.title, e.start.to_rfc3339()),
                ),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "https://ex.org/c1/1".to_string(),
                    "Learn to swim 2027-03-01T18:00:00+00:00".to_string()
                ),
                (
                    "c1#2".to_string(),
                    "Learn to swim 2027-03-08T18:00:00+00:00".to_string()
                ),
            ],
            "{:?}",
            out.parsed.rejections
        );
    }

    #[test]
    fn a_session_series_with_embedded_sessions_is_those_sessions() {
        let mut h = Harvest::default();
        harvest_of(
            &mut h,
            "https://ex.org/feeds/series",
            r#"{"state":"updated","kind":"SessionSeries","id":"ss1","modified":1,
                "data":{"type":"SessionSeries","name":"Wednesday Yoga","startDate":"2018-01-01",
                        "endDate":"2018-12-31",
                        "subEvent":[{"type":"ScheduledSession","url":"https://ex.org/s/2",
                                     "startDate":"2018-09-05T18:00:00-05:00","duration":"PT1H"}]}},
               {"state":"updated","kind":"HeadlineEvent","id":"h1","modified":1,
                "data":{"type":"HeadlineEvent","name":"Cycle Challenge","startDate":"2016-06-18",
                        "subEvent":[{"type":"Event","name":"Cycle Challenge"}]}}"#,
        );
        let out = h.finish();
        let got: Vec<String> = out
            .parsed
            .records
            .iter()
            .map(|r| match &r.payload {
                Payload::Event(e) => format!("{} {}", e.title, e.start.to_rfc3339()),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                "Wednesday Yoga 2018-09-05T18:00:00-05:00".to_string(),
                "Cycle Challenge 2016-06-18T00:00:00+01:00".to_string()
            ],
            "{:?}",
            out.parsed.rejections
        );
    }

    #[test]
    fn a_page_nested_100000_deep_fails_the_feed_without_a_crash() {
        let depth = 100_000;
        let body = format!(
            r#"{{"next":"u","items":[{}{}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let err = Harvest::default()
            .add_page("u", body.as_bytes())
            .unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
    }
}
