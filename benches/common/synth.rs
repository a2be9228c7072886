//! Labelled synthetic partner data for benchmarks: true organisations and events listed by many
//! partners with the noise real listings have (typos, abbreviations, missing identifiers,
//! reformatted or moved postcodes, decorated titles), plus distinct entities with near-identical
//! names (branches of national charities in different towns, the same coffee morning in many
//! places, weekly occurrences posted one by one). Deterministic for a given seed.
#![allow(dead_code)]

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use tributary::model::{Address, Event, Identifiers, Location, Organisation, Payload};
use tributary::store::records::StoredRecord;

pub const TOWNS: &[(&str, &str)] = &[
    ("Hull", "HU"),
    ("York", "YO"),
    ("Grimsby", "DN"),
    ("Scarborough", "YO"),
    ("Crewe", "CW"),
    ("Macclesfield", "SK"),
    ("Congleton", "CW"),
    ("Nantwich", "CW"),
    ("Wilmslow", "SK"),
    ("Knutsford", "WA"),
    ("Leeds", "LS"),
    ("Bradford", "BD"),
    ("Sheffield", "S"),
    ("Doncaster", "DN"),
    ("Rotherham", "S"),
    ("Wakefield", "WF"),
    ("Harrogate", "HG"),
    ("Beverley", "HU"),
    ("Goole", "DN"),
    ("Selby", "YO"),
    ("Whitby", "YO"),
    ("Malton", "YO"),
    ("Bridlington", "YO"),
    ("Driffield", "YO"),
    ("Scunthorpe", "DN"),
    ("Lincoln", "LN"),
    ("Chester", "CH"),
    ("Warrington", "WA"),
    ("Stockport", "SK"),
    ("Manchester", "M"),
    ("Salford", "M"),
    ("Bolton", "BL"),
    ("Wigan", "WN"),
    ("Preston", "PR"),
    ("Blackpool", "FY"),
    ("Lancaster", "LA"),
    ("Carlisle", "CA"),
    ("Durham", "DH"),
    ("Sunderland", "SR"),
    ("Newcastle", "NE"),
    ("Middlesbrough", "TS"),
    ("Darlington", "DL"),
    ("Derby", "DE"),
    ("Nottingham", "NG"),
    ("Leicester", "LE"),
    ("Coventry", "CV"),
    ("Birmingham", "B"),
    ("Wolverhampton", "WV"),
    ("Stoke", "ST"),
    ("Shrewsbury", "SY"),
    ("Hereford", "HR"),
    ("Worcester", "WR"),
    ("Gloucester", "GL"),
    ("Bristol", "BS"),
    ("Bath", "BA"),
    ("Exeter", "EX"),
    ("Plymouth", "PL"),
    ("Truro", "TR"),
    ("Swindon", "SN"),
    ("Oxford", "OX"),
    ("Reading", "RG"),
    ("Luton", "LU"),
    ("Cambridge", "CB"),
    ("Norwich", "NR"),
    ("Ipswich", "IP"),
    ("Colchester", "CO"),
    ("Chelmsford", "CM"),
    ("Southend", "SS"),
    ("Canterbury", "CT"),
    ("Brighton", "BN"),
    ("Portsmouth", "PO"),
    ("Southampton", "SO"),
    ("Bournemouth", "BH"),
    ("Salisbury", "SP"),
    ("Guildford", "GU"),
    ("Croydon", "CR"),
    ("Kingston", "KT"),
    ("Harrow", "HA"),
    ("Enfield", "EN"),
    ("Ilford", "IG"),
];

const NATIONAL: &[(&str, &str)] = &[
    ("Age UK {t}", "ageuk.org.uk"),
    ("Mind in {t}", "mind.org.uk"),
    ("Citizens Advice {t}", "citizensadvice.org.uk"),
    ("Home-Start {t}", "home-start.org.uk"),
    ("{t} Foodbank", "foodbank.org.uk"),
    ("{t} Samaritans", "samaritans.org"),
    ("{t} Men in Sheds", "menssheds.org.uk"),
    ("{t} Carers Centre", "carers.org"),
    ("{t} Scouts", "scouts.org.uk"),
    ("Girlguiding {t}", "girlguiding.org.uk"),
    ("{t} Rotary Club", "rotary.org"),
    ("{t} Credit Union", "creditunion.co.uk"),
];

