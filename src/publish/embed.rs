//! Embeddable HTML for partners' own sites: the merged events and organisations as an accessible,
//! responsive fragment (or a whole page for an `<iframe>`), with each record's attribution and
//! "add to calendar" links. Pure renderers: maud escapes every value; the styles are scoped to
//! `.trib` so a fragment dropped into a host page neither takes nor leaks its styles.

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::model::{CanonicalEvent, CanonicalOrganisation, EventStatus};

/// How the listing looks: the two knobs a host site may turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Look {
    pub layout: Layout,
    /// Links, focus rings and headings; `#rrggbb`, dark enough for text on white.
    pub accent: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Each record with its details.
    List,
    /// One line per record, for a sidebar.
    Compact,
}

/// A dark blue with a 7:1 contrast on white.
pub const DEFAULT_ACCENT: &str = "#1d4f91";

impl Default for Look {
    fn default() -> Look {
        Look {
            layout: Layout::List,
            accent: DEFAULT_ACCENT.to_string(),
        }
    }
}

/// WCAG 2 contrast that normal-size text needs (AA).
pub const MIN_CONTRAST: f64 = 4.5;

/// Reads an `accent` value (`#1d70b8` or `1d70b8`) and checks it can carry text on white.
pub fn accent(raw: &str) -> Result<String, String> {
    let hex = raw.trim().trim_start_matches('#');
    let ok = hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(format!(
            "{raw:?} is not a colour: give six hex digits, such as 1d70b8"
        ));
    }
    let rgb = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
    let ratio = contrast_on_white(rgb(0), rgb(2), rgb(4));
    if ratio < MIN_CONTRAST {
        return Err(format!(
            "#{hex} is too light for text on white: contrast {ratio:.1}:1, at least {MIN_CONTRAST}:1 is needed"
        ));
    }
    Ok(format!("#{}", hex.to_ascii_lowercase()))
}

/// WCAG 2 contrast ratio of a colour against white.
fn contrast_on_white(r: u8, g: u8, b: u8) -> f64 {
    let channel = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let lum = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    1.05 / (lum + 0.05)
}

/// A partner behind a record, as its attribution shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    pub name: String,
    pub website: Option<String>,
    /// The licence's short label (an SPDX id) and the page of its text; `None` when not stated.
    pub licence: Option<(String, String)>,
}

/// One event as the embed lists it: the occurrence shown (the next in the window for a series).
#[derive(Debug, Clone)]
pub struct EventItem {
    pub event: CanonicalEvent,
    pub start: DateTime<FixedOffset>,
    pub end: Option<DateTime<FixedOffset>>,
    /// The zone times are shown in.
    pub zone: Tz,
    pub partners: Vec<Attribution>,
    /// `/v1/events/{id}/calendar.ics`, relative to this server.
    pub ics_url: String,
}

/// One organisation as the embed lists it.
#[derive(Debug, Clone)]
pub struct OrganisationItem {
    pub organisation: CanonicalOrganisation,
    pub partners: Vec<Attribution>,
}

/// The scoped styles; `{accent}` is replaced by the listing's accent.
const STYLE: &str = ".trib{--trib-accent:{accent};font-family:system-ui,-apple-system,\"Segoe UI\",sans-serif;color:#1a1a1a;background:#fff;line-height:1.45;max-width:100%;box-sizing:border-box}\
.trib *{box-sizing:border-box}\
.trib h2{font-size:1.25rem;margin:0 0 .75rem;color:var(--trib-accent)}\
.trib ol{list-style:none;margin:0;padding:0}\
.trib li{border-top:1px solid #d0d0d0;padding:.75rem 0}\
.trib h3{font-size:1.05rem;margin:0 0 .25rem;overflow-wrap:anywhere}\
.trib p{margin:.2rem 0;overflow-wrap:anywhere}\
.trib a{color:var(--trib-accent);text-decoration:underline;text-underline-offset:2px}\
.trib a:focus-visible{outline:3px solid var(--trib-accent);outline-offset:2px;background:#fff}\
.trib .trib-when{font-weight:600}\
.trib .trib-meta{color:#4a4a4a;font-size:.9rem}\
.trib .trib-cancelled{color:#a4000f;font-weight:700}\
.trib .trib-add{display:flex;flex-wrap:wrap;gap:.25rem 1rem;font-size:.9rem;margin-top:.35rem}\
.trib .trib-more{display:inline-block;margin-top:.75rem;padding:.5rem .9rem;border:2px solid var(--trib-accent);border-radius:4px;text-decoration:none;font-weight:600}\
.trib .trib-empty{color:#4a4a4a}\
.trib.trib-compact li{padding:.4rem 0}\
.trib.trib-compact h3{font-size:1rem;display:inline;margin-right:.5rem}\
.trib.trib-compact .trib-when{font-weight:400}";

