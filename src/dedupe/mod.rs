//! Dedupe: decides which partner records describe the same organisation or event, and gives each
//! resulting cluster a stable canonical id. Pure: records in, clusters and review pairs out.
//! block → value frequencies → score → link (coherent: no chaining) / review / separate →
//! survivorship → stable ids.

pub mod block;
pub mod features;
pub mod merge;
pub mod score;

#[cfg(test)]
mod phenomena_tests;

// Internal maps: foldhash (seeded per process, several times faster than SipHash on these
// short keys).
use foldhash::{HashMap, HashSet};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::model::RecordKind;
use crate::store::records::StoredRecord;

/// Thresholds and tolerances, from `[dedupe]` in the config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// A pair scoring at least this is the same entity.
    pub merge_threshold: f64,
    /// A pair scoring at least this (but under `merge_threshold`) goes to the review queue.
    pub review_threshold: f64,
    /// Events starting this many seconds apart may still be one event.
    pub event_tolerance_secs: i64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            merge_threshold: 8.0,
            review_threshold: 4.0,
            event_tolerance_secs: 600,
        }
    }
}

pub use crate::model::{Cluster, ManualLink};

/// The merged record of `cluster` (survivorship over its members). Computed on demand, so a
/// large resolution never holds every merged record at once.
pub fn merge_cluster(cluster: &Cluster, records: &[StoredRecord]) -> merge::Merged {
    let members: Vec<&StoredRecord> = cluster
        .members
        .iter()
        .filter_map(|&i| records.get(i))
        .collect();
    merge::merge(&members)
}

/// A pair the engine was unsure about, for an admin to settle.
#[derive(Debug, Clone)]
pub struct ReviewPair {
    pub a: usize,
    pub b: usize,
    pub score: score::Score,
    /// Cluster sizes × uncertainty: what settling it changes (the queue's order).
    pub priority: f64,
}

#[derive(Debug, Clone)]
pub struct Resolution {
    pub clusters: Vec<Cluster>,
    pub review: Vec<ReviewPair>,
}

/// Union–find whose roots list their members, so a merge can check every pair it would put
/// together: clustering is coherent, not transitive.
struct Clusters {
    parent: Vec<u32>,
    members: Vec<Vec<u32>>,
}

/// Cross pairs checked when two clusters would merge; past it, a deterministic sample of each
/// side (its first members), which keeps a merge's cost bounded.
const MAX_CHECKED_SIDE: usize = 48;

impl Clusters {
    fn new(n: usize) -> Clusters {
        Clusters {
            parent: (0..n as u32).collect(),
            members: (0..n as u32).map(|i| vec![i]).collect(),
        }
    }

    fn find(&mut self, mut i: u32) -> u32 {
        while self.parent[i as usize] != i {
            let p = self.parent[i as usize];
            self.parent[i as usize] = self.parent[p as usize];
            i = p;
        }
        i
    }

    fn union(&mut self, a: u32, b: u32) {
        let (keep, gone) = (a.min(b), a.max(b));
        self.parent[gone as usize] = keep;
        let moved = std::mem::take(&mut self.members[gone as usize]);
        self.members[keep as usize].extend(moved);
    }

    fn size(&self, root: u32) -> usize {
        self.members[root as usize].len()
    }
}

/// What scoring a pair needs besides the two records' features.
struct Scorer<'a> {
    records: &'a [StoredRecord],
    feats: &'a [features::Features],
    counts: &'a [block::Counts],
    settings: &'a Settings,
}

