//! ORUK `postcode` + `proximity` through the real daemon over a centroid file in the ONS Postcode
//! Directory layout: each search returns exactly the organisations a brute-force distance check
//! over the same centroids returns, and bad or unknown postcodes are 400s naming the parameter.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::{json, Value};

/// Great-circle distance in metres, written out here so the check does not lean on the server's.
fn haversine(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371_008.8_f64;
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let dp = p2 - p1;
    let dl = (b.1 - a.1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

struct World {
    env: TestEnv,
    centroids: BTreeMap<String, (f64, f64)>,
    /// Organisation name → its postcode (if any).
    orgs: BTreeMap<String, Option<String>>,
}

fn world() -> World {
    let mut rng = fastrand::Rng::with_seed(23);
    let env = TestEnv::new("");
    let mut centroids = BTreeMap::new();
    let mut csv = String::from("pcd,pcd2,pcds,dointr,doterm,oseast1m,osnrth1m,lat,long\n");
    let letters = b"ABDEFGHJLNPQRSTUWXYZ";
    for district in 1..=9 {
        for n in 0..40 {
            let inward = format!(
                "{}{}{}",
                n % 10,
                letters[rng.usize(..letters.len())] as char,
                letters[rng.usize(..letters.len())] as char
            );
            let pc = format!("CW{district} {inward}");
            if centroids.contains_key(&pc) {
                continue;
            }
            let (lat, lon) = (53.1 + rng.f64() * 0.4 - 0.2, -2.44 + rng.f64() * 0.6 - 0.3);
            csv.push_str(&format!(
                "\"{}\",\"{}\",\"{pc}\",199901,,370000,355000,{lat:.6},{lon:.6}\n",
                pc.replace(' ', ""),
                pc
            ));
            centroids.insert(pc, (lat, lon));
        }
    }
    // ONSPD's "no grid reference" rows and a malformed one are skipped, not loaded.
    csv.push_str("\"CW100ZZ\",\"CW10 0ZZ\",\"CW10 0ZZ\",199901,,,,99.999999,0.000000\n");
    csv.push_str("\"NOTAPC\",\"NOT A PC\",\"NOT A PC\",199901,,,,53.1,-2.4\n");
    std::fs::write(env.dir.path().join("centroids.csv"), csv).unwrap();

    let postcodes: Vec<&String> = centroids.keys().collect();
    let mut orgs = BTreeMap::new();
    let mut items = Vec::new();
    for i in 0..400 {
        let name = format!(
            "Crewe Group Number {i} {}",
            ["Alpha", "Beta", "Gamma", "Delta"][i % 4]
        );
        let postcode = match i % 10 {
            0 => None,
            1 => Some("SK11 6AB".to_string()), // not in the centroid file
            _ => Some(postcodes[rng.usize(..postcodes.len())].clone()),
        };
        let mut o = json!({"id": format!("g{i}"), "name": name});
        if let Some(pc) = &postcode {
            o["address"] = json!({"street": "1 Market St", "locality": "Crewe", "postcode": pc});
        }
        items.push(o);
        orgs.insert(name, postcode);
    }
    std::fs::write(
        env.dir.path().join("orgs.json"),
        json!({ "organisations": items }).to_string(),
    )
    .unwrap();
    let config = env.config();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[store]\npath = \"data/tributary.db\"\n",
        "[store]\npath = \"data/tributary.db\"\npostcode_centroids = \"centroids.csv\"\n",
    );
    std::fs::write(
        &config,
        format!("{text}[[partners]]\nid = \"gen\"\nname = \"Generated\"\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"orgs.json\"\n"),
    )
    .unwrap();
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    World {
        env,
        centroids,
        orgs,
    }
}

fn names_near(base: &str, postcode: &str, metres: f64) -> (BTreeSet<String>, Vec<Value>) {
    let mut names = BTreeSet::new();
    let mut pages = Vec::new();
    let mut page = 1;
    loop {
        let url = format!(
            "{base}/oruk/services?postcode={}&proximity={metres}&page={page}&per_page=100",
            postcode.replace(' ', "%20")
        );
        let p = json(&url);
        for s in p["contents"].as_array().unwrap() {
            names.insert(s["name"].as_str().unwrap().to_string());
        }
        let last = p["last_page"] == true;
        pages.push(json!({"path": "/services", "url": url, "body": p}));
        if last {
            return (names, pages);
        }
        page += 1;
    }
}

/// `/v1/organisations?near=&within=` followed through its cursor pages.
fn v1_names_near(base: &str, postcode: &str, km: f64) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut url = format!(
        "{base}/v1/organisations?near={}&within={km}&limit=37",
        postcode.replace(' ', "%20")
    );
    loop {
        let page = json(&url);
        for o in page["items"].as_array().unwrap() {
            assert!(
                names.insert(o["name"].as_str().unwrap().to_string()),
                "listed once"
            );
        }
        match page["next"].as_str() {
            Some(n) => url = n.to_string(),
            None => return names,
        }
    }
}