fn style(look: &Look) -> Markup {
    html! { style { (PreEscaped(STYLE.replace("{accent}", &look.accent))) } }
}

fn section_class(look: &Look) -> &'static str {
    match look.layout {
        Layout::List => "trib",
        Layout::Compact => "trib trib-compact",
    }
}

/// Times as a person reads them, in the event's zone: `Tue 8 Dec 2026, 10:00–12:30`.
fn when(item: &EventItem) -> String {
    let start = item.start.with_timezone(&item.zone);
    if item.event.event.all_day {
        return start.format("%a %-d %b %Y").to_string();
    }
    let mut text = start.format("%a %-d %b %Y, %H:%M").to_string();
    if let Some(end) = item.end.map(|e| e.with_timezone(&item.zone)) {
        if end.date_naive() == start.date_naive() {
            text.push_str(&end.format("–%H:%M").to_string());
        } else {
            text.push_str(&end.format(" – %a %-d %b %Y, %H:%M").to_string());
        }
    }
    text
}

/// How often a series repeats, from its rule's FREQ, for a short label.
fn repeats(event: &CanonicalEvent) -> Option<&'static str> {
    let rule = event
        .event
        .recurrence
        .iter()
        .flatten()
        .find(|l| l.starts_with("RRULE"))?;
    let freq = rule
        .split([':', ';'])
        .find_map(|part| part.strip_prefix("FREQ="))?;
    Some(match freq {
        "DAILY" => "Repeats daily",
        "WEEKLY" => "Repeats weekly",
        "MONTHLY" => "Repeats monthly",
        "YEARLY" => "Repeats yearly",
        _ => "Repeats",
    })
}

/// The parts of an address that are given and not blank, in order.
fn given(parts: [Option<&str>; 3]) -> Vec<&str> {
    parts
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect()
}

fn place(event: &CanonicalEvent) -> Option<String> {
    let l = &event.event.location;
    let parts = given([
        l.name.as_deref(),
        l.address.as_deref(),
        l.postcode.as_deref(),
    ]);
    match (parts.is_empty(), l.online) {
        (true, true) => Some("Online".to_string()),
        (true, false) => None,
        (false, _) => Some(parts.join(", ")),
    }
}