impl Scorer<'_> {
    fn context(&self, a: u32, b: u32) -> score::Context<'_> {
        let (ra, rb) = (&self.records[a as usize], &self.records[b as usize]);
        score::Context {
            tolerance_secs: self.settings.event_tolerance_secs,
            same_feed: ra.partner == rb.partner && ra.record_id != rb.record_id,
            counts: Some((&self.counts[a as usize], &self.counts[b as usize])),
        }
    }

    fn weigh(&self, a: u32, b: u32) -> score::Score {
        score::weigh_in(
            &self.feats[a as usize],
            &self.feats[b as usize],
            &self.context(a, b),
        )
    }

    fn explain(&self, a: u32, b: u32) -> score::Score {
        score::score_in(
            &self.feats[a as usize],
            &self.feats[b as usize],
            &self.context(a, b),
        )
    }

    /// Whether joining the clusters rooted at `ra` and `rb` is worth asking an admin about: no
    /// cross pair is a conflict, and none clearly disagrees below the review band.
    fn reviewable(&self, uf: &Clusters, ra: u32, rb: u32) -> bool {
        self.every_cross_pair(uf, ra, rb, |s| {
            !s.conflict && (!s.disagree || s.weight >= self.settings.review_threshold)
        })
    }

    /// Whether `ok` holds for every pair of a member of `ra`'s cluster and one of `rb`'s (the
    /// first [`MAX_CHECKED_SIDE`] of each).
    fn every_cross_pair(
        &self,
        uf: &Clusters,
        ra: u32,
        rb: u32,
        ok: impl Fn(&score::Score) -> bool,
    ) -> bool {
        let side = |r: u32| {
            let m = &uf.members[r as usize];
            &m[..m.len().min(MAX_CHECKED_SIDE)]
        };
        side(ra)
            .iter()
            .all(|&x| side(rb).iter().all(|&y| ok(&self.weigh(x, y))))
    }

    /// Whether the clusters rooted at `ra` and `rb` may become one: no cross pair is a conflict,
    /// and every cross pair that clearly disagrees would merge on its own evidence. A false link
    /// then costs one pair, never a chain through a region.
    fn coherent(&self, uf: &Clusters, ra: u32, rb: u32) -> bool {
        self.every_cross_pair(uf, ra, rb, |s| {
            !s.conflict && (!s.disagree || s.weight >= self.settings.merge_threshold)
        })
    }
}

/// Scores pairs on the shared worker pool; the work is independent per pair.
fn score_all(scorer: &Scorer, pairs: &[(u32, u32)]) -> Vec<(f64, bool, u32, u32)> {
    let review_threshold = scorer.settings.review_threshold;
    pairs
        .par_iter()
        .filter_map(|&(a, b)| {
            let s = scorer.weigh(a, b);
            (s.weight >= review_threshold || s.conflict).then_some((s.weight, s.conflict, a, b))
        })
        .collect()
}

/// Resolves every live record of one kind into clusters with stable ids.
///
/// `id_taken` says whether a canonical id was ever issued (live, merged or deleted), so a new
/// cluster never reuses a retired id. `manual` holds admins' merge/split decisions.
pub fn resolve(
    kind: RecordKind,
    records: &[StoredRecord],
    id_taken: &dyn Fn(&str) -> bool,
    settings: &Settings,
    manual: &[ManualLink],
) -> Resolution {
    let feats: Vec<features::Features> = records
        .par_iter()
        .map(|r| features::of(&r.payload))
        .collect();
    resolve_with_features(kind, records, &feats, id_taken, settings, manual)
}

/// [`resolve`] with each record's match features already computed (`feats[i]` of
/// `records[i]`), for a caller that needs them for more than clustering.
pub fn resolve_with_features(
    kind: RecordKind,
    records: &[StoredRecord],
    feats: &[features::Features],
    id_taken: &dyn Fn(&str) -> bool,
    settings: &Settings,
    manual: &[ManualLink],
) -> Resolution {
    group(records, feats, settings, manual).with_ids(kind, records, id_taken)
}

/// Records grouped into entities, before the groups have ids: the part of a resolution that
/// needs no store, so a caller can run it beside store work of its own.
pub struct Grouping {
    /// Indices into the records, one group per entity.
    groups: Vec<Vec<usize>>,
    review: Vec<ReviewPair>,
    /// Each record's place in (partner, record id) order.
    rank: Vec<u32>,
}

