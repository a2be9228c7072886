//! Time to sanitise and render descriptions of nested `<div>`s, and to refuse a deeply nested
//! RSS item: both must grow linearly with the input (issue: 100k nested divs took 119 s).

use std::time::Instant;

use tributary::ingest::{html, rss};

fn main() {
    for depth in [1_000usize, 10_000, 100_000] {
        let deep = format!("{}text{}", "<div>".repeat(depth), "</div>".repeat(depth));
        let t = Instant::now();
        let clean = html::sanitise(&deep);
        let text = html::to_text(&deep);
        println!(
            "html nested divs depth={depth} bytes={} sanitise+to_text {:.3} s (out {} + {} bytes)",
            deep.len(),
            t.elapsed().as_secs_f64(),
            clean.len(),
            text.len()
        );
    }
    // Wide rather than deep: as many sibling tags, each with an attribute to strip.
    for count in [10_000usize, 100_000] {
        let wide = r#"<b onclick="x()">w</b>"#.repeat(count);
        let t = Instant::now();
        let clean = html::sanitise(&wide);
        let text = html::to_text(&wide);
        println!(
            "html sibling tags count={count} bytes={} sanitise+to_text {:.3} s (out {} + {} bytes)",
            wide.len(),
            t.elapsed().as_secs_f64(),
            clean.len(),
            text.len()
        );
    }
    for depth in [10_000usize, 100_000, 1_000_000] {
        let doc = format!(
            r#"<rss version="2.0" xmlns:x="urn:x"><channel><title>t</title><link>l</link><description>d</description><item><title>a</title>{}{}</item></channel></rss>"#,
            "<x:a>".repeat(depth),
            "</x:a>".repeat(depth)
        );
        let t = Instant::now();
        let result = rss::parse(doc.as_bytes());
        println!(
            "rss nested elements depth={depth} bytes={} refused={} {:.3} s",
            doc.len(),
            result.is_err(),
            t.elapsed().as_secs_f64()
        );
    }
}
