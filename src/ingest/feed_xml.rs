//! Prepares an RSS or Atom document for the `rss` and `atom_syndication` readers in one streaming
//! pass (quick-xml, no recursion): decodes the encoding a BOM or the XML prolog declares into
//! UTF-8, refuses nesting deeper than [`MAX_DEPTH`] (both readers recurse into nested elements,
//! so a deep item would overflow the stack), and rewrites forms real feeds use that the readers
//! refuse: a prefixed RSS 1.0 or Atom namespace (`<rss:item>`, `<atom:entry>`) and an Atom text
//! construct whose `type` is a MIME type (`text/plain`) rather than text, html or xhtml.

use encoding_rs::Encoding;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, Writer};

/// Deeper than any feed needs (an item's XHTML content rarely passes 20); far below the depth
/// at which the readers' recursion exhausts a worker's stack.
pub const MAX_DEPTH: usize = 256;

const ATOM_NS: &[u8] = b"http://www.w3.org/2005/Atom";
const ATOM03_NS: &[u8] = b"http://purl.org/atom/ns#";
const RSS10_NS: &[u8] = b"http://purl.org/rss/1.0/";
const RSS09_NS: &[u8] = b"http://my.netscape.com/rdf/simple/0.9/";
const RDF_NS: &[u8] = b"http://www.w3.org/1999/02/22-rdf-syntax-ns#";

/// Which reader the document is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// RSS 0.9x/2.0 (`<rss>`) or RSS 0.9/1.0 (`<rdf:RDF>`).
    Rss,
    Atom,
}

/// A document ready for its reader: UTF-8, its dialect's elements unprefixed.
#[derive(Debug)]
pub struct Prepared {
    pub xml: Vec<u8>,
    pub dialect: Dialect,
}

/// Decodes, checks and rewrites `bytes`; the error says why the document is not a feed we read.
pub fn prepare(bytes: &[u8]) -> Result<Prepared, String> {
    let text = decode(bytes)?;
    let mut reader = NsReader::from_str(&text);
    let mut writer = Writer::new(Vec::with_capacity(text.len() + 64));
    let mut depth = 0usize;
    let mut dialect = None;
    // The namespace whose elements the reader expects unprefixed.
    let mut core: &[u8] = b"";
    loop {
        let (ns, event) = match reader.read_resolved_event() {
            Ok((ns, event)) => (owned(ns), event),
            Err(e) => {
                return Err(format!(
                    "not well-formed XML at byte {}: {e}",
                    reader.error_position()
                ))
            }
        };
        let out = match event {
            Event::Eof => break,
            Event::Decl(_) => Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)),
            Event::Start(e) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!(
                        "elements nested deeper than {MAX_DEPTH} levels (at byte {})",
                        reader.buffer_position()
                    ));
                }
                if dialect.is_none() {
                    let (d, c) = root(&ns, e.local_name().as_ref())?;
                    (dialect, core) = (Some(d), c);
                }
                Event::Start(rewrite(&e, &ns, core, dialect)?)
            }
            Event::Empty(e) => {
                if dialect.is_none() {
                    let (d, c) = root(&ns, e.local_name().as_ref())?;
                    (dialect, core) = (Some(d), c);
                }
                Event::Empty(rewrite(&e, &ns, core, dialect)?)
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let name = core_name(e.name().as_ref(), e.local_name().as_ref(), &ns, core);
                Event::End(BytesEnd::new(name))
            }
            other => other,
        };
        writer
            .write_event(out)
            .map_err(|e| format!("cannot rewrite the document: {e}"))?;
    }
    let dialect = dialect.ok_or("the document has no root element")?;
    Ok(Prepared {
        xml: writer.into_inner(),
        dialect,
    })
}

/// The document as UTF-8: a BOM decides, else the prolog's `encoding`, else UTF-8. Bytes that are
/// not valid in the encoding become U+FFFD rather than failing the whole feed.
fn decode(bytes: &[u8]) -> Result<String, String> {
    if let Some((enc, bom)) = Encoding::for_bom(bytes) {
        let body = bytes.get(bom..).unwrap_or_default();
        return Ok(enc.decode_without_bom_handling(body).0.into_owned());
    }
    let enc = match declared_encoding(bytes) {
        None => encoding_rs::UTF_8,
        Some(label) => Encoding::for_label(label.as_bytes())
            .ok_or_else(|| format!("the XML prolog declares an unknown encoding {label:?}"))?,
    };
    // A prolog that says UTF-16 without a BOM was written as ASCII, which is what we just read.
    let enc = if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
        encoding_rs::UTF_8
    } else {
        enc
    };
    Ok(enc.decode_without_bom_handling(bytes).0.into_owned())
}

