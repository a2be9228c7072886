//! The review queue page: one uncertain pair at a time, most consequential first, filtered by kind
//! and partner; both records field by field with agreement marked in words, both clusters, the
//! evidence, and Same / Different / Skip forms (keyboard shortcuts as a small script on top).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;

use super::session::SignedIn;
use super::{enc, failure, page, see_other, BASE};
use crate::model::RecordKind;
use crate::server::{blocking, ApiError, AppState};
use crate::store::review::{self, ReviewItem, ReviewRecord};

#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    kind: Option<String>,
    partner: Option<String>,
    cursor: Option<String>,
    settled: Option<i64>,
    #[serde(rename = "as")]
    settled_as: Option<String>,
}

/// The filters as they came, each empty string meaning "any".
struct Filters {
    kind: Option<RecordKind>,
    partner: Option<String>,
}

impl Filters {
    fn parse(
        state: &AppState,
        kind: Option<&str>,
        partner: Option<&str>,
    ) -> Result<Filters, ApiError> {
        let kind = match kind.filter(|k| !k.is_empty()) {
            None => None,
            Some(k) => Some(RecordKind::parse(k).ok_or_else(|| {
                ApiError::bad_param("kind", format!("{k:?} must be organisations or events"))
            })?),
        };
        let partner = partner.filter(|p| !p.is_empty()).map(str::to_string);
        if let Some(p) = &partner {
            if state.config().partner(p).is_none() {
                return Err(ApiError::bad_param(
                    "partner",
                    format!("{p:?} is not a configured partner"),
                ));
            }
        }
        Ok(Filters { kind, partner })
    }

    fn query(&self, cursor: Option<&str>) -> String {
        format!(
            "{BASE}/review?kind={}&partner={}{}",
            self.kind.map(|k| k.as_str()).unwrap_or(""),
            enc(self.partner.as_deref().unwrap_or("")),
            cursor
                .map(|c| format!("&cursor={}", enc(c)))
                .unwrap_or_default()
        )
    }
}

/// `GET /admin/console/review`.
pub async fn queue(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<QueueQuery>,
) -> Response {
    let filters = match Filters::parse(&state, q.kind.as_deref(), q.partner.as_deref()) {
        Ok(f) => f,
        Err(e) => return failure(e),
    };
    let cursor = q.cursor.clone().filter(|c| !c.is_empty());
    if let Some(c) = cursor.as_deref().filter(|c| !review::valid_cursor(c)) {
        return failure(ApiError::bad_param(
            "cursor",
            format!("{c:?} is not a cursor this queue issued"),
        ));
    }
    let st = state.clone();
    let (kind, partner) = (filters.kind, filters.partner.clone());
    let found = blocking(move || {
        let conn = st.store.reader()?;
        let settings = st.config().dedupe;
        let total = crate::store::console::open_count(&conn, kind, partner.as_deref())?;
        let item = crate::store::console::next_item(
            &conn,
            kind,
            partner.as_deref(),
            cursor.as_deref(),
            &|w, a, b| crate::dedupe::review_priority(w, a, b, &settings),
        )?;
        Ok((total, item))
    })
    .await;
    let (total, item) = match found {
        Ok(v) => v,
        Err(e) => return failure(e),
    };
    let partners: Vec<String> = state
        .config()
        .partners
        .iter()
        .map(|p| p.id.to_string())
        .collect();
    let settled = q.settled.map(|id| (id, q.settled_as.unwrap_or_default()));
    render(
        &signed.session.csrf,
        &filters,
        &partners,
        q.cursor.as_deref(),
        total,
        item.as_ref(),
        settled,
    )
    .into_response()
}

fn render(
    csrf: &str,
    filters: &Filters,
    partners: &[String],
    at: Option<&str>,
    total: usize,
    item: Option<&ReviewItem>,
    settled: Option<(i64, String)>,
) -> super::Page {
    page(
        "Review queue",
        Some(csrf),
        html! {
            h1 { "Review queue" }
            @if let Some((id, how)) = settled {
                p role="status" #settled { "Pair " (id) " " (how) "." }
            }
            form method="get" action={ (BASE) "/review" } aria-label="Filter the queue" {
                label for="kind" { "Kind " }
                select #kind name="kind" {
                    option value="" selected[filters.kind.is_none()] { "all" }
                    @for k in [RecordKind::Organisations, RecordKind::Events] {
                        option value=(k.as_str()) selected[filters.kind == Some(k)] { (k.as_str()) }
                    }
                }
                " "
                label for="partner" { "Partner " }
                select #partner name="partner" {
                    option value="" selected[filters.partner.is_none()] { "any" }
                    @for p in partners {
                        option value=(p) selected[filters.partner.as_deref() == Some(p.as_str())] { (p) }
                    }
                }
                " "
                button type="submit" { "Filter" }
            }
            p #open-count { (total) " open " @if total == 1 { "pair matches" } @else { "pairs match" } " these filters." }
            @match item {
                None => {
                    p #queue-empty { "Nothing left to review here." }
                    @if at.is_some() { p { a href=(filters.query(None)) { "Back to the start of the queue" } } }
                }
                Some(item) => { (pair(csrf, filters, at, item)) }
            }
        },
    )
}

