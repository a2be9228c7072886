//! The `jsonld` format: HTML pages carrying schema.org JSON-LD, as CMS event and directory pages do.
//! The configured page is a listing: its `Event`/`Organization` nodes are records, its `ItemList`
//! entries name item pages to fetch (whose fuller nodes replace the listing's summaries), and its
//! `rel="next"` link continues the listing.

use serde_json::Value;

use super::{
    html, microdata_rdfa, schema_org, Collected, Harvested, PageRequest, PageRole, ParseError,
};
use crate::model::{Payload, RecordKind, Rejection, SourceRecord};

const FORMAT: &str = "jsonld";

#[derive(Debug)]
pub struct Harvest {
    kind: RecordKind,
    records: Collected,
    pub(super) rejections: Vec<Rejection>,
    /// Values dropped from records that still land (implausible `geo` points).
    warnings: Vec<Rejection>,
    /// Whether any listing page carried schema.org data at all (JSON-LD, microdata or RDFa; a
    /// page with none is not this format).
    saw_json_ld: bool,
    /// The current page's JSON-LD records by [`node_key`], so markup repeating one is skipped.
    page_keys: std::collections::HashSet<String>,
}

/// What makes two descriptions of one page's record the same: type, name and start.
fn node_key(node: &Value) -> String {
    let field = |k: &str| node.get(k).map(Value::to_string).unwrap_or_default();
    format!(
        "{}|{}|{}",
        schema_org::is_event(node),
        field("name"),
        field("startDate")
    )
}

impl Harvest {
    pub fn new(kind: RecordKind) -> Harvest {
        Harvest {
            kind,
            records: Collected::default(),
            rejections: Vec::new(),
            warnings: Vec::new(),
            saw_json_ld: false,
            page_keys: Default::default(),
        }
    }

    fn wanted(&self, node: &Value) -> bool {
        match self.kind {
            RecordKind::Events => schema_org::is_event(node),
            RecordKind::Organisations => schema_org::is_organisation(node),
        }
    }

    pub fn add_page(
        &mut self,
        url: &str,
        role: PageRole,
        bytes: &[u8],
    ) -> Result<Vec<PageRequest>, ParseError> {
        let text = String::from_utf8_lossy(bytes);
        let page = html::scan(&text);
        let markup = microdata_rdfa::read(url, &text);
        let structured = !page.json_ld.is_empty() || markup.items > 0;
        if role != PageRole::Item && !structured && !self.saw_json_ld {
            return Err(ParseError::Invalid {
                format: FORMAT,
                reason: format!(
                    "{url}: not a schema.org page: no <script type=\"application/ld+json\"> \
                     block, microdata item (itemscope) or RDFa typed resource (typeof)"
                ),
            });
        }
        self.saw_json_ld |= structured;
        if markup.truncated {
            self.rejections.push(Rejection {
                source_id: Some(url.to_string()),
                reason: format!(
                    "{url}: more microdata/RDFa than is read from one page (over {} items or \
                     nested past {} levels); the rest of the page is ignored",
                    microdata_rdfa::MAX_ITEMS,
                    html::MAX_DEPTH
                ),
            });
        }
        let mut links = Vec::new();
        let mut found = 0usize;
        for (b, block) in page.json_ld.iter().enumerate() {
            let doc: Value = match serde_json::from_str(block.trim()) {
                Ok(d) => d,
                Err(e) => {
                    self.rejections.push(Rejection {
                        source_id: Some(url.to_string()),
                        reason: format!("{url}: JSON-LD block {} is not JSON: {e}", b + 1),
                    });
                    continue;
                }
            };
            for node in schema_org::nodes(doc) {
                if schema_org::types(&node).iter().any(|t| t == "ItemList") {
                    if role != PageRole::Item {
                        links.extend(self.item_list(url, &node, &mut found));
                    }
                    continue;
                }
                if self.wanted(&node) {
                    found += 1;
                    self.page_keys.insert(node_key(&node));
                    self.node(url, &node, found);
                } else if self.kind == RecordKind::Events {
                    for event in schema_org::nested_events(&node) {
                        found += 1;
                        self.node(url, &event, found);
                    }
                }
            }
        }
        // Markup repeating a JSON-LD node of the page (themes often write both) is not a second record.
        let seen = std::mem::take(&mut self.page_keys);
        for node in markup.nodes {
            if seen.contains(&node_key(&node)) {
                continue;
            }
            self.markup_node(url, role, &node, &mut links, &mut found);
        }
        if role == PageRole::Item && found == 0 {
            self.rejections.push(Rejection {
                source_id: Some(url.to_string()),
                reason: format!(
                    "item page {url} has no schema.org {} node",
                    match self.kind {
                        RecordKind::Events => "Event",
                        RecordKind::Organisations => "Organization",
                    }
                ),
            });
        }
        if role != PageRole::Item {
            links.extend(page.next.map(PageRequest::listing));
        }
        Ok(links)
    }

