//! A calendar's own VTIMEZONE, for a TZID no table names ("GMT +0100 (Standard) / GMT +0200
//! (Daylight)"): its observances give the offset at any instant, and the IANA zone with the same
//! offsets over the years calendars use stands in for it.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::{Tz, TZ_VARIANTS};

use super::lines::ZoneBlock;

/// Years over which a definition and an IANA zone must agree.
const FIRST_YEAR: i32 = 2005;
const LAST_YEAR: i32 = 2035;

fn prop<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| {
        let colon = super::lines::value_colon(l)?;
        let head = &l[..colon];
        let key = head.split(';').next()?;
        (key == name).then(|| l[colon + 1..].trim())
    })
}

fn offset_secs(v: &str) -> Option<i32> {
    let v = v.trim();
    let (sign, rest) = match v.as_bytes().first()? {
        b'+' => (1, &v[1..]),
        b'-' => (-1, &v[1..]),
        _ => (1, v),
    };
    if rest.len() < 4 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = rest[0..2].parse().ok()?;
    let m: i32 = rest[2..4].parse().ok()?;
    let s: i32 = rest.get(4..6).and_then(|x| x.parse().ok()).unwrap_or(0);
    Some(sign * (h * 3600 + m * 60 + s))
}

/// Onsets (instant, offset after it) of every observance up to the last year compared.
pub(super) fn onsets(zone: &ZoneBlock) -> Option<Vec<(DateTime<Utc>, i32)>> {
    let mut out = Vec::new();
    let limit = Utc
        .with_ymd_and_hms(LAST_YEAR + 1, 1, 1, 0, 0, 0)
        .single()?;
    for o in &zone.observances {
        let from = offset_secs(prop(&o.lines, "TZOFFSETFROM")?)?;
        let to = offset_secs(prop(&o.lines, "TZOFFSETTO")?)?;
        let start = NaiveDateTime::parse_from_str(
            prop(&o.lines, "DTSTART")?.trim_end_matches('Z'),
            "%Y%m%dT%H%M%S",
        )
        .ok()?;
        let first = start.and_utc() - Duration::seconds(i64::from(from));
        out.push((first, to));
        if let Some(rule) = prop(&o.lines, "RRULE") {
            // The rule runs in the observance's local time; UTC arithmetic on the local
            // wall clock gives the same dates, and the offset before it makes the instant.
            let text = format!("DTSTART:{}Z\nRRULE:{rule}", start.format("%Y%m%dT%H%M%S"));
            if let Ok(set) = text.parse::<rrule::RRuleSet>() {
                let before =
                    (limit + Duration::seconds(i64::from(from))).with_timezone(&rrule::Tz::UTC);
                for d in set.before(before).all(1000).dates {
                    out.push((
                        d.with_timezone(&Utc) - Duration::seconds(i64::from(from)),
                        to,
                    ));
                }
            }
        }
        if let Some(list) = prop(&o.lines, "RDATE") {
            for item in list.split(',') {
                if let Ok(n) = NaiveDateTime::parse_from_str(item.trim(), "%Y%m%dT%H%M%S") {
                    out.push((n.and_utc() - Duration::seconds(i64::from(from)), to));
                }
            }
        }
    }
    out.sort();
    (!out.is_empty()).then_some(out)
}

/// A wall-clock time in a definition's own offsets, as an instant with that offset (the offset
/// in force at the instant, found from the offset in force at the wall-clock time read as UTC).
pub(super) fn local_time(
    onsets: &[(DateTime<Utc>, i32)],
    local: NaiveDateTime,
) -> Option<DateTime<chrono::FixedOffset>> {
    let guess = offset_at(onsets, local.and_utc())?;
    let utc = local.and_utc() - Duration::seconds(i64::from(guess));
    let offset = offset_at(onsets, utc)?;
    let fixed = chrono::FixedOffset::east_opt(offset)?;
    let utc = local.and_utc() - Duration::seconds(i64::from(offset));
    Some(utc.with_timezone(&fixed))
}

fn offset_at(onsets: &[(DateTime<Utc>, i32)], t: DateTime<Utc>) -> Option<i32> {
    let i = onsets.partition_point(|(at, _)| *at <= t);
    // Before the first onset the first observance's offset is the best answer there is.
    onsets.get(i.saturating_sub(1)).map(|(_, o)| *o)
}

