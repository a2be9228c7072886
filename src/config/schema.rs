//! The config file's shape, checked before typed parsing so one run reports every unknown key
//! (with the nearest valid name) and every value of the wrong type, each with its key path; the
//! offending keys are dropped so the typed validators still check everything else. Also maps a
//! key path back to its line in the file.

use toml::de::{DeTable, DeValue};
use toml::{Table, Value};

use super::Problem;

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Float,
    Bool,
    /// An array of strings (`kinds = ["events"]`).
    StrList,
    /// An inline table of strings (`headers`, `columns`).
    StrMap,
    Table(&'static [(&'static str, Kind)]),
    Tables(&'static [(&'static str, Kind)]),
}

const FEED: &[(&str, Kind)] = &[
    ("kind", Kind::Str),
    ("format", Kind::Str),
    ("url", Kind::Str),
    ("rate_limit_per_minute", Kind::Int),
    ("timeout_secs", Kind::Int),
    ("max_body_bytes", Kind::Int),
    ("retries", Kind::Int),
    ("headers", Kind::StrMap),
    ("columns", Kind::StrMap),
    ("max_pages", Kind::Int),
    ("max_harvest_bytes", Kind::Int),
];

const PARTNER: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("name", Kind::Str),
    ("schedule", Kind::Str),
    ("priority", Kind::Int),
    ("licence", Kind::Str),
    ("website", Kind::Str),
    ("max_delete_share", Kind::Float),
    ("delete_guard_days", Kind::Int),
    ("feeds", Kind::Tables(FEED)),
];

const ROOT: &[(&str, Kind)] = &[
    (
        "store",
        Kind::Table(&[("path", Kind::Str), ("postcode_centroids", Kind::Str)]),
    ),
    (
        "server",
        Kind::Table(&[
            ("listen", Kind::Str),
            ("base_url", Kind::Str),
            ("response_cache_mb", Kind::Int),
            ("header_read_timeout_secs", Kind::Int),
            ("max_connections", Kind::Int),
            ("stop_grace_secs", Kind::Int),
        ]),
    ),
    (
        "admin",
        Kind::Table(&[
            ("token_env", Kind::Str),
            ("token_file", Kind::Str),
            ("session_hours", Kind::Int),
        ]),
    ),
    (
        "scheduler",
        Kind::Table(&[
            ("default_schedule", Kind::Str),
            ("timezone", Kind::Str),
            ("max_concurrent", Kind::Int),
        ]),
    ),
    (
        "dedupe",
        Kind::Table(&[
            ("merge_threshold", Kind::Float),
            ("review_threshold", Kind::Float),
            ("event_time_tolerance_minutes", Kind::Int),
        ]),
    ),
    (
        "sync",
        Kind::Table(&[("removed_partner_grace_days", Kind::Int)]),
    ),
    (
        "webhooks",
        Kind::Table(&[
            ("allow_private_targets", Kind::Bool),
            ("max_attempts", Kind::Int),
            ("retry_initial_ms", Kind::Int),
            ("retry_max_secs", Kind::Int),
            ("poll_interval_ms", Kind::Int),
            ("subscribers", Kind::Tables(SUBSCRIBER)),
        ]),
    ),
    (
        "publish",
        Kind::Table(&[
            ("calendar_max_events", Kind::Int),
            ("max_age_secs", Kind::Int),
        ]),
    ),
    ("partners", Kind::Tables(PARTNER)),
];

const SUBSCRIBER: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("url", Kind::Str),
    ("secret_env", Kind::Str),
    ("secret_file", Kind::Str),
    ("kinds", Kind::StrList),
    ("partners", Kind::StrList),
    ("from", Kind::Str),
    ("timeout_secs", Kind::Int),
];

/// Checks `table` against the config's shape, reporting and removing what does not fit.
pub(super) fn check(table: &mut Table, problems: &mut Vec<Problem>) {
    check_table(table, ROOT, "", problems);
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn check_table(
    table: &mut Table,
    shape: &[(&str, Kind)],
    prefix: &str,
    problems: &mut Vec<Problem>,
) {
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        let path = join(prefix, &key);
        let Some(kind) = shape.iter().find(|(k, _)| *k == key).map(|(_, k)| *k) else {
            problems.push(Problem::new(&path, unknown_key(&key, shape)));
            table.remove(&key);
            continue;
        };
        let Some(value) = table.get_mut(&key) else {
            continue;
        };
        if let Err(message) = check_value(value, kind, &path, problems) {
            problems.push(Problem::new(&path, message));
            table.remove(&key);
        }
    }
}

