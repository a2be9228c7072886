//! Canonical entities (`entities`, `entity_partners`) and their change log (`changes`): applies a
//! dedupe resolution — create, update, merge, delete, each a numbered change — and answers the
//! public queries over merged organisations and events.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, FixedOffset, Utc};
use rayon::prelude::*;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use super::records::StoredRecord;
use super::search_index::{self, SearchRow};
use super::{Result, StoreError};
use crate::model::{CanonicalEvent, CanonicalOrganisation, Cluster, Merged, Payload, RecordKind};
use crate::normalise;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ApplyStats {
    pub created: usize,
    pub updated: usize,
    pub merged: usize,
    pub deleted: usize,
}

impl ApplyStats {
    pub fn changed(&self) -> bool {
        self.created + self.updated + self.merged + self.deleted > 0
    }
}

/// Whether a canonical id was ever issued, in any state.
pub fn exists(conn: &Connection, id: &str) -> Result<bool> {
    // Cached: a first sync asks once per new cluster, a hundred thousand times and more.
    Ok(conn
        .prepare_cached("SELECT 1 FROM entities WHERE id = ?1")?
        .query_row(params![id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether any entity of `kind` was ever issued (live, merged or deleted).
pub fn any_of_kind(conn: &Connection, kind: RecordKind) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM entities WHERE kind = ?1)",
        params![kind.as_str()],
        |r| r.get(0),
    )?)
}

struct Existing {
    hash: String,
    live: bool,
}

fn body_hash(m: &Merged) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&m.payload).unwrap_or_default());
    h.update(serde_json::to_vec(&m.partners).unwrap_or_default());
    h.update(serde_json::to_vec(&m.field_sources).unwrap_or_default());
    hex::encode(&h.finalize()[..16])
}

/// Columns derived from the merged record for filtering and ordering.
struct Derived {
    sort_key: String,
    search_text: String,
    categories: String,
    postcode_area: Option<String>,
    start_utc: Option<i64>,
    end_utc: Option<i64>,
    recurring: bool,
    /// The entity's row in its kind's full-text index.
    search: SearchRow,
}

fn derive(payload: &Payload) -> Derived {
    let cats = |c: &[String]| {
        let mut s = String::from("|");
        for c in c {
            s.push_str(&c.to_lowercase());
            s.push('|');
        }
        s
    };
    let outward = |pc: Option<&str>| {
        pc.and_then(normalise::postcode)
            .and_then(|p| p.split(' ').next().map(str::to_string))
    };
    match payload {
        Payload::Organisation(o) => Derived {
            sort_key: normalise::name_key(&o.name),
            search_text: std::iter::once(&o.name)
                .chain(o.alternate_names.iter())
                .map(|s| s.to_lowercase())
                .collect::<Vec<_>>()
                .join(" "),
            categories: cats(&o.categories),
            postcode_area: outward(o.address.postcode.as_deref()),
            start_utc: None,
            end_utc: None,
            recurring: false,
            search: search_index::organisation_row(o),
        },
        Payload::Event(e) => Derived {
            sort_key: normalise::title_key(&e.title),
            search_text: [
                Some(&e.title),
                e.location.name.as_ref(),
                e.organiser.name.as_ref(),
            ]
            .into_iter()
            .flatten()
            .map(|s| s.to_lowercase())
            .collect::<Vec<_>>()
            .join(" "),
            categories: cats(&e.categories),
            postcode_area: outward(e.location.postcode.as_deref()),
            start_utc: Some(e.start.timestamp()),
            end_utc: Some(e.end.unwrap_or(e.start).timestamp()),
            recurring: e.recurrence.as_ref().is_some_and(|r| !r.is_empty()),
            search: search_index::event_row(e),
        },
    }
}

/// What writing a resolution needs from the stages above the store, handed in so the store
/// imports none of them: survivorship (dedupe) and the VEVENT block kept with each event
/// (publish).
#[derive(Clone, Copy)]
pub struct Renderers {
    pub merge: fn(&Cluster, &[StoredRecord]) -> Merged,
    pub vevent: fn(&CanonicalEvent) -> String,
}

/// The entity's published JSON and, for events, its stored VEVENT block.
fn render_body(
    id: &str,
    m: &Merged,
    updated_at: DateTime<FixedOffset>,
    render: &Renderers,
) -> Result<(String, Option<String>)> {
    let mut ical = None;
    let json = match &m.payload {
        Payload::Organisation(o) => serde_json::to_string(&CanonicalOrganisation {
            id: id.to_string(),
            organisation: o.clone(),
            partners: m.partners.clone(),
            field_sources: m.field_sources.clone(),
            updated_at,
        }),
        Payload::Event(e) => {
            let c = CanonicalEvent {
                id: id.to_string(),
                event: e.clone(),
                partners: m.partners.clone(),
                field_sources: m.field_sources.clone(),
                updated_at,
            };
            ical = Some((render.vevent)(&c));
            serde_json::to_string(&c)
        }
    };
    json.map(|j| (j, ical)).map_err(|e| StoreError::Corrupt {
        what: id.to_string(),
        reason: e.to_string(),
    })
}

