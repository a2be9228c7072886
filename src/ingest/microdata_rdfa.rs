//! schema.org data written into a page's markup instead of a JSON-LD block: WHATWG microdata
//! (`itemscope`/`itemtype`/`itemprop`/`itemref`) and RDFa Lite 1.1 (`vocab`/`typeof`/`property`/
//! `resource`/`prefix`), read into the JSON-LD node shape [`super::schema_org`] maps.

use std::collections::{HashMap, HashSet};

use scraper::{ElementRef, Html};
use serde_json::{Map, Value};

use super::html;

/// Items (microdata items and RDFa typed resources) read from one page; past it the rest of the
/// page is ignored and the caller says so.
pub const MAX_ITEMS: usize = 5_000;
/// Items nested deeper than this inside another item are left out of it.
pub const MAX_NESTING: usize = 16;
/// Elements visited while collecting microdata properties, over the whole page: `itemref` can
/// point many items at one large subtree, so the work is bounded by a budget, not by page size.
const MAX_STEPS: usize = 2_000_000;

/// What a page's markup carries.
#[derive(Debug, Default)]
pub struct Found {
    /// Top-level items as JSON-LD-shaped nodes; `@type` holds only schema.org types.
    pub nodes: Vec<Value>,
    /// Microdata items and RDFa typed resources of any vocabulary: a page with some is a
    /// structured-data page even when none of them is schema.org.
    pub items: usize,
    /// Whether a bound ([`MAX_ITEMS`], the step budget) cut the reading short.
    pub truncated: bool,
}

#[derive(Clone)]
enum Val {
    Text(String),
    Item(usize),
}

struct Item {
    types: Vec<String>,
    id: Option<String>,
    props: Vec<(String, Val)>,
}

struct Reader<'a> {
    base: Option<url::Url>,
    items: Vec<Item>,
    by_id: HashMap<String, ElementRef<'a>>,
    order: HashMap<ego_tree::NodeId, usize>,
    steps: usize,
    truncated: bool,
}

/// Reads the microdata and RDFa Lite items of `page` (fetched from `url`, against which relative
/// links resolve).
pub fn read(url: &str, page: &str) -> Found {
    if !page.contains("itemscope") && !page.contains("typeof") {
        return Found::default();
    }
    let doc = Html::parse_document(&html::bounded(page));
    let mut r = Reader {
        base: url::Url::parse(url).ok(),
        items: Vec::new(),
        by_id: HashMap::new(),
        order: HashMap::new(),
        steps: 0,
        truncated: false,
    };
    for (i, el) in doc
        .root_element()
        .descendants()
        .filter_map(ElementRef::wrap)
        .enumerate()
    {
        r.order.insert(el.id(), i);
        if let Some(id) = el.value().attr("id") {
            r.by_id.entry(id.to_string()).or_insert(el);
        }
    }
    let mut tops = r.microdata(&doc);
    let mut rdfa_tops = Vec::new();
    r.rdfa(doc.root_element(), &Scope::default(), None, &mut rdfa_tops);
    tops.extend(rdfa_tops);
    let nodes = tops
        .into_iter()
        .filter_map(|i| r.to_json(i, 0))
        .filter(|n| n.get("@type").is_some())
        .collect();
    Found {
        nodes,
        items: r.items.len(),
        truncated: r.truncated,
    }
}

/// The schema.org term an IRI names (`http://schema.org/Event` → `Event`).
fn schema_term(iri: &str) -> Option<String> {
    let rest = ["https://", "http://"]
        .iter()
        .find_map(|s| iri.trim().strip_prefix(s))?;
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let term = rest.strip_prefix("schema.org/")?.trim_matches('/');
    (!term.is_empty() && !term.contains(['/', '#', '?'])).then(|| term.to_string())
}

impl<'a> Reader<'a> {
    fn new_item(&mut self, types: Vec<String>, id: Option<String>) -> Option<usize> {
        if self.items.len() >= MAX_ITEMS {
            self.truncated = true;
            return None;
        }
        self.items.push(Item {
            types,
            id,
            props: Vec::new(),
        });
        Some(self.items.len() - 1)
    }

    fn absolute(&self, link: &str) -> String {
        let link = link.trim();
        self.base
            .as_ref()
            .and_then(|b| b.join(link).ok())
            .map(|u| u.to_string())
            .unwrap_or_else(|| link.to_string())
    }

    fn put(&mut self, item: usize, name: String, value: Val) {
        if let Some(it) = self.items.get_mut(item) {
            it.props.push((name, value));
        }
    }

    // ---------------------------------------------------------------- microdata (WHATWG)

