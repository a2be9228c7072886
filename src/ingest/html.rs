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

/// Nesting beyond which elements are flattened (their text kept, their tags dropped) before a
/// tree builder sees them. html5ever's scope checks walk the stack of open elements, so each tag
/// costs its depth: 100,000 nested `<div>`s took minutes, and rendering recursed that deep.
pub const MAX_DEPTH: usize = 128;

/// HTML with scripts, styles, event handlers and unknown tags removed; safe to embed.
pub fn sanitise(html: &str) -> String {
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&bounded(html))
        .to_string()
}

/// The text a reader sees in `html`: scripts and styles gone, tags dropped, entities decoded,
/// blocks on their own lines.
pub fn to_text(html: &str) -> String {
    let clean = sanitise(html);
    let rendered = html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
        .no_link_wrapping()
        .string_from_read(clean.as_bytes(), 1000)
        .unwrap_or_else(|_| html_escape::decode_html_entities(&clean).into_owned());
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

/// Whether an HTML tokenizer finds markup in `text`: any tag (known to HTML or not, so
/// `<svg onload>` and `<x onclick>` count), comment, doctype, or character reference. Prose
/// that merely contains `<` or `&` ("a < b", "Fish & Chips") is not markup.
pub fn has_markup(text: &str) -> bool {
    if !text.contains(['<', '&']) {
        return false;
    }
    let sink = Detector {
        found: std::cell::Cell::new(false),
        text: RefCell::new(String::new()),
    };
    let tok = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(text));
    let _ = tok.feed(&input);
    tok.end();
    if tok.sink.found.get() {
        return true;
    }
    // A character reference shows as decoded text that differs from what was written (the
    // tokenizer also turns CR LF and CR into LF, which is no reference).
    text.contains('&') && *tok.sink.text.borrow() != text.replace("\r\n", "\n").replace('\r', "\n")
}

struct Detector {
    found: std::cell::Cell<bool>,
    text: RefCell<String>,
}

impl TokenSink for Detector {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            TagToken(_) | Token::CommentToken(_) | Token::DoctypeToken(_) => self.found.set(true),
            CharacterTokens(t) => self.text.borrow_mut().push_str(&t),
            Token::NullCharacterToken => self.text.borrow_mut().push('\0'),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// A title, name or other short field as text: markup rendered away, entities decoded, whitespace
/// collapsed. Text that still reads as markup after rendering (it was escaped markup, which
/// rendering decoded) is rendered again, a bounded number of times, so no short field ever holds
/// something an HTML parser takes for a tag.
pub fn inline_text(text: &str) -> String {
    let mut s = text.to_string();
    for _ in 0..4 {
        if !has_markup(&s) {
            break;
        }
        s = to_text(&s);
    }
    if has_markup(&s) {
        s = s.replace('<', "‹").replace('&', "＆");
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Elements with no content or end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param",
    "source", "track", "wbr",
];

/// Elements a start tag of the same kind closes (`<p>a<p>b`, `<li>`), as HTML's parser does.
const SELF_CLOSING_SIBLINGS: &[&str] = &[
    "p", "li", "dt", "dd", "option", "tr", "td", "th", "rt", "rp",
];

/// Block elements whose start tag closes an open `<p>`.
const CLOSES_P: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "details",
    "div",
    "dl",
    "fieldset",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "ul",
];

/// `html` re-serialised from its tokens with elements nested deeper than [`MAX_DEPTH`] dropped
/// (their text kept), in one linear pass: end tags close through a count of what is open rather
/// than a search down the stack.
pub(super) fn bounded(html: &str) -> String {
    let sink = Bounder {
        out: RefCell::new(String::with_capacity(html.len())),
        open: RefCell::new(Vec::new()),
        counts: RefCell::new(std::collections::HashMap::new()),
    };
    let tok = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tok.feed(&input);
    tok.end();
    tok.sink.out.into_inner()
}

struct Bounder {
    out: RefCell<String>,
    /// Open elements: name, and whether its tags were kept (within the depth bound).
    open: RefCell<Vec<(String, bool)>>,
    counts: RefCell<std::collections::HashMap<String, usize>>,
}

impl Bounder {
    fn push_escaped(out: &mut String, text: &str, attr: bool) {
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' if attr => out.push_str("&quot;"),
                c => out.push(c),
            }
        }
    }

    /// Pops the innermost open element, writing its end tag if its start tag was kept.
    fn pop(&self) -> Option<String> {
        let (name, kept) = self.open.borrow_mut().pop()?;
        if let Some(n) = self.counts.borrow_mut().get_mut(&name) {
            *n = n.saturating_sub(1);
        }
        if kept {
            let mut out = self.out.borrow_mut();
            out.push_str("</");
            out.push_str(&name);
            out.push('>');
        }
        Some(name)
    }

    fn top_is(&self, names: &[&str]) -> bool {
        self.open
            .borrow()
            .last()
            .is_some_and(|(n, _)| names.contains(&n.as_str()))
    }

    fn start(&self, tag: &html5ever::tokenizer::Tag) {
        let name = tag.name.to_string();
        if SELF_CLOSING_SIBLINGS.contains(&name.as_str()) && self.top_is(&[name.as_str()]) {
            self.pop();
        }
        if CLOSES_P.contains(&name.as_str()) && self.top_is(&["p"]) {
            self.pop();
        }
        let void = tag.self_closing || VOID.contains(&name.as_str());
        let kept = self.open.borrow().len() < MAX_DEPTH;
        if kept {
            let mut out = self.out.borrow_mut();
            out.push('<');
            out.push_str(&name);
            for a in &tag.attrs {
                out.push(' ');
                out.push_str(&a.name.local);
                out.push_str("=\"");
                Self::push_escaped(&mut out, &a.value, true);
                out.push('"');
            }
            out.push('>');
        }
        if !void {
            *self.counts.borrow_mut().entry(name.clone()).or_default() += 1;
            self.open.borrow_mut().push((name, kept));
        }
    }

    fn end(&self, name: &str) {
        let open = self.counts.borrow().get(name).copied().unwrap_or(0);
        if open == 0 {
            return;
        }
        while let Some(popped) = self.pop() {
            if popped == name {
                break;
            }
        }
    }
}