/// A changed entity, rendered and ready to write.
struct Rendered {
    body: String,
    ical: Option<String>,
    derived: Derived,
    partners: Vec<String>,
}

/// An entity's content hash and, when it changed, what to write.
type Prepared = (String, Option<Rendered>);

/// Clusters merged, hashed and rendered per chunk: a national first sync never holds every
/// merged record and rendered body at once.
const CHUNK: usize = 8_192;

/// Appends to the change log and returns the change number the entity row carries.
fn log_change(
    tx: &Transaction,
    kind: RecordKind,
    id: &str,
    action: &str,
    merged_into: Option<&str>,
    now: &str,
) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO changes (kind, entity_id, action, merged_into, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![kind.as_str(), id, action, merged_into, now])?;
    Ok(tx.last_insert_rowid())
}

/// Writes a resolution. `scope: None`: the resolution covers every live record of `kind`, and
/// any live entity not in it is deleted. `Some(ids)`: it covers the records that belonged to
/// those entities (and new ones); only those entities can be deleted or merged away.
pub fn apply(
    tx: &Transaction,
    kind: RecordKind,
    records: &[StoredRecord],
    clusters: &[Cluster],
    now: DateTime<Utc>,
    scope: Option<&[String]>,
    render: &Renderers,
) -> Result<ApplyStats> {
    let now_s = super::timestamp(now);
    let now_fixed = now.fixed_offset();
    let existing = existing_entities(tx, kind, scope)?;
    let order = write_order(records, clusters);
    let chunks: Vec<&[usize]> = order.chunks(CHUNK).collect();
    let started = std::time::Instant::now();
    let mut writer = Writer::new(tx, kind, &existing, &now_s, scope.is_some(), clusters.len())?;
    let prepare =
        |chunk: &[usize]| prepare_chunk(chunk, clusters, records, &existing, now_fixed, render);
    let waited = pipelined(&chunks, &prepare, |chunk, prepared| {
        for (&ci, prepared) in chunk.iter().zip(prepared) {
            writer.cluster(&clusters[ci], records, prepared?)?;
        }
        Ok(())
    })?;
    writer.retire_gone(clusters)?;
    let Writer {
        stats,
        partner_rows,
        mut links,
        moves,
        ..
    } = writer;
    write_partner_rows(tx, partner_rows)?;
    // In row order, so the updates walk the records table once instead of seeking at random.
    links.sort_unstable();
    let written = started.elapsed();
    super::records::set_entities(tx, &links)?;
    super::id_history::note_moves(tx, &moves)?;
    tracing::debug!(
        kind = kind.as_str(),
        clusters = clusters.len(),
        write_ms = written.as_millis() as u64,
        waited_for_rendering_ms = waited.as_millis() as u64,
        links = links.len(),
        links_ms = (started.elapsed() - written).as_millis() as u64,
        rss_mb = crate::process_memory::resident_mb(),
        "entities written"
    );
    Ok(stats)
}

/// The entities a write may change, by id: the whole kind's, or the scope's.
fn existing_entities(
    tx: &Transaction,
    kind: RecordKind,
    scope: Option<&[String]>,
) -> Result<HashMap<String, Existing>> {
    let mut existing = HashMap::new();
    let read = |r: &rusqlite::Row| {
        Ok((
            r.get::<_, String>(0)?,
            Existing {
                hash: r.get(1)?,
                live: r.get(2)?,
            },
        ))
    };
    const COLUMNS: &str =
        "SELECT id, content_hash, deleted_at IS NULL AND merged_into IS NULL FROM entities";
    match scope {
        None => {
            let mut st = tx.prepare(&format!("{COLUMNS} WHERE kind = ?1"))?;
            for row in st.query_map(params![kind.as_str()], read)? {
                let (id, e) = row?;
                existing.insert(id, e);
            }
        }
        Some(ids) => {
            let mut st = tx.prepare_cached(&format!("{COLUMNS} WHERE id = ?1"))?;
            for id in ids {
                if let Some((id, e)) = st.query_row(params![id], read).optional()? {
                    existing.insert(id, e);
                }
            }
        }
    }
    Ok(existing)
}

/// Clusters in the order of the biggest index, so it grows at its end instead of at random
/// pages, which is most of the cost of a first sync's hundred thousand inserts: events by
/// start (the calendar index carries each event's VEVENT block), organisations by id.
fn write_order(records: &[StoredRecord], clusters: &[Cluster]) -> Vec<usize> {
    let start = |c: &Cluster| {
        c.members
            .iter()
            .filter_map(|&m| match &records.get(m)?.payload {
                Payload::Event(e) => Some(e.start.timestamp()),
                Payload::Organisation(_) => None,
            })
            .min()
    };
    let mut order: Vec<usize> = (0..clusters.len()).collect();
    order.sort_by_cached_key(|&i| (start(&clusters[i]), clusters[i].entity_id.as_str()));
    order
}