fn side_label(r: &ReviewRecord) -> Markup {
    html! { (r.partner) " · " code { (r.record_id) } }
}

fn pair(csrf: &str, filters: &Filters, at: Option<&str>, item: &ReviewItem) -> Markup {
    let fields = compare(&item.a.record, &item.b.record);
    let next = review::cursor_after(item);
    html! {
        section #pair aria-labelledby="pair-title" data-id=(item.id) {
            h2 #pair-title { "Pair " (item.id) ": are these the same " (item.kind.trim_end_matches('s')) "?" }
            p { "Match weight " (format!("{:.1}", item.score)) " (between the automatic merge and review thresholds)." }
            h3 { "Evidence" }
            ul #evidence {
                @for e in &item.evidence { li { (e) } }
                @if item.evidence.is_empty() { li { "No evidence was recorded for this pair." } }
            }
            h3 { "The two records" }
            div.scroll {
                table #fields {
                    caption.sr-only { "Fields of both records side by side" }
                    thead { tr {
                        th scope="col" { "Field" }
                        th scope="col" { "A: " (side_label(&item.a)) }
                        th scope="col" { "B: " (side_label(&item.b)) }
                        th scope="col" { "Match" }
                    } }
                    tbody {
                        @for (name, a, b) in &fields {
                            @let (class, mark) = agreement(a.as_deref(), b.as_deref());
                            tr class=(class) {
                                th scope="row" { code { (name) } }
                                td { (a.as_deref().unwrap_or("—")) }
                                td { (b.as_deref().unwrap_or("—")) }
                                td.mark { (mark) }
                            }
                        }
                    }
                }
            }
            h3 { "Their clusters (what Same would join)" }
            div.pair #clusters {
                (cluster("A", &item.a, &item.cluster_a))
                (cluster("B", &item.b, &item.cluster_b))
            }
            form method="post" action={ (BASE) "/review/" (item.id) } #decide {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="at" value=(at.unwrap_or(""));
                input type="hidden" name="next" value=(next);
                input type="hidden" name="kind" value=(filters.kind.map(|k| k.as_str()).unwrap_or(""));
                input type="hidden" name="partner" value=(filters.partner.as_deref().unwrap_or(""));
                div.actions {
                    button.primary type="submit" name="decision" value="same" #same { "Same" }
                    button type="submit" name="decision" value="different" #different { "Different" }
                    button type="submit" name="decision" value="skip" #skip { "Skip" }
                }
                p.hint { "Keys: " kbd { "s" } " same, " kbd { "d" } " different, " kbd { "k" } " skip. A decision applies at once and is kept across syncs." }
            }
            script { (PreEscaped(SHORTCUTS)) }
        }
    }
}

/// Keyboard shortcuts: a key presses the matching button, except while typing in a field.
const SHORTCUTS: &str = "document.addEventListener('keydown',function(e){\
if(e.ctrlKey||e.metaKey||e.altKey)return;var t=e.target&&e.target.tagName;\
if(t==='INPUT'||t==='SELECT'||t==='TEXTAREA')return;\
var id={s:'same',d:'different',k:'skip'}[e.key];var b=id&&document.getElementById(id);\
if(b){e.preventDefault();b.click();}});";

fn cluster(label: &str, side: &ReviewRecord, c: &review::ClusterView) -> Markup {
    html! {
        div {
            h4 {
                (label) " is in "
                @match &side.entity_id {
                    Some(id) => { a href={ (BASE) "/entities/" (enc(id)) } { code { (id) } } }
                    None => { "no entity yet" }
                }
                ": " (c.size) " partner "
                @if c.size == 1 { "record" } @else { "records" }
            }
            ul {
                @for m in &c.members {
                    li { (m.partner) " · " code { (m.record_id) } " — " (name_of(&m.record)) }
                }
                @if c.size > c.members.len() { li { "… and " (c.size - c.members.len()) " more" } }
            }
        }
    }
}

pub(super) fn name_of(record: &serde_json::Value) -> String {
    ["name", "title", "summary"]
        .iter()
        .find_map(|k| record.get(k).and_then(|v| v.as_str()))
        .unwrap_or("(no name)")
        .to_string()
}

/// Fields shown per record at most, and characters per value: outside data is bounded.
const MAX_FIELDS: usize = 200;
const MAX_VALUE: usize = 600;

/// Every scalar of a record as `dotted.path → text`.
pub(super) fn flatten(
    prefix: &str,
    v: &serde_json::Value,
    out: &mut BTreeMap<String, String>,
    depth: usize,
) {
    if out.len() >= MAX_FIELDS || depth > 8 {
        return;
    }
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        serde_json::Value::Null => {}
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&key(k), v, out, depth + 1);
            }
        }
        serde_json::Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            if !a.is_empty() {
                let text: Vec<String> = a.iter().map(scalar).collect();
                out.insert(prefix.to_string(), clip(text.join(", ")));
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&key(&i.to_string()), v, out, depth + 1);
            }
        }
        other => {
            out.insert(prefix.to_string(), clip(scalar(other)));
        }
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn clip(s: String) -> String {
    if s.chars().count() <= MAX_VALUE {
        return s;
    }
    let mut t: String = s.chars().take(MAX_VALUE).collect();
    t.push('…');
    t
}