    /// Top-level items: `itemscope` elements that are not themselves another item's property.
    fn microdata(&mut self, doc: &'a Html) -> Vec<usize> {
        let mut tops = Vec::new();
        for el in doc
            .root_element()
            .descendants()
            .filter_map(ElementRef::wrap)
        {
            let v = el.value();
            if v.attr("itemscope").is_some() && v.attr("itemprop").is_none() {
                if let Some(i) = self.microdata_item(el, 0) {
                    tops.push(i);
                }
            }
        }
        tops
    }

    fn microdata_item(&mut self, el: ElementRef<'a>, depth: usize) -> Option<usize> {
        let v = el.value();
        let types = v
            .attr("itemtype")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(schema_term)
            .collect();
        let id = v.attr("itemid").map(|i| self.absolute(i));
        let idx = self.new_item(types, id)?;
        for (names, prop) in self.properties(el) {
            let value = if prop.value().attr("itemscope").is_some() {
                if depth >= MAX_NESTING {
                    continue;
                }
                match self.microdata_item(prop, depth + 1) {
                    Some(i) => Val::Item(i),
                    None => continue,
                }
            } else {
                Val::Text(self.microdata_value(prop))
            };
            for name in names.split_whitespace() {
                if let Some(name) = property_name(name) {
                    self.put(idx, name, value.clone());
                }
            }
        }
        Some(idx)
    }

    /// The item's properties in tree order: its descendants (not crossing into nested items)
    /// and those of the elements its `itemref` names, each with its `itemprop` names.
    fn properties(&mut self, root: ElementRef<'a>) -> Vec<(String, ElementRef<'a>)> {
        let mut pending: Vec<ElementRef<'a>> =
            root.children().filter_map(ElementRef::wrap).collect();
        for r in root
            .value()
            .attr("itemref")
            .unwrap_or_default()
            .split_whitespace()
        {
            if let Some(e) = self.by_id.get(r) {
                pending.push(*e);
            }
        }
        let mut seen = HashSet::new();
        let mut props = Vec::new();
        while let Some(e) = pending.pop() {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                self.truncated = true;
                break;
            }
            if e.id() == root.id() || !seen.insert(e.id()) {
                continue;
            }
            if let Some(names) = e.value().attr("itemprop") {
                props.push((names.to_string(), e));
            }
            if e.value().attr("itemscope").is_none() {
                pending.extend(e.children().filter_map(ElementRef::wrap));
            }
        }
        props.sort_by_key(|(_, e)| self.order.get(&e.id()).copied().unwrap_or(usize::MAX));
        props
    }

    /// A property's value by its element, as the microdata algorithm defines it.
    fn microdata_value(&self, e: ElementRef<'a>) -> String {
        let v = e.value();
        let attr = |a: &str| v.attr(a).unwrap_or_default().to_string();
        match v.name() {
            "meta" => attr("content"),
            "audio" | "embed" | "iframe" | "img" | "source" | "track" | "video" => {
                v.attr("src").map(|s| self.absolute(s)).unwrap_or_default()
            }
            "a" | "area" | "link" => v.attr("href").map(|s| self.absolute(s)).unwrap_or_default(),
            "object" => v.attr("data").map(|s| self.absolute(s)).unwrap_or_default(),
            "data" | "meter" => attr("value"),
            "time" => v
                .attr("datetime")
                .map(str::to_string)
                .unwrap_or_else(|| text(e)),
            // Not in the microdata algorithm, but schema.org's own examples (and the readers
            // search engines run) take `content` on any element over its text.
            _ => v
                .attr("content")
                .map(str::to_string)
                .unwrap_or_else(|| text(e)),
        }
    }

    // ---------------------------------------------------------------- RDFa Lite 1.1

    /// Walks the tree keeping the in-scope vocabulary and prefixes; `subject` is the typed
    /// resource whose properties the element's `property` adds to.
    fn rdfa(
        &mut self,
        el: ElementRef<'a>,
        scope: &Scope,
        subject: Option<usize>,
        tops: &mut Vec<usize>,
    ) {
        let v = el.value();
        let local;
        let scope = if v.attr("vocab").is_some() || v.attr("prefix").is_some() {
            local = scope.within(v.attr("vocab"), v.attr("prefix"));
            &local
        } else {
            scope
        };
        let mut here = subject;
        let properties: Vec<String> = v
            .attr("property")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| scope.expand(p))
            .filter_map(|iri| schema_term(&iri))
            .collect();
        if let Some(typeof_) = v.attr("typeof") {
            let types = typeof_
                .split_whitespace()
                .filter_map(|t| scope.expand(t))
                .filter_map(|iri| schema_term(&iri))
                .collect();
            let id = ["resource", "href", "src"]
                .iter()
                .find_map(|a| v.attr(a))
                .map(|r| self.absolute(r));
            if let Some(idx) = self.new_item(types, id) {
                match subject {
                    Some(parent) if v.attr("property").is_some() => {
                        for p in properties {
                            self.put(parent, p, Val::Item(idx));
                        }
                    }
                    _ => tops.push(idx),
                }
                here = Some(idx);
            }
        } else if let Some(parent) = subject {
            if !properties.is_empty() {
                let value = self.rdfa_value(el);
                for p in properties {
                    self.put(parent, p, Val::Text(value.clone()));
                }
            }
        }
        for child in el.children().filter_map(ElementRef::wrap) {
            if self.truncated {
                return;
            }
            self.rdfa(child, scope, here, tops);
        }
    }

    fn rdfa_value(&self, e: ElementRef<'a>) -> String {
        let v = e.value();
        if let Some(c) = v.attr("content") {
            return c.to_string();
        }
        if let Some(d) = v.attr("datetime") {
            return d.to_string();
        }
        if let Some(r) = ["resource", "href", "src"].iter().find_map(|a| v.attr(a)) {
            return self.absolute(r);
        }
        text(e)
    }

    // ---------------------------------------------------------------- to JSON-LD shape

    fn to_json(&self, idx: usize, depth: usize) -> Option<Value> {
        let item = self.items.get(idx)?;
        let mut m = Map::new();
        match item.types.as_slice() {
            [] => {}
            [one] => {
                m.insert("@type".into(), Value::String(one.clone()));
            }
            many => {
                m.insert(
                    "@type".into(),
                    Value::Array(many.iter().cloned().map(Value::String).collect()),
                );
            }
        }
        if let Some(id) = &item.id {
            m.insert("@id".into(), Value::String(id.clone()));
        }
        for (name, val) in &item.props {
            let value = match val {
                Val::Text(t) => Value::String(t.clone()),
                Val::Item(i) if depth < MAX_NESTING => match self.to_json(*i, depth + 1) {
                    Some(v) => v,
                    None => continue,
                },
                Val::Item(_) => continue,
            };
            match m.get_mut(name) {
                Some(Value::Array(a)) if name != "@type" => a.push(value),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, value]);
                }
                None => {
                    m.insert(name.clone(), value);
                }
            }
        }
        Some(Value::Object(m))
    }
}