/// `Err` when the value itself has the wrong type (the caller drops it); problems inside a
/// table are pushed here and the table kept.
fn check_value(
    value: &mut Value,
    kind: Kind,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Result<(), String> {
    match (kind, &mut *value) {
        (Kind::Str, Value::String(_)) | (Kind::Int, Value::Integer(_)) => Ok(()),
        (Kind::Float, Value::Float(_)) | (Kind::Bool, Value::Boolean(_)) => Ok(()),
        (Kind::StrList, Value::Array(items)) => match items.iter().position(|v| !v.is_str()) {
            None => Ok(()),
            Some(i) => Err(format!(
                "must be an array of strings; item {i} is {}",
                article(items[i].type_str())
            )),
        },
        (Kind::Float, Value::Integer(n)) => {
            *value = Value::Float(*n as f64);
            Ok(())
        }
        (Kind::StrMap, Value::Table(t)) => {
            let bad: Vec<String> = t
                .iter()
                .filter(|(_, v)| !v.is_str())
                .map(|(k, _)| k.clone())
                .collect();
            for k in bad {
                let found = t.get(&k).map_or("nothing", Value::type_str);
                problems.push(Problem::new(
                    &join(path, &k),
                    format!("must be a string, not {}", article(found)),
                ));
                t.remove(&k);
            }
            Ok(())
        }
        (Kind::Table(shape), Value::Table(t)) => {
            check_table(t, shape, path, problems);
            Ok(())
        }
        (Kind::Tables(shape), Value::Array(items)) => {
            let mut i = 0;
            items.retain_mut(|item| {
                let here = format!("{path}[{i}]");
                i += 1;
                match item {
                    Value::Table(t) => {
                        check_table(t, shape, &here, problems);
                        true
                    }
                    other => {
                        problems.push(Problem::new(
                            &here,
                            format!("must be a table, not {}", article(other.type_str())),
                        ));
                        false
                    }
                }
            });
            Ok(())
        }
        (kind, other) => Err(format!(
            "must be {}, not {}",
            expected(kind),
            article(other.type_str())
        )),
    }
}

fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "a string",
        Kind::Int => "a whole number",
        Kind::Float => "a number",
        Kind::Bool => "true or false",
        Kind::StrList => "an array of strings",
        Kind::StrMap => "a table of strings",
        Kind::Table(_) => "a table",
        Kind::Tables(_) => "an array of tables ([[...]])",
    }
}

fn article(type_str: &str) -> String {
    match type_str {
        "integer" => "a whole number".into(),
        "array" => "an array".into(),
        t => format!("a {t}"),
    }
}

/// "unknown key", with the valid name it most likely misspells.
fn unknown_key(key: &str, shape: &[(&str, Kind)]) -> String {
    let nearest = shape
        .iter()
        .map(|(k, _)| (strsim::damerau_levenshtein(key, k), *k))
        .min();
    match nearest {
        Some((d, k)) if d <= (key.len() / 3).max(2) => {
            format!("unknown key; did you mean {k:?}?")
        }
        _ => {
            let known: Vec<_> = shape.iter().map(|(k, _)| *k).collect();
            format!("unknown key (known here: {})", known.join(", "))
        }
    }
}

/// The 1-based line of a key path (`partners[1].feeds[0].url`) in `text`, if it is there.
pub(super) fn line_of(text: &str, path: &str) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let mut span = doc.span();
    let mut here: Option<&DeValue<'_>> = None;
    let mut table: Option<&DeTable<'_>> = Some(doc.get_ref());
    for segment in path.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let t = table.or(match here {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        })?;
        let (key, value) = t.iter().find(|(k, _)| k.get_ref() == name)?;
        span = key.span();
        here = Some(value.get_ref());
        table = None;
        if let Some(i) = index {
            let DeValue::Array(items) = value.get_ref() else {
                break;
            };
            let item = items.get(i)?;
            span = item.span();
            here = Some(item.get_ref());
        }
    }
    Some(text.get(..span.start)?.matches('\n').count() + 1)
}
