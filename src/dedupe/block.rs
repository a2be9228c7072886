//! Blocking: which pairs of records are worth scoring. Records share a block when they share an
//! identifier, a postcode, an outward code and a distinctive name token, a web or email domain, a
//! phone (organisations) or a start time and title token, or a booking URL (events). Cost grows
//! with the records, not their square: oversized blocks are compared by a bounded window.

use foldhash::{HashMap, HashSet};
use rayon::prelude::*;

use super::features::Features;

/// The fields whose agreement is weighed by how many distinct records share the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Charity = 0,
    Company,
    OrgId,
    Postcode,
    Phone,
    Email,
    Site,
    SitePath,
    Booking,
    Url,
    Room,
}

pub const FIELDS: usize = 11;

/// How many distinct records (of those being resolved, or of the store's stored keys) hold each
/// of one record's values, by [`Field`]; 0 when the record has no such value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts(pub [u32; FIELDS]);

impl Counts {
    pub fn get(&self, f: Field) -> u32 {
        self.0[f as usize]
    }
}

/// Calls `key` with each value key of `f` (the keys term frequencies are counted on).
fn each_value(f: &Features, key: &mut dyn FnMut(Field, std::fmt::Arguments)) {
    match f {
        Features::Org(o) => {
            if let Some(c) = &o.charity {
                key(Field::Charity, format_args!("c:{c}"));
            }
            if let Some(c) = &o.company {
                key(Field::Company, format_args!("h:{c}"));
            }
            if let Some(c) = &o.org_id {
                key(Field::OrgId, format_args!("o:{c}"));
            }
            if let Some(p) = &o.postcode {
                key(Field::Postcode, format_args!("p:{p}"));
            }
            if let Some(d) = &o.site {
                key(Field::Site, format_args!("d:{d}"));
            }
            if let Some(d) = o.site_path.as_ref().filter(|p| o.site.as_ref() != Some(*p)) {
                key(Field::SitePath, format_args!("dp:{d}"));
            }
            if let Some(d) = &o.email_domain {
                key(Field::Email, format_args!("e:{d}"));
            }
            if let Some(p) = &o.phone {
                key(Field::Phone, format_args!("t:{p}"));
            }
        }
        Features::Event(e) => {
            // One key space for every link field: partners put one link in different fields,
            // and a value's frequency counts every record holding it, whichever field.
            if let Some(u) = &e.booking {
                key(Field::Booking, format_args!("l:{u}"));
            }
            if let Some(u) = &e.url {
                key(Field::Url, format_args!("l:{u}"));
            }
            if let Some(u) = &e.room {
                key(Field::Room, format_args!("l:{u}"));
            }
        }
    }
}

fn fnv_of(text: std::fmt::Arguments) -> u64 {
    use std::fmt::Write;
    use std::hash::Hasher;
    let mut h = super::features::Fnv(fnv::FnvHasher::default());
    let _ = h.write_fmt(text);
    h.0.finish()
}

/// Each value key's hash by field (the same hashes as the stored block keys).
pub fn value_hashes(f: &Features) -> [Option<u64>; FIELDS] {
    let mut out = [None; FIELDS];
    each_value(f, &mut |field, text| {
        out[field as usize] = Some(fnv_of(text))
    });
    out
}

/// Value frequencies: how many distinct records hold each shared key (sorted by key hash).
#[derive(Debug, Default)]
pub struct Frequencies(Vec<(u64, u32)>);

impl Frequencies {
    /// From `(key hash, distinct records)` pairs, in any order.
    pub fn from_counts(mut counts: Vec<(u64, u32)>) -> Frequencies {
        counts.sort_unstable();
        counts.dedup_by_key(|c| c.0);
        Frequencies(counts)
    }

    fn of(&self, hash: u64) -> u32 {
        match self.0.binary_search_by_key(&hash, |c| c.0) {
            Ok(i) => self.0[i].1,
            Err(_) => 1,
        }
    }

    /// A record's counts for each of its values.
    pub fn counts(&self, f: &Features) -> Counts {
        let mut out = Counts::default();
        for (slot, h) in out.0.iter_mut().zip(value_hashes(f)) {
            if let Some(h) = h {
                *slot = self.of(h);
            }
        }
        out
    }
}

/// Largest block compared all-pairs; past it, each record meets only its next `WINDOW` neighbours
/// (sorted by name), which keeps near-duplicates together and the cost linear.
pub const MAX_BLOCK: usize = 32;
pub const WINDOW: usize = 8;
/// The same bound for the store's blocks, which scoped resolution searches.
pub const BOUNDS: crate::store::block_keys::Bounds = crate::store::block_keys::Bounds {
    max_block: MAX_BLOCK,
    window: WINDOW,
};

/// Start times within this many seconds share a time bucket for event blocking.
fn bucket(start: i64, tolerance: i64) -> i64 {
    if tolerance <= 0 {
        start
    } else {
        start.div_euclid(tolerance)
    }
}

