//! HTML as partners send it: descriptions are sanitised (ammonia) before we republish them and
//! rendered to plain text (html2text) for consumers that want text; JSON-LD blocks and `rel=next`
//! links are found with html5ever's tokenizer, so malformed markup never defeats us.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, CharacterTokens, EndTag, StartTag, TagToken, Token, TokenSink, TokenSinkResult,
    Tokenizer, TokenizerOpts,
};

/// HTML with scripts, styles, event handlers and unknown tags removed; safe to embed.
pub fn sanitise(html: &str) -> String {
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(html)
        .to_string()
}

/// The text a reader sees in `html`: tags dropped, entities decoded, blocks on their own lines.
pub fn to_text(html: &str) -> String {
    let rendered = html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
        .no_link_wrapping()
        .string_from_read(html.as_bytes(), 1000)
        .unwrap_or_else(|_| html_escape::decode_html_entities(html).into_owned());
    let lines: Vec<&str> = rendered.lines().map(str::trim_end).collect();
    // Collapse the blank-line runs html2text leaves between blocks.
    let mut out = String::with_capacity(rendered.len());
    let mut blank = 0;
    for line in lines {
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

/// Whether text looks like markup rather than prose that happens to contain `<`.
pub fn looks_like_html(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "<p", "<br", "<div", "<a ", "<ul", "<li", "<strong", "<em", "<span", "<h2", "<h3", "<b>",
        "<i>",
    ]
    .iter()
    .any(|tag| t.contains(tag))
        || t.contains("&amp;")
        || t.contains("&nbsp;")
        || t.contains("&#")
}

/// A title or name as text: entities decoded, tags dropped, whitespace collapsed.
pub fn inline_text(text: &str) -> String {
    let decoded = if text.contains('<') {
        to_text(text)
    } else {
        html_escape::decode_html_entities(text).into_owned()
    };
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a page's markup carries for us.
#[derive(Debug, Default, PartialEq)]
pub struct PageData {
    /// The text of every `<script type="application/ld+json">`, in page order.
    pub json_ld: Vec<String>,
    /// `<link rel="next" href>` / `<a rel="next" href>`: the listing's next page.
    pub next: Option<String>,
}

struct Sink {
    data: RefCell<PageData>,
    /// Collecting the body of a JSON-LD script.
    in_json_ld: RefCell<Option<String>>,
}

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            TagToken(tag) if tag.kind == StartTag => {
                let attr = |name: &str| {
                    tag.attrs
                        .iter()
                        .find(|a| &*a.name.local == name)
                        .map(|a| a.value.to_string())
                };
                match &*tag.name {
                    "script" => {
                        let ty = attr("type").unwrap_or_default().to_ascii_lowercase();
                        if ty.trim() == "application/ld+json" {
                            *self.in_json_ld.borrow_mut() = Some(String::new());
                        }
                        return TokenSinkResult::RawData(RawKind::ScriptData);
                    }
                    "style" => return TokenSinkResult::RawData(RawKind::Rawtext),
                    "link" | "a" => {
                        let rel = attr("rel").unwrap_or_default().to_ascii_lowercase();
                        if rel.split_whitespace().any(|r| r == "next") {
                            let mut data = self.data.borrow_mut();
                            if data.next.is_none() {
                                data.next = attr("href").filter(|h| !h.trim().is_empty());
                            }
                        }
                    }
                    _ => {}
                }
            }
            TagToken(tag) if tag.kind == EndTag && &*tag.name == "script" => {
                if let Some(text) = self.in_json_ld.borrow_mut().take() {
                    self.data.borrow_mut().json_ld.push(text);
                }
            }
            CharacterTokens(text) => {
                if let Some(buf) = self.in_json_ld.borrow_mut().as_mut() {
                    buf.push_str(&text);
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// Scans a page for JSON-LD blocks and its next-page link.
pub fn scan(html: &str) -> PageData {
    let sink = Sink {
        data: RefCell::new(PageData::default()),
        in_json_ld: RefCell::new(None),
    };
    let tok = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tok.feed(&input);
    tok.end();
    tok.sink.data.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitise_strips_scripts_and_handlers_but_keeps_structure() {
        let dirty = r#"<p onclick="steal()">Join us <script>alert(1)</script><a href="https://example.org" target="_blank">here</a></p><iframe src="x"></iframe>"#;
        let clean = sanitise(dirty);
        assert!(
            !clean.contains("script") && !clean.contains("onclick") && !clean.contains("iframe"),
            "{clean}"
        );
        assert!(
            clean.contains("<p>") && clean.contains("href=\"https://example.org\""),
            "{clean}"
        );
    }

    #[test]
    fn text_rendering_decodes_entities_and_keeps_paragraphs() {
        let text =
            to_text("<p>Food &amp; Fuel</p><p>Tuesday&nbsp;25th January</p><ul><li>One</li></ul>");
        assert!(text.starts_with("Food & Fuel\n\nTuesday"), "{text:?}");
        assert!(text.contains("One"), "{text:?}");
        assert_eq!(
            inline_text("Next Steps &#8211; Anchor <em>Institutions</em>"),
            "Next Steps – Anchor Institutions"
        );
    }

    #[test]
    fn scan_finds_json_ld_and_next_links_in_messy_markup() {
        let page = r#"<html><head><link rel="next" href="/events/page/2/">
            <script type="application/ld+json">{"@type":"Event","name":"A </b> b"}</script>
            <script>var x = "<script type='application/ld+json'>";</script>
            <style>p { color: red }</style>
            <SCRIPT TYPE="Application/LD+JSON">[{"@type":"Organization"}]</SCRIPT>
            <p>unclosed <b>tags"#;
        let data = scan(page);
        assert_eq!(data.json_ld.len(), 2, "{data:?}");
        assert!(data.json_ld[0].contains("A </b> b"));
        assert_eq!(data.next.as_deref(), Some("/events/page/2/"));
    }
}