impl TokenSink for Bounder {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            TagToken(tag) if tag.kind == StartTag => {
                self.start(&tag);
                match &*tag.name {
                    "script" => return TokenSinkResult::RawData(RawKind::ScriptData),
                    "style" | "xmp" | "iframe" | "noembed" | "noframes" => {
                        return TokenSinkResult::RawData(RawKind::Rawtext)
                    }
                    "title" | "textarea" => return TokenSinkResult::RawData(RawKind::Rcdata),
                    _ => {}
                }
            }
            TagToken(tag) => self.end(&tag.name),
            CharacterTokens(text) => Self::push_escaped(&mut self.out.borrow_mut(), &text, false),
            _ => {}
        }
        TokenSinkResult::Continue
    }
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

    #[test]
    fn markup_is_detected_by_a_tokenizer_not_a_tag_list() {
        for m in [
            "<script>alert(1)</script>",
            "x<img src=x onerror=alert(1)>",
            "<svg onload=alert(1)>",
            "<iframe src=//evil>",
            "<x-custom onclick=a()>hi</x-custom>",
            "Tom &amp; Jerry",
            "a<!-- hidden -->b",
        ] {
            assert!(has_markup(m), "{m}");
        }
        for p in [
            "a < b and c > d",
            "Fish & Chips",
            "I <3 Crewe",
            "line\r\nbreak",
            "Q&A",
        ] {
            assert!(!has_markup(p), "{p}");
        }
        assert_eq!(
            inline_text("<b>Hi</b> <script>alert(1)</script>there"),
            "Hi there"
        );
        // Escaped markup is text once rendered, and is rendered again until no tag is left.
        assert!(!has_markup(&inline_text(
            "&lt;script&gt;alert(1)&lt;/script&gt;Go"
        )));
    }

    #[test]
    fn nesting_past_the_bound_is_flattened_with_its_text_kept() {
        let depth = 100_000;
        let deep = format!(
            "{}deep text{}",
            "<div>".repeat(depth),
            "</div>".repeat(depth)
        );
        let (clean, text) =
            crate::ingest::on_worker_stack(move || (sanitise(&deep), to_text(&deep)));
        assert_eq!(clean.matches("<div>").count(), MAX_DEPTH);
        assert!(clean.contains("deep text"));
        assert_eq!(text, "deep text");
        // Ordinary structure is untouched: implied ends of <p> and <li> do not count as depth.
        let many =
            "<ul><li>x".to_string() + &"<li>x".repeat(1000) + "</ul>" + &"<p>para".repeat(1000);
        let clean = sanitise(&many);
        assert_eq!(clean.matches("<li>").count(), 1001);
        assert_eq!(clean.matches("<p>").count(), 1000);
    }
}
