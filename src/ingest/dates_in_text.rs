//! Finds an event's date and time stated in a post's prose, the way UK voluntary-sector posts write
//! them: "Tuesday 25th January 2022, 1pm – 3pm", "25 Jan 2022 at 13:00", "2 March, 10.30am–12
//! noon", "January 25, 2022 1:00 PM". A month name next to a day number is required, so "our
//! January 2022 newsletter" is not an event. Pure: no clock, the post's own date fills a missing year.

use chrono::{Datelike, NaiveDate, NaiveTime};

/// A date stated in text, with the times that follow it, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stated {
    pub date: NaiveDate,
    pub start: Option<NaiveTime>,
    pub end: Option<NaiveTime>,
}

fn month(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let w = word.trim_end_matches('.');
    if w.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| {
            *m == w || (w.len() >= 3 && m.starts_with(w) && (w.len() == 3 || w == "sept"))
        })
        .map(|i| i as u32 + 1)
}

fn day(word: &str) -> Option<u32> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    if !matches!(suffix, "" | "st" | "nd" | "rd" | "th") {
        return None;
    }
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

fn year(word: &str) -> Option<i32> {
    word.parse().ok().filter(|y| (1990..=2100).contains(y))
}

/// A clock time token: "1pm", "1.30pm", "13:00", "10:30am", or "1" when `pm_word` follows.
fn clock(word: &str, following: Option<&str>) -> Option<(NaiveTime, bool)> {
    if matches!(word, "noon" | "midday")
        || (word == "12" && matches!(following, Some("noon" | "midday")))
    {
        return NaiveTime::from_hms_opt(12, 0, 0).map(|t| (t, true));
    }
    let (body, meridiem) = if let Some(b) = word.strip_suffix("am") {
        (b, Some(false))
    } else if let Some(b) = word.strip_suffix("pm") {
        (b, Some(true))
    } else {
        match following {
            Some("am" | "a.m." | "a.m") => (word, Some(false)),
            Some("pm" | "p.m." | "p.m") => (word, Some(true)),
            _ => (word, None),
        }
    };
    let (h, m) = match body.split_once([':', '.']) {
        Some((h, m)) if m.len() == 2 => (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?),
        Some(_) => return None,
        // A bare number is a time only with am/pm ("2022" or "25" is not).
        None if meridiem.is_some() => (body.parse::<u32>().ok()?, 0),
        None => return None,
    };
    let h = match meridiem {
        Some(pm) if (1..=12).contains(&h) => (h % 12) + if pm { 12 } else { 0 },
        Some(_) => return None,
        None if h <= 23 => h,
        None => return None,
    };
    NaiveTime::from_hms_opt(h, m, 0).map(|t| (t, meridiem.is_some()))
}

/// Words of the text, lower-cased, with surrounding punctuation dropped (keeping `:`/`.` inside times).
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text.split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')' | '|' | '/')) {
        // Dashes join ranges ("1pm–3pm"): split them into their own word.
        let mut cur = String::new();
        for c in raw.chars() {
            if matches!(c, '-' | '–' | '—') {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push("-".to_string());
            } else {
                cur.extend(c.to_lowercase());
            }
        }
        let w = cur.trim_matches(|c: char| !c.is_alphanumeric()).to_string();
        if !w.is_empty() {
            out.push(w);
        }
    }
    out
}

/// The first date in `text`, with a following time range if stated. `posted` (the post's own
/// date) fills a missing year: the first such date not long before the post.
pub fn find(text: &str, posted: Option<NaiveDate>) -> Option<Stated> {
    let w = words(text);
    for i in 0..w.len() {
        let Some(m) = month(&w[i]) else { continue };
        // "25th January 2022" or "January 25, 2022".
        let (d, y, after) = if let Some(d) = i.checked_sub(1).and_then(|j| day(&w[j])) {
            let y = w.get(i + 1).and_then(|x| year(x));
            (d, y, i + 1 + usize::from(y.is_some()))
        } else if let Some(d) = w.get(i + 1).and_then(|x| day(x)) {
            let y = w.get(i + 2).and_then(|x| year(x));
            (d, y, i + 2 + usize::from(y.is_some()))
        } else {
            continue;
        };
        let y = match (y, posted) {
            (Some(y), _) => y,
            (None, Some(p)) => {
                let this = NaiveDate::from_ymd_opt(p.year(), m, d)?;
                if this + chrono::Duration::days(31) < p {
                    p.year() + 1
                } else {
                    p.year()
                }
            }
            (None, None) => continue,
        };
        let Some(date) = NaiveDate::from_ymd_opt(y, m, d) else {
            continue;
        };
        let (start, end) = times(&w[after..]);
        return Some(Stated { date, start, end });
    }
    None
}