    /// One top-level microdata/RDFa node, read as a JSON-LD node would be.
    fn markup_node(
        &mut self,
        url: &str,
        role: PageRole,
        node: &Value,
        links: &mut Vec<PageRequest>,
        found: &mut usize,
    ) {
        if schema_org::types(node).iter().any(|t| t == "ItemList") {
            if role != PageRole::Item {
                links.extend(self.item_list(url, node, found));
            }
        } else if self.wanted(node) {
            *found += 1;
            self.node(url, node, *found);
        } else if self.kind == RecordKind::Events {
            for event in schema_org::nested_events(node) {
                *found += 1;
                self.node(url, &event, *found);
            }
        }
    }

    /// An `ItemList`'s entries: embedded nodes are records now; bare URLs are item pages to fetch.
    fn item_list(&mut self, url: &str, list: &Value, found: &mut usize) -> Vec<PageRequest> {
        let entries: Vec<&Value> = match list.get("itemListElement") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v) => vec![v],
            None => Vec::new(),
        };
        let mut links = Vec::new();
        for entry in entries {
            let item = entry.get("item").unwrap_or(entry);
            // A summary complete enough to stand on its own needs no second request for its page.
            let complete = self.kind == RecordKind::Organisations
                || item.get("startDate").is_some()
                || item.get("eventSchedule").is_some();
            if item.is_object() && self.wanted(item) && complete {
                *found += 1;
                self.node(url, item, *found);
                continue;
            }
            let link = match item {
                Value::String(s) => Some(s.clone()),
                _ => item
                    .get("url")
                    .or_else(|| entry.get("url"))
                    .or_else(|| item.get("@id"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            if let Some(link) = link.filter(|l| !l.trim().is_empty()) {
                links.push(PageRequest {
                    link,
                    role: PageRole::Item,
                });
            }
        }
        links
    }

    fn node(&mut self, page_url: &str, node: &Value, n: usize) {
        let id = ["url", "@id", "identifier"]
            .iter()
            .find_map(|k| node.get(*k).and_then(Value::as_str))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("{page_url}#{n}"));
        let mut notes = Vec::new();
        let payload = match self.kind {
            RecordKind::Events => {
                schema_org::event_noting(node, None, &mut notes).map(Payload::Event)
            }
            RecordKind::Organisations => {
                schema_org::organisation_noting(node, &mut notes).map(Payload::Organisation)
            }
        };
        if payload.is_ok() {
            self.warnings
                .extend(notes.into_iter().map(|reason| Rejection {
                    source_id: Some(id.clone()),
                    reason,
                }));
        }
        match payload {
            Ok(payload) => self.records.put(SourceRecord {
                source_id: id,
                url: node
                    .get("url")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| Some(page_url.to_string()).filter(|u| u.starts_with("http"))),
                updated_at: None,
                payload,
            }),
            Err(reason) => self.rejections.push(Rejection {
                source_id: Some(id),
                reason,
            }),
        }
    }

    pub fn finish(self) -> Harvested {
        let mut out = Harvested::whole(self.records.into_records(), self.rejections);
        out.parsed.warnings = self.warnings;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"<!doctype html><html><head><title>Events</title>
        <script type="application/ld+json">{"@context":"https://schema.org","@type":"ItemList","itemListElement":[
          {"@type":"ListItem","position":1,"url":"https://cvs.example.org/events/anchor/"},
          {"@type":"ListItem","position":2,"item":{"@type":"Event","name":"Funding Fair","url":"https://cvs.example.org/events/fair/","startDate":"2027-02-10T10:00:00+00:00"}}]}</script>
        <link rel="next" href="/events/page/2/"></head><body><h1>Events</h1></body></html>"#;

    const ITEM: &str = r#"<html><head><script type="application/ld+json">
        {"@context":"https://schema.org","@graph":[{"@type":"WebPage","name":"Anchor"},
         {"@type":"Event","name":"Next Steps in Developing Anchor Institutions in our Region","url":"https://cvs.example.org/events/anchor/",
          "startDate":"2022-01-25T13:00:00Z","endDate":"2022-01-25T15:00:00Z","organizer":{"@type":"Organization","name":"Cheshire East CVS"}}]}
        </script></head></html>"#;

    #[test]
    fn listing_links_items_and_next_page() {
        let mut h = Harvest::new(RecordKind::Events);
        let links = h
            .add_page(
                "https://cvs.example.org/events/",
                PageRole::Listing,
                LISTING.as_bytes(),
            )
            .unwrap();
        let got: Vec<(&str, PageRole)> = links.iter().map(|l| (l.link.as_str(), l.role)).collect();
        assert_eq!(
            got,
            vec![
                ("https://cvs.example.org/events/anchor/", PageRole::Item),
                ("/events/page/2/", PageRole::Listing),
            ]
        );
        h.add_page(
            "https://cvs.example.org/events/anchor/",
            PageRole::Item,
            ITEM.as_bytes(),
        )
        .unwrap();
        h.add_page(
            "https://cvs.example.org/events/moved/",
            PageRole::Item,
            b"<html>moved</html>",
        )
        .unwrap();
        let out = h.finish();
        let ids: Vec<&str> = out
            .parsed
            .records
            .iter()
            .map(|r| r.source_id.as_str())
            .collect();
        assert_eq!(
            ids,
            vec![
                "https://cvs.example.org/events/fair/",
                "https://cvs.example.org/events/anchor/"
            ]
        );
        assert_eq!(
            out.parsed.rejections.len(),
            1,
            "{:?}",
            out.parsed.rejections
        );
    }

    #[test]
    fn microdata_and_rdfa_pages_are_read_like_json_ld() {
        let page = br#"<html><body>
          <div itemscope itemtype="http://schema.org/TheaterEvent">
            <span itemprop="name">Hamlet</span>
            <meta itemprop="startDate" content="2027-04-01T19:30:00+01:00">
            <div itemprop="location" itemscope itemtype="http://schema.org/PerformingArtsTheater">
              <span itemprop="name">Lyceum</span></div></div>
          <div vocab="https://schema.org/" typeof="Restaurant"><span property="name">Fish Shed</span></div>
        </body></html>"#;
        let mut h = Harvest::new(RecordKind::Events);
        h.add_page("https://ex.org/whats-on", PageRole::Listing, page)
            .unwrap();
        let out = h.finish();
        let titles: Vec<String> = out
            .parsed
            .records
            .iter()
            .map(|r| match &r.payload {
                Payload::Event(e) => format!(
                    "{} {} @ {:?}",
                    e.title,
                    e.start.to_rfc3339(),
                    e.location.name
                ),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            titles,
            vec!["Hamlet 2027-04-01T19:30:00+01:00 @ Some(\"Lyceum\")".to_string()],
            "{:?}",
            out.parsed.rejections
        );
        let mut h = Harvest::new(RecordKind::Organisations);
        h.add_page("https://ex.org/whats-on", PageRole::Listing, page)
            .unwrap();
        let out = h.finish();
        assert_eq!(out.parsed.records.len(), 1, "{:?}", out.parsed.rejections);

        // Structured data of no interest: the page syncs, with nothing in it.
        let mut h = Harvest::new(RecordKind::Events);
        let product = br#"<div itemscope itemtype="http://schema.org/Product"><span itemprop="name">Kettle</span></div>"#;
        h.add_page("https://ex.org/p", PageRole::Listing, product)
            .unwrap();
        assert!(h.finish().parsed.records.is_empty());
    }

    #[test]
    fn a_page_without_json_ld_is_not_this_format() {
        let mut h = Harvest::new(RecordKind::Events);
        assert!(h
            .add_page("u", PageRole::Listing, b"<html><p>hello</p></html>")
            .is_err());
    }

    #[test]
    fn events_under_an_organisations_event_property_land() {
        let page = r#"<script type="application/ld+json">{"@context":"https://schema.org",
            "@type":"NGO","name":"Hull CVS","url":"https://hullcvs.example.org/",
            "event":[{"@type":"Event","name":"Volunteers' week","url":"https://hullcvs.example.org/vw",
                      "startDate":"2027-06-01T10:00:00+0100","endDate":"2027-06-07"}]}</script>"#;
        let mut h = Harvest::new(RecordKind::Events);
        h.add_page(
            "https://hullcvs.example.org/",
            PageRole::Listing,
            page.as_bytes(),
        )
        .unwrap();
        let out = h.finish();
        assert_eq!(out.parsed.records.len(), 1, "{:?}", out.parsed.rejections);
        let Payload::Event(e) = &out.parsed.records[0].payload else {
            panic!()
        };
        assert_eq!(e.organiser.name.as_deref(), Some("Hull CVS"));
        assert_eq!(e.end.unwrap().to_rfc3339(), "2027-06-08T00:00:00+01:00");
    }

    #[test]
    fn json_ld_nested_100000_deep_is_a_rejection_not_a_crash() {
        let depth = 100_000;
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let page = format!(
            r#"<script type="application/ld+json">{deep}</script>
               <script type="application/ld+json">{{"@type":"Event","name":"Fair","startDate":"2027-01-01"}}</script>"#
        );
        let mut h = Harvest::new(RecordKind::Events);
        h.add_page("https://x.example/", PageRole::Listing, page.as_bytes())
            .unwrap();
        let out = h.finish();
        assert_eq!(out.parsed.records.len(), 1);
        assert!(
            out.parsed.rejections[0].reason.contains("recursion limit"),
            "{:?}",
            out.parsed.rejections
        );
    }
}