/// `20270601T100000Z`, as calendar links take instants.
fn compact_utc(t: DateTime<FixedOffset>) -> String {
    t.with_timezone(&Utc).format("%Y%m%dT%H%M%SZ").to_string()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A Google Calendar "create event" link filled in with the occurrence.
pub fn google_link(item: &EventItem) -> String {
    let e = &item.event.event;
    let end = item.end.unwrap_or(item.start + chrono::Duration::hours(1));
    let dates = if e.all_day {
        let day =
            |t: DateTime<FixedOffset>| t.with_timezone(&item.zone).format("%Y%m%d").to_string();
        let last = if end > item.start {
            end
        } else {
            item.start + chrono::Duration::days(1)
        };
        format!("{}/{}", day(item.start), day(last))
    } else {
        format!("{}/{}", compact_utc(item.start), compact_utc(end))
    };
    let mut link = format!(
        "https://calendar.google.com/calendar/render?action=TEMPLATE&text={}&dates={dates}",
        encode(shown_title(&e.title))
    );
    if let Some(p) = place(&item.event) {
        link.push_str(&format!("&location={}", encode(&p)));
    }
    if let Some(u) = e.url.as_deref().or(e.booking_url.as_deref()) {
        link.push_str(&format!("&details={}", encode(u)));
    }
    link
}

/// An Outlook on the web "new event" link filled in with the occurrence.
pub fn outlook_link(item: &EventItem) -> String {
    let e = &item.event.event;
    let end = item.end.unwrap_or(item.start + chrono::Duration::hours(1));
    let mut link = format!(
        "https://outlook.live.com/calendar/0/deeplink/compose?path=%2Fcalendar%2Faction%2Fcompose&rru=addevent&subject={}&startdt={}&enddt={}",
        encode(shown_title(&e.title)),
        encode(&item.start.to_rfc3339()),
        encode(&end.to_rfc3339())
    );
    if e.all_day {
        link.push_str("&allday=true");
    }
    if let Some(p) = place(&item.event) {
        link.push_str(&format!("&location={}", encode(&p)));
    }
    if let Some(u) = e.url.as_deref().or(e.booking_url.as_deref()) {
        link.push_str(&format!("&body={}", encode(u)));
    }
    link
}

fn attribution(partners: &[Attribution]) -> Markup {
    html! {
        p class="trib-meta" {
            "Listed by "
            @for (i, a) in partners.iter().enumerate() {
                @if i > 0 { ", " }
                @match &a.website {
                    Some(w) => a href=(w) { (a.name) },
                    None => (a.name),
                }
                @match &a.licence {
                    Some((label, url)) => { " (" a href=(url) rel="license" { (label) } ")" },
                    None => " (licence not stated)",
                }
            }
        }
    }
}

/// What a page shows for an event's title: the partner's, or a plain label when it gave none
/// (an iCalendar event may have no SUMMARY), so no heading or link is left without text.
fn shown_title(title: &str) -> &str {
    if title.is_empty() {
        "Untitled event"
    } else {
        title
    }
}

fn event_entry(item: &EventItem, look: &Look) -> Markup {
    let e = &item.event.event;
    let title = shown_title(&e.title);
    let title_link = e.url.as_deref().or(e.booking_url.as_deref());
    html! {
        li {
            article aria-labelledby={ "trib-" (item.event.id) } {
                h3 id={ "trib-" (item.event.id) } {
                    @match title_link {
                        Some(u) => a href=(u) { (title) },
                        None => (title),
                    }
                }
                p {
                    time class="trib-when" datetime=(item.start.to_rfc3339()) { (when(item)) }
                    @if let Some(r) = repeats(&item.event) { " · " (r) }
                    @if e.status == EventStatus::Cancelled { " · " span class="trib-cancelled" { "Cancelled" } }
                }
                @if look.layout == Layout::List {
                    @if let Some(p) = place(&item.event) { p { (p) } }
                    (attribution(&item.partners))
                    p class="trib-add" {
                        span { "Add to calendar:" }
                        a href=(item.ics_url) aria-label={ "Add " (title) " to your calendar (.ics file)" } { ".ics" }
                        a href=(google_link(item)) aria-label={ "Add " (title) " to Google Calendar" } { "Google" }
                        a href=(outlook_link(item)) aria-label={ "Add " (title) " to Outlook" } { "Outlook" }
                    }
                }
            }
        }
    }
}

fn more(next: Option<&str>, label: &str) -> Markup {
    html! {
        @if let Some(n) = next {
            nav aria-label="More" { a class="trib-more" href=(n) { (label) } }
        }
    }
}

/// A listing's `<section>`: its own styles, heading, entries (or a line saying there are none)
/// and the link to more; `what` names the items ("events").
fn listing(
    entries: &[Markup],
    next: Option<&str>,
    heading: &str,
    look: &Look,
    what: &str,
) -> Markup {
    html! {
        section class=(section_class(look)) aria-label=(heading) {
            (style(look))
            h2 { (heading) }
            @if entries.is_empty() {
                p class="trib-empty" { "No " (what) " to show." }
            } @else {
                ol { @for e in entries { (e) } }
            }
            (more(next, &format!("More {what}")))
        }
    }
}

/// The events listing as a fragment for a host page (`<section>` with its own styles).
pub fn events_fragment(
    items: &[EventItem],
    next: Option<&str>,
    heading: &str,
    look: &Look,
) -> Markup {
    let entries: Vec<Markup> = items.iter().map(|i| event_entry(i, look)).collect();
    listing(&entries, next, heading, look, "events")
}

fn organisation_entry(item: &OrganisationItem, look: &Look) -> Markup {
    let o = &item.organisation.organisation;
    let a = &o.address;
    let address = given([
        a.street.as_deref(),
        a.locality.as_deref(),
        a.postcode.as_deref(),
    ]);
    html! {
        li {
            article aria-labelledby={ "trib-" (item.organisation.id) } {
                h3 id={ "trib-" (item.organisation.id) } {
                    @match &o.website {
                        Some(w) => a href=(w) { (o.name) },
                        None => (o.name),
                    }
                }
                @if look.layout == Layout::List {
                    @if !address.is_empty() { p { (address.join(", ")) } }
                    @if o.phone.is_some() || o.email.is_some() {
                        p {
                            @if let Some(ph) = &o.phone { a href={ "tel:" (ph.replace(' ', "")) } { (ph) } }
                            @if o.phone.is_some() && o.email.is_some() { " · " }
                            @if let Some(em) = &o.email { a href={ "mailto:" (em) } { (em) } }
                        }
                    }
                    @if !o.categories.is_empty() { p class="trib-meta" { (o.categories.join(", ")) } }
                    (attribution(&item.partners))
                }
            }
        }
    }
}

/// The organisations listing as a fragment for a host page.
pub fn organisations_fragment(
    items: &[OrganisationItem],
    next: Option<&str>,
    heading: &str,
    look: &Look,
) -> Markup {
    let entries: Vec<Markup> = items.iter().map(|i| organisation_entry(i, look)).collect();
    listing(&entries, next, heading, look, "organisations")
}

/// A whole page around a fragment, for an `<iframe>`.
pub fn document(title: &str, fragment: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { "body{margin:0;padding:.75rem}" }
            }
            body { (fragment) }
        }
    }
    .into_string()
}