/// Calls `key` with each blocking key of `f`, as formatted text (`c:1234567`, `p:HU9 1EP`, …),
/// without building a string for each.
fn each_key(
    f: &Features,
    tolerance: i64,
    common: &HashSet<&str>,
    key: &mut dyn FnMut(std::fmt::Arguments),
) {
    each_value(f, &mut |_, text| key(text));
    match f {
        Features::Org(o) => {
            if let Some(outward) = &o.outward {
                // Common words ("community", "club") would make every district one big block.
                for t in o
                    .strong_tokens
                    .iter()
                    .filter(|t| t.len() > 2 && !common.contains(t.as_str()))
                {
                    key(format_args!("w:{outward}:{t}"));
                }
            }
            // The whole distinctive name, for records without a postcode.
            key(format_args!("n:{}", o.strong));
            for a in &o.alternates {
                key(format_args!("n:{a}"));
            }
        }
        Features::Event(e) => {
            let b = bucket(e.start, tolerance);
            for t in &e.title_tokens {
                key(format_args!("s:{b}:{t}"));
                if tolerance > 0 {
                    key(format_args!("s:{}:{t}", b + 1));
                }
            }
            if e.title_tokens.is_empty() {
                key(format_args!("s:{b}:{}", e.title));
            }
            // A title word on the same local day: day-only listings, starts a while apart and
            // local time marked UTC (an hour out) fall outside the time buckets. The day is the
            // partner's own (its offset), so a day-only listing's local midnight is on its date.
            let day = (e.start + i64::from(e.offset)).div_euclid(86_400);
            for t in &e.title_tokens {
                key(format_args!("y:{day}:{t}"));
            }
        }
    }
}

/// Name words found in more than one record in 500 (and at least 50): too common to block on.
fn common_tokens(features: &[Features]) -> HashSet<&str> {
    let mut df: HashMap<&str, usize> = HashMap::default();
    for f in features {
        if let Features::Org(o) = f {
            for t in &o.strong_tokens {
                *df.entry(t.as_str()).or_default() += 1;
            }
        }
    }
    let limit = (features.len() / 500).max(50);
    df.into_iter()
        .filter(|(_, n)| *n > limit)
        .map(|(t, _)| t)
        .collect()
}

fn sort_key(f: &Features) -> &str {
    match f {
        Features::Org(o) => &o.strong,
        Features::Event(e) => &e.title,
    }
}

/// A record's blocking keys as the store keeps them for incremental resolution: hashed (FNV-1a,
/// stable across builds) and with common name words kept, since a stored big block is walked by
/// window rather than left out.
pub fn stored_keys(f: &Features, tolerance_secs: i64) -> Vec<i64> {
    let mut out: Vec<i64> = hashed_keys(f, tolerance_secs, &HashSet::default())
        .into_iter()
        .map(|k| k as i64)
        .collect();
    // Stored keys are compared as a list with those an earlier resolution stored, which were
    // sorted as signed integers: a key past 2^63 sorts first here, not last.
    out.sort_unstable();
    out
}

/// A record's blocking keys hashed (FNV-1a), sorted and without repeats. Two keys that collide
/// only put more records in a block (more pairs scored), never fewer.
fn hashed_keys(f: &Features, tolerance_secs: i64, common: &HashSet<&str>) -> Vec<u64> {
    use std::fmt::Write;
    use std::hash::Hasher;
    let mut out: Vec<u64> = Vec::with_capacity(8);
    each_key(f, tolerance_secs, common, &mut |text| {
        // The key's text streamed into the hash: the same value as hashing the string.
        let mut h = super::features::Fnv(fnv::FnvHasher::default());
        let _ = h.write_fmt(text);
        out.push(h.0.finish());
    });
    out.sort_unstable();
    out.dedup();
    out
}

