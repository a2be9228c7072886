//! Labelled UK voluntary-sector listings for judging entity resolution: about 30 partners of
//! different kinds (a charity register, a companies register, grants data, council directories, CVS
//! member lists, …) each write the same true organisations and events in their own style, with the
//! shared values, wrong identifiers and near-twins real directories hold. Seeded and deterministic.

#![allow(dead_code)]

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::London;
use std::collections::HashSet;

use fastrand::Rng;
use tributary::model::{Address, Event, EventStatus, Location, Organisation, Organiser, Payload};
use tributary::store::records::StoredRecord;

/// Records with their true entity (`truth[i]` of `records[i]`) and what kind of case made the
/// entity (`tags[i]`, for debug output: which phenomena the engine gets wrong).
pub struct Labelled {
    pub records: Vec<StoredRecord>,
    pub truth: Vec<u32>,
    pub tags: Vec<&'static str>,
}

struct Place {
    official: &'static str,
    common: &'static str,
    hoods: &'static [&'static str],
    county: &'static str,
    area: &'static str,
    districts: (u32, u32),
    dial: &'static str,
}

const fn place(
    official: &'static str,
    common: &'static str,
    hoods: &'static [&'static str],
    county: &'static str,
    area: &'static str,
    districts: (u32, u32),
    dial: &'static str,
) -> Place {
    Place {
        official,
        common,
        hoods,
        county,
        area,
        districts,
        dial,
    }
}

const PLACES: &[Place] = &[
    place(
        "Kingston upon Hull",
        "Hull",
        &[
            "Bransholme",
            "Orchard Park",
            "Hessle Road",
            "Sutton-on-Hull",
            "Newland",
        ],
        "East Riding of Yorkshire",
        "HU",
        (1, 9),
        "01482",
    ),
    place(
        "Newcastle upon Tyne",
        "Newcastle",
        &["Byker", "Walker", "Fenham", "Benwell", "Jesmond"],
        "Tyne and Wear",
        "NE",
        (1, 7),
        "0191",
    ),
    place(
        "Brighton and Hove",
        "Brighton",
        &["Whitehawk", "Moulsecoomb", "Hollingdean", "Kemptown"],
        "East Sussex",
        "BN",
        (1, 3),
        "01273",
    ),
    place(
        "Manchester",
        "Manchester",
        &["Moss Side", "Wythenshawe", "Gorton", "Ancoats", "Harpurhey"],
        "Greater Manchester",
        "M",
        (8, 23),
        "0161",
    ),
    place(
        "Birmingham",
        "Birmingham",
        &[
            "Handsworth",
            "Small Heath",
            "Kings Heath",
            "Erdington",
            "Sparkbrook",
        ],
        "West Midlands",
        "B",
        (5, 44),
        "0121",
    ),
    place(
        "Leeds",
        "Leeds",
        &["Chapeltown", "Harehills", "Armley", "Seacroft"],
        "West Yorkshire",
        "LS",
        (6, 14),
        "0113",
    ),
    place(
        "Sheffield",
        "Sheffield",
        &["Darnall", "Firth Park", "Gleadless", "Hillsborough"],
        "South Yorkshire",
        "S",
        (2, 9),
        "0114",
    ),
    place(
        "Bristol",
        "Bristol",
        &["Easton", "Knowle West", "Southmead", "Bedminster"],
        "Avon",
        "BS",
        (2, 13),
        "0117",
    ),
    place(
        "Liverpool",
        "Liverpool",
        &["Anfield", "Toxteth", "Everton", "Norris Green"],
        "Merseyside",
        "L",
        (4, 13),
        "0151",
    ),
    place(
        "Nottingham",
        "Nottingham",
        &["Sneinton", "Bulwell", "Clifton", "Radford"],
        "Nottinghamshire",
        "NG",
        (1, 8),
        "0115",
    ),
    place(
        "Leicester",
        "Leicester",
        &["Belgrave", "Braunstone", "Highfields"],
        "Leicestershire",
        "LE",
        (1, 5),
        "0116",
    ),
    place(
        "Stoke-on-Trent",
        "Stoke",
        &["Hanley", "Burslem", "Longton", "Tunstall"],
        "Staffordshire",
        "ST",
        (1, 6),
        "01782",
    ),
    place(
        "Kingston upon Thames",
        "Kingston",
        &["Norbiton", "Surbiton", "Tolworth"],
        "Greater London",
        "KT",
        (1, 2),
        "020",
    ),
    place(
        "Cardiff",
        "Cardiff",
        &["Splott", "Grangetown", "Ely", "Butetown"],
        "South Glamorgan",
        "CF",
        (10, 24),
        "029",
    ),
    place(
        "Swansea",
        "Swansea",
        &["Townhill", "Morriston", "Sketty"],
        "West Glamorgan",
        "SA",
        (1, 6),
        "01792",
    ),
    place(
        "Glasgow",
        "Glasgow",
        &["Govan", "Easterhouse", "Maryhill", "Drumchapel"],
        "Lanarkshire",
        "G",
        (31, 53),
        "0141",
    ),
    place(
        "Edinburgh",
        "Edinburgh",
        &["Leith", "Craigmillar", "Wester Hailes", "Gorgie"],
        "Midlothian",
        "EH",
        (4, 17),
        "0131",
    ),
    place(
        "Aberdeen",
        "Aberdeen",
        &["Torry", "Tillydrone", "Northfield"],
        "Aberdeenshire",
        "AB",
        (10, 24),
        "01224",
    ),
    place(
        "Belfast",
        "Belfast",
        &["Shankill", "Falls", "Ballymacarrett", "Andersonstown"],
        "County Antrim",
        "BT",
        (1, 17),
        "028",
    ),
    place(
        "Norwich",
        "Norwich",
        &["Mile Cross", "Lakenham", "Earlham"],
        "Norfolk",
        "NR",
        (1, 7),
        "01603",
    ),
    place(
        "Ipswich",
        "Ipswich",
        &["Chantry", "Whitehouse", "Gainsborough"],
        "Suffolk",
        "IP",
        (1, 4),
        "01473",
    ),
    place(
        "Plymouth",
        "Plymouth",
        &["Devonport", "Stonehouse", "Whitleigh"],
        "Devon",
        "PL",
        (1, 7),
        "01752",
    ),
    place(
        "Exeter",
        "Exeter",
        &["Wonford", "Whipton", "Heavitree"],
        "Devon",
        "EX",
        (1, 4),
        "01392",
    ),
    place(
        "Middlesbrough",
        "Middlesbrough",
        &["North Ormesby", "Grangetown", "Hemlington"],
        "North Yorkshire",
        "TS",
        (1, 8),
        "01642",
    ),
    place(
        "Sunderland",
        "Sunderland",
        &["Hendon", "Pennywell", "Southwick"],
        "Tyne and Wear",
        "SR",
        (1, 6),
        "0191",
    ),
    place(
        "Great Yarmouth",
        "Yarmouth",
        &["Gorleston", "Southtown", "Caister"],
        "Norfolk",
        "NR",
        (29, 31),
        "01493",
    ),
    place(
        "St Helens",
        "St Helens",
        &["Parr", "Thatto Heath", "Haydock"],
        "Merseyside",
        "WA",
        (9, 11),
        "01744",
    ),
    place(
        "St Albans",
        "St Albans",
        &["Fleetville", "Marshalswick", "London Colney"],
        "Hertfordshire",
        "AL",
        (1, 4),
        "01727",
    ),
    place(
        "Bury St Edmunds",
        "Bury",
        &["Moreton Hall", "Howard Estate"],
        "Suffolk",
        "IP",
        (28, 33),
        "01284",
    ),
    place(
        "Newport",
        "Newport",
        &["Pill", "Maindee", "Bettws"],
        "Gwent",
        "NP",
        (19, 20),
        "01633",
    ),
    place(
        "Crewe",
        "Crewe",
        &["Coppenhall", "Wistaston"],
        "Cheshire",
        "CW",
        (1, 2),
        "01270",
    ),
    place(
        "Macclesfield",
        "Macclesfield",
        &["Hurdsfield", "Weston"],
        "Cheshire",
        "SK",
        (10, 11),
        "01625",
    ),
];