const STREETS: &[&str] = &[
    "Church",
    "Station",
    "Victoria",
    "Park",
    "Mill",
    "Market",
    "High",
    "Queen",
    "King",
    "Chapel",
    "Bridge",
    "Castle",
    "Green",
    "Springfield",
    "Orchard",
    "Manor",
    "Grange",
    "Willow",
    "Oak",
    "Beech",
    "Holly",
    "Meadow",
    "River",
    "Canal",
    "Abbey",
    "North",
    "South",
    "West",
    "East",
    "Hill",
];

const KINDS: &[&str] = &[
    "Community Association",
    "Residents Association",
    "Community Centre",
    "Youth Club",
    "Football Club",
    "Cricket Club",
    "Bowls Club",
    "Allotment Society",
    "Gardening Club",
    "Choir",
    "Theatre Group",
    "Art Group",
    "Lunch Club",
    "Luncheon Club",
    "Toddler Group",
    "Playgroup",
    "Parent Carer Forum",
    "Heritage Society",
    "History Society",
    "Walking Group",
    "Cycling Club",
    "Dementia Cafe",
    "Memory Cafe",
    "Befriending Service",
    "Community Larder",
    "Community Pantry",
    "Friends of the Park",
    "Tenants Group",
    "Women's Group",
    "Men's Group",
    "Refugee Support",
    "Wellbeing Hub",
    "Arts Trust",
    "Development Trust",
    "Community Transport",
    "Good Neighbours",
    "Baby Bank",
    "Repair Cafe",
    "Sports Trust",
    "Music Society",
];

const TOPICS: &[&str] = &[
    "Safeguarding basics",
    "Funding fundamentals",
    "Trustee essentials",
    "Volunteer recruitment",
    "Social prescribing network",
    "Mental health first aid",
    "Data protection for charities",
    "Writing a winning bid",
    "Green social prescribing",
    "Community asset transfer",
    "Digital skills",
    "Managing volunteers",
    "Annual general meeting",
    "Food poverty forum",
    "Youth work network",
    "Coffee morning",
    "Carers support group",
    "Dementia friends session",
    "Health and wellbeing fair",
    "Anchor institutions webinar",
    "Social value and procurement",
    "Equality and inclusion",
];

/// Ground truth: the entity each generated record belongs to.
pub struct Labelled {
    pub records: Vec<StoredRecord>,
    pub truth: Vec<u32>,
}

struct Rng(fastrand::Rng);

impl Rng {
    fn chance(&mut self, p: f64) -> bool {
        self.0.f64() < p
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.0.usize(..v.len())]
    }
    fn upper(&mut self) -> char {
        (b'A' + self.0.u8(..26)) as char
    }
}

fn postcode(rng: &mut Rng, area: &str) -> String {
    format!(
        "{area}{} {}{}{}",
        rng.0.u8(1..20),
        rng.0.u8(0..10),
        rng.upper(),
        rng.upper()
    )
}

