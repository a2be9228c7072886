//! Redaction of secrets in text that leaves the admin's view: URLs lose their userinfo and query
//! values (`https://***@host/feed?api_key=***`) in logs and public pages, and public pages also lose
//! the server's file paths (only the file name is kept). The admin API keeps the full text.

/// `text` with every URL's userinfo and query values replaced by `***` (for logs).
pub fn secrets(text: &str) -> String {
    rewrite(text, false)
}

/// As [`secrets`], and absolute file paths cut to their file name (for unauthenticated pages).
pub fn public(text: &str) -> String {
    rewrite(text, true)
}

/// Characters that end a token: a URL or path never contains them unescaped.
fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | '(' | ')' | '[' | ']')
}

fn rewrite(text: &str, hide_paths: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    for c in text.chars() {
        if is_delimiter(c) {
            out.push_str(&token_text(&token, hide_paths));
            token.clear();
            out.push(c);
        } else {
            token.push(c);
        }
    }
    out.push_str(&token_text(&token, hide_paths));
    out
}

fn token_text(token: &str, hide_paths: bool) -> String {
    // Punctuation that follows a URL or path in prose is not part of it.
    let core = token.trim_end_matches([',', '.', ';', ':', '!']);
    let tail = &token[core.len()..];
    if let Some(at) = core.find("://") {
        let (head, rest) = core.split_at(at);
        let scheme_start = head
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(0);
        let (prefix, scheme) = head.split_at(scheme_start);
        let rest = &rest[3..];
        let url = if hide_paths && scheme.eq_ignore_ascii_case("file") {
            format!("file://{}", file_name(rest))
        } else {
            format!("{scheme}://{}", url_rest(rest))
        };
        return format!("{prefix}{url}{tail}");
    }
    if hide_paths && core.starts_with('/') && core[1..].contains('/') {
        return format!("{}{tail}", file_name(core));
    }
    token.to_string()
}

/// A path cut to `…/` and its last component.
fn file_name(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or("");
    format!("…/{name}")
}

/// Everything after `scheme://`: userinfo hidden, query values hidden, fragment dropped.
fn url_rest(rest: &str) -> String {
    let rest = rest.split('#').next().unwrap_or(rest);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(i) => format!("***@{}", &authority[i + 1..]),
        None => authority.to_string(),
    };
    let (path, query) = match after.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (after, None),
    };
    let mut out = host + path;
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, "")) => format!("{k}="),
                Some((k, _)) => format!("{k}=***"),
                None if pair.is_empty() => String::new(),
                None => "***".to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_query_values_are_hidden() {
        let e = "HTTP 500 Internal Server Error from https://bob:hunter2@example.org:8443/feed.ics?api_key=s3cr3t&page=2#x, retrying";
        assert_eq!(
            secrets(e),
            "HTTP 500 Internal Server Error from https://***@example.org:8443/feed.ics?api_key=***&page=***, retrying"
        );
    }

    #[test]
    fn public_text_loses_file_paths_but_logs_keep_them() {
        let e = "feed events-0 (/srv/tributary/feeds/secret-partner/events.csv): No such file";
        assert_eq!(public(e), "feed events-0 (…/events.csv): No such file");
        assert_eq!(secrets(e), e);
        assert_eq!(public("read file:///etc/x/y.ics"), "read file://…/y.ics");
    }

    #[test]
    fn text_without_urls_is_unchanged() {
        for t in ["", "held: 3 of 4", "a/b is fine", "ratio 1/2", "é://"] {
            assert_eq!(public(t), t);
        }
    }

    #[test]
    fn a_bare_query_token_and_urls_inside_quotes() {
        assert_eq!(
            secrets("\"http://h/x?tok\""),
            "\"http://h/x?***\"",
            "a value without a key is hidden too"
        );
        assert_eq!(secrets("(http://u:p@h)"), "(http://***@h)");
    }
}