/// The first eight bytes of the record's sort key as an order-preserving integer: a stored big
/// block is walked in (roughly) name order, like the in-memory window.
pub fn sort_value(f: &Features) -> i64 {
    let mut b = [0u8; 8];
    for (d, s) in b.iter_mut().zip(sort_key(f).bytes()) {
        *d = s;
    }
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

/// Candidate pairs `(i, j)` with `i < j`, each once. `rank[i]` orders records with the same
/// name in a big block, so the window does not depend on the order records arrived in.
pub fn candidate_pairs(
    features: &[Features],
    rank: &[u32],
    tolerance_secs: i64,
) -> Vec<(u32, u32)> {
    candidates_and_frequencies(features, rank, tolerance_secs).0
}

/// [`candidate_pairs`] and every shared key's number of distinct records (a block's size), the
/// value frequencies scoring weighs agreement by.
pub fn candidates_and_frequencies(
    features: &[Features],
    rank: &[u32],
    tolerance_secs: i64,
) -> (Vec<(u32, u32)>, Frequencies) {
    let common = common_tokens(features);
    // Keys computed on every core; blocks are then runs of one key in a sorted list, members in
    // record order.
    let keys: Vec<_> = features
        .par_iter()
        .map(|f| hashed_keys(f, tolerance_secs, &common))
        .collect();
    let mut entries: Vec<(u64, u32)> = keys
        .iter()
        .enumerate()
        .flat_map(|(i, ks)| ks.iter().map(move |&k| (k, i as u32)))
        .collect();
    drop(keys);
    entries.sort_unstable();
    let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(features.len() * 2);
    let mut members: Vec<u32> = Vec::new();
    let mut shared: Vec<(u64, u32)> = Vec::new();
    for block in entries.chunk_by(|a, b| a.0 == b.0) {
        if block.len() < 2 {
            continue;
        }
        shared.push((block[0].0, block.len() as u32));
        members.clear();
        members.extend(block.iter().map(|&(_, i)| i));
        if members.len() <= MAX_BLOCK {
            for (x, &a) in members.iter().enumerate() {
                for &b in &members[x + 1..] {
                    pairs.push((a.min(b), a.max(b)));
                }
            }
        } else {
            members.sort_unstable_by(|&a, &b| {
                sort_key(&features[a as usize])
                    .cmp(sort_key(&features[b as usize]))
                    .then(rank[a as usize].cmp(&rank[b as usize]))
            });
            for (x, &a) in members.iter().enumerate() {
                for &b in members.iter().skip(x + 1).take(WINDOW) {
                    pairs.push((a.min(b), a.max(b)));
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    (pairs, Frequencies(shared))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedupe::features;
    use crate::model::{Address, Identifiers, Organisation, Payload};

    fn org(name: &str, postcode: Option<&str>, charity: Option<&str>) -> Features {
        features::of(&Payload::Organisation(Organisation {
            name: name.into(),
            address: Address {
                postcode: postcode.map(String::from),
                ..Default::default()
            },
            identifiers: Identifiers {
                charity_number: charity.map(String::from),
                ..Default::default()
            },
            ..Default::default()
        }))
    }

    #[test]
    fn shared_keys_make_pairs_and_strangers_do_not() {
        let f = vec![
            org("Hull Food Bank", Some("HU9 1EP"), None),
            org("Hull Foodbank Ltd", Some("HU9 1EP"), None),
            org("Age UK Hull", None, Some("1170001")),
            org("Age UK Kingston upon Hull", None, Some("1170001")),
            org("Crewe Pride", Some("CW1 2AZ"), None),
        ];
        let rank: Vec<u32> = (0..f.len() as u32).collect();
        let pairs = candidate_pairs(&f, &rank, 0);
        assert!(pairs.contains(&(0, 1)));
        assert!(pairs.contains(&(2, 3)));
        assert!(!pairs.iter().any(|&(a, b)| a == 4 || b == 4));
    }

    #[test]
    fn stored_keys_are_sorted_as_stored_and_without_repeats() {
        let f = org("Hull Food Bank Hull", Some("HU9 1EP"), Some("1170001"));
        let keys = stored_keys(&f, 0);
        assert!(keys.len() > 2);
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "ascending as i64, each once: {keys:?}"
        );
    }

    #[test]
    fn streamed_key_hashes_are_the_hashes_of_the_key_texts() {
        use std::hash::Hasher;
        // Stored keys and fingerprints from earlier builds were hashes of whole strings: the
        // streamed hashes must be the same values.
        let fnv = |s: &str| {
            let mut h = fnv::FnvHasher::default();
            h.write(s.as_bytes());
            h.finish()
        };
        let f = org("The Hull Food Bank Ltd", Some("hu9 1ep"), Some("1170001"));
        let mut texts = Vec::new();
        each_key(&f, 0, &HashSet::default(), &mut |t| {
            texts.push(t.to_string())
        });
        assert!(texts.contains(&"c:1170001".to_string()), "{texts:?}");
        assert!(texts.contains(&"p:HU9 1EP".to_string()), "{texts:?}");
        let mut expected: Vec<i64> = texts.iter().map(|t| fnv(t) as i64).collect();
        expected.sort_unstable();
        expected.dedup();
        assert_eq!(stored_keys(&f, 0), expected);
        assert_eq!(
            features::fingerprint(&f),
            fnv(&format!("{f:?}")) as i64,
            "the fingerprint is the hash of the features' Debug text"
        );
    }

    #[test]
    fn huge_blocks_stay_linear() {
        let f: Vec<Features> = (0..5000)
            .map(|i| org(&format!("Group {i}"), Some("HU1 1AA"), None))
            .collect();
        let rank: Vec<u32> = (0..f.len() as u32).collect();
        let pairs = candidate_pairs(&f, &rank, 0);
        assert!(pairs.len() <= 5000 * (WINDOW + 1), "{} pairs", pairs.len());
    }
}
