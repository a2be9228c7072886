//! The canonical shapes every stage speaks: what a partner's record becomes after ingest and
//! normalisation, and what the merged store publishes. Field names match the public JSON API and the
//! `tributary-json` input format, so these types serialise straight to and from both.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

/// Which family of records a feed carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    #[serde(alias = "organisation", alias = "organizations")]
    Organisations,
    #[serde(alias = "event")]
    Events,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Organisations => "organisations",
            RecordKind::Events => "events",
        }
    }

    /// Prefix of canonical ids of this kind (`org_…`, `evt_…`).
    pub fn id_prefix(self) -> &'static str {
        match self {
            RecordKind::Organisations => "org_",
            RecordKind::Events => "evt_",
        }
    }

    pub fn parse(s: &str) -> Option<RecordKind> {
        match s {
            "organisations" => Some(RecordKind::Organisations),
            "events" => Some(RecordKind::Events),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Identifiers {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charity_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_number: Option<String>,
    /// An org-id.guide identifier such as `GB-CHC-1234567`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

impl Identifiers {
    pub fn is_empty(&self) -> bool {
        self.charity_number.is_none() && self.company_number.is_none() && self.org_id.is_none()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// Where the partner puts it (WGS84 degrees), both or neither, checked as it is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}

// Coordinates are checked finite where they are read (never NaN), so equality is total.
impl Eq for Address {}

impl Address {
    pub fn is_empty(&self) -> bool {
        self.street.is_none()
            && self.locality.is_none()
            && self.region.is_none()
            && self.postcode.is_none()
            && self.latitude.is_none()
            && self.longitude.is_none()
    }
}

/// An organisation as one partner describes it, or as the merged store publishes it (minus the
/// canonical id and provenance, which [`CanonicalOrganisation`] adds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Organisation {
    pub name: String,
    pub alternate_names: Vec<String>,
    pub description: Option<String>,
    pub description_html: Option<String>,
    pub identifiers: Identifiers,
    pub website: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Address,
    pub categories: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    #[default]
    Scheduled,
    Cancelled,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    pub online: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where the partner puts the venue (WGS84 degrees), both or neither, checked as it is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}

// Coordinates are checked finite where they are read (never NaN), so equality is total.
impl Eq for Location {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Organiser {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<String>,
}

/// An event (single or a recurring series) as one partner describes it.
///
/// `start`/`end` carry the local wall-clock offset; `timezone` is the IANA zone they were given in
/// (so recurrences expand correctly across daylight-saving changes). All-day events start at local
/// midnight and `end` is exclusive, as in RFC 5545.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub description_html: Option<String>,
    #[serde(with = "offset_time")]
    pub start: DateTime<FixedOffset>,
    #[serde(default, with = "offset_time::option")]
    pub end: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub all_day: bool,
    /// RRULE / RDATE / EXDATE content lines, verbatim (`RRULE:FREQ=WEEKLY;BYDAY=TU`), or none.
    #[serde(default)]
    pub recurrence: Option<Vec<String>>,
    #[serde(default)]
    pub status: EventStatus,
    #[serde(default)]
    pub location: Location,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub booking_url: Option<String>,
    #[serde(default)]
    pub organiser: Organiser,
    #[serde(default)]
    pub categories: Vec<String>,
    /// Occurrences of a series the partner moved, changed or cancelled (RFC 5545 RECURRENCE-ID),
    /// kept with the series so it stays one record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
}

/// One occurrence of a series as the partner changed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// The start the occurrence had in the series (its RECURRENCE-ID), as an instant.
    #[serde(with = "offset_time")]
    pub recurrence_id: DateTime<FixedOffset>,
    /// Cancelled: the occurrence is removed.
    #[serde(default)]
    pub cancelled: bool,
    /// Where the occurrence now starts and ends.
    #[serde(with = "offset_time")]
    pub start: DateTime<FixedOffset>,
    #[serde(default, with = "offset_time::option")]
    pub end: Option<DateTime<FixedOffset>>,
    /// Fields the partner changed for this occurrence only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// What an ingest adapter produced for one record of a partner's feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Payload {
    Organisation(Organisation),
    Event(Event),
}

impl Payload {
    pub fn kind(&self) -> RecordKind {
        match self {
            Payload::Organisation(_) => RecordKind::Organisations,
            Payload::Event(_) => RecordKind::Events,
        }
    }
}

/// One record of one partner's feed, keyed by the partner's own id for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The partner's own id (a UID, a row id, …); unique within one feed.
    pub source_id: String,
    /// Where the partner publishes this record, if it says.
    pub url: Option<String>,
    /// When the partner says it last changed the record, if it says.
    pub updated_at: Option<DateTime<FixedOffset>>,
    pub payload: Payload,
}

/// A record an adapter or the normaliser could not accept, with the reason in words an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub source_id: Option<String>,
    pub reason: String,
}

/// Everything one feed's bytes yielded: the good records, the rejected ones, and warnings about
/// records that landed with a caveat (a value dropped or read another way). A warning is not a loss:
/// the record is among `records`, so it never counts as rejected.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFeed {
    pub records: Vec<SourceRecord>,
    pub rejections: Vec<Rejection>,
    pub warnings: Vec<Rejection>,
}

/// Provenance: one partner's record behind a canonical entity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartnerRef {
    pub partner: String,
    pub record_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A merged organisation as the store keeps and the API publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanonicalOrganisation {
    pub id: String,
    #[serde(flatten)]
    pub organisation: Organisation,
    pub partners: Vec<PartnerRef>,
    /// Which partner each merged field was taken from (field name → partner id).
    #[serde(default)]
    pub field_sources: std::collections::BTreeMap<String, String>,
    pub updated_at: DateTime<FixedOffset>,
}

/// A merged event as the store keeps and the API publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanonicalEvent {
    pub id: String,
    #[serde(flatten)]
    pub event: Event,
    pub partners: Vec<PartnerRef>,
    #[serde(default)]
    pub field_sources: std::collections::BTreeMap<String, String>,
    pub updated_at: DateTime<FixedOffset>,
}

/// One canonical entity as resolution decided it: its id and the records it is made of.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub entity_id: String,
    /// Indices into the records the resolution was given.
    pub members: Vec<usize>,
    /// Earlier canonical ids that this cluster's id now stands for (they redirect to it).
    pub absorbed: Vec<String>,
}

/// A cluster's members made into one record (survivorship), with where each field came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub payload: Payload,
    pub partners: Vec<PartnerRef>,
    /// Field name → partner id it was taken from.
    pub field_sources: std::collections::BTreeMap<String, String>,
}

/// An admin's decision about two partner records (by their store row ids); it outlives syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManualLink {
    pub a: i64,
    pub b: i64,
    /// `true`: the same entity (merge); `false`: never the same (split).
    pub same: bool,
}

/// Event times serialise with their numeric offset (`+00:00`, `+01:00`), never `Z`, so consumers
/// see the local offset the event was given in.
mod offset_time {
    use chrono::{DateTime, FixedOffset};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<FixedOffset>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&t.to_rfc3339()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(text) => DateTime::parse_from_rfc3339(&text)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
            }
        }
    }
}
