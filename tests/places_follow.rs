//! Distance search follows the data under it, through the real daemon: a record whose postcode
//! changes, which gains or loses a partner-given point, or whose postcode's centroid moves when
//! the operator replaces the centroid file (while the daemon runs) is found where it is now and
//! no longer where it was, by `/v1/organisations?near=` and ORUK `postcode`+`proximity` alike.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{json, Value};

/// Crewe, a village 11 km from it, and Penzance.
const CREWE: (&str, f64, f64) = ("CW1 2AB", 53.0979, -2.4411);
const VILLAGE: (&str, f64, f64) = ("CW2 5QT", 53.1950, -2.4000);
const PENZANCE: (&str, f64, f64) = ("TR18 2AA", 50.1180, -5.5370);

fn write_centroids(env: &TestEnv, rows: &[(&str, f64, f64)]) {
    let mut csv = String::from("pcd,pcds,lat,long\n");
    for (pc, lat, lon) in rows {
        csv.push_str(&format!("{},{pc},{lat:.6},{lon:.6}\n", pc.replace(' ', "")));
    }
    std::fs::write(env.dir.path().join("centroids.csv"), csv).unwrap();
}

fn write_orgs(env: &TestEnv, orgs: &[Value]) {
    std::fs::write(
        env.dir.path().join("orgs.json"),
        json!({ "organisations": orgs }).to_string(),
    )
    .unwrap();
}

fn org(id: &str, name: &str, postcode: &str, point: Option<(f64, f64)>) -> Value {
    let mut address = json!({"street": "1 High St", "postcode": postcode});
    if let Some((lat, lon)) = point {
        address["latitude"] = lat.into();
        address["longitude"] = lon.into();
    }
    json!({"id": id, "name": name, "address": address})
}