/// A chunk of clusters merged, hashed and (when changed) rendered, on the shared worker pool.
fn prepare_chunk(
    chunk: &[usize],
    clusters: &[Cluster],
    records: &[StoredRecord],
    existing: &HashMap<String, Existing>,
    now: DateTime<FixedOffset>,
    render: &Renderers,
) -> Vec<Result<Prepared>> {
    chunk
        .par_iter()
        .map(|&ci| -> Result<Prepared> {
            let c = &clusters[ci];
            let merged = (render.merge)(c, records);
            let hash = body_hash(&merged);
            let unchanged =
                matches!(existing.get(&c.entity_id), Some(e) if e.live && e.hash == hash);
            if unchanged {
                return Ok((hash, None));
            }
            let (body, ical) = render_body(&c.entity_id, &merged, now, render)?;
            Ok((
                hash,
                Some(Rendered {
                    body,
                    ical,
                    derived: derive(&merged.payload),
                    partners: merged.partners.into_iter().map(|p| p.partner).collect(),
                }),
            ))
        })
        .collect()
}

/// Merging, hashing and rendering are pure and as costly as the writes, so one producer thread
/// prepares the next chunk while this thread writes the previous one. Returns how long writing
/// waited for rendering.
fn pipelined<P: Send>(
    chunks: &[&[usize]],
    prepare: &(dyn Fn(&[usize]) -> P + Sync),
    mut write: impl FnMut(&[usize], P) -> Result<()>,
) -> Result<std::time::Duration> {
    let mut waited = std::time::Duration::ZERO;
    std::thread::scope(|scope| -> Result<()> {
        let (send, ready) = std::sync::mpsc::sync_channel::<P>(1);
        let producer = scope.spawn(move || {
            for chunk in chunks {
                // The writer stopped (an error): stop preparing.
                if send.send(prepare(chunk)).is_err() {
                    break;
                }
            }
        });
        let mut ready = ready.into_iter();
        let mut outcome = Ok(());
        for chunk in chunks {
            let asked = std::time::Instant::now();
            let Some(prepared) = ready.next() else {
                break;
            };
            waited += asked.elapsed();
            outcome = write(chunk, prepared);
            if outcome.is_err() {
                break;
            }
        }
        drop(ready);
        // A preparer that died must not pass for the end of the clusters (the rest would be
        // taken as gone): its panic goes on to the caller.
        if let Err(panic) = producer.join() {
            std::panic::resume_unwind(panic);
        }
        outcome
    })?;
    Ok(waited)
}

/// The writing half of [`apply`]: its statements and what it gathers for the end.
struct Writer<'a> {
    tx: &'a Transaction<'a>,
    kind: RecordKind,
    existing: &'a HashMap<String, Existing>,
    now: &'a str,
    scoped: bool,
    upsert: rusqlite::CachedStatement<'a>,
    clear_partners: rusqlite::CachedStatement<'a>,
    retire: rusqlite::CachedStatement<'a>,
    stats: ApplyStats,
    live_after: HashSet<&'a str>,
    // Written after the entities, in key order: in the entities' order (by start) they would
    // land at random pages of entity_partners.
    partner_rows: Vec<[String; 2]>,
    links: Vec<(i64, &'a str)>,
    // Records leaving the id they held: kept, so a split can give the id back.
    moves: Vec<(i64, &'a str)>,
}

impl<'a> Writer<'a> {
    fn new(
        tx: &'a Transaction<'a>,
        kind: RecordKind,
        existing: &'a HashMap<String, Existing>,
        now: &'a str,
        scoped: bool,
        clusters: usize,
    ) -> Result<Writer<'a>> {
        Ok(Writer {
            tx,
            kind,
            existing,
            now,
            scoped,
            upsert: tx.prepare_cached(
                "INSERT INTO entities (id, kind, body, content_hash, sort_key, search_text,
                     categories, postcode_area, start_utc, end_utc, recurring, created_at,
                     updated_at, ical, change_number)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body, ical = excluded.ical,
                     content_hash = excluded.content_hash,
                     sort_key = excluded.sort_key, search_text = excluded.search_text,
                     categories = excluded.categories, postcode_area = excluded.postcode_area,
                     start_utc = excluded.start_utc, end_utc = excluded.end_utc,
                     recurring = excluded.recurring, updated_at = excluded.updated_at,
                     change_number = excluded.change_number,
                     version = entities.version + 1, deleted_at = NULL, merged_into = NULL
                 RETURNING rowid",
            )?,
            clear_partners: tx
                .prepare_cached("DELETE FROM entity_partners WHERE entity_id = ?1")?,
            retire: tx.prepare_cached(
                "UPDATE entities SET deleted_at = ?2, merged_into = ?3, updated_at = ?2,
                     version = version + 1, change_number = ?4
                 WHERE id = ?1",
            )?,
            stats: ApplyStats::default(),
            live_after: HashSet::with_capacity(clusters),
            partner_rows: Vec::new(),
            links: Vec::new(),
            moves: Vec::new(),
        })
    }

    /// One cluster: its members' links, its entity row when it changed, the ids it absorbed.
    fn cluster(
        &mut self,
        c: &'a Cluster,
        records: &'a [StoredRecord],
        (hash, rendered): Prepared,
    ) -> Result<()> {
        self.live_after.insert(&c.entity_id);
        for &m in &c.members {
            if let Some(r) = records.get(m) {
                if r.entity_id.as_deref() != Some(c.entity_id.as_str()) {
                    self.links.push((r.row_id, &c.entity_id));
                    if let Some(old) = r.entity_id.as_deref() {
                        self.moves.push((r.row_id, old));
                    }
                }
            }
        }
        if let Some(r) = rendered {
            self.upsert_entity(c, hash, r)?;
        }
        for old in &c.absorbed {
            if self.existing.get(old).is_some_and(|e| e.live) {
                let number = log_change(
                    self.tx,
                    self.kind,
                    old,
                    "merged",
                    Some(&c.entity_id),
                    self.now,
                )?;
                self.retire
                    .execute(params![old, self.now, c.entity_id, number])?;
                search_index::retire(self.tx, self.kind, old)?;
                self.stats.merged += 1;
            }
        }
        Ok(())
    }

    fn upsert_entity(&mut self, c: &Cluster, hash: String, r: Rendered) -> Result<()> {
        let (tx, kind) = (self.tx, self.kind);
        let number = log_change(tx, kind, &c.entity_id, "upsert", None, self.now)?;
        let d = &r.derived;
        let rowid: i64 = self.upsert.query_row(
            params![
                c.entity_id,
                kind.as_str(),
                r.body,
                hash,
                d.sort_key,
                d.search_text,
                d.categories,
                d.postcode_area,
                d.start_utc,
                d.end_utc,
                d.recurring,
                self.now,
                r.ical,
                number
            ],
            |row| row.get(0),
        )?;
        // In the same transaction as the row: search never finds what the API would not
        // serve, nor misses what it would.
        let known = self.existing.contains_key(&c.entity_id);
        // A scoped write may meet an id outside its scope (one given back by a split), so only
        // a whole-kind write knows a new id has no search row.
        search_index::put(tx, kind, rowid, &d.search, known || self.scoped)?;
        if known {
            self.clear_partners.execute(params![c.entity_id])?;
            self.stats.updated += 1;
        } else {
            self.stats.created += 1;
        }
        let id = &c.entity_id;
        self.partner_rows
            .extend(r.partners.into_iter().map(|p| [id.clone(), p]));
        Ok(())
    }

    /// Every live entity this write covered that no cluster holds or absorbed: deleted.
    fn retire_gone(&mut self, clusters: &[Cluster]) -> Result<()> {
        let absorbed: HashSet<&str> = clusters
            .iter()
            .flat_map(|c| c.absorbed.iter().map(String::as_str))
            .collect();
        let mut gone: Vec<&String> = self
            .existing
            .iter()
            .filter(|(id, e)| {
                e.live && !self.live_after.contains(id.as_str()) && !absorbed.contains(id.as_str())
            })
            .map(|(id, _)| id)
            .collect();
        gone.sort();
        for id in gone {
            let number = log_change(self.tx, self.kind, id, "delete", None, self.now)?;
            self.retire
                .execute(params![id, self.now, Option::<String>::None, number])?;
            search_index::retire(self.tx, self.kind, id)?;
            self.stats.deleted += 1;
        }
        Ok(())
    }
}