/// Both records' fields, row by row: (field, A's value, B's value).
fn compare(
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Vec<(String, Option<String>, Option<String>)> {
    let (mut fa, mut fb) = (BTreeMap::new(), BTreeMap::new());
    flatten("", a, &mut fa, 0);
    flatten("", b, &mut fb, 0);
    let mut names: Vec<String> = fa.keys().chain(fb.keys()).cloned().collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| {
            let (x, y) = (fa.get(&n).cloned(), fb.get(&n).cloned());
            (n, x, y)
        })
        .collect()
}

fn folded(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A row's class and its mark in words (colour only repeats what the words say).
fn agreement(a: Option<&str>, b: Option<&str>) -> (&'static str, &'static str) {
    match (a, b) {
        (Some(x), Some(y)) if folded(x) == folded(y) => ("agree", "✓ agree"),
        (Some(_), Some(_)) => ("differ", "✗ differ"),
        (Some(_), None) => ("", "only A"),
        (None, Some(_)) => ("", "only B"),
        (None, None) => ("", ""),
    }
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    csrf: String,
    decision: String,
    #[serde(default)]
    at: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    partner: String,
}

/// `POST /admin/console/review/{id}`: Same or Different applies at once and shows the next pair
/// (the queue from where this one stood); Skip moves past it.
pub async fn decide(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<i64>,
    Form(form): Form<DecisionForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r.into_response();
    }
    let filters = match Filters::parse(&state, Some(&form.kind), Some(&form.partner)) {
        Ok(f) => f,
        Err(e) => return failure(e),
    };
    let cursor_ok = |c: &str| c.is_empty() || review::valid_cursor(c);
    if !cursor_ok(&form.at) || !cursor_ok(&form.next) {
        return failure(ApiError::bad_param(
            "cursor",
            "not a cursor this queue issued",
        ));
    }
    let same = match form.decision.as_str() {
        "same" => true,
        "different" => false,
        "skip" => {
            return see_other(
                filters.query(
                    Some(&form.next)
                        .filter(|c| !c.is_empty())
                        .map(String::as_str),
                ),
            )
        }
        other => {
            return failure(ApiError::bad_param(
                "decision",
                format!("{other:?} must be same, different or skip"),
            ))
        }
    };
    let st = state.clone();
    let found = match blocking(move || Ok(review::item(&*st.store.reader()?, id)?)).await {
        Ok(f) => f,
        Err(e) => return failure(e),
    };
    let Some((kind, a, b)) = found else {
        return failure(ApiError::not_found(format!(
            "Pair {id} is no longer open (another admin or a later sync settled it)."
        )));
    };
    let stats = match crate::server::admin::apply_decisions(&state, kind, vec![(a, b, same)]).await
    {
        Ok(s) => s,
        Err(e) => return failure(e),
    };
    tracing::info!(
        review = id,
        same,
        merged = stats.merged,
        "admin console review decision"
    );
    let how = if same {
        "settled as the same"
    } else {
        "settled as different"
    };
    let at = Some(form.at.as_str()).filter(|c| !c.is_empty());
    see_other(format!(
        "{}&settled={id}&as={}",
        filters.query(at),
        enc(how)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_fields_in_words() {
        let a = serde_json::json!({"name": "Hull Food Bank", "address": {"postcode": "HU1 1AA"}, "tags": ["a", "b"]});
        let b = serde_json::json!({"name": "hull  food bank", "address": {"postcode": "HU2 2BB"}, "website": "x"});
        let rows = compare(&a, &b);
        let marks: Vec<(&str, &str)> = rows
            .iter()
            .map(|(n, x, y)| (n.as_str(), agreement(x.as_deref(), y.as_deref()).1))
            .collect();
        assert_eq!(
            marks,
            vec![
                ("address.postcode", "✗ differ"),
                ("name", "✓ agree"),
                ("tags", "only A"),
                ("website", "only B"),
            ]
        );
    }

    #[test]
    fn escapes_record_values() {
        let a = serde_json::json!({"name": "<script>x</script>"});
        let item = ReviewItem {
            id: 1,
            kind: "organisations".into(),
            score: 5.0,
            priority: 1.0,
            evidence: vec!["names <b>agree</b>".into()],
            a: ReviewRecord {
                partner: "p".into(),
                record_id: "1".into(),
                entity_id: None,
                record: a.clone(),
            },
            b: ReviewRecord {
                partner: "q".into(),
                record_id: "2".into(),
                entity_id: None,
                record: a,
            },
            cluster_a: review::ClusterView {
                size: 1,
                members: vec![],
            },
            cluster_b: review::ClusterView {
                size: 1,
                members: vec![],
            },
            created_at: String::new(),
        };
        let f = Filters {
            kind: None,
            partner: None,
        };
        let html = pair("t", &f, None, &item).into_string();
        assert!(!html.contains("<script>x"));
        assert!(!html.contains("<b>agree"));
    }
}