#[test]
fn postcode_and_proximity_return_what_a_brute_force_distance_check_returns() {
    let w = world();
    let _daemon = w.env.start();
    let base = w.env.base();
    // The brute force runs over the organisations as merged (dedupe may join some).
    let mut merged = BTreeMap::new();
    let mut url = format!("{base}/v1/organisations?limit=500");
    loop {
        let page = json(&url);
        for o in page["items"].as_array().unwrap() {
            merged.insert(
                o["name"].as_str().unwrap().to_string(),
                o["address"]["postcode"].as_str().map(str::to_string),
            );
        }
        match page["next"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert!(merged.len() > 300, "{}", merged.len());
    assert!(merged.keys().all(|n| w.orgs.contains_key(n)));
    let w = World { orgs: merged, ..w };
    let mut checked = Vec::new();
    let centres: Vec<&String> = w.centroids.keys().step_by(37).collect();
    let mut nonempty = 0;
    for centre in &centres {
        let at = w.centroids[*centre];
        for metres in [0.0, 800.0, 3_000.0, 12_000.0, 60_000.0] {
            let expected: BTreeSet<String> = w
                .orgs
                .iter()
                .filter(|(_, pc)| {
                    pc.as_ref()
                        .and_then(|pc| w.centroids.get(pc))
                        .is_some_and(|p| {
                            pc.as_deref() == Some(centre.as_str()) || haversine(at, *p) <= metres
                        })
                })
                .map(|(n, _)| n.clone())
                .collect();
            let (got, pages) = names_near(&base, centre, metres);
            assert_eq!(got, expected, "{centre} within {metres} m");
            let v1 = v1_names_near(&base, centre, metres / 1000.0);
            assert_eq!(
                v1, expected,
                "/v1/organisations near {centre} within {metres} m"
            );
            nonempty += usize::from(!got.is_empty());
            checked.extend(pages);
        }
    }
    assert!(nonempty > centres.len(), "searches found organisations");
    // The widest search finds every organisation whose postcode has a centroid, and no other.
    let (all, _) = names_near(&base, centres[0], 1_000_000.0);
    let located = w
        .orgs
        .values()
        .filter(|pc| pc.as_ref().is_some_and(|pc| w.centroids.contains_key(pc)))
        .count();
    assert_eq!(all.len(), located);

    // `q` narrows a proximity search as it narrows any listing: what it finds is among the
    // organisations near, and includes the one whose name gave the word; punctuation alone finds
    // nothing (and still has a query plan beside the postcode index).
    let near: BTreeSet<String> = v1_names_near(&base, centres[0], 60.0);
    // The rarest word among the names near, with the name it comes from.
    let count = |w: &str| {
        near.iter()
            .filter(|n| n.split_whitespace().any(|x| x == w))
            .count()
    };
    let (word, sample) = near
        .iter()
        .flat_map(|n| {
            n.split_whitespace()
                .map(move |w| (w.to_string(), n.clone()))
        })
        .filter(|(w, _)| w.chars().all(char::is_alphanumeric))
        .min_by_key(|(w, _)| count(w))
        .expect("organisations within 60 km");
    let pc = centres[0].replace(' ', "%20");
    let page = json(&format!(
        "{base}/v1/organisations?near={pc}&within=60&limit=500&q={}",
        word.replace('&', "%26")
    ));
    let found: BTreeSet<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        found.contains(&sample),
        "{word:?} finds {sample:?}: {found:?}"
    );
    assert!(found.is_subset(&near), "{found:?}");
    assert!(
        found.len() < near.len(),
        "{word:?} narrows {} near",
        near.len()
    );
    let page = json(&format!(
        "{base}/v1/organisations?near={pc}&within=60&q=%21%21"
    ));
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");

    // Lower-case and unspaced postcodes are the same postcode.
    let (a, _) = names_near(&base, centres[1], 5_000.0);
    let (b, _) = names_near(&base, &centres[1].to_lowercase().replace(' ', ""), 5_000.0);
    assert_eq!(a, b);

    for (query, param) in [
        ("postcode=SK11%206AB&proximity=1000", "postcode"),
        ("postcode=CW10%200ZZ&proximity=1000", "postcode"),
        ("postcode=banana&proximity=1000", "postcode"),
        ("postcode=CW1%201AA&proximity=-5", "proximity"),
        ("postcode=CW1%201AA&proximity=far", "proximity"),
        ("proximity=1000", "proximity"),
    ] {
        let (s, _, body) = blocking_get(&format!("{base}/oruk/services?{query}")).unwrap();
        assert_eq!(s, 400, "{query}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{param}:")),
            "{query}: {body}"
        );
    }

    for (query, param) in [
        ("near=CW1%201AA", "near"),
        ("within=5", "within"),
        ("near=SK11%206AB&within=5", "near"),
        ("near=banana&within=5", "near"),
        ("near=CW1%201AA&within=-1", "within"),
        ("near=CW1%201AA&within=5&postcode_area=CW", "near"),
    ] {
        let (s, _, body) = blocking_get(&format!("{base}/v1/organisations?{query}")).unwrap();
        assert_eq!(s, 400, "{query}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{param}:")),
            "{query}: {body}"
        );
    }

    // The pages answered validate against the profile.
    let file = w.env.dir.path().join("responses.json");
    std::fs::write(&file, serde_json::to_vec(&checked).unwrap()).unwrap();
    let out = std::process::Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/oruk_api/validate.py"
        ))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/oruk-3.0"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