impl Grouping {
    /// Gives every group its canonical id (see [`resolve`] for `id_taken`).
    pub fn with_ids(
        self,
        kind: RecordKind,
        records: &[StoredRecord],
        id_taken: &dyn Fn(&str) -> bool,
    ) -> Resolution {
        let t = std::time::Instant::now();
        let clusters = assign_ids(kind, records, &self.rank, self.groups, id_taken);
        tracing::debug!(
            kind = kind.as_str(),
            clusters = clusters.len(),
            ids_ms = t.elapsed().as_millis() as u64,
            "ids assigned"
        );
        Resolution {
            clusters,
            review: self.review,
        }
    }
}

/// Blocks, scores and links `records` (with their features, `feats[i]` of `records[i]`) into
/// groups under admins' decisions; pure and on every core.
pub fn group(
    records: &[StoredRecord],
    feats: &[features::Features],
    settings: &Settings,
    manual: &[ManualLink],
) -> Grouping {
    group_with(records, feats, settings, manual, None)
}

/// How much settling a review pair changes: the records whose entity it decides, times how
/// unsure the engine is (1 at the middle of the review band, towards 0 at its edges and beyond).
pub fn review_priority(weight: f64, size_a: usize, size_b: usize, settings: &Settings) -> f64 {
    let mid = (settings.merge_threshold + settings.review_threshold) / 2.0;
    let half = ((settings.merge_threshold - settings.review_threshold) / 2.0).max(1.0);
    // The weight is log2 odds relative to the middle; p(1-p) peaks at the middle.
    let p = 1.0 / (1.0 + (-(weight - mid) / half * 2.0).exp2());
    (size_a + size_b) as f64 * 4.0 * p * (1.0 - p)
}

/// [`group`] with the value frequencies to weigh agreement by (`None`: count them over
/// `records`). A scoped resolution passes the store's, so a value's weight does not depend on
/// which part of the store is being re-resolved.
pub fn group_with(
    records: &[StoredRecord],
    feats: &[features::Features],
    settings: &Settings,
    manual: &[ManualLink],
    frequencies: Option<&block::Frequencies>,
) -> Grouping {
    let n = records.len();
    let mut uf = Clusters::new(n);
    let decisions = Decisions::apply(records, manual, &mut uf);

    // Ties (equal scores, equal names in a big block) go by each record's place in (partner,
    // record id) order, not by its place in `records`, which follows the order partners' syncs
    // happened to commit in: the same feeds always give the same clusters.
    let t = std::time::Instant::now();
    let rank = ranks(records);
    let (pairs, in_memory) =
        block::candidates_and_frequencies(feats, &rank, settings.event_tolerance_secs);
    // Value frequencies: the store's (scoped resolution) or those of the records here.
    let freq = frequencies.unwrap_or(&in_memory);
    let counts: Vec<_> = feats.par_iter().map(|f| freq.counts(f)).collect();
    let scorer = Scorer {
        records,
        feats,
        counts: &counts,
        settings,
    };
    let blocked = t.elapsed();
    let mut scored = score_all(&scorer, &pairs);
    let scored_at = t.elapsed();
    // Strongest evidence first, so a weak link never pre-empts a strong one.
    let ranked = |a: u32, b: u32| {
        let (x, y) = (rank[a as usize], rank[b as usize]);
        (x.min(y), x.max(y))
    };
    scored.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| ranked(a.2, a.3).cmp(&ranked(b.2, b.3)))
    });
    let uncertain = link(&scorer, &scored, &decisions, &mut uf);
    let review = review_pairs(&scorer, uncertain, &decisions, &mut uf);
    let linked = t.elapsed();
    let groups = groups_of(&mut uf, n);
    tracing::debug!(
        records = n,
        pairs = pairs.len(),
        kept = scored.len(),
        groups = groups.len(),
        block_ms = blocked.as_millis() as u64,
        score_ms = (scored_at - blocked).as_millis() as u64,
        link_ms = (linked - scored_at).as_millis() as u64,
        group_ms = (t.elapsed() - linked).as_millis() as u64,
        "clustered"
    );
    Grouping {
        groups,
        review,
        rank,
    }
}

/// Admins' decisions among `records`: merges already joined, splits kept as pairs that must
/// never end in one cluster, and every decided pair (the engine does not ask about it again).
struct Decisions {
    cannot: Vec<(u32, u32)>,
    decided: HashSet<(u32, u32)>,
}