/// The `encoding="…"` of a leading `<?xml …?>` declaration.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = bytes.get(..bytes.len().min(512))?;
    let head = String::from_utf8_lossy(head);
    let decl = head.trim_start().strip_prefix("<?xml")?;
    let decl = decl.get(..decl.find("?>")?)?;
    let at = decl.find("encoding")?;
    let rest = decl.get(at + "encoding".len()..)?.trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = rest.get(1..)?;
    Some(value.get(..value.find(quote)?)?.trim().to_string())
}

/// An element's namespace, owned so the reader can be asked where it is meanwhile.
enum Ns {
    Bound(Vec<u8>),
    Unbound,
    Unknown,
}

impl Ns {
    fn is(&self, uri: &[u8]) -> bool {
        matches!(self, Ns::Bound(n) if n == uri)
    }
}

fn owned(ns: ResolveResult) -> Ns {
    match ns {
        ResolveResult::Bound(Namespace(n)) => Ns::Bound(n.to_vec()),
        ResolveResult::Unbound => Ns::Unbound,
        ResolveResult::Unknown(_) => Ns::Unknown,
    }
}

/// The dialect a root element names, and the namespace its core elements are in.
fn root(ns: &Ns, local: &[u8]) -> Result<(Dialect, &'static [u8]), String> {
    match local {
        // Atom 1.0, or Atom 0.3 in its own namespace, whose core names the reader mostly shares.
        b"feed" => Ok((
            Dialect::Atom,
            if ns.is(ATOM03_NS) { ATOM03_NS } else { ATOM_NS },
        )),
        b"rss" => Ok((Dialect::Rss, b"")),
        b"RDF" if ns.is(RDF_NS) => Ok((Dialect::Rss, RSS10_NS)),
        other => Err(format!(
            "the root element <{}> is not RSS (<rss>, <rdf:RDF>) or Atom (<feed>)",
            String::from_utf8_lossy(other)
        )),
    }
}

/// The name the reader expects: a core-namespace element without its prefix, the RDF root as
/// `rdf:RDF` whatever prefix the feed chose, anything else as written.
fn core_name(name: &[u8], local: &[u8], ns: &Ns, core: &[u8]) -> String {
    let in_ns = |uri: &[u8]| ns.is(uri);
    let name = if local == b"RDF" && in_ns(RDF_NS) {
        &b"rdf:RDF"[..]
    } else if !core.is_empty() && (in_ns(core) || (core == RSS10_NS && in_ns(RSS09_NS))) {
        local
    } else {
        name
    };
    String::from_utf8_lossy(name).into_owned()
}

/// Atom text constructs, whose `type` the Atom reader accepts only as text, html or xhtml.
const ATOM_TEXT: &[&[u8]] = &[b"title", b"subtitle", b"summary", b"rights"];

fn rewrite(
    e: &BytesStart,
    ns: &Ns,
    core: &[u8],
    dialect: Option<Dialect>,
) -> Result<BytesStart<'static>, String> {
    let local = e.local_name();
    let name = core_name(e.name().as_ref(), local.as_ref(), ns, core);
    let text_construct = dialect == Some(Dialect::Atom)
        && ATOM_TEXT.contains(&local.as_ref())
        && match ns {
            Ns::Bound(n) => n == ATOM_NS || n == ATOM03_NS,
            Ns::Unbound => true,
            Ns::Unknown => false,
        };
    let mut out = BytesStart::new(name);
    for attr in e.attributes().with_checks(false) {
        let attr = attr.map_err(|err| format!("bad attribute: {err}"))?;
        if text_construct && attr.key.as_ref() == b"type" {
            let value = String::from_utf8_lossy(&attr.value)
                .trim()
                .to_ascii_lowercase();
            out.push_attribute(("type", text_type(&value)));
        } else {
            out.push_attribute(attr);
        }
    }
    Ok(out)
}

/// An Atom text construct's `type` as one of the three the reader knows: a MIME type of HTML or
/// XHTML is that, any other (`text/plain`) is text.
fn text_type(value: &str) -> &'static str {
    match value {
        "html" | "text/html" => "html",
        "xhtml" | "application/xhtml+xml" => "xhtml",
        _ => "text",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_prolog_is_decoded_and_redeclared() {
        let mut doc =
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss><channel><title>Caf".to_vec();
        doc.push(0xE9);
        doc.extend_from_slice(b"</title></channel></rss>");
        let p = prepare(&doc).unwrap();
        let xml = String::from_utf8(p.xml).unwrap();
        assert!(xml.contains("Café"), "{xml}");
        assert!(xml.contains("UTF-8"), "{xml}");
        assert_eq!(p.dialect, Dialect::Rss);
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let depth = 100_000;
        let doc = format!(
            "<rss><channel><item>{}{}</item></channel></rss>",
            "<x:a xmlns:x=\"urn:x\">".repeat(depth),
            "</x:a>".repeat(depth)
        );
        let err = prepare(doc.as_bytes()).unwrap_err();
        assert!(err.contains("nested deeper"), "{err}");
    }
}