fn slug(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// A typo: one character deleted, doubled or two swapped, inside a longer word.
fn typo(rng: &mut Rng, s: &str) -> String {
    let words: Vec<&str> = s.split(' ').collect();
    let candidates: Vec<usize> = (0..words.len())
        .filter(|&i| words[i].len() > 5 && words[i].is_ascii())
        .collect();
    if candidates.is_empty() {
        return s.to_string();
    }
    let wi = *rng.pick(&candidates);
    let mut w: Vec<char> = words[wi].chars().collect();
    let i = rng.0.usize(1..w.len() - 1);
    match rng.0.u8(0..3) {
        0 => {
            w.remove(i);
        }
        1 => w.insert(i, w[i]),
        _ => w.swap(i, i + 1),
    }
    let mut out: Vec<String> = words.iter().map(|x| x.to_string()).collect();
    out[wi] = w.into_iter().collect();
    out.join(" ")
}

fn name_noise(rng: &mut Rng, name: &str) -> String {
    let mut n = name.to_string();
    if rng.chance(0.08) {
        n = typo(rng, &n);
    }
    if rng.chance(0.15) {
        n = if n.contains(" and ") {
            n.replace(" and ", " & ")
        } else {
            n.replace(" & ", " and ")
        };
    }
    if rng.chance(0.10) {
        const SUFFIXES: &[&str] = &[" Ltd", " CIC", " CIO", " (Registered Charity)"];
        let suffix: &&str = rng.pick(SUFFIXES);
        n.push_str(suffix);
    }
    if rng.chance(0.10) {
        n = format!("The {n}");
    }
    if rng.chance(0.06) {
        n = n.replace("Association", "Assoc.");
    }
    if rng.chance(0.05) {
        n = n.to_uppercase();
    }
    n
}

fn listing_count(rng: &mut Rng) -> usize {
    match rng.0.u8(0..100) {
        0..=54 => 1,
        55..=79 => 2,
        80..=92 => 3,
        _ => 4,
    }
}

fn stored(row: i64, partner: usize, rec_id: String, payload: Payload) -> StoredRecord {
    StoredRecord {
        row_id: row,
        partner: format!("partner-{partner:02}"),
        priority: (partner % 5) as i64,
        record_id: rec_id,
        url: None,
        changed_at: Utc
            .timestamp_opt(1_790_000_000 + row, 0)
            .single()
            .unwrap_or_default(),
        payload,
        entity_id: None,
    }
}

/// About `n` organisation records from `partners` partners.
pub fn organisations(n: usize, partners: usize, seed: u64) -> Labelled {
    let mut rng = Rng(fastrand::Rng::with_seed(seed));
    let mut out = Labelled {
        records: Vec::with_capacity(n + 8),
        truth: Vec::with_capacity(n + 8),
    };
    let mut entity = 0u32;
    let mut used_names = std::collections::HashSet::new();
    while out.records.len() < n {
        let (town, area) = *rng.pick(TOWNS);
        // A fifth are branches of national networks: near-identical names, different towns.
        let (name, web) = if rng.chance(0.2) {
            let (tpl, domain) = *rng.pick(NATIONAL);
            let name = tpl.replace("{t}", town);
            let web = format!("https://{}.{domain}", slug(town));
            (name, Some(web))
        } else {
            let name = match rng.0.u8(0..3) {
                0 => format!("{town} {} {}", rng.pick(STREETS), rng.pick(KINDS)),
                1 => format!("{} Road {} {}", rng.pick(STREETS), rng.pick(KINDS), town),
                _ => format!(
                    "{} {} {}",
                    rng.pick(STREETS),
                    rng.pick(STREETS),
                    rng.pick(KINDS)
                ),
            };
            let web = rng
                .chance(0.4)
                .then(|| format!("https://www.{}{}.org.uk", slug(&name), slug(town)));
            (name, web)
        };
        // Real registers hold one organisation per name and place; so does the truth here.
        let key = format!("{name}|{town}");
        if !used_names.insert(key) {
            continue;
        }
        let charity = rng
            .chance(0.55)
            .then(|| format!("{}", 1_000_000 + entity * 3 + 7));
        let company = rng
            .chance(0.12)
            .then(|| format!("{:08}", 4_000_000 + entity));
        let pc = postcode(&mut rng, area);
        let phone = rng
            .chance(0.5)
            .then(|| format!("01{:03} {:06}", rng.0.u16(200..999), entity % 1_000_000));
        let listings = listing_count(&mut rng);
        let mut partners_used = Vec::new();
        for _ in 0..listings {
            let p = rng.0.usize(..partners);
            if partners_used.contains(&p) {
                continue;
            }
            partners_used.push(p);
            let charity_l = charity.as_ref().filter(|_| rng.chance(0.6)).map(|c| {
                if rng.chance(0.25) {
                    format!("Registered charity no. {c}")
                } else {
                    c.clone()
                }
            });
            let postcode_l = if rng.chance(0.12) {
                None
            } else if rng.chance(0.08) {
                Some(postcode(&mut rng, area)) // moved
            } else if rng.chance(0.2) {
                Some(pc.replace(' ', "").to_lowercase())
            } else {
                Some(pc.clone())
            };
            let org = Organisation {
                name: name_noise(&mut rng, &name),
                identifiers: Identifiers {
                    charity_number: charity_l,
                    company_number: company.clone().filter(|_| rng.chance(0.5)),
                    org_id: None,
                },
                website: web.clone().filter(|_| rng.chance(0.6)),
                phone: phone.clone().filter(|_| rng.chance(0.5)),
                address: Address {
                    locality: Some(town.to_string()),
                    postcode: postcode_l,
                    ..Default::default()
                },
                categories: vec!["Community".into()],
                ..Default::default()
            };
            let row = out.records.len() as i64 + 1;
            out.records.push(stored(
                row,
                p,
                format!("o{row}"),
                Payload::Organisation(org),
            ));
            out.truth.push(entity);
        }
        entity += 1;
    }
    out
}

fn london(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<FixedOffset> {
    chrono_tz::Europe::London
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .earliest()
        .map(|t| t.fixed_offset())
        .unwrap_or_else(|| Utc::now().fixed_offset())
}

const DECORATIONS: &[&str] = &[
    "Webinar: ",
    "SAVE THE DATE: ",
    "***SAVE THE DATE*** ",
    "Online: ",
    "",
];

/// About `n` event records from `partners` partners; a tenth are weekly series.
pub fn events(n: usize, partners: usize, seed: u64) -> Labelled {
    let mut rng = Rng(fastrand::Rng::with_seed(seed));
    let mut out = Labelled {
        records: Vec::with_capacity(n + 8),
        truth: Vec::with_capacity(n + 8),
    };
    let mut entity = 0u32;
    let mut used = std::collections::HashSet::new();
    while out.records.len() < n {
        let (town, area) = *rng.pick(TOWNS);
        let topic = *rng.pick(TOPICS);
        let title = if rng.chance(0.75) {
            format!("{town} {topic}")
        } else {
            topic.to_string()
        };
        let day = rng.0.u32(0..365);
        let base = london(2027, 1, 1, 0, 0) + Duration::days(day as i64);
        let start = london(
            base.format("%Y").to_string().parse().unwrap_or(2027),
            base.format("%m").to_string().parse().unwrap_or(1),
            base.format("%d").to_string().parse().unwrap_or(1),
            rng.0.u32(9..20),
            *rng.pick(&[0, 30]),
        );
        let online = rng.chance(0.25);
        let pc = (!online).then(|| postcode(&mut rng, area));
        // The same title at the same time is a different event in another town.
        if !used.insert(format!("{title}|{}|{pc:?}", start.timestamp())) {
            continue;
        }
        let booking = rng.chance(0.35).then(|| {
            format!(
                "https://www.eventbrite.co.uk/e/{}-tickets-{}",
                slug(&title),
                100_000 + entity
            )
        });
        let recurring = rng.chance(0.1);
        let listings = listing_count(&mut rng);
        let mut partners_used = Vec::new();
        for _ in 0..listings {
            let p = rng.0.usize(..partners);
            if partners_used.contains(&p) {
                continue;
            }
            partners_used.push(p);
            let mut t = format!("{}{title}", rng.pick(DECORATIONS));
            if rng.chance(0.1) {
                t = t.to_uppercase();
            }
            if rng.chance(0.05) {
                t = typo(&mut rng, &t);
            }
            if rng.chance(0.1) {
                t.push_str(" (free)");
            }
            let ev = Event {
                title: t,
                description: None,
                description_html: None,
                start,
                end: Some(start + Duration::hours(2)),
                timezone: Some("Europe/London".into()),
                all_day: false,
                recurrence: recurring.then(|| vec!["RRULE:FREQ=WEEKLY;COUNT=10".to_string()]),
                status: Default::default(),
                location: Location {
                    name: pc.as_ref().map(|_| format!("{town} Community Centre")),
                    postcode: pc.clone().filter(|_| rng.chance(0.85)),
                    online,
                    ..Default::default()
                },
                url: None,
                booking_url: booking.clone().filter(|_| rng.chance(0.8)),
                organiser: Default::default(),
                categories: vec![],
                overrides: Vec::new(),
            };
            let row = out.records.len() as i64 + 1;
            out.records
                .push(stored(row, p, format!("e{row}"), Payload::Event(ev)));
            out.truth.push(entity);
        }
        entity += 1;
    }
    out
}

/// Pairwise precision, recall and F1 of predicted clusters against the truth.
pub fn pairwise(truth: &[u32], predicted: &[u32]) -> (f64, f64, f64) {
    use std::collections::HashMap;
    let pairs = |n: u64| n * n.saturating_sub(1) / 2;
    let mut both: HashMap<(u32, u32), u64> = HashMap::new();
    let mut t: HashMap<u32, u64> = HashMap::new();
    let mut p: HashMap<u32, u64> = HashMap::new();
    for (a, b) in truth.iter().zip(predicted) {
        *both.entry((*a, *b)).or_default() += 1;
        *t.entry(*a).or_default() += 1;
        *p.entry(*b).or_default() += 1;
    }
    let tp: u64 = both.values().map(|&n| pairs(n)).sum();
    let true_pairs: u64 = t.values().map(|&n| pairs(n)).sum();
    let pred_pairs: u64 = p.values().map(|&n| pairs(n)).sum();
    let precision = if pred_pairs == 0 {
        1.0
    } else {
        tp as f64 / pred_pairs as f64
    };
    let recall = if true_pairs == 0 {
        1.0
    } else {
        tp as f64 / true_pairs as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    (precision, recall, f1)
}