impl Decisions {
    fn apply(records: &[StoredRecord], manual: &[ManualLink], uf: &mut Clusters) -> Decisions {
        let by_row: HashMap<i64, u32> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.row_id, i as u32))
            .collect();
        let mut cannot = Vec::new();
        let mut decided = HashSet::default();
        for m in manual {
            let (Some(&a), Some(&b)) = (by_row.get(&m.a), by_row.get(&m.b)) else {
                continue;
            };
            decided.insert((a.min(b), a.max(b)));
            if m.same {
                let (ra, rb) = (uf.find(a), uf.find(b));
                if ra != rb {
                    uf.union(ra, rb);
                }
            } else {
                cannot.push((a, b));
            }
        }
        Decisions { cannot, decided }
    }

    /// Whether joining the clusters rooted at `ra` and `rb` would undo an admin's split.
    fn forbidden(&self, uf: &mut Clusters, ra: u32, rb: u32) -> bool {
        self.cannot.iter().any(|&(x, y)| {
            let (fx, fy) = (uf.find(x), uf.find(y));
            (fx == ra && fy == rb) || (fx == rb && fy == ra)
        })
    }
}

/// Joins the scored pairs (strongest first) that clear the merge threshold, where the admins
/// allow it and the joined cluster stays coherent; returns the pairs left uncertain.
fn link(
    scorer: &Scorer,
    scored: &[(f64, bool, u32, u32)],
    decisions: &Decisions,
    uf: &mut Clusters,
) -> Vec<(u32, u32)> {
    let settings = scorer.settings;
    let mut uncertain = Vec::new();
    for &(weight, conflict, a, b) in scored {
        if conflict || decisions.decided.contains(&(a, b)) {
            continue;
        }
        let (ra, rb) = (uf.find(a), uf.find(b));
        if ra == rb {
            continue;
        }
        if weight >= settings.merge_threshold
            && !decisions.forbidden(uf, ra, rb)
            && scorer.coherent(uf, ra, rb)
        {
            uf.union(ra, rb);
        } else if weight >= settings.review_threshold {
            // Refused merges are candidates too (one wrong value must not hide a likely match);
            // `review_pairs` keeps those an admin could join without an incoherent cluster.
            uncertain.push((a, b));
        }
    }
    uncertain
}

/// One review question per pair of clusters still apart after linking.
fn review_pairs(
    scorer: &Scorer,
    uncertain: Vec<(u32, u32)>,
    decisions: &Decisions,
    uf: &mut Clusters,
) -> Vec<ReviewPair> {
    let mut review = Vec::new();
    let mut reviewed_roots: HashSet<(u32, u32)> = HashSet::default();
    for (a, b) in uncertain {
        let (ra, rb) = (uf.find(a), uf.find(b));
        if ra == rb || decisions.forbidden(uf, ra, rb) {
            continue;
        }
        // Asked only when "Same" would keep the joined cluster free of records that plainly
        // differ: measured on the labelled data, pairs failing that (refused merges included)
        // are mostly different organisations, and answering "Same" to them chains clusters.
        if !scorer.reviewable(uf, ra, rb) {
            continue;
        }
        if reviewed_roots.insert((ra.min(rb), ra.max(rb))) {
            let s = scorer.explain(a, b);
            review.push(ReviewPair {
                a: a as usize,
                b: b as usize,
                priority: review_priority(s.weight, uf.size(ra), uf.size(rb), scorer.settings),
                score: s,
            });
        }
    }
    review
}

/// The clusters as lists of record indices: runs of one root in the records sorted by root.
fn groups_of(uf: &mut Clusters, n: usize) -> Vec<Vec<usize>> {
    let roots: Vec<u32> = (0..n as u32).map(|i| uf.find(i)).collect();
    let mut by_root: Vec<u32> = (0..n as u32).collect();
    by_root.sort_unstable_by_key(|&i| (roots[i as usize], i));
    by_root
        .chunk_by(|&a, &b| roots[a as usize] == roots[b as usize])
        .map(|g| g.iter().map(|&i| i as usize).collect())
        .collect()
}

