//! Embeds as a partner's site meets them: `/embed/events` and `/embed/organisations` list what the
//! JSON API lists under the same filters, with attribution, licence and "add to calendar" links
//! that work; bad looks are refused naming the parameter; and in headless Chromium a host page on
//! another origin shows the listing both in an `<iframe>` and through the script, at desktop and
//! phone width, with nothing wider than the phone's screen.

mod common;

use std::process::Command;

use common::*;

const WINDOW: &str = "from=2026-11-01&to=2027-12-31";
const PARTNER: &str = "cvs-cheshire-east";

/// The listed titles, in order.
fn titles_in_html(html: &str) -> Vec<String> {
    html.split("<h3 ")
        .skip(1)
        .filter_map(|h| {
            let inner = h.split_once('>')?.1.split("</h3>").next()?;
            // The title may be a link.
            let text = match inner.strip_prefix("<a ") {
                Some(a) => a.split_once('>')?.1.split("</a>").next()?,
                None => inner,
            };
            Some(html_unescape(text))
        })
        .collect()
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn api_titles(base: &str, path: &str, field: &str) -> Vec<String> {
    json(&format!("{base}{path}"))["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[field].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn embeds_list_what_the_api_lists_with_working_links() {
    let env = TestEnv::demo();
    assert!(env.cmd(&["sync"]).status.success());
    let daemon = env.start();
    let base = daemon.base.clone();

    // The same events as the JSON API under the same filters.
    for q in [
        format!("{WINDOW}&limit=50"),
        format!("{WINDOW}&limit=50&partner={PARTNER}"),
        format!("{WINDOW}&limit=50&q=funding"),
    ] {
        let (status, headers, page) = blocking_get(&format!("{base}/embed/events?{q}")).unwrap();
        assert_eq!(status, 200, "{page}");
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(
            page.starts_with("<!DOCTYPE html>"),
            "a whole page for a frame"
        );
        let want = api_titles(&base, &format!("/v1/events?{q}"), "title");
        assert!(!want.is_empty(), "{q}: the demo has events here");
        assert_eq!(titles_in_html(&page), want, "{q}");
    }
    let orgs = "limit=50&partner=hull-vcse";
    let (_, _, page) = blocking_get(&format!("{base}/embed/organisations?{orgs}")).unwrap();
    assert_eq!(
        titles_in_html(&page),
        api_titles(&base, &format!("/v1/organisations?{orgs}"), "name")
    );

    // Attribution with the partner's licence, and add-to-calendar links.
    let (_, _, page) = blocking_get(&format!(
        "{base}/embed/events?{WINDOW}&partner={PARTNER}&fragment=true"
    ))
    .unwrap();
    assert!(page.starts_with("<section"), "a bare fragment: {page}");
    assert!(
        page.contains(
            "Listed by <a href=\"https://www.cvsce.org.uk\">CVS Cheshire East</a> (<a href=\"https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/\" rel=\"license\">OGL-UK-3.0</a>)"
        ),
        "{page}"
    );
    assert!(page.contains("https://calendar.google.com/calendar/render?action=TEMPLATE"));
    assert!(page.contains("https://outlook.live.com/calendar/0/deeplink/compose?"));
    let ics_link = page
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|h| h.ends_with("/calendar.ics"))
        .expect("an .ics link")
        .to_string();
    assert!(ics_link.starts_with("/v1/events/evt_"), "{ics_link}");
    let (status, headers, ics) = blocking_get(&format!("{base}{ics_link}")).unwrap();
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/calendar"));
    // A real consumer reads it: one event, the one the link was for.
    let id = ics_link.split('/').nth(3).unwrap();
    let read = Command::new(python())
        .args([
            "-c",
            "import sys, icalendar\nc = icalendar.Calendar.from_ical(sys.stdin.buffer.read())\n\
             print('\\n'.join(str(e['UID']) for e in c.walk('VEVENT') if 'RECURRENCE-ID' not in e))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(ics.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(read.status.success(), "{}", stderr(&read));
    assert_eq!(stdout(&read).trim(), format!("{id}@tributary"));

    // Paging: the "more" link continues where the API's next page does.
    let (_, _, first) = blocking_get(&format!(
        "{base}/embed/events?{WINDOW}&limit=1&layout=compact"
    ))
    .unwrap();
    let more = first
        .split("class=\"trib-more\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a more link")
        .replace("&amp;", "&");
    assert!(more.starts_with("/embed/events?"), "{more}");
    assert!(more.contains("layout=compact"), "the look is kept: {more}");
    let (_, _, second) = blocking_get(&format!("{base}{more}")).unwrap();
    let api = json(&format!("{base}/v1/events?{WINDOW}&limit=1"));
    let api_second = json(api["next"].as_str().unwrap());
    assert_eq!(
        titles_in_html(&second),
        [api_second["items"][0]["title"]
            .as_str()
            .unwrap()
            .to_string()]
    );
    assert!(
        !second.contains("class=\"trib-add\""),
        "compact has no add links"
    );

    // Bad looks and bad filters are refused, naming the parameter.
    for (q, name) in [
        ("accent=ffdd00", "accent"),
        ("accent=blue", "accent"),
        ("layout=grid", "layout"),
        ("limit=0", "limit"),
        ("partner=nope", "partner"),
    ] {
        let (status, _, page) = blocking_get(&format!("{base}/embed/events?{q}")).unwrap();
        assert_eq!(status, 400, "{q}");
        assert!(
            page.contains(&format!("cannot be shown: {name}")),
            "{q}: {page}"
        );
    }
    let (status, _, _) = blocking_get(&format!("{base}/v1/events/evt_nope/calendar.ics")).unwrap();
    assert_eq!(status, 404);

    // Another origin may fetch the listing and the script.
    let (_, headers, _) = get_with(
        &format!("{base}/embed/events?fragment=true"),
        &[("origin", "https://partner.example.org")],
    )
    .unwrap();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let (status, headers, js) = blocking_get(&format!("{base}/embed/tributary.js")).unwrap();
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.contains("data-tributary-events"));

    // Each partner gets its snippets.
    let (_, _, snippets) = blocking_get(&format!("{base}/embed/")).unwrap();
    for id in [PARTNER, "hull-vcse", "hcv-vcse"] {
        assert!(
            snippets.contains(&format!("/embed/events?partner={id}")),
            "{id}: {snippets}"
        );
        assert!(snippets.contains(&format!("data-partner=&quot;{id}&quot;")));
    }
    daemon.stop();
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
}

fn run_chromium(browser: &str, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=8000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium failed: {}", stderr(&out));
    stdout(&out)
}

/// Writes, once the listing is in, the page's scroll width and where keyboard focus goes on each
/// Tab-reachable element into the DOM for `--dump-dom` to read.
const PROBE: &str = r#"<script>
function probe() {
  var section = document.querySelector("section.trib");
  if (!section) { return setTimeout(probe, 50); }
  var focusable = Array.from(section.querySelectorAll("a, button, input, select, textarea, [tabindex]"));
  var reachable = focusable.filter(function (el) {
    el.focus();
    return document.activeElement === el && el.tabIndex >= 0;
  });
  if (document.activeElement) { document.activeElement.blur(); }
  window.scrollTo(0, 0);
  document.body.setAttribute("data-inner", window.innerWidth);
  document.body.setAttribute("data-titles", section.querySelectorAll("h3").length);
  document.body.setAttribute("data-scroll-width", document.documentElement.scrollWidth);
  document.body.setAttribute("data-focusable", focusable.length);
  document.body.setAttribute("data-reachable", reachable.length);
}
probe();
</script>"#;

/// The top of a page that frames another at phone width.
const PHONE: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>phone</title></head><body style=\"margin:0;background:#d8d8d8\">";

/// Copies the framed probe's findings onto this page, for `--dump-dom`.
const COPY: &str = r#"<script>
function copy() {
  var d = document.getElementById("phone").contentDocument;
  if (!d || !d.body || !d.body.hasAttribute("data-scroll-width")) { return setTimeout(copy, 50); }
  ["data-inner", "data-titles", "data-scroll-width", "data-focusable", "data-reachable"].forEach(function (a) {
    document.body.setAttribute(a, d.body.getAttribute(a));
  });
}
copy();
</script></body></html>"#;

fn attribute(dom: &str, name: &str) -> usize {
    dom.split(&format!("{name}=\""))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the page:\n{dom}"))
}

#[test]
fn a_host_page_on_another_origin_shows_the_embed_in_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is required in CI (.ci/run installs Debian's chromium)"
        );
        eprintln!("skipping: chromium is not installed");
        return;
    };
    let env = TestEnv::demo();
    assert!(env.cmd(&["sync"]).status.success());
    let daemon = env.start();
    let base = daemon.base.clone();
    let listing = format!("{WINDOW}&partner={PARTNER}");
    let want = api_titles(&base, &format!("/v1/events?{listing}&limit=20"), "title");

    // The partner's site: another origin (its own port), with the frame and the script.
    let site = fake_site();
    let host = format!(
        "<!DOCTYPE html><html lang=\"en-GB\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Partner site</title></head>\
         <body style=\"margin:0;padding:8px;font-family:serif\"><h1>Our events</h1>\
         <div id=\"scripted\" data-tributary-events data-partner=\"{PARTNER}\" data-from=\"2026-11-01\" data-to=\"2027-12-31\">\
         <a href=\"{base}/embed/events?{listing}\">Events</a></div>\
         <h2>In a frame</h2><iframe src=\"{base}/embed/events?{listing}\" title=\"Events\" style=\"width:100%;height:30rem;border:0\"></iframe>\
         <script src=\"{base}/embed/tributary.js\"></script></body></html>"
    );
    // Screenshots are of the page as a visitor sees it; the probe (which moves focus) measures
    // a copy.
    site.put(
        "/probed.html",
        "text/html",
        host.replace("</body>", &format!("{PROBE}</body>")),
    );
    site.put("/host.html", "text/html", host);
    // The frame's own document, served where a probe can measure it.
    let (_, _, framed) = blocking_get(&format!("{base}/embed/events?{listing}")).unwrap();
    site.put(
        "/framed.html",
        "text/html",
        framed.replace("</body>", &format!("{PROBE}</body>")),
    );

    // Headless Chromium will not make a window narrower than 500 px, so the phone is a 390 px
    // frame (same origin) around the page; the probe inside reports what it measured.
    for name in ["probed.html", "framed.html", "host.html"] {
        site.put(
            &format!("/phone/{name}"),
            "text/html",
            format!("{PHONE}<iframe id=\"phone\" src=\"/{name}\" title=\"phone\" style=\"width:390px;height:844px;border:0;background:#fff\"></iframe>{COPY}"),
        );
    }
    let dir = std::env::var("EMBED_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| env.dir.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    for (width, window, prefix) in [(1280, "1280,900", ""), (390, "500,844", "/phone")] {
        let size = format!("--window-size={window}");
        let dump = |page: &str| {
            run_chromium(
                browser,
                &[
                    size.clone(),
                    "--dump-dom".into(),
                    site.url(&format!("{prefix}/{page}")),
                ],
            )
        };
        // The script rendered the listing into the host page, across origins.
        let dom = dump("probed.html");
        assert_eq!(
            attribute(&dom, "data-inner"),
            width,
            "the viewport is {width} px"
        );
        assert_eq!(
            attribute(&dom, "data-titles"),
            want.len(),
            "{width}px: {dom}"
        );
        assert!(
            attribute(&dom, "data-scroll-width") <= width,
            "{width}px: the host page grew wider than the screen"
        );
        let focusable = attribute(&dom, "data-focusable");
        assert!(focusable > 0);
        assert_eq!(
            attribute(&dom, "data-reachable"),
            focusable,
            "every control takes focus"
        );
        if prefix.is_empty() {
            let scripted = dom
                .split("id=\"scripted\"")
                .nth(1)
                .expect("the host's div")
                .split("<h2>In a frame</h2>")
                .next()
                .unwrap();
            assert!(scripted.contains("<section class=\"trib\""), "{scripted}");
            assert_eq!(titles_in_html(scripted), want);
            assert!(
                scripted.contains(&format!("href=\"{base}/v1/events/evt_")),
                "the .ics links point at the server, not the host: {scripted}"
            );
        }
        // The framed document fits too, and every control in it takes focus.
        let dom = dump("framed.html");
        assert_eq!(attribute(&dom, "data-inner"), width);
        assert!(
            attribute(&dom, "data-scroll-width") <= width,
            "{width}px frame"
        );
        assert_eq!(attribute(&dom, "data-titles"), want.len());
        let focusable = attribute(&dom, "data-focusable");
        assert_eq!(attribute(&dom, "data-reachable"), focusable);

        // Screenshots of the host page as a visitor sees it (the script's listing) and of the
        // framed document.
        for (page, name) in [("host.html", "script"), ("framed.html", "frame")] {
            let shot = dir.join(format!("embed-{name}-{width}.png"));
            run_chromium(
                browser,
                &[
                    size.clone(),
                    format!("--screenshot={}", shot.display()),
                    site.url(&format!("{prefix}/{page}")),
                ],
            );
            let png = std::fs::read(&shot).unwrap();
            assert!(
                png.starts_with(b"\x89PNG") && png.len() > 10_000,
                "{name} at {width}px: a screenshot of {} bytes",
                png.len()
            );
        }
    }
    daemon.stop();
}
