//! RPDE change feeds (OpenActive Realtime Paged Data Exchange, `afterChangeNumber` ordering): each
//! canonical entity appears at its latest change number, live ones with their data and deleted or
//! merged ones as `state: deleted` tombstones, so a follower mirrors the merged directory exactly.

use crate::licence::Attributions;
use crate::model::RecordKind;
use crate::store::entities::FeedItem;

/// The RPDE `kind` of our entities.
pub fn rpde_kind(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Organisations => "Organization",
        RecordKind::Events => "Event",
    }
}

/// The feed-level `license` (a URL, as RPDE asks): the licence every partner behind the feed
/// shares, else `attribution_list`, the page listing each partner's own licence. Claiming one
/// licence for data under several would misstate the terms.
pub fn feed_licence(partners: &Attributions, attribution_list: &str) -> String {
    match partners.common() {
        Some(l) => l.url.clone(),
        None => attribution_list.to_string(),
    }
}

/// One RPDE page. `next` must be the URL to poll after this page (the same query when the page
/// is empty or last, as RPDE requires).
pub fn page(kind: RecordKind, items: &[FeedItem], next: &str, licence: &str) -> String {
    let mut out = String::from("{\"next\":");
    out.push_str(&serde_json::Value::String(next.to_string()).to_string());
    out.push_str(",\"items\":[");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_item(&mut out, kind, it);
    }
    out.push_str("],\"license\":");
    out.push_str(&serde_json::Value::String(licence.to_string()).to_string());
    out.push('}');
    out
}

/// One RPDE item (`state`, `kind`, `id`, `modified`, and `data` when live), as a feed page lists
/// it and a webhook delivers it.
pub fn item(kind: RecordKind, it: &FeedItem) -> String {
    let mut out = String::new();
    push_item(&mut out, kind, it);
    out
}

fn push_item(out: &mut String, kind: RecordKind, item: &FeedItem) {
    let head = serde_json::json!({
        "state": if item.body.is_some() { "updated" } else { "deleted" },
        "kind": rpde_kind(kind),
        "id": item.id,
        "modified": item.change_number,
    })
    .to_string();
    match &item.body {
        // Splice the stored body rather than re-serialising it.
        Some(body) => {
            out.push_str(&head[..head.len() - 1]);
            out.push_str(",\"data\":");
            out.push_str(body);
            out.push('}');
        }
        None => out.push_str(&head),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_licence_is_the_common_one_or_the_list() {
        use crate::licence::{Attribution, Licence};
        let att = |p: &str, l: &str| Attribution {
            partner: p.into(),
            name: p.into(),
            website: None,
            licence: Licence::parse(l).ok(),
        };
        let list = "http://x/v1/licences";
        let same = Attributions::new(vec![att("a", "CC0-1.0"), att("b", "CC0-1.0")]);
        assert_eq!(
            feed_licence(&same, list),
            "https://creativecommons.org/publicdomain/zero/1.0/"
        );
        let mixed = Attributions::new(vec![att("a", "CC0-1.0"), att("b", "OGL-UK-3.0")]);
        assert_eq!(feed_licence(&mixed, list), list);
    }

    #[test]
    fn live_items_carry_data_and_tombstones_do_not() {
        let items = vec![
            FeedItem {
                id: "org_a".into(),
                change_number: 3,
                body: Some(r#"{"id":"org_a","name":"Child Dynamix"}"#.into()),
                updated_at: "2026-11-25T00:00:00Z".into(),
            },
            FeedItem {
                id: "org_b".into(),
                change_number: 5,
                body: None,
                updated_at: "2026-11-25T00:00:00Z".into(),
            },
        ];
        let text = page(
            RecordKind::Organisations,
            &items,
            "http://x/feed?afterChangeNumber=5",
            "L",
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["items"][0]["state"], "updated");
        assert_eq!(v["items"][0]["kind"], "Organization");
        assert_eq!(v["items"][0]["data"]["name"], "Child Dynamix");
        assert_eq!(v["items"][1]["state"], "deleted");
        assert!(v["items"][1].get("data").is_none());
        assert_eq!(v["items"][1]["modified"], 5);
        assert_eq!(v["next"], "http://x/feed?afterChangeNumber=5");
    }
}