/// A microdata property name as a schema.org term: a plain name, or a schema.org IRI; names in
/// other vocabularies (absolute IRIs elsewhere) are not schema.org's.
fn property_name(name: &str) -> Option<String> {
    if name.contains(':') {
        return schema_term(name);
    }
    Some(name.to_string())
}

/// An element's text content, whitespace collapsed.
fn text(e: ElementRef) -> String {
    e.text()
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

/// RDFa's in-scope vocabulary and prefix mappings.
#[derive(Clone)]
struct Scope {
    vocab: Option<String>,
    prefixes: HashMap<String, String>,
}

impl Default for Scope {
    /// RDFa 1.1's initial context binds `schema:` (among others that are not schema.org's).
    fn default() -> Scope {
        Scope {
            vocab: None,
            prefixes: HashMap::from([("schema".to_string(), "http://schema.org/".to_string())]),
        }
    }
}

impl Scope {
    fn within(&self, vocab: Option<&str>, prefix: Option<&str>) -> Scope {
        let mut s = self.clone();
        if let Some(v) = vocab {
            let v = v.trim();
            s.vocab = (!v.is_empty()).then(|| v.to_string());
        }
        if let Some(p) = prefix {
            let tokens: Vec<&str> = p.split_whitespace().collect();
            for pair in tokens.chunks(2) {
                if let [name, iri] = pair {
                    if let Some(name) = name.strip_suffix(':') {
                        s.prefixes
                            .insert(name.to_ascii_lowercase(), iri.to_string());
                    }
                }
            }
        }
        s
    }

    /// A term, CURIE or IRI as a full IRI.
    fn expand(&self, term: &str) -> Option<String> {
        if term.starts_with("http://") || term.starts_with("https://") {
            return Some(term.to_string());
        }
        if let Some((prefix, rest)) = term.split_once(':') {
            return self
                .prefixes
                .get(&prefix.to_ascii_lowercase())
                .map(|iri| format!("{iri}{rest}"));
        }
        self.vocab.as_ref().map(|v| format!("{v}{term}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microdata_event_with_nested_place_itemref_and_typed_values() {
        let page = r#"<html><body>
          <div itemscope itemtype="http://schema.org/Event" itemref="where">
            <a itemprop="url" href="/events/fair"><span itemprop="name">Funding  Fair</span></a>
            <meta itemprop="startDate" content="2027-02-10T10:00:00+00:00">
            <time itemprop="endDate" datetime="2027-02-10T12:00">noon</time>
            <p itemprop="description">Meet <b>funders</b></p>
            <div itemprop="offers" itemscope itemtype="http://schema.org/Offer"><span itemprop="name">Free</span></div>
          </div>
          <div id="where" itemprop="location" itemscope itemtype="https://schema.org/Place">
            <span itemprop="name">Crewe Library</span>
            <div itemprop="address" itemscope itemtype="http://schema.org/PostalAddress">
              <span itemprop="postalCode">CW1 2DD</span></div>
          </div>
          <div itemscope itemtype="http://example.org/vocab/Event"><span itemprop="name">Other</span></div>
          <div itemscope itemtype="http://schema.org/Event"><div itemprop="startDate" content="2027-03-01T10:00">1 March</div></div>
        </body></html>"#;
        let found = read("https://cvs.example.org/page", page);
        assert_eq!(found.items, 6);
        assert_eq!(found.nodes.len(), 2, "{:?}", found.nodes);
        assert_eq!(found.nodes[1]["startDate"], "2027-03-01T10:00");
        let e = &found.nodes[0];
        assert_eq!(e["@type"], "Event");
        assert_eq!(e["name"], "Funding Fair");
        assert_eq!(e["url"], "https://cvs.example.org/events/fair");
        assert_eq!(e["startDate"], "2027-02-10T10:00:00+00:00");
        assert_eq!(e["endDate"], "2027-02-10T12:00");
        assert_eq!(e["description"], "Meet funders");
        assert_eq!(e["offers"]["name"], "Free");
        assert_eq!(e["location"]["name"], "Crewe Library");
        assert_eq!(e["location"]["address"]["postalCode"], "CW1 2DD");
        // The foreign-vocabulary item and the itemref'd Place are not top-level schema.org nodes.
    }

    #[test]
    fn rdfa_lite_with_vocab_prefix_and_nested_resources() {
        let page = r#"<html><body prefix="s: https://schema.org/ dc: http://purl.org/dc/terms/">
          <div vocab="http://schema.org/" typeof="MusicEvent" resource="/gigs/1">
            <span property="name">Brass Night</span>
            <span property="startDate" content="2027-05-01T19:30:00+01:00">1 May</span>
            <div property="location" typeof="Place"><span property="name">Town Hall</span>
              <span property="dc:title">ignored</span></div>
          </div>
          <div typeof="s:SportsTeam"><span property="s:name">Crewe Alex</span></div>
          <div typeof="dc:Agent"><span property="dc:title">Not schema</span></div>
        </body></html>"#;
        let found = read("https://ex.org/", page);
        assert_eq!(found.items, 4);
        assert_eq!(found.nodes.len(), 2, "{:?}", found.nodes);
        let e = &found.nodes[0];
        assert_eq!(e["@type"], "MusicEvent");
        assert_eq!(e["@id"], "https://ex.org/gigs/1");
        assert_eq!(e["name"], "Brass Night");
        assert_eq!(e["startDate"], "2027-05-01T19:30:00+01:00");
        assert_eq!(e["location"]["name"], "Town Hall");
        assert!(e["location"].get("title").is_none());
        assert_eq!(found.nodes[1]["@type"], "SportsTeam");
        assert_eq!(found.nodes[1]["name"], "Crewe Alex");
    }

    #[test]
    fn a_page_without_items_yields_nothing_and_bounds_hold() {
        let plain = read("u", r#"<meta property="og:title" content="x"><p>hello</p>"#);
        assert_eq!((plain.items, plain.nodes.len()), (0, 0));

        let many = "<div itemscope itemtype=\"http://schema.org/Event\"><span itemprop=name>e</span></div>"
            .repeat(MAX_ITEMS + 10);
        let found = read("u", &many);
        assert!(found.truncated);
        assert_eq!(found.nodes.len(), MAX_ITEMS);

        // Items nested far deeper than the bound: read without a crash, nesting cut.
        let deep = format!(
            "{}x{}",
            "<div itemprop=\"location\" itemscope itemtype=\"http://schema.org/Place\">"
                .repeat(500),
            "</div>".repeat(500)
        );
        let page = format!("<div itemscope itemtype=\"http://schema.org/Event\">{deep}</div>");
        let found = read("u", &page);
        assert_eq!(found.nodes.len(), 1);
        let mut depth = 0;
        let mut n = &found.nodes[0];
        while let Some(next) = n.get("location") {
            n = next;
            depth += 1;
        }
        assert!(depth <= MAX_NESTING, "{depth}");
    }
}