fn write_partner_rows(tx: &Transaction, mut rows: Vec<[String; 2]>) -> Result<()> {
    rows.sort_unstable();
    rows.dedup();
    super::insert_rows(
        tx,
        "INSERT OR IGNORE INTO entity_partners (entity_id, partner_id) VALUES",
        "",
        &rows,
    )
}

/// An issued id's standing: whether it is live (not merged away or withdrawn), and when it was
/// first issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub live: bool,
    pub created_at: String,
}

/// The standing of each of `ids` that was ever issued.
pub fn standing(conn: &Connection, ids: &[&str]) -> Result<HashMap<String, Standing>> {
    let mut st = conn.prepare_cached(
        "SELECT deleted_at IS NULL AND merged_into IS NULL, created_at FROM entities WHERE id = ?1",
    )?;
    let mut out = HashMap::new();
    for id in ids {
        if let Some(s) = st
            .query_row(params![id], |r| {
                Ok(Standing {
                    live: r.get(0)?,
                    created_at: r.get(1)?,
                })
            })
            .optional()?
        {
            out.insert((*id).to_string(), s);
        }
    }
    Ok(out)
}

/// One entity's published JSON, if it is live.
pub fn live_body(conn: &Connection, id: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT body FROM entities WHERE id = ?1 AND deleted_at IS NULL AND merged_into IS NULL",
            params![id],
            |r| r.get(0),
        )
        .optional()?)
}

/// What a lookup by id found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(String),
    MergedInto(String),
    Deleted,
    NotFound,
}