fn order_key(r: &StoredRecord) -> (&str, &str, i64) {
    (&r.partner, &r.record_id, r.row_id)
}

/// Each record's place when all are sorted by [`order_key`] (unique: it ends in the row id).
fn ranks(records: &[StoredRecord]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..records.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| {
        order_key(&records[a as usize]).cmp(&order_key(&records[b as usize]))
    });
    let mut rank = vec![0u32; records.len()];
    for (place, &i) in order.iter().enumerate() {
        rank[i as usize] = place as u32;
    }
    rank
}

/// Gives every group a canonical id: the id its records held before, when one group holds that
/// id's first record; otherwise a new id derived from the group's first member.
fn assign_ids(
    kind: RecordKind,
    records: &[StoredRecord],
    rank: &[u32],
    mut groups: Vec<Vec<usize>>,
    id_taken: &dyn Fn(&str) -> bool,
) -> Vec<Cluster> {
    // Deterministic whatever order the records arrived in: members, and groups by their first
    // member, in (partner, record id) order.
    for g in &mut groups {
        g.sort_unstable_by_key(|&m| rank[m]);
    }
    groups.sort_unstable_by_key(|g| rank[g[0]]);

    let mut owner: HashMap<&str, usize> = HashMap::default();
    for (gi, g) in groups.iter().enumerate() {
        for &m in g {
            if let Some(id) = records[m].entity_id.as_deref() {
                owner.entry(id).or_insert(gi);
            }
        }
    }
    let mut owned: Vec<Vec<&str>> = vec![Vec::new(); groups.len()];
    for (gi, g) in groups.iter().enumerate() {
        for &m in g {
            if let Some(id) = records[m].entity_id.as_deref() {
                if owner.get(id) == Some(&gi) && !owned[gi].contains(&id) {
                    owned[gi].push(id);
                }
            }
        }
    }

    let mut issued: HashSet<String> = HashSet::default();
    let mut clusters = Vec::with_capacity(groups.len());
    for (gi, members) in groups.into_iter().enumerate() {
        let (entity_id, absorbed) = match owned[gi].split_first() {
            Some((first, rest)) => (
                (*first).to_string(),
                rest.iter().map(|s| s.to_string()).collect(),
            ),
            None => (
                new_id(kind, &records[members[0]], &|id| {
                    id_taken(id) || issued.contains(id) || owner.contains_key(id)
                }),
                Vec::new(),
            ),
        };
        issued.insert(entity_id.clone());
        clusters.push(Cluster {
            entity_id,
            members,
            absorbed,
        });
    }
    clusters
}