/// Names `/v1/organisations?near=&within=` lists, through its cursor pages, checked against
/// what ORUK's `postcode`+`proximity` lists for the same circle.
fn near(base: &str, postcode: &str, km: f64) -> BTreeSet<String> {
    let pc = postcode.replace(' ', "%20");
    let mut names = BTreeSet::new();
    let mut url = format!("{base}/v1/organisations?near={pc}&within={km}&limit=2");
    loop {
        let page = json(&url);
        for o in page["items"].as_array().unwrap() {
            assert!(names.insert(o["name"].as_str().unwrap().to_string()));
        }
        match page["next"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    let oruk = json(&format!(
        "{base}/oruk/services?postcode={pc}&proximity={}&per_page=100",
        km * 1000.0
    ));
    let oruk: BTreeSet<String> = oruk["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(oruk, names, "ORUK and /v1 near {postcode} within {km} km");
    names
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// The store reads `centroids.csv`; one partner publishes `orgs.json`.
fn configure(env: &TestEnv) {
    let config = env.config();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[store]\npath = \"data/tributary.db\"\n",
        "[store]\npath = \"data/tributary.db\"\npostcode_centroids = \"centroids.csv\"\n",
    );
    std::fs::write(
        &config,
        format!("{text}[[partners]]\nid = \"dir\"\nname = \"Directory\"\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"orgs.json\"\n"),
    )
    .unwrap();
}

fn sync(env: &TestEnv) {
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn distance_search_follows_postcodes_points_and_the_centroid_file() {
    let env = TestEnv::new("");
    write_centroids(&env, &[CREWE, VILLAGE, PENZANCE]);
    write_orgs(
        &env,
        &[
            org("mover", "Moving Club", CREWE.0, None),
            org("stayer", "Staying Society", CREWE.0, None),
            org("pointed", "Pointed Trust", PENZANCE.0, None),
        ],
    );
    configure(&env);
    sync(&env);

    let daemon = env.start();
    let base = daemon.base.clone();
    assert_eq!(
        near(&base, CREWE.0, 1.0),
        set(&["Moving Club", "Staying Society"])
    );
    assert_eq!(near(&base, PENZANCE.0, 1.0), set(&["Pointed Trust"]));
    assert_eq!(near(&base, VILLAGE.0, 1.0), set(&[]));
    assert_eq!(
        near(&base, CREWE.0, 15.0),
        set(&["Moving Club", "Staying Society"])
    );
    daemon.stop();

    // The partner moves one organisation to Penzance and gives another a point in the village
    // (its postcode still Penzance's): each is found where it is now, and not where it was.
    write_orgs(
        &env,
        &[
            org("mover", "Moving Club", PENZANCE.0, None),
            org("stayer", "Staying Society", CREWE.0, None),
            org(
                "pointed",
                "Pointed Trust",
                PENZANCE.0,
                Some((VILLAGE.1 + 0.001, VILLAGE.2)),
            ),
        ],
    );
    sync(&env);
    let daemon = env.start();
    let base = daemon.base.clone();
    assert_eq!(near(&base, CREWE.0, 1.0), set(&["Staying Society"]));
    assert_eq!(near(&base, PENZANCE.0, 1.0), set(&["Moving Club"]));
    assert_eq!(near(&base, VILLAGE.0, 1.0), set(&["Pointed Trust"]));
    assert_eq!(
        near(&base, CREWE.0, 15.0),
        set(&["Staying Society", "Pointed Trust"])
    );
    daemon.stop();

    // The point is withdrawn: the record falls back to its postcode's centroid.
    write_orgs(
        &env,
        &[
            org("mover", "Moving Club", PENZANCE.0, None),
            org("stayer", "Staying Society", CREWE.0, None),
            org("pointed", "Pointed Trust", PENZANCE.0, None),
        ],
    );
    sync(&env);
    let daemon = env.start();
    let base = daemon.base.clone();
    assert_eq!(near(&base, VILLAGE.0, 1.0), set(&[]));
    assert_eq!(
        near(&base, PENZANCE.0, 1.0),
        set(&["Moving Club", "Pointed Trust"])
    );

    // The operator replaces the centroid file while the daemon runs: Penzance's postcode now sits
    // in the village (as a corrected centroid would), and Crewe's is gone from the file. The next
    // searches place the records by the new file, pages answered before notwithstanding.
    let moved = (PENZANCE.0, VILLAGE.1 - 0.002, VILLAGE.2 + 0.001);
    write_centroids(&env, &[VILLAGE, moved]);
    assert_eq!(
        near(&base, VILLAGE.0, 1.0),
        set(&["Moving Club", "Pointed Trust"])
    );
    assert_eq!(
        near(&base, PENZANCE.0, 15.0),
        set(&["Moving Club", "Pointed Trust"]),
        "Crewe's organisation has no centroid any more"
    );
    let (status, _, body) = blocking_get(&format!(
        "{base}/v1/organisations?near={}&within=1",
        CREWE.0.replace(' ', "%20")
    ))
    .unwrap();
    assert_eq!(status, 400, "a postcode the new file lacks: {body}");

    // And back: Crewe's centroid returns, and its organisation with it.
    write_centroids(&env, &[CREWE, VILLAGE, PENZANCE]);
    assert_eq!(near(&base, CREWE.0, 1.0), set(&["Staying Society"]));
    assert_eq!(
        near(&base, PENZANCE.0, 1.0),
        set(&["Moving Club", "Pointed Trust"])
    );
    daemon.stop();
}

/// A centroid file that cannot be read makes distance search a 503 saying so (the rest of the API
/// answers as ever); once the operator fixes the file, the next search loads it and answers.
#[test]
fn a_broken_centroid_file_is_a_503_until_it_is_fixed() {
    let env = TestEnv::new("");
    std::fs::write(
        env.dir.path().join("centroids.csv"),
        "no,columns,we,know\n1,2,3,4\n",
    )
    .unwrap();
    write_orgs(&env, &[org("a", "Crewe Club", CREWE.0, None)]);
    configure(&env);
    sync(&env);
    let daemon = env.start();
    let base = daemon.base.clone();
    let url = format!("{base}/v1/organisations?near=CW1%202AB&within=1");
    let (status, _, body) = blocking_get(&url).unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("cannot be loaded"), "{body}");
    assert_eq!(
        json(&format!("{base}/v1/organisations"))["items"][0]["name"],
        "Crewe Club"
    );
    write_centroids(&env, &[CREWE, VILLAGE, PENZANCE]);
    assert_eq!(near(&base, CREWE.0, 1.0), set(&["Crewe Club"]));
    daemon.stop();
}