/// The IANA zone whose offsets equal the definition's twice a month over the years compared.
pub fn match_zone(zone: &ZoneBlock) -> Option<Tz> {
    let onsets = onsets(zone)?;
    let probes: Vec<(DateTime<Utc>, i32)> = (FIRST_YEAR..=LAST_YEAR)
        .flat_map(|y| (1..=12).flat_map(move |m| [(y, m, 1), (y, m, 16)]))
        .filter_map(|(y, m, d)| Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).single())
        .filter_map(|t| offset_at(&onsets, t).map(|o| (t, o)))
        .collect();
    let agrees = |tz: &Tz| {
        probes.iter().all(|(t, o)| {
            use chrono::Offset;
            tz.offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc()
                == *o
        })
    };
    // A zone named in the TZID or X-LIC-LOCATION first, then any zone that agrees.
    let hint = prop(&zone.lines, "X-LIC-LOCATION")
        .unwrap_or(&zone.tzid)
        .to_lowercase();
    TZ_VARIANTS
        .iter()
        .filter(|tz| {
            let city = tz.name().rsplit('/').next().unwrap_or("").to_lowercase();
            city.len() > 2 && hint.contains(&city)
        })
        .find(|tz| agrees(tz))
        .or_else(|| {
            TZ_VARIANTS
                .iter()
                .filter(|tz| tz.name().contains('/') && !tz.name().starts_with("Etc/"))
                .find(|tz| agrees(tz))
        })
        .or_else(|| TZ_VARIANTS.iter().find(|tz| agrees(tz)))
        .copied()
        .or_else(|| closest(&probes))
}

/// Rules since changed (the US before 2007, as Lotus Notes still writes them) match no zone
/// exactly: the zone agreeing at the most probes stands in, if it has the same winter and summer
/// offsets every year and agrees at four probes in five (the days around the changes may differ).
fn closest(probes: &[(DateTime<Utc>, i32)]) -> Option<Tz> {
    use chrono::{Datelike, Offset};
    let same = |tz: &Tz, t: &DateTime<Utc>, o: i32| {
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc()
            == o
    };
    let score = |tz: &Tz| {
        let core = probes
            .iter()
            .filter(|(t, _)| (t.month() == 1 || t.month() == 7) && t.day() == 16)
            .all(|(t, o)| same(tz, t, *o));
        if !core {
            return 0;
        }
        probes.iter().filter(|(t, o)| same(tz, t, *o)).count()
    };
    let (best, n) = TZ_VARIANTS
        .iter()
        .filter(|tz| tz.name().contains('/') && !tz.name().starts_with("Etc/"))
        .map(|tz| (*tz, score(tz)))
        .max_by_key(|(_, n)| *n)?;
    (n * 5 >= probes.len() * 4).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lotus_notes_zone_matches_central_european_time() {
        let z = ZoneBlock {
            tzid: "GMT +0100 (Standard) / GMT +0200 (Daylight)".into(),
            lines: vec![],
            observances: vec![
                super::super::lines::Observance {
                    lines: [
                        "BEGIN:STANDARD",
                        "DTSTART:19501029T030000",
                        "TZOFFSETFROM:+0200",
                        "TZOFFSETTO:+0100",
                        "RRULE:FREQ=YEARLY;BYMINUTE=0;BYHOUR=3;BYDAY=-1SU;BYMONTH=10",
                    ]
                    .map(String::from)
                    .to_vec(),
                },
                super::super::lines::Observance {
                    lines: [
                        "BEGIN:DAYLIGHT",
                        "DTSTART:19500326T020000",
                        "TZOFFSETFROM:+0100",
                        "TZOFFSETTO:+0200",
                        "RRULE:FREQ=YEARLY;BYMINUTE=0;BYHOUR=2;BYDAY=-1SU;BYMONTH=3",
                    ]
                    .map(String::from)
                    .to_vec(),
                },
            ],
        };
        let tz = match_zone(&z).unwrap();
        let t = Utc.with_ymd_and_hms(2027, 7, 1, 12, 0, 0).unwrap();
        use chrono::Offset;
        assert_eq!(
            tz.offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
            7200
        );
        let w = Utc.with_ymd_and_hms(2027, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(
            tz.offset_from_utc_datetime(&w.naive_utc())
                .fix()
                .local_minus_utc(),
            3600
        );
    }
}