/// A fresh id derived from the cluster's first member, so rebuilding a store from the same feeds
/// issues the same ids.
pub fn new_id(kind: RecordKind, first: &StoredRecord, taken: &dyn Fn(&str) -> bool) -> String {
    let mut salt = 0u32;
    loop {
        let mut h = Sha256::new();
        h.update(kind.as_str());
        h.update([0]);
        h.update(&first.partner);
        h.update([0]);
        h.update(&first.record_id);
        if salt > 0 {
            h.update(salt.to_be_bytes());
        }
        let digest = h.finalize();
        let id = format!("{}{}", kind.id_prefix(), hex::encode(&digest[..8]));
        if !taken(&id) {
            return id;
        }
        salt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Event, Identifiers, Organisation, Payload};
    use chrono::{DateTime, Utc};

    fn rec(
        row: i64,
        partner: &str,
        id: &str,
        payload: Payload,
        entity: Option<&str>,
    ) -> StoredRecord {
        StoredRecord {
            row_id: row,
            partner: partner.into(),
            priority: 0,
            record_id: id.into(),
            url: None,
            changed_at: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            payload,
            entity_id: entity.map(String::from),
        }
    }

    fn org(name: &str, charity: Option<&str>, postcode: Option<&str>) -> Payload {
        Payload::Organisation(Organisation {
            name: name.into(),
            identifiers: Identifiers {
                charity_number: charity.map(String::from),
                ..Default::default()
            },
            address: Address {
                postcode: postcode.map(String::from),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    fn event(title: &str, start: &str) -> Payload {
        Payload::Event(Event {
            title: title.into(),
            description: None,
            description_html: None,
            start: DateTime::parse_from_rfc3339(start).unwrap(),
            end: None,
            timezone: None,
            all_day: false,
            recurrence: None,
            status: Default::default(),
            location: Default::default(),
            url: None,
            booking_url: None,
            organiser: Default::default(),
            categories: vec![],
            overrides: Vec::new(),
        })
    }

    fn run(
        kind: RecordKind,
        recs: &[StoredRecord],
        taken: &dyn Fn(&str) -> bool,
        manual: &[ManualLink],
    ) -> Resolution {
        resolve(kind, recs, taken, &Settings::default(), manual)
    }

    #[test]
    fn shared_charity_number_or_name_and_postcode_merge() {
        let recs = vec![
            rec(
                1,
                "a",
                "1",
                org("Child Dynamix", Some("1123456"), Some("HU3 2AA")),
                None,
            ),
            rec(
                2,
                "b",
                "x",
                org("child dynamix.", None, Some("hu32aa")),
                None,
            ),
            rec(
                3,
                "c",
                "9",
                org("Other Org", Some("Registered charity no. 1123456"), None),
                None,
            ),
            rec(4, "c", "10", org("Different", None, Some("HU3 2AA")), None),
        ];
        let r = run(RecordKind::Organisations, &recs, &|_| false, &[]);
        // "Other Org" shares the number but not the name of "Child Dynamix" and nothing with
        // "child dynamix.": no chain puts it in their cluster. Nor is it asked about: "Same"
        // would put it with "child dynamix.", which plainly differs from it.
        assert_eq!(r.clusters.len(), 3);
        let big = r.clusters.iter().find(|c| c.members.len() == 2).unwrap();
        assert!(big.entity_id.starts_with("org_"));
        assert!(big.members.contains(&0) && big.members.contains(&1));
        assert!(
            !r.review
                .iter()
                .any(|p| (p.a.min(p.b), p.a.max(p.b)) == (0, 2)),
            "{:?}",
            r.review
        );
        // Without "child dynamix." nothing stands against the rare shared number: they merge.
        let alone = vec![recs[0].clone(), recs[2].clone(), recs[3].clone()];
        let r = run(RecordKind::Organisations, &alone, &|_| false, &[]);
        assert!(r
            .clusters
            .iter()
            .any(|c| c.members.contains(&0) && c.members.contains(&1)));
    }

    #[test]
    fn a_cluster_never_joins_conflicting_charity_numbers() {
        // b matches a by name+postcode and c by name+postcode, but a and c have different numbers.
        let recs = vec![
            rec(
                1,
                "a",
                "1",
                org("Hull Mind", Some("1170025"), Some("HU2 8HY")),
                None,
            ),
            rec(2, "b", "2", org("Hull Mind", None, Some("HU2 8HY")), None),
            rec(
                3,
                "c",
                "3",
                org("Hull Mind", Some("1170099"), Some("HU2 8HY")),
                None,
            ),
        ];
        let r = run(RecordKind::Organisations, &recs, &|_| false, &[]);
        assert_eq!(r.clusters.len(), 2);
    }

    #[test]
    fn the_same_records_in_any_order_make_the_same_clusters() {
        // b scores the same against a and c, which cannot share a cluster (different charity
        // numbers): which of them b joins must not depend on the order the records came in.
        let records = [
            ("a", "1", Some("1170025")),
            ("b", "2", None),
            ("c", "3", Some("1170099")),
        ];
        let clusters_of = |order: &[usize]| {
            let recs: Vec<StoredRecord> = order
                .iter()
                .enumerate()
                .map(|(row, &i)| {
                    let (partner, id, charity) = records[i];
                    rec(
                        row as i64 + 1,
                        partner,
                        id,
                        org("Hull Mind", charity, Some("HU2 8HY")),
                        None,
                    )
                })
                .collect();
            let r = run(RecordKind::Organisations, &recs, &|_| false, &[]);
            let mut clusters: Vec<(String, Vec<String>)> = r
                .clusters
                .iter()
                .map(|c| {
                    let mut m: Vec<String> = c
                        .members
                        .iter()
                        .map(|&i| format!("{}/{}", recs[i].partner, recs[i].record_id))
                        .collect();
                    m.sort();
                    (c.entity_id.clone(), m)
                })
                .collect();
            clusters.sort();
            clusters
        };
        let first = clusters_of(&[0, 1, 2]);
        assert_eq!(first.len(), 2, "{first:?}");
        for order in [[0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
            assert_eq!(clusters_of(&order), first, "records in order {order:?}");
        }
    }

    #[test]
    fn uncertain_pairs_go_to_review_and_manual_decisions_stick() {
        let recs = vec![
            rec(1, "a", "1", org("Hull Community Shop", None, None), None),
            rec(2, "b", "2", org("Hull Community Shop", None, None), None),
        ];
        let r = run(RecordKind::Organisations, &recs, &|_| false, &[]);
        assert_eq!(r.clusters.len(), 2);
        assert_eq!(r.review.len(), 1);
        assert!(!r.review[0].score.evidence.is_empty());
        let merged = run(
            RecordKind::Organisations,
            &recs,
            &|_| false,
            &[ManualLink {
                a: 1,
                b: 2,
                same: true,
            }],
        );
        assert_eq!(merged.clusters.len(), 1);
        assert!(merged.review.is_empty());
        // A manual split beats even a shared identifier.
        let twins = vec![
            rec(1, "a", "1", org("Age UK Hull", Some("1170001"), None), None),
            rec(2, "b", "2", org("Age UK Hull", Some("1170001"), None), None),
        ];
        let split = run(
            RecordKind::Organisations,
            &twins,
            &|_| false,
            &[ManualLink {
                a: 1,
                b: 2,
                same: false,
            }],
        );
        assert_eq!(split.clusters.len(), 2);
        assert!(split.review.is_empty());
    }

    #[test]
    fn ids_are_stable_and_independent_of_order() {
        let a = rec(
            1,
            "a",
            "1",
            event("Webinar: Next Steps", "2022-01-25T13:00:00Z"),
            None,
        );
        let b = rec(
            2,
            "b",
            "2",
            event("NEXT STEPS (webinar)", "2022-01-25T13:00:00+00:00"),
            None,
        );
        let one = run(RecordKind::Events, &[a.clone(), b.clone()], &|_| false, &[]);
        let two = run(RecordKind::Events, &[b, a], &|_| false, &[]);
        assert_eq!(one.clusters.len(), 1);
        assert_eq!(one.clusters[0].entity_id, two.clusters[0].entity_id);
    }

    #[test]
    fn merge_keeps_the_oldest_id_and_absorbs_the_other() {
        let a = rec(
            1,
            "a",
            "1",
            org("Hull Food Bank", Some("1111111"), None),
            Some("org_aaaa"),
        );
        let b = rec(
            2,
            "b",
            "2",
            org("Hull Foodbank", Some("1111111"), None),
            Some("org_bbbb"),
        );
        let r = run(RecordKind::Organisations, &[a, b], &|_| true, &[]);
        assert_eq!(r.clusters.len(), 1);
        assert_eq!(r.clusters[0].entity_id, "org_aaaa");
        assert_eq!(r.clusters[0].absorbed, vec!["org_bbbb".to_string()]);
    }

    #[test]
    fn split_gives_the_newcomer_a_fresh_id() {
        let a = rec(
            1,
            "a",
            "1",
            org("Alpha", Some("1111111"), None),
            Some("org_aaaa"),
        );
        let b = rec(
            2,
            "b",
            "2",
            org("Beta", Some("2222222"), None),
            Some("org_aaaa"),
        );
        let r = run(
            RecordKind::Organisations,
            &[a, b],
            &|id| id == "org_aaaa",
            &[],
        );
        assert_eq!(r.clusters.len(), 2);
        let ids: Vec<&str> = r.clusters.iter().map(|c| c.entity_id.as_str()).collect();
        assert!(ids.contains(&"org_aaaa"));
        assert_eq!(ids.iter().filter(|i| **i == "org_aaaa").count(), 1);
    }
}
