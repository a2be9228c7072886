//! The entity page: one merged organisation or event with the partner each field came from, its
//! partner records and change history, and split / merge-with, each through a confirmation page
//! before the form that applies it (the same changes as `POST /admin/split` and `/admin/merge`).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::review::{flatten, name_of};
use super::session::SignedIn;
use super::{enc, failure, page, see_other, BASE};
use crate::server::admin::{merge_entities, split_record, SplitRequest};
use crate::server::{blocking, ApiError, AppState};
use crate::store::console::{self, Change, MAX_MEMBERS};

/// Changes of an entity listed on its page.
const HISTORY: usize = 50;
/// Merge-chain steps followed to find where a merged-away id went.
const MAX_HOPS: usize = 16;

/// What the page shows of one live entity.
struct View {
    body: serde_json::Value,
    members: Vec<Member>,
    changes: Vec<Change>,
}

struct Member {
    partner: String,
    record_id: String,
    name: String,
}

enum Found {
    Live(Box<View>),
    /// Merged away: the id it answers to now.
    Moved(String),
    Gone,
}

fn valid_id(id: &str) -> bool {
    (id.starts_with("org_") || id.starts_with("evt_"))
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

async fn load(state: &AppState, id: &str) -> Result<Found, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::not_found(format!(
            "{id:?} is not a canonical id (org_… or evt_…)"
        )));
    }
    let (st, id) = (state.clone(), id.to_string());
    blocking(move || {
        let conn = st.store.reader()?;
        let Some(body) = crate::store::entities::live_body(&conn, &id)? else {
            return Ok(match console::live_id(&conn, &id, MAX_HOPS)? {
                Some(now) if now != id => Found::Moved(now),
                _ => Found::Gone,
            });
        };
        let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        let members = console::member_records(&conn, &id)?
            .into_iter()
            .map(|(_, partner, record_id, payload)| Member {
                partner,
                record_id,
                name: name_of(&serde_json::from_str(&payload).unwrap_or_default()),
            })
            .collect();
        let changes = console::entity_changes(&conn, &id, HISTORY)?;
        Ok(Found::Live(Box::new(View {
            body,
            members,
            changes,
        })))
    })
    .await
}