const STREETS: &[&str] = &[
    "High Street",
    "Station Road",
    "Church Lane",
    "Victoria Road",
    "Park Avenue",
    "Mill Lane",
    "King Street",
    "Queen's Road",
    "New Road",
    "Albert Street",
    "Chapel Street",
    "Market Place",
    "Green Lane",
    "Manor Road",
    "North Road",
    "Springfield Road",
    "Grange Road",
    "York Road",
    "Westfield Avenue",
    "Beverley Road",
    "Holderness Road",
    "Cemetery Road",
    "Bridge Street",
];

const SAINTS: &[&str] = &[
    "Mary", "John", "Peter", "Andrew", "Paul", "Michael", "Luke", "Margaret", "Aidan", "Columba",
];

/// Local organisation names: `{p}` is the town or a neighbourhood; the second part is an acronym
/// form some partners use instead.
const TEMPLATES: &[(&str, Option<&str>, &str)] = &[
    ("{p} Community Association", None, "community"),
    ("{p} Foodbank", None, "food"),
    (
        "{p} Council for Voluntary Service",
        Some("{p} CVS"),
        "infrastructure",
    ),
    ("Citizens Advice {p}", Some("{p} CAB"), "advice"),
    ("Voluntary Action {p}", Some("VA {p}"), "infrastructure"),
    (
        "{p} Tenants and Residents Association",
        Some("{p} TARA"),
        "housing",
    ),
    ("{p} Carers Centre", None, "carers"),
    ("{p} Credit Union", None, "money"),
    ("{p} Men's Shed", None, "wellbeing"),
    ("{p} Dementia Support Group", None, "health"),
    ("{p} Lunch Club", None, "older people"),
    ("{p} Allotment Society", None, "environment"),
    ("{p} Youth Project", None, "youth"),
    ("{p} Women's Aid", None, "domestic abuse"),
    ("Mind in {p}", None, "mental health"),
    ("Friends of {p} Park", None, "environment"),
    ("{p} Baby Bank", None, "families"),
    ("{p} Refugee Support", None, "refugees"),
    ("{p} Arts Collective", None, "arts"),
    ("{p} Bowls Club", None, "sport"),
    ("Home-Start {p}", None, "families"),
    ("{p} Talking Newspaper", None, "disability"),
    ("{p} Play Association", None, "children"),
    ("{p} Wheelers Cycling Club", None, "sport"),
    ("{p} Disability Forum", None, "disability"),
    ("{p} Sea Cadets", None, "youth"),
    ("{p} Community Garden", None, "environment"),
    ("{p} Heritage Trust", None, "heritage"),
];

const DISTINCTIVE: &[&str] = &[
    "Hope",
    "Trinity",
    "Phoenix",
    "Rainbow",
    "Sunrise",
    "Oasis",
    "Beacon",
    "Harbour",
    "Compass",
    "Open Door",
    "Bridge",
    "Jubilee",
    "Lighthouse",
    "Acorn",
    "Willow",
    "Horizon",
    "Cornerstone",
    "Kindred",
    "Roots",
    "Sanctuary",
    "Evergreen",
    "Unity",
    "Haven",
    "Spark",
    "Pathways",
    "Anchor",
    "Threads",
    "Wellspring",
    "Northern Star",
    "Greenhouse",
    "Rising",
    "Common Ground",
    "Tapestry",
];

const NOUNS: &[&str] = &[
    "Foodbank",
    "Youth Project",
    "Community Choir",
    "Carers Group",
    "Lunch Club",
    "Men's Shed",
    "Community Garden",
    "Family Centre",
    "Counselling Service",
    "Advice Centre",
    "Theatre Company",
    "Arts Project",
    "Football Club",
    "Drop-in",
    "Trust",
    "Housing Co-operative",
    "Recovery Café",
    "Women's Centre",
    "Befriending Scheme",
    "Community Kitchen",
    "Pantry",
    "Dance School",
];

const SURNAMES: &[&str] = &[
    "Smith",
    "Patel",
    "Robertson",
    "Hughes",
    "Wilkinson",
    "Okafor",
    "Murray",
    "Evans",
    "Begum",
    "Thompson",
    "Gallagher",
    "Kaur",
    "Davies",
    "Fletcher",
    "Lloyd",
    "Walsh",
    "Ahmed",
    "Clarke",
];

const SERVICES: &[&str] = &[
    "Befriending Service",
    "Advice Line",
    "Drop-in",
    "Lunch Club",
    "Volunteer Drivers",
    "Carers Support",
    "Digital Inclusion Project",
    "Warm Space",
];

const LEGAL: &[(&str, &str)] = &[
    ("CIO", "Charitable Incorporated Organisation"),
    ("Ltd", "Limited"),
    ("CIC", "Community Interest Company"),
    ("", ""),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    CharityRegister,
    CompaniesRegister,
    Grants,
    Council,
    Cvs,
    Nhs,
    NationalDirectory,
    Volunteering,
    Funder,
    WhatsOn,
}

struct Partner {
    id: String,
    style: Style,
    priority: i64,
    /// Places this partner lists (all when empty).
    covers: Vec<usize>,
    /// Writes local wall-clock times marked as UTC.
    zulu_local: bool,
}

fn partners() -> Vec<Partner> {
    let all = Vec::new();
    let mut out = vec![
        Partner {
            id: "charity-register".into(),
            style: Style::CharityRegister,
            priority: 8,
            covers: all.clone(),
            zulu_local: false,
        },
        Partner {
            id: "companies-register".into(),
            style: Style::CompaniesRegister,
            priority: 6,
            covers: all.clone(),
            zulu_local: false,
        },
        Partner {
            id: "grants-360".into(),
            style: Style::Grants,
            priority: 4,
            covers: all.clone(),
            zulu_local: false,
        },
        Partner {
            id: "community-fund-grants".into(),
            style: Style::Grants,
            priority: 4,
            covers: all.clone(),
            zulu_local: false,
        },
        Partner {
            id: "national-directory".into(),
            style: Style::NationalDirectory,
            priority: 3,
            covers: all.clone(),
            zulu_local: false,
        },
        Partner {
            id: "do-it-volunteering".into(),
            style: Style::Volunteering,
            priority: 2,
            covers: all.clone(),
            zulu_local: true,
        },
        Partner {
            id: "reach-volunteering".into(),
            style: Style::Volunteering,
            priority: 2,
            covers: all.clone(),
            zulu_local: false,
        },
        Partner {
            id: "lottery-funder".into(),
            style: Style::Funder,
            priority: 3,
            covers: all.clone(),
            zulu_local: false,
        },
        Partner {
            id: "trust-funder".into(),
            style: Style::Funder,
            priority: 3,
            covers: all.clone(),
            zulu_local: false,
        },
        Partner {
            id: "whats-on-uk".into(),
            style: Style::WhatsOn,
            priority: 1,
            covers: all.clone(),
            zulu_local: false,
        },
    ];
    let n = PLACES.len();
    for c in 0..8 {
        out.push(Partner {
            id: format!(
                "council-{}",
                PLACES[c * 4].common.to_lowercase().replace(' ', "-")
            ),
            style: Style::Council,
            priority: 5,
            covers: (c * 4..c * 4 + 4).map(|i| i % n).collect(),
            zulu_local: false,
        });
        out.push(Partner {
            id: format!(
                "cvs-{}",
                PLACES[(c * 4 + 2) % n]
                    .common
                    .to_lowercase()
                    .replace(' ', "-")
            ),
            style: Style::Cvs,
            priority: 7,
            covers: (c * 4 + 2..c * 4 + 6).map(|i| i % n).collect(),
            zulu_local: c == 3,
        });
    }
    for s in 0..3 {
        out.push(Partner {
            id: format!("nhs-social-prescribing-{}", s + 1),
            style: Style::Nhs,
            priority: 2,
            covers: (0..n).filter(|i| i % 3 == s).collect(),
            zulu_local: s == 1,
        });
    }
    out.push(Partner {
        id: "library-directory".into(),
        style: Style::Council,
        priority: 2,
        covers: Vec::new(),
        zulu_local: false,
    });
    out
}

