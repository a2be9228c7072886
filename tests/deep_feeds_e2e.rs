//! Feeds nested 100,000 deep, through the real binary: each such partner fails alone with a
//! reason (or its deep description is flattened), the process ends normally, and a good partner
//! beside them lands.

mod common;

use common::*;

const DEPTH: usize = 100_000;

fn partner(id: &str, format: &str, url: &str) -> String {
    partner_of(id, "events", format, url)
}

fn partner_of(id: &str, kind: &str, format: &str, url: &str) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"Partner {id}\"\n\n[[partners.feeds]]\nkind = \"{kind}\"\nformat = \"{format}\"\nurl = \"{url}\"\nretries = 0\ntimeout_secs = 10\n\n"
    )
}

fn rss(items: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:ev="http://purl.org/rss/1.0/modules/event/" xmlns:x="urn:x"><channel><title>t</title><link>https://x.example/</link><description>d</description>{items}</channel></rss>"#
    )
}

#[test]
fn deeply_nested_feeds_fail_alone_and_the_process_lives() {
    let site = fake_site();
    let good = rss(
        r#"<item><title>Good fair</title><guid>g1</guid><ev:startdate>2027-05-12T10:00:00+01:00</ev:startdate></item>"#,
    );
    site.put("/good.xml", "application/rss+xml", good);
    let deep_xml = rss(&format!(
        "<item><title>Deep</title><guid>d1</guid>{}{}</item>",
        "<x:a>".repeat(DEPTH),
        "</x:a>".repeat(DEPTH)
    ));
    site.put("/deep.xml", "application/rss+xml", deep_xml);
    let deep_atom = format!(
        r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>f</id><updated>2026-01-01T00:00:00Z</updated><entry><title>e</title><id>e</id><updated>2026-01-01T00:00:00Z</updated><content type="xhtml">{}{}</content></entry></feed>"#,
        "<div>".repeat(DEPTH),
        "</div>".repeat(DEPTH)
    );
    site.put("/deep.atom", "application/atom+xml", deep_atom);
    // A description of 100,000 nested <div>s: the event lands, its markup flattened.
    let deep_html = rss(&format!(
        "<item><title>Deep description</title><guid>h1</guid><ev:startdate>2027-06-01T10:00:00+01:00</ev:startdate><description><![CDATA[{}inner words{}]]></description></item>",
        "<div>".repeat(DEPTH),
        "</div>".repeat(DEPTH)
    ));
    site.put("/deep-html.xml", "application/rss+xml", deep_html);
    let deep_json = format!(
        r#"{{"next":"{}","items":[{}{}]}}"#,
        site.url("/deep.rpde"),
        "[".repeat(DEPTH),
        "]".repeat(DEPTH)
    );
    site.put("/deep.rpde", "application/json", deep_json);
    let deep_ld = format!(
        r#"<html><script type="application/ld+json">{}{}</script></html>"#,
        "{\"a\":".repeat(DEPTH),
        "}".repeat(DEPTH)
    );
    site.put("/deep.html", "text/html", deep_ld);
    // An ORUK API and a WordPress events API answering JSON nested 100,000 deep.
    let deep_array = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let deep_oruk = format!(r#"{{"totalPages":1,"contents":[{deep_array}]}}"#);
    site.put(
        "/oruk/organizations?page=1&per_page=100",
        "application/json",
        deep_oruk.clone(),
    );
    site.put(
        "/oruk/services?page=1&per_page=100",
        "application/json",
        deep_oruk,
    );
    let deep_wp = format!(r#"{{"events":[{deep_array}],"total_pages":1}}"#);
    site.put("/wp/events", "application/json", deep_wp);

    let env = TestEnv::new(
        &[
            partner("good", "rss", &site.url("/good.xml")),
            partner("deepxml", "rss", &site.url("/deep.xml")),
            partner("deepatom", "rss", &site.url("/deep.atom")),
            partner("deephtml", "rss", &site.url("/deep-html.xml")),
            partner("deeprpde", "rpde", &site.url("/deep.rpde")),
            partner("deepld", "jsonld", &site.url("/deep.html")),
            partner_of("deeporuk", "organisations", "oruk", &site.url("/oruk/")),
            partner("deepwp", "wp-events", &site.url("/wp/events")),
        ]
        .concat(),
    );
    let out = env.cmd(&["sync"]);
    let err = stderr(&out);
    assert!(
        out.status.code().is_some(),
        "the process was killed by a signal: {err}"
    );
    assert!(
        !err.contains("overflow") && !err.contains("panicked"),
        "{err}"
    );
    let conn = db(&env);
    let titles: Vec<String> = conn
        .prepare(
            "SELECT json_extract(body, '$.title') FROM entities WHERE deleted_at IS NULL ORDER BY 1",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(titles, vec!["Deep description", "Good fair"], "{err}");
    let description: String = conn
        .query_row(
            "SELECT json_extract(body, '$.description') FROM entities WHERE json_extract(body, '$.title') = 'Deep description'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(description, "inner words");
    let failed: Vec<(String, String)> = conn
        .prepare("SELECT partner_id, COALESCE(error, '') FROM runs WHERE result <> 'ok' ORDER BY 1")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let ids: Vec<&str> = failed.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        ids,
        vec!["deepatom", "deeporuk", "deeprpde", "deepwp", "deepxml"],
        "{failed:?}"
    );
    for (p, e) in &failed {
        assert!(
            e.contains("nested deeper") || e.contains("recursion limit"),
            "{p}: {e}"
        );
    }
    // The JSON-LD page's one block is a counted rejection; the page itself is still JSON-LD.
    let rejected: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM rejections WHERE reason LIKE '%recursion limit%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rejected, 1);
}
