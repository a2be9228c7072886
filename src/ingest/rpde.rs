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

#[derive(Debug, Default)]
pub struct Harvest {
    pub(super) incremental: bool,
    records: Collected,
    /// Tombstoned ids, each with when it was seen, so an update after it can lift it in O(1): a
    /// feed mixing tombstones and updates of the same ids was quadratic with a list.
    deleted: HashMap<String, usize>,
    rejections: Vec<Rejection>,
    /// SessionSeries seen in this harvest, so sessions that only reference theirs get its name.
    series: HashMap<String, Value>,
    /// Updated items by id (latest wins), in arrival order, mapped once `series` is complete.
    pending: HashMap<String, (usize, Option<String>, Value)>,
    seq: usize,
    cursor: Option<String>,
}

impl Harvest {
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
                if schema_org::types(data).iter().any(|t| t == "SessionSeries") {
                    self.series.insert(id.clone(), data.clone());
                    if let Some(key) = data.get("@id").and_then(Value::as_str) {
                        self.series.insert(key.to_string(), data.clone());
                    }
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
            let parent = match data.get("superEvent") {
                Some(Value::String(r)) => self.series.get(r.as_str()),
                _ => None,
            };
            match schema_org::event(&data, parent) {
                Ok(e) => self.records.put(SourceRecord {
                    source_id: id,
                    url,
                    updated_at: None,
                    payload: Payload::Event(e),
                }),
                Err(reason) => {
                    let hint = if data.get("superEvent").is_some_and(Value::is_string)
                        && parent.is_none()
                    {
                        " (its superEvent is not in this feed's harvest; publish the series name on the session)"
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
        Harvested {
            parsed: ParsedFeed {
                records: self.records.into_records(),
                rejections: self.rejections,
            },
            deleted,
            complete: !self.incremental,
            cursor: self.cursor,
        }
    }
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
}