fn covers(p: &Partner, place: usize) -> bool {
    p.covers.is_empty() || p.covers.contains(&place)
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

fn chance(rng: &mut Rng, p: f64) -> bool {
    rng.f64() < p
}

fn weighted(rng: &mut Rng, weights: &[(usize, u32)]) -> usize {
    let total: u32 = weights.iter().map(|w| w.1).sum();
    let mut x = rng.u32(..total);
    for &(v, w) in weights {
        if x < w {
            return v;
        }
        x -= w;
    }
    weights[0].0
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() && c != '\'' {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn compact(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase()
}

fn postcode(rng: &mut Rng, p: &Place) -> String {
    const L: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
    format!(
        "{}{} {}{}{}",
        p.area,
        rng.u32(p.districts.0..=p.districts.1),
        rng.u32(1..10),
        L[rng.usize(..L.len())] as char,
        L[rng.usize(..L.len())] as char
    )
}

fn street(rng: &mut Rng) -> String {
    format!("{} {}", rng.u32(1..240), pick(rng, STREETS))
}

fn landline(rng: &mut Rng, p: &Place) -> String {
    let digits = 11 - p.dial.len();
    let mut n = String::new();
    n.push(char::from(b'2' + rng.u8(..7)));
    for _ in 1..digits {
        n.push(char::from(b'0' + rng.u8(..10)));
    }
    format!("{} {}", p.dial, n)
}

fn mobile(rng: &mut Rng) -> String {
    format!("07{} {:06}", rng.u32(400..999), rng.u32(..1_000_000))
}

/// A phone number as one partner types it.
fn phone_style(rng: &mut Rng, number: &str) -> String {
    let (code, rest) = number.split_once(' ').unwrap_or((number, ""));
    let code_no0 = code.trim_start_matches('0');
    match rng.u8(..6) {
        0 => format!("({code}) {rest}"),
        1 => format!("+44 (0){code_no0} {rest}"),
        2 => format!("{code}{rest}"),
        3 => format!("+44{code_no0}{rest}"),
        4 => format!("{code}-{rest}"),
        _ => number.to_string(),
    }
}

fn typo(rng: &mut Rng, s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let letters: Vec<usize> = (1..chars.len().saturating_sub(1))
        .filter(|&i| chars[i].is_ascii_lowercase() && chars[i + 1].is_ascii_lowercase())
        .collect();
    if letters.is_empty() {
        return s.to_string();
    }
    let i = *pick(rng, &letters);
    let mut c = chars.clone();
    if chance(rng, 0.5) {
        c.swap(i, i + 1);
    } else {
        c.remove(i);
    }
    c.into_iter().collect()
}

fn transpose_digits(rng: &mut Rng, n: &str) -> String {
    let mut c: Vec<char> = n.chars().collect();
    let spots: Vec<usize> = (0..c.len().saturating_sub(1))
        .filter(|&i| c[i].is_ascii_digit() && c[i + 1].is_ascii_digit() && c[i] != c[i + 1])
        .collect();
    if spots.is_empty() {
        return n.to_string();
    }
    let i = *pick(rng, &spots);
    c.swap(i, i + 1);
    c.into_iter().collect()
}

fn saint_variant(rng: &mut Rng, s: &str) -> String {
    if !s.contains("St ") {
        return s.to_string();
    }
    match rng.u8(..3) {
        0 => s.replace("St ", "St. "),
        1 => s.replace("St ", "Saint "),
        _ => s.to_string(),
    }
}

fn record(
    row: i64,
    partner: &Partner,
    record_id: String,
    url: Option<String>,
    payload: Payload,
) -> StoredRecord {
    StoredRecord {
        row_id: row,
        partner: partner.id.clone(),
        priority: partner.priority,
        record_id,
        url,
        changed_at: Utc
            .with_ymd_and_hms(2026, 11, 1, 9, 0, 0)
            .single()
            .unwrap_or_default(),
        payload,
        entity_id: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Organisations

#[derive(Clone)]
struct Org {
    name: String,
    acronym: Option<String>,
    old_name: Option<String>,
    legal: (&'static str, &'static str),
    charity: Option<String>,
    /// A national body's number this local unit's listings often carry instead of its own.
    parent_charity: Option<String>,
    company: Option<String>,
    place: usize,
    hood: Option<usize>,
    street: String,
    postcode: String,
    reg_office: Option<(String, String)>,
    website: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    /// Volunteers answer this group's phone: each listing gives someone's mobile.
    volunteer_phone: bool,
    /// The community centre whose venue (and often phone and email domain) the group uses.
    host: Option<usize>,
    category: &'static str,
    tag: &'static str,
}

impl Org {
    fn blank(place: usize, tag: &'static str) -> Org {
        Org {
            name: String::new(),
            acronym: None,
            old_name: None,
            legal: ("", ""),
            charity: None,
            parent_charity: None,
            company: None,
            place,
            hood: None,
            street: String::new(),
            postcode: String::new(),
            reg_office: None,
            website: None,
            email: None,
            phone: None,
            volunteer_phone: false,
            host: None,
            category: "community",
            tag,
        }
    }
}

struct Numbers {
    next_charity: u32,
    next_company: u32,
}

impl Numbers {
    fn charity(&mut self, rng: &mut Rng) -> String {
        self.next_charity += rng.u32(1..40);
        format!("{}", self.next_charity)
    }
    fn company(&mut self, rng: &mut Rng) -> String {
        self.next_company += rng.u32(1..400);
        format!("{:08}", self.next_company)
    }
}

fn own_website(rng: &mut Rng, name: &str) -> String {
    let base = compact(name);
    let tld = pick(rng, &[".org.uk", ".org", ".co.uk", ".uk", ".org.uk"]);
    format!("https://www.{base}{tld}")
}

/// A local organisation from the templates, in a town or one of its neighbourhoods.
fn local_org(rng: &mut Rng, nums: &mut Numbers, place: usize) -> Org {
    let p = &PLACES[place];
    let (tpl, acr, cat) = *pick(rng, TEMPLATES);
    let hood = (!p.hoods.is_empty() && chance(rng, 0.55)).then(|| rng.usize(..p.hoods.len()));
    let where_ = hood.map_or(p.common, |h| p.hoods[h]);
    let mut o = Org::blank(place, "local");
    o.hood = hood;
    o.category = cat;
    let form = rng.u8(..20);
    o.name = match form {
        0..=9 => tpl.replace("{p}", where_),
        10..=15 => {
            // A distinctive word and a kind of group, often with the place: "Oasis Foodbank Hull".
            let base = format!("{} {}", pick(rng, DISTINCTIVE), pick(rng, NOUNS));
            if chance(rng, 0.4) {
                format!("{base} {where_}")
            } else {
                base
            }
        }
        16 | 17 => format!("{where_} {} {}", pick(rng, DISTINCTIVE), pick(rng, NOUNS)),
        _ => format!(
            "The {} {} Trust",
            pick(rng, SURNAMES),
            pick(rng, &["Memorial", "Family", "Charitable", "Educational"])
        ),
    };
    if chance(rng, 0.06) {
        o.name = format!(
            "St {}'s {}",
            pick(rng, SAINTS),
            pick(
                rng,
                &[
                    "Church Hall Trust",
                    "Community Hall",
                    "Youth Club",
                    "Toddler Group"
                ]
            )
        );
        o.tag = "saint";
    }
    // Only the templated names have a usual acronym ("Hull CVS").
    o.acronym = acr
        .filter(|_| form <= 9 && o.tag != "saint")
        .map(|a| a.replace("{p}", where_));
    o.legal = *pick(rng, LEGAL);
    if chance(rng, 0.6) {
        o.charity = Some(nums.charity(rng));
    }
    if o.legal.0 == "Ltd" || o.legal.0 == "CIC" || chance(rng, 0.15) {
        o.company = Some(nums.company(rng));
    }
    o.street = street(rng);
    o.postcode = postcode(rng, p);
    if o.charity.is_some() && chance(rng, 0.25) {
        o.tag = if o.tag == "local" {
            "accountant-office"
        } else {
            o.tag
        };
    }
    o.website = match rng.u8(..10) {
        0..=3 => Some(own_website(rng, &o.name)),
        4..=6 => Some(format!("https://www.facebook.com/{}", compact(&o.name))),
        _ => None,
    };
    let domain = o
        .website
        .as_deref()
        .filter(|w| !w.contains("facebook"))
        .map(|w| w.trim_start_matches("https://www.").to_string());
    o.email = match (&domain, rng.u8(..3)) {
        (Some(d), 0 | 1) => Some(format!(
            "{}@{d}",
            pick(rng, &["info", "hello", "admin", "enquiries"])
        )),
        _ if chance(rng, 0.5) => Some(format!("{}{}@gmail.com", compact(&o.name), rng.u32(1..99))),
        _ => None,
    };
    if chance(rng, 0.25) {
        o.volunteer_phone = true;
    } else if chance(rng, 0.8) {
        o.phone = Some(landline(rng, p));
    }
    if chance(rng, 0.04) {
        // A rebrand: older listings still carry the former name.
        o.old_name = Some(format!(
            "{} {}",
            where_,
            pick(
                rng,
                &["Community Project", "Action Group", "Support Network"]
            )
        ));
        o.tag = "rebrand";
    }
    o
}

/// A local unit of a national body: its listings often carry the parent's charity number, and
/// its website sits on the parent's platform.
fn national_unit(rng: &mut Rng, nums: &mut Numbers, place: usize, nth: &mut [u32; 5]) -> Org {
    let p = &PLACES[place];
    let hood = (!p.hoods.is_empty()).then(|| rng.usize(..p.hoods.len()));
    let where_ = hood.map_or(p.common, |h| p.hoods[h]);
    let mut o = Org::blank(place, "national-unit");
    o.hood = hood;
    o.street = street(rng);
    o.postcode = postcode(rng, p);
    o.volunteer_phone = chance(rng, 0.5);
    let kind = rng.u8(..5);
    nth[kind as usize] += 1;
    let ord = |n: u32| match n % 10 {
        1 if n % 100 != 11 => format!("{n}st"),
        2 if n % 100 != 12 => format!("{n}nd"),
        3 if n % 100 != 13 => format!("{n}rd"),
        _ => format!("{n}th"),
    };
    match kind {
        0 => {
            o.name = format!("{} {} Scout Group", ord(rng.u32(1..30)), where_);
            o.parent_charity = Some("306101".into());
            o.category = "youth";
            o.website = chance(rng, 0.5)
                .then(|| format!("https://www.facebook.com/{}scouts", compact(where_)));
        }
        1 => {
            o.name = format!(
                "{} {} {}",
                ord(rng.u32(1..20)),
                where_,
                pick(rng, &["Brownies", "Guides", "Rainbows"])
            );
            o.parent_charity = Some("306016".into());
            o.category = "youth";
        }
        2 => {
            o.name = format!("Samaritans of {}", p.common);
            o.acronym = Some(format!("{} Samaritans", p.common));
            o.hood = None;
            o.parent_charity = Some("219432".into());
            o.charity = chance(rng, 0.5).then(|| nums.charity(rng));
            o.website = Some(format!(
                "https://www.samaritans.org/branches/{}/",
                slug(p.common)
            ));
            o.phone = Some(landline(rng, p));
            o.volunteer_phone = false;
            o.category = "mental health";
        }
        3 => {
            o.name = format!("Age UK {}", p.common);
            o.old_name = Some(format!("Age Concern {}", p.common));
            o.hood = None;
            o.charity = Some(nums.charity(rng));
            o.company = Some(nums.company(rng));
            o.legal = ("Ltd", "Limited");
            o.parent_charity = Some("1128267".into());
            o.website = Some(format!("https://www.ageuk.org.uk/{}/", slug(p.common)));
            o.phone = Some(landline(rng, p));
            o.volunteer_phone = false;
            o.category = "older people";
            o.tag = "age-uk";
        }
        _ => {
            o.name = format!("{where_} U3A");
            o.acronym = Some(format!("{where_} University of the Third Age"));
            o.charity = chance(rng, 0.7).then(|| nums.charity(rng));
            o.parent_charity = Some("1040647".into());
            o.website = Some(format!("https://u3asites.org.uk/{}/home", slug(where_)));
            o.category = "older people";
            o.tag = "u3a";
        }
    }
    o
}

fn community_centre(rng: &mut Rng, nums: &mut Numbers, place: usize) -> Org {
    let p = &PLACES[place];
    let hood = rng.usize(..p.hoods.len().max(1));
    let where_ = p.hoods.get(hood).copied().unwrap_or(p.common);
    let mut o = Org::blank(place, "community-centre");
    o.hood = Some(hood);
    o.name = format!(
        "{where_} {}",
        pick(
            rng,
            &[
                "Community Centre",
                "Community Hub",
                "Neighbourhood Centre",
                "Family Hub"
            ]
        )
    );
    o.charity = chance(rng, 0.7).then(|| nums.charity(rng));
    o.street = street(rng);
    o.postcode = postcode(rng, p);
    o.website = Some(own_website(rng, &o.name));
    let d = o
        .website
        .as_deref()
        .unwrap_or("")
        .trim_start_matches("https://www.")
        .to_string();
    o.email = Some(format!("bookings@{d}"));
    o.phone = Some(landline(rng, p));
    o.category = "community";
    o
}

/// Everything an organisation's listings are drawn from.
struct OrgWorld {
    orgs: Vec<Org>,
    /// Per place: accountants' offices many small charities give as their registered office.
    accountants: Vec<Vec<(String, String)>>,
}

fn org_world(n: usize, rng: &mut Rng) -> OrgWorld {
    let mut nums = Numbers {
        next_charity: 1_000_000 + rng.u32(..50_000),
        next_company: 1_000_000 + rng.u32(..500_000),
    };
    let accountants: Vec<Vec<(String, String)>> = PLACES
        .iter()
        .map(|p| {
            (0..3)
                .map(|_| {
                    let firm = format!(
                        "c/o {} & Co Accountants, {}",
                        pick(rng, &["Smith", "Patel", "Jones", "Khan", "Taylor", "Brown"]),
                        street(rng)
                    );
                    (firm, postcode(rng, p))
                })
                .collect()
        })
        .collect();
    let mut orgs: Vec<Org> = Vec::with_capacity(n);
    let mut centres: Vec<Vec<usize>> = vec![Vec::new(); PLACES.len()];
    let mut nth = [0u32; 5];
    // Two true organisations in one town rarely share a name; allow it only when the names run out.
    let mut taken: HashSet<(String, usize)> = HashSet::new();
    let mut collisions = 0;
    while orgs.len() < n {
        let place = rng.usize(..PLACES.len());
        let roll = rng.u32(..100);
        let mut o = if roll < 4 {
            community_centre(rng, &mut nums, place)
        } else if roll < 16 {
            national_unit(rng, &mut nums, place, &mut nth)
        } else {
            local_org(rng, &mut nums, place)
        };
        if !taken.insert((o.name.to_lowercase(), place)) && collisions < 50 {
            collisions += 1;
            continue;
        }
        collisions = 0;
        if o.tag == "community-centre" {
            centres[place].push(orgs.len());
        }
        if o.tag == "accountant-office" {
            o.reg_office = Some(pick(rng, &accountants[place]).clone());
        }
        // Groups meeting at a community centre give its address, and often its phone and email.
        if o.tag != "community-centre" && !centres[place].is_empty() && chance(rng, 0.2) {
            let host = *pick(rng, &centres[place]);
            let h = orgs[host].clone();
            o.host = Some(host);
            o.street = h.street.clone();
            o.postcode = h.postcode.clone();
            o.hood = h.hood;
            if chance(rng, 0.6) {
                o.phone = h.phone.clone();
                o.volunteer_phone = false;
            }
            if chance(rng, 0.5) {
                let d = h
                    .email
                    .as_deref()
                    .and_then(|e| e.split_once('@'))
                    .map(|x| x.1.to_string());
                o.email = d.map(|d| format!("{}@{d}", slug(&o.name)));
            }
            o.tag = "hosted";
        }
        let parent = orgs.len();
        orgs.push(o);
        // Linked charities and trading subsidiaries: near-twins that are other entities.
        if orgs.len() < n && orgs[parent].charity.is_some() && chance(rng, 0.04) {
            let mut l = orgs[parent].clone();
            let base = l.charity.clone().unwrap_or_default();
            l.charity = Some(format!("{base}-{}", rng.u32(1..4)));
            l.company = None;
            if chance(rng, 0.6) {
                l.name = format!(
                    "{} {}",
                    l.name,
                    pick(rng, &["Restricted Fund", "Endowment Fund", "Building Fund"])
                );
            }
            l.acronym = None;
            l.old_name = None;
            l.tag = "linked-charity";
            orgs.push(l);
        }
        if orgs.len() < n && orgs[parent].charity.is_some() && chance(rng, 0.03) {
            let mut t = orgs[parent].clone();
            t.name = format!("{} Trading", t.name);
            t.legal = ("Ltd", "Limited");
            t.charity = None;
            t.parent_charity = None;
            t.company = Some(nums.company(rng));
            t.acronym = None;
            t.old_name = None;
            t.tag = "trading-subsidiary";
            orgs.push(t);
        }
    }
    OrgWorld { orgs, accountants }
}

fn with_legal(rng: &mut Rng, name: &str, legal: (&str, &str), long: bool) -> String {
    if legal.0.is_empty() || chance(rng, 0.4) {
        return name.to_string();
    }
    format!("{name} {}", if long { legal.1 } else { legal.0 })
}

/// The name as a partner of this style writes it.
fn listed_name(rng: &mut Rng, o: &Org, style: Style) -> String {
    let p = &PLACES[o.place];
    let stale = matches!(style, Style::NationalDirectory | Style::Nhs | Style::Funder);
    let mut name = match (&o.old_name, &o.acronym) {
        (Some(old), _) if stale && chance(rng, 0.5) => old.clone(),
        (_, Some(a)) if chance(rng, 0.35) => a.clone(),
        _ => o.name.clone(),
    };
    match style {
        Style::CharityRegister | Style::CompaniesRegister => {
            let long = style == Style::CharityRegister && chance(rng, 0.5);
            let full = with_legal(rng, &name, o.legal, long);
            let full = if style == Style::CompaniesRegister
                && !full.to_lowercase().contains("limited")
                && !full.to_lowercase().contains("ltd")
                && !full.contains("CIC")
            {
                format!("{full} Limited")
            } else {
                full
            };
            return full.to_uppercase();
        }
        Style::Council | Style::Nhs if chance(rng, 0.3) => {
            name = format!(
                "{name} {} {}",
                pick(rng, &["-", "–", ":"]),
                pick(rng, SERVICES)
            );
        }
        Style::Cvs | Style::NationalDirectory => {
            if chance(rng, 0.12) && name.contains(p.common) {
                name = name.replacen(p.common, &format!("{} & District", p.common), 1);
            } else if chance(rng, 0.12) && !name.contains(p.common) {
                let sep = *pick(rng, &[" (", ", ", " - "]);
                name = if sep == " (" {
                    format!("{name} ({})", p.common)
                } else {
                    format!("{name}{sep}{}", p.common)
                };
            }
            let long = chance(rng, 0.5);
            name = with_legal(rng, &name, o.legal, long);
        }
        Style::Funder => name = with_legal(rng, &name, o.legal, true),
        _ => {}
    }
    if chance(rng, 0.3) && !name.starts_with("The ") && !name.starts_with("St") && chance(rng, 0.3)
    {
        name = format!("The {name}");
    }
    if chance(rng, 0.05) {
        name = typo(rng, &name);
    }
    saint_variant(rng, &name)
}

fn listed_charity(rng: &mut Rng, o: &Org, style: Style) -> Option<String> {
    if o.tag == "linked-charity" {
        return o.charity.clone();
    }
    let give = match style {
        Style::CharityRegister => 1.0,
        Style::Cvs | Style::Funder => 0.7,
        Style::NationalDirectory => 0.5,
        Style::Council => 0.1,
        Style::Volunteering => 0.3,
        _ => 0.0,
    };
    if !chance(rng, give) {
        return None;
    }
    if style != Style::CharityRegister {
        // Ordinary wrong numbers: the parent's, a company number, transposed digits.
        if let Some(parent) = &o.parent_charity {
            if o.charity.is_none() || chance(rng, 0.3) {
                return Some(parent.clone());
            }
        }
        if let Some(c) = &o.company {
            if chance(rng, 0.05) {
                return Some(c.clone());
            }
        }
    }
    let n = o.charity.clone()?;
    let n = if style != Style::CharityRegister && chance(rng, 0.03) {
        transpose_digits(rng, &n)
    } else {
        n
    };
    Some(match rng.u8(..8) {
        0 if style == Style::Cvs => format!("Reg. charity no. {n}"),
        1 if style == Style::Cvs => format!("Charity {n}"),
        _ => n,
    })
}

fn listed_org(rng: &mut Rng, w: &OrgWorld, o: &Org, partner: &Partner) -> Option<Organisation> {
    let style = partner.style;
    let p = &PLACES[o.place];
    let mut org = Organisation {
        name: listed_name(rng, o, style),
        ..Default::default()
    };
    let hood = o.hood.and_then(|h| p.hoods.get(h)).copied();
    let town = match style {
        Style::CharityRegister | Style::CompaniesRegister => p.official,
        Style::Council => hood.filter(|_| chance(rng, 0.6)).unwrap_or(p.common),
        Style::Funder | Style::NationalDirectory if chance(rng, 0.3) => p.county,
        _ => match rng.u8(..4) {
            0 => p.official,
            1 => hood.unwrap_or(p.common),
            _ => p.common,
        },
    };
    let registered = matches!(style, Style::CharityRegister | Style::CompaniesRegister);
    let (street, pc) = match (&o.reg_office, registered) {
        (Some((s, pc)), true) => (s.clone(), pc.clone()),
        _ => (o.street.clone(), o.postcode.clone()),
    };
    let pc = match rng.u8(..12) {
        0 => pc.to_lowercase(),
        1 => pc.replace(' ', ""),
        2 if !registered => String::new(),
        3 if style == Style::Volunteering => pc.split(' ').next().unwrap_or("").to_string(),
        _ => pc,
    };
    org.address = Address {
        street: (!matches!(style, Style::Grants | Style::Volunteering) && chance(rng, 0.85))
            .then_some(street),
        locality: chance(rng, 0.9).then(|| town.to_string()),
        region: (chance(rng, 0.3)).then(|| p.county.to_string()),
        postcode: (!pc.is_empty()).then_some(pc),
        ..Address::default()
    };
    match style {
        Style::CharityRegister => {
            org.identifiers.charity_number = listed_charity(rng, o, style);
            org.identifiers.charity_number.as_ref()?;
            org.identifiers.company_number = o.company.clone().filter(|_| chance(rng, 0.7));
        }
        Style::CompaniesRegister => {
            let c = o.company.as_deref()?;
            org.identifiers.company_number = Some(c.trim_start_matches('0').to_string());
        }
        Style::Grants => {
            org.identifiers.org_id = match (&o.charity, &o.company) {
                (Some(c), _) if c.contains('-') || chance(rng, 0.8) => Some(format!("GB-CHC-{c}")),
                (_, Some(c)) => Some(format!("GB-COH-{c}")),
                _ => None,
            };
            org.identifiers.org_id.as_ref()?;
        }
        _ => {
            org.identifiers.charity_number = listed_charity(rng, o, style);
            if matches!(style, Style::Cvs | Style::Funder) && chance(rng, 0.4) {
                org.identifiers.company_number = o.company.clone();
            }
        }
    }
    let phone_ok = !matches!(style, Style::CompaniesRegister | Style::Grants);
    if phone_ok && chance(rng, 0.8) {
        org.phone = if o.volunteer_phone || (style == Style::Nhs && chance(rng, 0.2)) {
            Some(mobile(rng))
        } else {
            o.phone.as_deref().map(|n| phone_style(rng, n))
        };
    }
    let web_ok = !matches!(style, Style::CompaniesRegister);
    if web_ok && chance(rng, 0.75) {
        org.website = o.website.as_deref().map(|u| website_style(rng, u));
    }
    if !matches!(style, Style::CompaniesRegister | Style::Grants) && chance(rng, 0.7) {
        org.email = o.email.clone();
    }
    if chance(rng, 0.5) {
        org.categories = vec![o.category.to_string()];
    }
    let _ = w;
    Some(org)
}

fn website_style(rng: &mut Rng, url: &str) -> String {
    let bare = url.trim_start_matches("https://");
    match rng.u8(..6) {
        0 => bare.to_string(),
        1 => format!("http://{}", bare.trim_start_matches("www.")),
        2 if !bare.ends_with('/') => format!("{url}/"),
        3 if bare.contains("facebook.com") => format!(
            "https://facebook.com/{}/",
            bare.rsplit('/').next().unwrap_or("").to_lowercase()
        ),
        4 if !bare.contains('/') => format!("{url}/about-us"),
        _ => url.to_string(),
    }
}

/// `entities` true organisations, each listed by 2–8 partners in their own styles.
pub fn organisations(entities: usize, seed: u64) -> Labelled {
    let mut rng = Rng::with_seed(seed);
    let world = org_world(entities, &mut rng);
    let partners = partners();
    let mut out = Labelled {
        records: Vec::new(),
        truth: Vec::new(),
        tags: Vec::new(),
    };
    let mut serial = vec![0u32; partners.len()];
    for (ei, o) in world.orgs.iter().enumerate() {
        let k = weighted(
            &mut rng,
            &[(2, 30), (3, 25), (4, 18), (5, 12), (6, 7), (7, 5), (8, 3)],
        );
        let mut eligible: Vec<usize> = (0..partners.len())
            .filter(|&i| partners[i].style != Style::WhatsOn && covers(&partners[i], o.place))
            .filter(|&i| match partners[i].style {
                // Linked charities and trading arms are mostly register entries: only partners
                // that carry numbers list them.
                _ if o.tag == "linked-charity" => matches!(
                    partners[i].style,
                    Style::CharityRegister | Style::Grants | Style::Funder
                ),
                _ if o.tag == "trading-subsidiary" => matches!(
                    partners[i].style,
                    Style::CompaniesRegister
                        | Style::Grants
                        | Style::Funder
                        | Style::Cvs
                        | Style::NationalDirectory
                ),
                Style::CharityRegister => o.charity.is_some(),
                Style::CompaniesRegister => o.company.is_some(),
                Style::Grants => o.charity.is_some() || o.company.is_some(),
                _ => true,
            })
            .collect();
        rng.shuffle(&mut eligible);
        let mut listed = 0;
        for &pi in &eligible {
            if listed == k {
                break;
            }
            let partner = &partners[pi];
            let Some(payload) = listed_org(&mut rng, &world, o, partner) else {
                continue;
            };
            serial[pi] += 1;
            let rid = format!("{}-{:06}", &partner.id[..3], serial[pi] * 7 + rng.u32(..7));
            let row = out.records.len() as i64 + 1;
            out.records.push(record(
                row,
                partner,
                rid,
                None,
                Payload::Organisation(payload),
            ));
            out.truth.push(ei as u32);
            out.tags.push(o.tag);
            listed += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Events

const TITLES: &[&str] = &[
    "Tea Dance",
    "Coffee Morning",
    "Chair Yoga",
    "Digital Skills Drop-in",
    "Carers' Support Group",
    "Walking Football",
    "Knit and Natter",
    "Warm Space",
    "Job Club",
    "Memory Cafe",
    "Community Lunch",
    "Family Fun Day",
    "Volunteer Fair",
    "Funding Information Session",
    "Baby and Toddler Group",
    "Men's Mental Health Walk",
    "Repair Cafe",
    "Bingo Afternoon",
    "Craft Club",
    "Youth Drop-in",
    "Safeguarding Briefing",
    "Trustee Networking Breakfast",
    "Benefits Advice Surgery",
    "Gardening Club",
    "Story Time",
    "Seated Exercise",
    "Food Hygiene Workshop",
    "Bereavement Cafe",
];

const COURSES: &[&str] = &[
    "Mental Health First Aid",
    "Introduction to Bid Writing",
    "Safeguarding Level 2",
    "Basic Book-keeping",
    "Volunteer Management",
];

#[derive(Clone)]
struct Venue {
    name: String,
    street: String,
    town: String,
    postcode: String,
}

#[derive(Clone)]
struct Ev {
    title: String,
    organiser: String,
    venue: Option<Venue>,
    zoom: Option<String>,
    start: NaiveDateTime,
    minutes: i64,
    recurrence: Option<String>,
    eventbrite: Option<u64>,
    place: usize,
    tag: &'static str,
}

fn venue(rng: &mut Rng, place: usize) -> Venue {
    let p = &PLACES[place];
    let hood = p
        .hoods
        .get(rng.usize(..p.hoods.len().max(1)))
        .copied()
        .unwrap_or(p.common);
    let name = match rng.u8(..6) {
        0 => format!(
            "{} Family Hub",
            pick(rng, &["North", "East", "West", "Central", "South"])
        ),
        1 => format!("{hood} Library"),
        2 => format!("St {}'s Church Hall", pick(rng, SAINTS)),
        3 => format!("{hood} Community Centre"),
        4 => format!("{hood} Leisure Centre"),
        _ => format!(
            "The {} Rooms",
            pick(rng, &["Guildhall", "Assembly", "Meeting", "Victoria"])
        ),
    };
    Venue {
        name,
        street: street(rng),
        town: hood.to_string(),
        postcode: postcode(rng, p),
    }
}

fn organiser(rng: &mut Rng, place: usize) -> String {
    let p = &PLACES[place];
    let (tpl, _, _) = *pick(rng, TEMPLATES);
    let where_ = if chance(rng, 0.5) {
        p.common
    } else {
        pick(rng, p.hoods)
    };
    tpl.replace("{p}", where_)
}

fn start_at(rng: &mut Rng) -> NaiveDateTime {
    let day =
        NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default() + Duration::days(rng.i64(0..360));
    let (h, m) = *pick(
        rng,
        &[
            (10, 0),
            (10, 30),
            (13, 0),
            (14, 0),
            (11, 0),
            (18, 30),
            (19, 0),
            (9, 30),
            (12, 0),
        ],
    );
    day.and_hms_opt(h, m, 0).unwrap_or_default()
}

fn zoom_link(rng: &mut Rng) -> String {
    format!(
        "https://us02web.zoom.us/meeting/register/tZ{}",
        rng.u64(..u64::MAX / 2)
    )
}

fn base_event(rng: &mut Rng, place: usize, tag: &'static str) -> Ev {
    let online = chance(rng, 0.12);
    Ev {
        title: pick(rng, TITLES).to_string(),
        organiser: organiser(rng, place),
        venue: (!online).then(|| venue(rng, place)),
        zoom: online.then(|| zoom_link(rng)),
        start: start_at(rng),
        minutes: *pick(rng, &[60, 90, 120, 180]),
        recurrence: None,
        eventbrite: chance(rng, 0.15).then(|| 100_000_000_000 + rng.u64(..900_000_000_000)),
        place,
        tag,
    }
}

/// True events, built in groups so the hard negatives real calendars hold are present.
fn event_world(n: usize, rng: &mut Rng) -> Vec<Ev> {
    let mut evs: Vec<Ev> = Vec::with_capacity(n);
    while evs.len() < n {
        let place = rng.usize(..PLACES.len());
        let roll = rng.u32(..100);
        let mut group: Vec<Ev> = Vec::new();
        if roll < 8 {
            // The same session at the same hour in two venues: two events.
            let a = base_event(rng, place, "twin-venues");
            let mut a = Ev { zoom: None, ..a };
            a.venue = Some(venue(rng, place));
            let mut b = a.clone();
            let first = a.venue.as_ref().map(|v| v.name.clone());
            while b.venue.as_ref().map(|v| v.name.clone()) == first {
                b.venue = Some(venue(rng, place));
            }
            group.push(a);
            group.push(b);
        } else if roll < 14 {
            // One organiser's series-wide Zoom registration link on two sessions.
            let mut a = base_event(rng, place, "shared-zoom");
            a.venue = None;
            a.zoom = Some(zoom_link(rng));
            let mut b = a.clone();
            if chance(rng, 0.5) {
                b.start += Duration::days(7 * rng.i64(1..4));
            } else {
                b.title = pick(rng, TITLES).to_string();
                b.start += Duration::hours(rng.i64(2..5));
            }
            b.eventbrite = None;
            group.push(a);
            group.push(b);
        } else if roll < 20 {
            // A course whose parts run on consecutive weeks: each part is its own event.
            let parts = rng.i64(2..5);
            let a = base_event(rng, place, "course-part");
            let course = pick(rng, COURSES).to_string();
            for i in 0..parts {
                let mut e = a.clone();
                e.title = format!(
                    "{course} {} Part {} of {parts}",
                    pick(rng, &["-", "–", ":"]),
                    i + 1
                );
                e.start = a.start + Duration::days(7 * i);
                e.eventbrite = a.eventbrite.map(|id| id + i as u64 * 17);
                group.push(e);
            }
        } else if roll < 25 {
            // A weekly series, and one of its occurrences posted alone: linked, not one event.
            let mut s = base_event(rng, place, "series-occurrence");
            s.recurrence = Some(format!("RRULE:FREQ=WEEKLY;COUNT={}", rng.u32(6..20)));
            s.eventbrite = None;
            let mut one = s.clone();
            one.recurrence = None;
            one.start += Duration::days(7 * rng.i64(1..5));
            group.push(s);
            group.push(one);
        } else {
            let mut e = base_event(rng, place, "ordinary");
            if chance(rng, 0.15) {
                e.recurrence = Some(format!(
                    "RRULE:FREQ=WEEKLY;BYDAY={}",
                    pick(rng, &["MO", "TU", "WE", "TH", "FR"])
                ));
                e.tag = "series";
            }
            if e.zoom.is_some() {
                e.tag = "online";
            }
            group.push(e);
        }
        for e in group {
            if evs.len() < n {
                evs.push(e);
            }
        }
    }
    evs
}

fn london(t: NaiveDateTime) -> DateTime<FixedOffset> {
    London
        .from_local_datetime(&t)
        .earliest()
        .map(|d| d.fixed_offset())
        .unwrap_or_else(|| t.and_utc().fixed_offset())
}

fn eventbrite_url(rng: &mut Rng, title: &str, id: u64) -> String {
    let host = pick(
        rng,
        &[
            "www.eventbrite.co.uk",
            "www.eventbrite.com",
            "eventbrite.co.uk",
        ],
    );
    match rng.u8(..4) {
        0 => format!("https://{host}/e/{id}"),
        1 => format!(
            "https://{host}/e/{}-tickets-{id}?aff=ebdssbdestsearch",
            slug(title)
        ),
        2 => format!(
            "https://{host}/e/{}-tickets-{id}?utm_source=newsletter&utm_medium=email",
            slug(title)
        ),
        _ => format!("https://{host}/e/{}-tickets-{id}", slug(title)),
    }
}

fn listed_event(rng: &mut Rng, e: &Ev, partner: &Partner, serial: u32) -> Event {
    let style = partner.style;
    let mut title = e.title.clone();
    if matches!(style, Style::Cvs | Style::WhatsOn) && chance(rng, 0.2) {
        title = format!("{}: {title}", e.organiser);
    } else if chance(rng, 0.1) {
        title = format!(
            "{title} {}",
            pick(rng, &["(Free)", "- all welcome", "at the Hub", "- FREE"])
        );
    } else if chance(rng, 0.05) {
        title = title.to_uppercase();
    }
    // Registration opens or a room opens a little before the start some partners give.
    let early = match style {
        Style::Cvs | Style::Volunteering if chance(rng, 0.15) => *pick(rng, &[5, 10, 15, 30]),
        _ if e.zoom.is_some() && chance(rng, 0.3) => 5,
        _ => 0,
    };
    let local = e.start - Duration::minutes(early);
    let day_only = style == Style::Nhs && e.recurrence.is_none() && chance(rng, 0.3);
    let (start, end, timezone, all_day) = if day_only {
        let midnight = local.date().and_hms_opt(0, 0, 0).unwrap_or(local);
        (
            london(midnight),
            Some(london(midnight + Duration::days(1))),
            Some("Europe/London".to_string()),
            true,
        )
    } else if partner.zulu_local {
        // Local wall-clock written as UTC: an hour out in summer.
        let z = local.and_utc().fixed_offset();
        (
            z,
            Some(z + Duration::minutes(e.minutes + early)),
            None,
            false,
        )
    } else {
        let s = london(local);
        (
            s,
            Some(s + Duration::minutes(e.minutes + early)),
            Some("Europe/London".to_string()),
            false,
        )
    };
    let mut location = Location::default();
    if let Some(v) = &e.venue {
        let name = if chance(rng, 0.15) {
            v.name.replace("Centre", "Ctr")
        } else {
            v.name.clone()
        };
        location.name = chance(rng, 0.9).then_some(name);
        location.address = chance(rng, 0.7).then(|| {
            if chance(rng, 0.5) {
                format!("{}, {}", v.street, v.town)
            } else {
                format!("{}, {}, {}", v.street, v.town, PLACES[e.place].common)
            }
        });
        location.postcode = chance(rng, 0.75).then(|| v.postcode.clone());
    }
    if let Some(z) = &e.zoom {
        location.online = true;
        location.name = chance(rng, 0.5).then(|| "Online (Zoom)".to_string());
        location.url = chance(rng, 0.7).then(|| z.clone());
    }
    let eb = e.eventbrite.map(|id| eventbrite_url(rng, &e.title, id));
    let own = format!("https://{}.example.org.uk/events/{serial}", partner.id);
    let (url, booking) = match (&eb, rng.u8(..3)) {
        (Some(u), 0) => (Some(u.clone()), None),
        (Some(u), _) => (Some(own), Some(u.clone())),
        (None, _) => (Some(own), e.zoom.clone().filter(|_| chance(rng, 0.5))),
    };
    Event {
        title,
        description: None,
        description_html: None,
        start,
        end,
        timezone,
        all_day,
        recurrence: e.recurrence.clone().map(|r| vec![r]),
        overrides: Vec::new(),
        status: EventStatus::Scheduled,
        location,
        url,
        booking_url: booking,
        organiser: Organiser {
            name: chance(rng, 0.6).then(|| e.organiser.clone()),
            organisation_id: None,
        },
        categories: Vec::new(),
    }
}

/// `entities` true events, each posted by 1–5 partners (most by 2–3) in their own styles.
pub fn events(entities: usize, seed: u64) -> Labelled {
    let mut rng = Rng::with_seed(seed ^ 0x9e37_79b9_7f4a_7c15);
    let world = event_world(entities, &mut rng);
    let partners = partners();
    let posting: Vec<usize> = (0..partners.len())
        .filter(|&i| {
            matches!(
                partners[i].style,
                Style::Council
                    | Style::Cvs
                    | Style::Nhs
                    | Style::Volunteering
                    | Style::WhatsOn
                    | Style::NationalDirectory
            )
        })
        .collect();
    let mut out = Labelled {
        records: Vec::new(),
        truth: Vec::new(),
        tags: Vec::new(),
    };
    let mut serial = vec![0u32; partners.len()];
    for (ei, e) in world.iter().enumerate() {
        let k = weighted(&mut rng, &[(1, 20), (2, 32), (3, 25), (4, 14), (5, 9)]);
        let mut eligible: Vec<usize> = posting
            .iter()
            .copied()
            .filter(|&i| covers(&partners[i], e.place))
            .collect();
        rng.shuffle(&mut eligible);
        for &pi in eligible.iter().take(k) {
            let partner = &partners[pi];
            serial[pi] += 1;
            let ev = listed_event(&mut rng, e, partner, serial[pi]);
            let rid = format!("{}@{}", rng.u64(..u64::MAX / 4), partner.id);
            let row = out.records.len() as i64 + 1;
            let url = ev.url.clone();
            out.records
                .push(record(row, partner, rid, url, Payload::Event(ev)));
            out.truth.push(ei as u32);
            out.tags.push(e.tag);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Scores

fn pairs_within(sizes: impl Iterator<Item = u64>) -> u64 {
    sizes.map(|s| s * s.saturating_sub(1) / 2).sum()
}

/// Pairwise precision, recall and F1 of `predicted` cluster labels against `truth`.
pub fn pairwise(truth: &[u32], predicted: &[u32]) -> (f64, f64, f64) {
    use std::collections::HashMap;
    let mut both: HashMap<(u32, u32), u64> = HashMap::new();
    let mut t: HashMap<u32, u64> = HashMap::new();
    let mut p: HashMap<u32, u64> = HashMap::new();
    for (&a, &b) in truth.iter().zip(predicted) {
        *both.entry((a, b)).or_default() += 1;
        *t.entry(a).or_default() += 1;
        *p.entry(b).or_default() += 1;
    }
    let tp = pairs_within(both.values().copied()) as f64;
    let true_pairs = pairs_within(t.values().copied()) as f64;
    let pred_pairs = pairs_within(p.values().copied()) as f64;
    let precision = if pred_pairs > 0.0 {
        tp / pred_pairs
    } else {
        1.0
    };
    let recall = if true_pairs > 0.0 {
        tp / true_pairs
    } else {
        1.0
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    (precision, recall, f1)
}

/// B-cubed precision, recall and F1: per record, the share of its predicted cluster that is truly
/// its entity and the share of its entity found in its cluster, averaged over records.
pub fn bcubed(truth: &[u32], predicted: &[u32]) -> (f64, f64, f64) {
    use std::collections::HashMap;
    let mut both: HashMap<(u32, u32), f64> = HashMap::new();
    let mut t: HashMap<u32, f64> = HashMap::new();
    let mut p: HashMap<u32, f64> = HashMap::new();
    for (&a, &b) in truth.iter().zip(predicted) {
        *both.entry((a, b)).or_default() += 1.0;
        *t.entry(a).or_default() += 1.0;
        *p.entry(b).or_default() += 1.0;
    }
    let n = truth.len().max(1) as f64;
    let (mut bp, mut br) = (0.0, 0.0);
    for (&(a, b), &k) in &both {
        // Each of the k records in this cell scores k/|cluster| and k/|entity|.
        bp += k * k / p[&b];
        br += k * k / t[&a];
    }
    let (bp, br) = (bp / n, br / n);
    let f1 = if bp + br > 0.0 {
        2.0 * bp * br / (bp + br)
    } else {
        0.0
    };
    (bp, br, f1)
}