/// A start time within the next few words, and an end time joined to it by "-", "to" or "until".
fn times(w: &[String]) -> (Option<NaiveTime>, Option<NaiveTime>) {
    let window = &w[..w.len().min(8)];
    let joiner = |i: usize| {
        window
            .get(i)
            .is_some_and(|x| matches!(x.as_str(), "-" | "to" | "until" | "till"))
    };
    let at = |i: usize| clock(window.get(i)?, window.get(i + 1).map(String::as_str));
    for i in 0..window.len() {
        let (start, start_meridiem) = match at(i) {
            Some(s) => s,
            // "1-3pm": a bare hour before a range's end takes the end's meridiem.
            None => match (window[i].parse::<u32>().ok(), joiner(i + 1), at(i + 2)) {
                (Some(h), true, Some((end, true))) if (1..=12).contains(&h) => {
                    let am = NaiveTime::from_hms_opt(h % 12, 0, 0);
                    let pm = NaiveTime::from_hms_opt(h % 12 + 12, 0, 0);
                    let start = pm.filter(|p| *p < end).or(am);
                    return (start, Some(end).filter(|e| start.is_some_and(|s| s < *e)));
                }
                _ => continue,
            },
        };
        let mut j = i + 1;
        if window
            .get(j)
            .is_some_and(|x| matches!(x.as_str(), "am" | "pm" | "a.m." | "p.m." | "a.m" | "p.m"))
        {
            j += 1;
        }
        let end = if joiner(j) {
            at(j + 1).map(|(e, _)| e)
        } else {
            None
        };
        // "10 - 12pm" style starts without am/pm stay as written unless the afternoon keeps order.
        let start = match end {
            Some(e)
                if !start_meridiem
                    && start < NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(start) =>
            {
                let pm = start + chrono::Duration::hours(12);
                if pm < e && start >= e {
                    pm
                } else {
                    start
                }
            }
            _ => start,
        };
        return (Some(start), end.filter(|e| *e > start));
    }
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> Option<NaiveTime> {
        NaiveTime::from_hms_opt(h, m, 0)
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn the_seed_posts_phrasing() {
        let s = find(
            "Join us on Tuesday 25th January 2022, 1pm – 3pm for a webinar on anchor institutions.",
            None,
        )
        .unwrap();
        assert_eq!(
            s,
            Stated {
                date: d(2022, 1, 25),
                start: t(13, 0),
                end: t(15, 0)
            }
        );
    }

    #[test]
    fn other_common_phrasings() {
        let posted = Some(d(2026, 11, 20));
        let cases = [
            ("25 Jan 2022 at 13:00", d(2022, 1, 25), t(13, 0), None),
            (
                "Wednesday 2 March, 10.30am - 12 noon",
                d(2027, 3, 2),
                t(10, 30),
                t(12, 0),
            ),
            (
                "January 25, 2022 1:00 PM to 3:00 PM",
                d(2022, 1, 25),
                t(13, 0),
                t(15, 0),
            ),
            (
                "Drop in on 3rd December from 1-3pm",
                d(2026, 12, 3),
                t(13, 0),
                t(15, 0),
            ),
            ("Volunteers' Week, 1st June 2027", d(2027, 6, 1), None, None),
            (
                "Sat 14 Nov 13:00–15:30",
                d(2026, 11, 14),
                t(13, 0),
                t(15, 30),
            ),
        ];
        for (text, date, start, end) in cases {
            let s = find(text, posted).unwrap_or_else(|| panic!("no date in {text:?}"));
            assert_eq!((s.date, s.start, s.end), (date, start, end), "{text:?}");
        }
    }

    #[test]
    fn news_is_not_an_event() {
        for text in [
            "Our January 2022 newsletter is out",
            "We supported 2022 groups in 12 months",
            "Funding round opens in March",
            "May we remind members to renew",
        ] {
            assert_eq!(find(text, Some(d(2022, 1, 5))), None, "{text:?}");
        }
        assert_eq!(
            find("Meet on 25th January", None),
            None,
            "no year and no post date"
        );
    }
}