/// A short message in place of the listing when its parameters are wrong.
pub fn problem(message: &str, look: &Look) -> Markup {
    html! {
        section class=(section_class(look)) role="alert" {
            (style(look))
            p { "This listing cannot be shown: " (message) }
        }
    }
}

/// One ready-to-paste pair of snippets for a listing.
#[derive(Debug, Clone)]
pub struct Snippet {
    pub label: String,
    /// Query string of the listing (`partner=cvs`), empty for everything.
    pub query: String,
}

/// The page of snippets partners paste into their sites: an `<iframe>` and a `<div>` + script
/// for each listing.
pub fn snippets_page(base: &str, snippets: &[Snippet]) -> String {
    let base = base.trim_end_matches('/');
    let url = |kind: &str, q: &str| {
        if q.is_empty() {
            format!("{base}/embed/{kind}")
        } else {
            format!("{base}/embed/{kind}?{q}")
        }
    };
    let attrs = |q: &str| -> String {
        url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| format!(" data-{}=\"{}\"", k.replace('_', "-"), v))
            .collect()
    };
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Embed the merged listings" }
                style { "body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:60rem;padding:0 1rem;color:#1a1a1a}pre{background:#f3f3f3;padding:.75rem;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere}" }
            }
            body {
                h1 { "Embed the merged listings" }
                p { "Paste one of these into your site. The frame works without JavaScript; the script renders the same listing into your page. Filters: partner, category, postcode_area, from, to, q, limit; looks: layout (list or compact), accent (six hex digits)." }
                @for s in snippets {
                    h2 { (s.label) }
                    h3 { "Frame" }
                    pre { code { "<iframe src=\"" (url("events", &s.query)) "\" title=\"" (s.label) "\" loading=\"lazy\" style=\"width:100%;height:40rem;border:0\"></iframe>" } }
                    h3 { "Script" }
                    pre { code { "<div data-tributary-events" (attrs(&s.query)) "><a href=\"" (url("events", &s.query)) "\">" (s.label) "</a></div>\n<script src=\"" (base) "/embed/tributary.js\" async></script>" } }
                    p { "For the organisations, use " code { "/embed/organisations" } " and " code { "data-tributary-organisations" } "." }
                }
            }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_too_light_for_text_are_refused() {
        assert_eq!(accent("1D70B8").as_deref(), Ok("#1d70b8"));
        assert_eq!(accent("#000000").as_deref(), Ok("#000000"));
        let light = accent("ffdd00").unwrap_err();
        assert!(
            light.contains("too light") && light.contains("4.5"),
            "{light}"
        );
        assert!(accent("blue").unwrap_err().contains("six hex digits"));
        // The default itself passes its own rule.
        assert!(accent(DEFAULT_ACCENT).is_ok());
    }

    #[test]
    fn the_contrast_formula_gives_wcag_figures() {
        assert!((contrast_on_white(0, 0, 0) - 21.0).abs() < 0.01);
        assert!((contrast_on_white(255, 255, 255) - 1.0).abs() < 0.01);
        // #767676 is the lightest grey WCAG's examples give 4.5:1 on white.
        assert!((contrast_on_white(0x76, 0x76, 0x76) - 4.54).abs() < 0.02);
    }

    #[test]
    fn an_event_given_no_title_is_shown_with_a_label() {
        assert_eq!(shown_title(""), "Untitled event");
        assert_eq!(shown_title("Tea dance"), "Tea dance");
    }
}