/// The published fields, each with the partner it was taken from (a nested field inherits its
/// top-level field's source).
fn fields(body: &serde_json::Value) -> Vec<(String, String, Option<String>)> {
    let sources: BTreeMap<String, String> = body
        .get("field_sources")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let mut shown = body.clone();
    if let Some(m) = shown.as_object_mut() {
        for k in ["id", "partners", "field_sources", "updated_at"] {
            m.remove(k);
        }
    }
    let mut flat = BTreeMap::new();
    flatten("", &shown, &mut flat, 0);
    flat.into_iter()
        .map(|(path, value)| {
            let top = path.split('.').next().unwrap_or(&path);
            let source = sources.get(&path).or_else(|| sources.get(top)).cloned();
            (path, value, source)
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
pub struct EntityQuery {
    done: Option<String>,
}

/// `GET /admin/console/entities/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<EntityQuery>,
) -> Response {
    let view = match load(&state, &id).await {
        Ok(Found::Live(v)) => v,
        Ok(Found::Moved(to)) => return see_other(format!("{BASE}/entities/{}", enc(&to))),
        Ok(Found::Gone) => {
            return failure(ApiError::not_found(format!(
                "{id} is not a live entity (withdrawn, or never existed)."
            )))
        }
        Err(e) => return failure(e),
    };
    let name = name_of(&view.body);
    let csrf = signed.session.csrf.as_str();
    page(
        &name,
        Some(csrf),
        html! {
            h1 { (name) " " code { (id) } }
            @if let Some(done) = &q.done { p.ok role="status" #done { (done) } }
            h2 { "Merged fields" }
            div.scroll { table #merged {
                thead { tr { th { "Field" } th { "Value" } th { "From partner" } } }
                tbody {
                    @for (field, value, source) in fields(&view.body) {
                        tr {
                            td { code { (field) } }
                            td { (value) }
                            td { (source.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            } }
            (members(&id, &view.members))
            (merge_form(&id))
            (history(&view.changes))
        },
    )
    .into_response()
}

fn members(id: &str, members: &[Member]) -> Markup {
    html! {
        h2 { "Partner records" }
        p { (members.len()) @if members.len() >= MAX_MEMBERS { " (the first " (MAX_MEMBERS) ")" }
            " partner " @if members.len() == 1 { "record" } @else { "records" } " make up this entity." }
        div.scroll { table #members {
            thead { tr { th { "Partner" } th { "Record" } th { "Name" } th { span.sr-only { "Action" } } } }
            tbody {
                @for m in members {
                    tr {
                        td { (m.partner) }
                        td { code { (m.record_id) } }
                        td { (m.name) }
                        td {
                            @if members.len() > 1 {
                                a href={ (BASE) "/entities/" (enc(id)) "/split?partner=" (enc(&m.partner)) "&record=" (enc(&m.record_id)) }
                                    aria-label={ "Split " (m.partner) " record " (m.record_id) " off" } { "Split off…" }
                            }
                        }
                    }
                }
            }
        } }
    }
}

fn merge_form(id: &str) -> Markup {
    html! {
        h2 { "Merge with another entity" }
        form method="get" action={ (BASE) "/entities/" (enc(id)) "/merge" } {
            p {
                label for="with" { "The other entity's id" }
                br;
                input #with name="with" required pattern="(org|evt)_[A-Za-z0-9_-]+" placeholder="org_…";
                " "
                button type="submit" { "Review the merge…" }
            }
        }
    }
}

fn history(changes: &[Change]) -> Markup {
    html! {
        h2 { "Change history" }
        @if changes.is_empty() { p { "No changes recorded." } } @else {
            div.scroll { table #history {
                thead { tr { th { "Change" } th { "What" } th { "When" } } }
                tbody {
                    @for c in changes {
                        tr {
                            td { (c.number) }
                            td { (c.action) @if let Some(to) = &c.merged_into { " into " code { (to) } } }
                            td { (c.at) }
                        }
                    }
                }
            } }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct SplitQuery {
    partner: String,
    record: String,
}

/// `GET /admin/console/entities/{id}/split?partner=&record=`: what the split would do, and the
/// form that does it.
pub async fn split_confirm(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<SplitQuery>,
) -> Response {
    let view = match load(&state, &id).await {
        Ok(Found::Live(v)) => v,
        Ok(_) => return failure(ApiError::not_found(format!("{id} is not a live entity."))),
        Err(e) => return failure(e),
    };
    let Some(record) = view
        .members
        .iter()
        .find(|m| m.partner == q.partner && m.record_id == q.record)
    else {
        return failure(ApiError::not_found(format!(
            "{id} has no record {} from partner {}.",
            q.record, q.partner
        )));
    };
    let name = name_of(&view.body);
    page(
        "Split a record off",
        Some(&signed.session.csrf),
        html! {
            h1 { "Split a record off " (name) "?" }
            p { "Record " code { (record.record_id) } " from " strong { (record.partner) } " (“" (record.name) "”) "
                "will no longer be part of " code { (id) } ". If an admin's merge brought it in, that merge is undone; "
                "otherwise it is kept apart from the other records from now on, and later syncs will not join them again." }
            @let rest = view.members.len().saturating_sub(1);
            p { @if rest == 1 { "The other record stays" } @else { "The other " (rest) " records stay" }
                " in " code { (id) } "." }
            form method="post" action={ (BASE) "/entities/" (enc(&id)) "/split" } {
                input type="hidden" name="csrf" value=(signed.session.csrf);
                input type="hidden" name="partner" value=(record.partner);
                input type="hidden" name="record" value=(record.record_id);
                div.actions {
                    button.primary type="submit" #confirm-split { "Split it off" }
                    a href={ (BASE) "/entities/" (enc(&id)) } { "Cancel" }
                }
            }
        },
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct SplitForm {
    csrf: String,
    partner: String,
    record: String,
}

/// `POST /admin/console/entities/{id}/split`.
pub async fn split(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<SplitForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r.into_response();
    }
    let req = SplitRequest {
        entity_id: id.clone(),
        partner: form.partner.clone(),
        record_id: form.record.clone(),
    };
    let outcome = match split_record(&state, req).await {
        Ok(o) => o,
        Err(e) => return failure(e),
    };
    let rest = outcome.rest_id.unwrap_or(id);
    let done = match &outcome.entity_id {
        Some(own) => format!(
            "Split {} record {} off; it is now {own}.",
            form.partner, form.record
        ),
        None => format!("Split {} record {} off.", form.partner, form.record),
    };
    let done = if outcome.undid_merge {
        format!(
            "{done} The admin decision that joined it was undone, so the pair may be back in \
             the review queue."
        )
    } else {
        done
    };
    see_other(format!(
        "{BASE}/entities/{}?done={}",
        enc(&rest),
        enc(&done)
    ))
}

#[derive(Debug, Deserialize)]
pub struct MergeQuery {
    with: String,
}

/// `GET /admin/console/entities/{id}/merge?with=`: both entities side by side, and the form
/// that merges them.
pub async fn merge_confirm(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<MergeQuery>,
) -> Response {
    let other = q.with.trim().to_string();
    if other == id {
        return failure(ApiError::bad_param(
            "with",
            "an entity cannot be merged with itself",
        ));
    }
    let mut views = Vec::new();
    for one in [&id, &other] {
        match load(&state, one).await {
            Ok(Found::Live(v)) => views.push(v),
            Ok(_) => return failure(ApiError::not_found(format!("{one} is not a live entity."))),
            Err(e) => return failure(e),
        }
    }
    let summary = |eid: &str, v: &View| {
        html! {
            div {
                h2 { (name_of(&v.body)) " " code { (eid) } }
                ul { @for m in &v.members { li { (m.partner) " · " code { (m.record_id) } " — " (m.name) } } }
            }
        }
    };
    page(
        "Merge two entities",
        Some(&signed.session.csrf),
        html! {
            h1 { "Merge these two into one?" }
            div.pair {
                @for (eid, v) in [(&id, &views[0]), (&other, &views[1])] { (summary(eid, v)) }
            }
            p { "From now on they are one entity under the longer-standing id; the other id redirects to it." }
            form method="post" action={ (BASE) "/entities/" (enc(&id)) "/merge" } {
                input type="hidden" name="csrf" value=(signed.session.csrf);
                input type="hidden" name="with" value=(other);
                p {
                    input #force type="checkbox" name="force" value="yes";
                    " "
                    label for="force" { "Merge even if they have different identifiers of one kind (two charity numbers)" }
                }
                div.actions {
                    button.primary type="submit" #confirm-merge { "Merge them" }
                    a href={ (BASE) "/entities/" (enc(&id)) } { "Cancel" }
                }
            }
        },
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct MergeForm {
    csrf: String,
    with: String,
    force: Option<String>,
}

/// `POST /admin/console/entities/{id}/merge`.
pub async fn merge(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<MergeForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r.into_response();
    }
    let force = form.force.is_some();
    let (_, outcome) =
        match merge_entities(&state, vec![id.clone(), form.with.clone()], force).await {
            Ok(o) => o,
            Err(e) => return failure(e),
        };
    let survivor = outcome.entity_id.unwrap_or(id);
    let done = format!("Merged; both now answer as {survivor}.");
    see_other(format!(
        "{BASE}/entities/{}?done={}",
        enc(&survivor),
        enc(&done)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_fields_take_their_top_level_source() {
        let body = serde_json::json!({
            "id": "org_1", "name": "Shop", "address": {"postcode": "HU1 1AA"},
            "partners": [{"partner": "a", "record_id": "1"}],
            "field_sources": {"name": "a", "address": "b"},
        });
        let f = fields(&body);
        assert!(f.contains(&("name".into(), "Shop".into(), Some("a".into()))));
        assert!(f.contains(&(
            "address.postcode".into(),
            "HU1 1AA".into(),
            Some("b".into())
        )));
        assert!(!f
            .iter()
            .any(|(k, _, _)| k.starts_with("partners") || k == "id"));
    }

    #[test]
    fn only_canonical_ids_are_looked_up() {
        assert!(valid_id("org_3a722ee420738b3a"));
        assert!(!valid_id("org_x'; DROP"));
        assert!(!valid_id("../etc"));
    }
}
