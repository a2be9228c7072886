//! A partner's sync schedule in words ("Every day at 03:00", "Every 30 minutes, Monday to
//! Friday") for the status page. Described from the `cron` crate's parsed fields, so the words
//! follow the crate's own reading of the expression (1 = Sunday in the day-of-week field, day of
//! month and day of week both required), which the English describers for crontab's dialect don't.

use cron::{Schedule, TimeUnitSpec};

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn values(spec: &impl TimeUnitSpec) -> Vec<u32> {
    spec.iter().collect()
}

/// `Some(n)` when `v` is every n-th value of `0..len` starting at 0 (and not a single value).
fn step(v: &[u32], len: u32) -> Option<u32> {
    let n = *v.get(1)?;
    (v.first() == Some(&0)
        && n > 0
        && len % n == 0
        && v.iter().copied().eq((0..len).step_by(n as usize)))
    .then_some(n)
}

/// `a, b and c`.
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Runs of consecutive values (`1-5`, `7`) named by `name`: `Monday to Friday and Sunday`.
fn ranges(v: &[u32], name: impl Fn(u32) -> String) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        parts.push(if j - i >= 2 {
            format!("{} to {}", name(v[i]), name(v[j]))
        } else if j > i {
            format!("{} and {}", name(v[i]), name(v[j]))
        } else {
            name(v[i])
        });
        i = j + 1;
    }
    list(&parts)
}

fn clock(h: u32, m: u32, s: u32) -> String {
    if s == 0 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// When in the day it fires: "at 03:00", "every 30 minutes", "every hour at :15".
fn time_of_day(c: &Schedule) -> String {
    let (s, m, h) = (values(c.seconds()), values(c.minutes()), values(c.hours()));
    let all_hours = c.hours().is_all();
    match (s.as_slice(), m.as_slice()) {
        (_, _) if c.seconds().is_all() => "every second".into(),
        (_, _) if step(&s, 60).is_some() && c.minutes().is_all() && all_hours => {
            format!("every {} seconds", step(&s, 60).unwrap_or(1))
        }
        ([0], _) if c.minutes().is_all() && all_hours => "every minute".into(),
        ([0], _) if step(&m, 60).is_some() && all_hours => {
            format!("every {} minutes", step(&m, 60).unwrap_or(1))
        }
        ([0], [0]) if all_hours => "every hour, on the hour".into(),
        ([0], [min]) if all_hours => format!("every hour at {min} minutes past"),
        ([0], [0]) if step(&h, 24).is_some() => {
            format!("every {} hours, on the hour", step(&h, 24).unwrap_or(1))
        }
        _ if s.len() * m.len() * h.len() <= 6 => {
            let mut times = Vec::new();
            for hh in &h {
                for mm in &m {
                    for ss in &s {
                        times.push(clock(*hh, *mm, *ss));
                    }
                }
            }
            format!("at {}", list(&times))
        }
        _ => {
            let minutes = if c.minutes().is_all() {
                "every minute".to_string()
            } else {
                format!("at minutes {}", ranges(&m, |x| x.to_string()))
            };
            let hours = if all_hours {
                String::new()
            } else {
                format!(" of hours {}", ranges(&h, |x| format!("{x:02}")))
            };
            let seconds = if s == [0] {
                String::new()
            } else {
                format!(" (seconds {})", ranges(&s, |x| x.to_string()))
            };
            format!("{minutes}{hours}{seconds}")
        }
    }
}

/// Which days: "", "Monday to Friday", "on day 1 of the month", plus months and years.
fn days(c: &Schedule) -> Vec<String> {
    let mut out = Vec::new();
    if !c.days_of_week().is_all() {
        let dow = values(c.days_of_week());
        out.push(ranges(&dow, |d| {
            WEEKDAYS
                .get(d.saturating_sub(1) as usize)
                .map(|s| s.to_string())
                .unwrap_or_else(|| d.to_string())
        }));
    }
    if !c.days_of_month().is_all() {
        let dom = values(c.days_of_month());
        let word = if dom.len() == 1 { "day" } else { "days" };
        out.push(format!(
            "on {word} {} of the month",
            ranges(&dom, |d| d.to_string())
        ));
    }
    if !c.months().is_all() {
        let months = values(c.months());
        out.push(format!(
            "in {}",
            ranges(&months, |m| {
                MONTHS
                    .get(m.saturating_sub(1) as usize)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| m.to_string())
            })
        ));
    }
    if !c.years().is_all() {
        out.push(format!(
            "in {}",
            ranges(&values(c.years()), |y| y.to_string())
        ));
    }
    out
}

/// The schedule in one English sentence, times in the scheduler's zone.
pub fn describe(c: &Schedule) -> String {
    let time = time_of_day(c);
    let days = days(c);
    let sentence = if days.is_empty() {
        if time.starts_with("at ") {
            format!("every day {time}")
        } else {
            time
        }
    } else {
        format!("{time}, {}", days.join(", "))
    };
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => sentence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn words(expr: &str) -> String {
        describe(&Schedule::from_str(expr).unwrap())
    }

    #[test]
    fn common_schedules_read_as_people_say_them() {
        for (expr, expected) in [
            ("0 0 3 * * *", "Every day at 03:00"),
            ("0 */30 * * * *", "Every 30 minutes"),
            ("0 0,30 * * * *", "Every 30 minutes"),
            ("0 0 * * * *", "Every hour, on the hour"),
            ("0 15 * * * *", "Every hour at 15 minutes past"),
            ("0 0 */6 * * *", "Every 6 hours, on the hour"),
            ("0 * * * * *", "Every minute"),
            ("*/10 * * * * *", "Every 10 seconds"),
            ("* * * * * *", "Every second"),
            ("0 30 9 * * Mon-Fri", "At 09:30, Monday to Friday"),
            // The cron crate numbers weekdays from Sunday = 1.
            ("0 0 8 * * 2-6", "At 08:00, Monday to Friday"),
            ("0 0 8 * * Sat,Sun", "At 08:00, Sunday and Saturday"),
            ("0 0 6,18 * * *", "Every day at 06:00 and 18:00"),
            ("0 0 2 1 * *", "At 02:00, on day 1 of the month"),
            (
                "0 0 2 1,15 Jan,Jul *",
                "At 02:00, on days 1 and 15 of the month, in January and July",
            ),
            ("0 0 4 * * * 2027", "At 04:00, in 2027"),
            ("30 0 3 * * *", "Every day at 03:00:30"),
            ("@daily", "Every day at 00:00"),
            ("@hourly", "Every hour, on the hour"),
            ("@weekly", "At 00:00, Sunday"),
            (
                "0 5,10,20,40 8-17 * * *",
                "Every day at minutes 5, 10, 20 and 40 of hours 08 to 17",
            ),
        ] {
            assert_eq!(words(expr), expected, "{expr}");
        }
    }
}