/// One entity's published JSON, following merges to the survivor.
pub fn get(conn: &Connection, kind: RecordKind, id: &str) -> Result<Lookup> {
    let row: Option<(String, Option<String>, Option<String>)> = conn
        .query_row(
            "SELECT body, deleted_at, merged_into FROM entities WHERE id = ?1 AND kind = ?2",
            params![id, kind.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(match row {
        None => Lookup::NotFound,
        Some((_, _, Some(into))) => {
            // Follow a chain of merges (a→b, b→c) to the live survivor, bounded against cycles.
            // A chain ending at a withdrawn entity is withdrawn: never a redirect to a 410.
            let mut target = into;
            let mut gone = false;
            for _ in 0..16 {
                let next: Option<(Option<String>, bool)> = conn
                    .query_row(
                        "SELECT merged_into, deleted_at IS NOT NULL FROM entities WHERE id = ?1",
                        params![target],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                match next {
                    Some((Some(n), _)) => target = n,
                    Some((None, deleted)) => {
                        gone = deleted;
                        break;
                    }
                    None => {
                        gone = true;
                        break;
                    }
                }
            }
            if gone {
                Lookup::Deleted
            } else {
                Lookup::MergedInto(target)
            }
        }
        Some((_, Some(_), None)) => Lookup::Deleted,
        Some((body, None, None)) => Lookup::Found(body),
    })
}

/// Filters shared by the organisation and event listings.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub q: Option<String>,
    pub category: Option<String>,
    pub partner: Option<String>,
    pub postcode_area: Option<String>,
    /// Only these rows: a distance search's (`places::rows_near`).
    pub rows: Option<Vec<i64>>,
}

/// Appends the filters' conditions on `entities` (unqualified columns). `q` keeps the rows its
/// full-text query matches in the kind's search table, in whatever order the caller lists them.
/// `q` as the public API reads it: every word through the full-text index, the last a prefix.
pub(super) fn text_filter(
    kind: RecordKind,
    q: &str,
    sql: &mut String,
    args: &mut Vec<rusqlite::types::Value>,
) {
    let t = search_index::table(kind);
    sql.push_str(&format!(
        " AND rowid IN (SELECT rowid FROM {t} WHERE {t} MATCH ?)"
    ));
    // Nothing to search for (only punctuation): the empty phrase, which matches nothing.
    // (A constant false would leave the callers that name their index with no plan.)
    args.push(rusqlite::types::Value::Text(
        search_index::Query::parse(q).map_or_else(|| "\"\"".to_string(), |query| query.all),
    ));
}

pub(super) fn filter_sql(
    kind: RecordKind,
    f: &Filter,
    sql: &mut String,
    args: &mut Vec<rusqlite::types::Value>,
) {
    use rusqlite::types::Value;
    if let Some(q) = &f.q {
        text_filter(kind, q, sql, args);
    }
    if let Some(c) = &f.category {
        sql.push_str(" AND instr(categories, ?) > 0");
        args.push(Value::Text(format!("|{}|", c.to_lowercase())));
    }
    if let Some(p) = &f.partner {
        sql.push_str(" AND id IN (SELECT entity_id FROM entity_partners WHERE partner_id = ?)");
        args.push(Value::Text(p.clone()));
    }
    if let Some(rows) = &f.rows {
        sql.push_str(" AND rowid IN (SELECT value FROM json_each(?))");
        args.push(Value::Text(
            serde_json::to_string(rows).unwrap_or_else(|_| "[]".into()),
        ));
    }
    if let Some(a) = &f.postcode_area {
        let a = a.trim().to_ascii_uppercase();
        if a.chars().any(|c| c.is_ascii_digit()) {
            sql.push_str(" AND postcode_area = ?");
            args.push(Value::Text(a));
        } else {
            sql.push_str(" AND postcode_area GLOB ?");
            args.push(Value::Text(format!("{a}[0-9]*")));
        }
    }
}

/// Where a page of organisations starts: after a row of the name order, or of a search's
/// ranked order (its tier, bm25 score, then name).
#[derive(Debug, Clone, PartialEq)]
pub enum OrgCursor {
    Name {
        sort_key: String,
        id: String,
    },
    Ranked {
        tier: i64,
        score: f64,
        sort_key: String,
        id: String,
    },
}

impl OrgCursor {
    /// The cursor as a URL parameter: `<hex name>.<id>` in name order, `r<tier>.<score bits>.<hex
    /// name>.<id>` in a search (the score's exact bits, so the next page starts exactly after).
    pub fn encode(&self) -> String {
        match self {
            OrgCursor::Name { sort_key, id } => format!("{}.{id}", hex::encode(sort_key)),
            OrgCursor::Ranked {
                tier,
                score,
                sort_key,
                id,
            } => format!(
                "r{tier}.{:016x}.{}.{id}",
                score.to_bits(),
                hex::encode(sort_key)
            ),
        }
    }

    /// `None` for anything [`OrgCursor::encode`] did not make.
    pub fn decode(s: &str) -> Option<OrgCursor> {
        if let Some(rest) = s.strip_prefix('r') {
            let mut parts = rest.splitn(4, '.');
            let tier = parts
                .next()?
                .parse::<i64>()
                .ok()
                .filter(|t| (0..=1).contains(t))?;
            let bits = parts.next().filter(|b| b.len() == 16)?;
            let score = f64::from_bits(u64::from_str_radix(bits, 16).ok()?);
            let sort_key = unhex(parts.next()?)?;
            let id = parts.next()?.to_string();
            return (!score.is_nan()).then_some(OrgCursor::Ranked {
                tier,
                score,
                sort_key,
                id,
            });
        }
        let (k, id) = s.split_once('.')?;
        Some(OrgCursor::Name {
            sort_key: unhex(k)?,
            id: id.to_string(),
        })
    }
}

fn unhex(s: &str) -> Option<String> {
    String::from_utf8(hex::decode(s).ok()?).ok()
}

/// One organisation of a listing page: its published JSON and the cursor just after it.
#[derive(Debug, Clone)]
pub struct OrgRow {
    pub body: String,
    pub cursor: OrgCursor,
}

/// A page of merged organisations after `after`: in name order, or with `q` in ranked order —
/// organisations whose names (or other names) hold every term first, then those matching through
/// identifiers or places, each by bm25 and then by name. `None` when `after` is a cursor of the
/// other order (the caller answers 400).
pub fn list_organisations(
    conn: &Connection,
    f: &Filter,
    after: Option<&OrgCursor>,
    limit: usize,
) -> Result<Option<Vec<OrgRow>>> {
    match &f.q {
        None => {
            let after = match after {
                None => None,
                Some(OrgCursor::Name { sort_key, id }) => Some((sort_key.as_str(), id.as_str())),
                Some(OrgCursor::Ranked { .. }) => return Ok(None),
            };
            organisations_by_name(conn, f, after, limit).map(Some)
        }
        Some(q) => {
            if matches!(after, Some(OrgCursor::Name { .. })) {
                return Ok(None);
            }
            match search_index::Query::parse(q) {
                None => Ok(Some(Vec::new())),
                Some(query) => search_organisations(conn, f, &query, after, limit).map(Some),
            }
        }
    }
}

fn organisations_by_name(
    conn: &Connection,
    f: &Filter,
    after: Option<(&str, &str)>,
    limit: usize,
) -> Result<Vec<OrgRow>> {
    use rusqlite::types::Value;
    let mut sql = String::from(
        "SELECT sort_key, id, body FROM entities WHERE kind = 'organisations' AND deleted_at IS NULL",
    );
    let mut args: Vec<Value> = Vec::new();
    filter_sql(RecordKind::Organisations, f, &mut sql, &mut args);
    name_page(conn, sql, args, after, limit)
}

/// The page of organisations `sql` (selecting `sort_key, id, body` with its filters bound in
/// `args`) finds after `after`, in name order.
pub(super) fn name_page(
    conn: &Connection,
    mut sql: String,
    mut args: Vec<rusqlite::types::Value>,
    after: Option<(&str, &str)>,
    limit: usize,
) -> Result<Vec<OrgRow>> {
    use rusqlite::types::Value;
    if let Some((k, id)) = after {
        sql.push_str(" AND (sort_key, id) > (?, ?)");
        args.push(Value::Text(k.to_string()));
        args.push(Value::Text(id.to_string()));
    }
    sql.push_str(" ORDER BY sort_key, id LIMIT ?");
    args.push(Value::Integer(limit as i64));
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params_from_iter(args), |r| {
        Ok(OrgRow {
            cursor: OrgCursor::Name {
                sort_key: r.get(0)?,
                id: r.get(1)?,
            },
            body: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn search_organisations(
    conn: &Connection,
    f: &Filter,
    query: &search_index::Query,
    after: Option<&OrgCursor>,
    limit: usize,
) -> Result<Vec<OrgRow>> {
    use rusqlite::types::Value;
    let t = search_index::table(RecordKind::Organisations);
    let w = search_index::WEIGHTS;
    // The page is chosen on the small columns first and only its rows' bodies are read: a
    // common word matches a large part of a national directory.
    let mut sql = format!(
        "WITH hits (hit, tier, score) AS (
             SELECT rowid, 0, bm25({t}, {w}) FROM {t} WHERE {t} MATCH ?
             UNION ALL
             SELECT rowid, 1, bm25({t}, {w}) FROM {t} WHERE {t} MATCH ?),
         page AS MATERIALIZED (
         SELECT e.rowid AS row, h.tier AS tier, h.score AS score, e.sort_key AS sort_key,
             e.id AS id FROM hits h
         JOIN entities e ON e.rowid = h.hit
         WHERE e.kind = 'organisations' AND e.deleted_at IS NULL"
    );
    let mut args: Vec<Value> = vec![
        Value::Text(query.names.clone()),
        Value::Text(query.elsewhere.clone()),
    ];
    // The other filters, on the entity row; `q` is the search itself.
    let rest = Filter {
        q: None,
        ..f.clone()
    };
    filter_sql(RecordKind::Organisations, &rest, &mut sql, &mut args);
    if let Some(OrgCursor::Ranked {
        tier,
        score,
        sort_key,
        id,
    }) = after
    {
        sql.push_str(" AND (h.tier, h.score, e.sort_key, e.id) > (?, ?, ?, ?)");
        args.push(Value::Integer(*tier));
        args.push(Value::Real(*score));
        args.push(Value::Text(sort_key.clone()));
        args.push(Value::Text(id.clone()));
    }
    sql.push_str(
        " ORDER BY h.tier, h.score, e.sort_key, e.id LIMIT ?)
         SELECT p.sort_key, p.id, e.body, p.tier, p.score FROM page p
         JOIN entities e ON e.rowid = p.row ORDER BY p.tier, p.score, p.sort_key, p.id",
    );
    args.push(Value::Integer(limit as i64));
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params_from_iter(args), |r| {
        Ok(OrgRow {
            cursor: OrgCursor::Ranked {
                tier: r.get(3)?,
                score: r.get(4)?,
                sort_key: r.get(0)?,
                id: r.get(1)?,
            },
            body: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A stored event row for listing: its first start, end and published body.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: String,
    pub start_utc: i64,
    pub body: String,
    pub recurring: bool,
    /// Grows with every change of the merged event (the calendar's SEQUENCE).
    pub version: i64,
    /// The event's VEVENT block as rendered when it last changed (none for rows written before
    /// the column existed: the calendar renders those from `body`).
    pub ical: Option<String>,
}

/// Live single events overlapping `[from, to)` that start at or after the `(start, id)` cursor, in
/// start order; recurring series are streamed separately by [`for_each_series`].
pub fn single_events(
    conn: &Connection,
    f: &Filter,
    from: i64,
    to: i64,
    after: Option<(i64, &str)>,
    limit: usize,
) -> Result<Vec<EventRow>> {
    use rusqlite::types::Value;
    let mut sql = String::from(
        "SELECT id, start_utc, body, version, ical FROM entities WHERE kind = 'events' AND deleted_at IS NULL
         AND recurring = 0 AND start_utc < ? AND end_utc >= ?",
    );
    let mut args: Vec<Value> = vec![Value::Integer(to), Value::Integer(from)];
    filter_sql(RecordKind::Events, f, &mut sql, &mut args);
    if let Some((s, id)) = after {
        sql.push_str(" AND (start_utc, id) > (?, ?)");
        args.push(Value::Integer(s));
        args.push(Value::Text(id.to_string()));
    }
    sql.push_str(" ORDER BY start_utc, id LIMIT ?");
    args.push(Value::Integer(limit as i64));
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(params_from_iter(args), |r| {
        Ok(EventRow {
            id: r.get(0)?,
            start_utc: r.get(1)?,
            body: r.get(2)?,
            recurring: false,
            version: r.get(3)?,
            ical: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A live single event as the calendar needs it, borrowed from the row being read.
pub struct CalendarRow<'a> {
    pub id: &'a str,
    pub version: i64,
    /// The stored VEVENT block; `None` for rows written before blocks were stored.
    pub ical: Option<&'a str>,
    /// The JSON body, read only when there is no stored block.
    pub body: Option<&'a str>,
}

/// Streams the live single events overlapping `[from, to)` (at most `limit`, in start order) to
/// `each`, without copying rows: a calendar render appends each stored block straight to its output.
pub fn for_each_calendar_event(
    conn: &Connection,
    f: &Filter,
    from: i64,
    to: i64,
    limit: usize,
    mut each: impl FnMut(CalendarRow<'_>) -> Result<()>,
) -> Result<()> {
    use rusqlite::types::Value;
    let mut sql = String::from(
        "SELECT id, version, ical FROM entities INDEXED BY entities_calendar
         WHERE kind = 'events' AND deleted_at IS NULL AND recurring = 0 AND start_utc < ? AND end_utc >= ?",
    );
    let mut args: Vec<Value> = vec![Value::Integer(to), Value::Integer(from)];
    filter_sql(RecordKind::Events, f, &mut sql, &mut args);
    sql.push_str(" ORDER BY start_utc, id LIMIT ?");
    args.push(Value::Integer(limit as i64));
    let mut st = conn.prepare_cached(&sql)?;
    let mut body_of = conn.prepare_cached("SELECT body FROM entities WHERE id = ?1")?;
    let mut rows = st.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let id = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        let ical = match r.get_ref(2)? {
            rusqlite::types::ValueRef::Null => None,
            v => Some(v.as_str().map_err(rusqlite::Error::from)?),
        };
        // Rows written before blocks were stored: their body, looked up by id.
        let body: Option<String> = match ical {
            Some(_) => None,
            None => body_of.query_row([id], |b| b.get(0)).optional()?,
        };
        each(CalendarRow {
            id,
            version: r.get(1)?,
            ical,
            body: body.as_deref(),
        })?;
    }
    Ok(())
}

/// Streams the live recurring series whose first occurrence starts before `to` to `each`, in
/// start order, one row at a time: a national store holds thousands, and a page or a calendar
/// keeps only the few that make it.
pub fn for_each_series(
    conn: &Connection,
    f: &Filter,
    to: i64,
    each: impl FnMut(EventRow) -> Result<()>,
) -> Result<()> {
    use rusqlite::types::Value;
    let mut sql = String::from(
        "SELECT id, start_utc, body, version, ical, 1 FROM entities INDEXED BY entities_series
         WHERE kind = 'events' AND deleted_at IS NULL AND recurring = 1 AND start_utc < ?",
    );
    let mut args: Vec<Value> = vec![Value::Integer(to)];
    filter_sql(RecordKind::Events, f, &mut sql, &mut args);
    sql.push_str(" ORDER BY start_utc, id");
    stream_events(conn, &sql, args, each)
}

/// Streams the events deleted or merged away since `since` (RFC 3339) that start before `to`:
/// the calendar keeps them as CANCELLED for a while so subscribed clients remove them.
pub fn for_each_withdrawn(
    conn: &Connection,
    f: &Filter,
    since: &str,
    to: i64,
    each: impl FnMut(EventRow) -> Result<()>,
) -> Result<()> {
    use rusqlite::types::Value;
    let mut sql = String::from(
        "SELECT id, start_utc, body, version, ical, recurring FROM entities WHERE kind = 'events'
         AND deleted_at IS NOT NULL AND deleted_at >= ? AND start_utc < ?",
    );
    let mut args: Vec<Value> = vec![Value::Text(since.to_string()), Value::Integer(to)];
    filter_sql(RecordKind::Events, f, &mut sql, &mut args);
    sql.push_str(" ORDER BY start_utc, id");
    stream_events(conn, &sql, args, each)
}

fn stream_events(
    conn: &Connection,
    sql: &str,
    args: Vec<rusqlite::types::Value>,
    mut each: impl FnMut(EventRow) -> Result<()>,
) -> Result<()> {
    let mut st = conn.prepare_cached(sql)?;
    let mut rows = st.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        each(EventRow {
            id: r.get(0)?,
            start_utc: r.get(1)?,
            body: r.get(2)?,
            version: r.get(3)?,
            ical: r.get(4)?,
            recurring: r.get(5)?,
        })?;
    }
    Ok(())
}

/// One live event's published JSON by id (`None` when it is not a live event).
pub fn event_body(conn: &Connection, id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT body FROM entities WHERE id = ?1 AND kind = 'events' AND deleted_at IS NULL",
        )?
        .query_row(params![id], |r| r.get(0))
        .optional()?)
}

/// The store's change counter: any write to entities moves it. Used to build ETags cheaply.
pub fn last_change(conn: &Connection) -> Result<(i64, Option<String>)> {
    // The newest row by primary key: one index step, however long the log.
    Ok(conn
        .query_row(
            "SELECT change_number, at FROM changes ORDER BY change_number DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, None)))
}

/// Live entity counts by kind.
pub fn counts(conn: &Connection) -> Result<(usize, usize)> {
    // Counted on the partial listing indexes, which hold live entities only (the planner,
    // without statistics, would walk the change index and read every row for `deleted_at`).
    let count = |sql: &str| -> Result<usize> {
        let n: i64 = conn.query_row(sql, [], |r| r.get(0))?;
        Ok(n as usize)
    };
    Ok((
        count(
            "SELECT COUNT(*) FROM entities INDEXED BY entities_orgs
             WHERE kind = 'organisations' AND deleted_at IS NULL",
        )?,
        count(
            "SELECT (SELECT COUNT(*) FROM entities INDEXED BY entities_calendar
                     WHERE kind = 'events' AND deleted_at IS NULL AND recurring = 0)
                  + (SELECT COUNT(*) FROM entities INDEXED BY entities_series
                     WHERE kind = 'events' AND deleted_at IS NULL AND recurring = 1)",
        )?,
    ))
}

/// One entry of a change feed: the entity's latest state after a change number.
#[derive(Debug, Clone)]
pub struct FeedItem {
    pub id: String,
    pub change_number: i64,
    /// `None` for a deleted or merged entity (a tombstone).
    pub body: Option<String>,
    pub updated_at: String,
}

/// Entities of `kind` whose latest change is after `after`, in change order.
pub fn changed_since(
    conn: &Connection,
    kind: RecordKind,
    after: i64,
    limit: usize,
) -> Result<Vec<FeedItem>> {
    let mut st = conn.prepare_cached(
        "SELECT id, change_number, CASE WHEN deleted_at IS NULL THEN body END, updated_at
         FROM entities WHERE kind = ?1 AND change_number > ?2 ORDER BY change_number LIMIT ?3",
    )?;
    let rows = st.query_map(params![kind.as_str(), after, limit as i64], |r| {
        Ok(FeedItem {
            id: r.get(0)?,
            change_number: r.get(1)?,
            body: r.get(2)?,
            updated_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every live entity's published JSON of one kind, in listing order (for export).
pub fn all_live(conn: &Connection, kind: RecordKind) -> Result<Vec<String>> {
    // The kind is spelled out in the SQL: the organisations' listing index is partial on it.
    let sql = match kind {
        RecordKind::Organisations => {
            "SELECT body FROM entities WHERE kind = 'organisations' AND deleted_at IS NULL
             ORDER BY sort_key, id"
        }
        RecordKind::Events => {
            "SELECT body FROM entities WHERE kind = 'events' AND deleted_at IS NULL
             ORDER BY start_utc, id"
        }
    };
    let mut st = conn.prepare(sql)?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod cursor_tests {
    use super::OrgCursor;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let cursors = [
            OrgCursor::Name {
                sort_key: "hull food bank".into(),
                id: "org_1.2".into(),
            },
            OrgCursor::Ranked {
                tier: 1,
                score: -2.718_281_828_459_045_5,
                sort_key: "café".into(),
                id: "org_9".into(),
            },
        ];
        for c in cursors {
            assert_eq!(OrgCursor::decode(&c.encode()), Some(c));
        }
        for bad in [
            "",
            "zz.x",
            "r2.0000000000000000.61.x",
            "r0.7ff8000000000000.61.x",
            "r0.12.61.x",
            "abc",
        ] {
            assert_eq!(OrgCursor::decode(bad), None, "{bad}");
        }
    }
}
