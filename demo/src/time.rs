//! Calendar arithmetic without a date crate: FHIR instants, HTTP dates and the ranges that FHIR
//! date search parameters compare.
//!
//! All times are milliseconds since the Unix epoch, UTC.

use std::time::{SystemTime, UNIX_EPOCH};

const MS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // day is 1..=31 and month 1..=12 by construction.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

fn split_ms(ms: i64) -> ((i64, u32, u32), i64, i64, i64, i64) {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let date = civil_from_days(days);
    (
        date,
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    )
}

/// A FHIR `instant`: `2024-05-01T12:34:56.789Z`.
pub(crate) fn format_instant(ms: i64) -> String {
    let ((y, mo, d), h, mi, s, milli) = split_ms(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// An HTTP date (RFC 9110 IMF-fixdate): `Wed, 01 May 2024 12:34:56 GMT`.
pub(crate) fn format_http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let ((y, mo, d), h, mi, s, _) = split_ms(ms);
    let weekday = usize::try_from(ms.div_euclid(MS_PER_DAY).rem_euclid(7)).unwrap_or(0);
    let wd = DAYS.get(weekday).copied().unwrap_or("Thu");
    let mon = MONTHS
        .get(usize::try_from(mo).unwrap_or(1).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!("{wd}, {d:02} {mon} {y:04} {h:02}:{mi:02}:{s:02} GMT")
}

/// The half-open range `[start, end)` in milliseconds that a FHIR `date`, `dateTime` or
/// `instant` covers at its precision: `2024` is the whole year, `2024-05-01T10:00Z` one minute.
///
/// Values without a time zone are taken as UTC. Returns `None` for anything malformed.
pub(crate) fn parse_range(text: &str) -> Option<(i64, i64)> {
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let year_text = parts.next()?;
    if year_text.len() != 4 {
        return None;
    }
    let year = digits(year_text)?;
    let month = match parts.next() {
        Some(m) => Some(two_digits(m, 1, 12)?),
        None => None,
    };
    let day = match parts.next() {
        Some(d) => Some(two_digits(d, 1, 31)?),
        None => None,
    };
    match (month, day, time) {
        (None, None, None) => Some((
            days_from_civil(year, 1, 1) * MS_PER_DAY,
            days_from_civil(year + 1, 1, 1) * MS_PER_DAY,
        )),
        (Some(m), None, None) => {
            let (ny, nm) = if m == 12 {
                (year + 1, 1)
            } else {
                (year, m + 1)
            };
            Some((
                days_from_civil(year, m, 1) * MS_PER_DAY,
                days_from_civil(ny, nm, 1) * MS_PER_DAY,
            ))
        }
        (Some(m), Some(d), None) => {
            let start = days_from_civil(year, m, d) * MS_PER_DAY;
            Some((start, start + MS_PER_DAY))
        }
        (Some(m), Some(d), Some(t)) => {
            let day_start = days_from_civil(year, m, d) * MS_PER_DAY;
            let (start, width) = parse_time(t)?;
            Some((day_start + start, day_start + start + width))
        }
        _ => None,
    }
}

/// `hh:mm[:ss[.fff]][Z|±hh:mm]` → (offset into the day in ms, UTC-adjusted; precision width).
fn parse_time(text: &str) -> Option<(i64, i64)> {
    let (clock, zone_ms) = if let Some(c) = text.strip_suffix('Z') {
        (c, 0)
    } else if let Some(pos) = text.rfind(['+', '-']) {
        let (c, z) = text.split_at(pos);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (zh, zm) = z.get(1..)?.split_once(':')?;
        let offset = (two_digits(zh, 0, 14)? * 60 + two_digits(zm, 0, 59)?) * 60_000;
        (c, sign * i64::from(offset))
    } else {
        (text, 0)
    };
    let mut parts = clock.splitn(3, ':');
    let h = i64::from(two_digits(parts.next()?, 0, 23)?);
    let m = i64::from(two_digits(parts.next()?, 0, 59)?);
    let mut at = (h * 60 + m) * 60_000;
    let width = match parts.next() {
        None => 60_000,
        Some(sec) => {
            let (whole, frac) = match sec.split_once('.') {
                Some((w, f)) => (w, Some(f)),
                None => (sec, None),
            };
            at += i64::from(two_digits(whole, 0, 60)?) * 1000;
            match frac {
                None => 1000,
                Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
                    let mut ms = 0i64;
                    for (i, b) in f.bytes().take(3).enumerate() {
                        ms += i64::from(b - b'0') * [100, 10, 1].get(i).copied().unwrap_or(0);
                    }
                    at += ms;
                    1
                }
                Some(_) => return None,
            }
        }
    };
    Some((at - zone_ms, width))
}

fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn two_digits(text: &str, min: u32, max: u32) -> Option<u32> {
    if text.len() != 2 {
        return None;
    }
    let n = u32::try_from(digits(text)?).ok()?;
    (min..=max).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        for days in [-800_000, -1, 59, 11_016, 19_844, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn formats() {
        let ms = days_from_civil(2024, 5, 1) * MS_PER_DAY + 45_296_789;
        assert_eq!(format_instant(ms), "2024-05-01T12:34:56.789Z");
        assert_eq!(format_http_date(ms), "Wed, 01 May 2024 12:34:56 GMT");
    }

    #[test]
    fn ranges_follow_precision() {
        let day = |y, m, d| days_from_civil(y, m, d) * MS_PER_DAY;
        assert_eq!(
            parse_range("2024"),
            Some((day(2024, 1, 1), day(2025, 1, 1)))
        );
        assert_eq!(
            parse_range("2024-12"),
            Some((day(2024, 12, 1), day(2025, 1, 1)))
        );
        assert_eq!(
            parse_range("2024-05-01"),
            Some((day(2024, 5, 1), day(2024, 5, 2)))
        );
        let t = day(2024, 5, 1) + 10 * 3_600_000;
        assert_eq!(parse_range("2024-05-01T10:00Z"), Some((t, t + 60_000)));
        assert_eq!(
            parse_range("2024-05-01T12:00:00+02:00"),
            Some((t, t + 1000))
        );
        assert_eq!(
            parse_range("2024-05-01T10:00:00.5Z"),
            Some((t + 500, t + 501))
        );
        for bad in [
            "",
            "24",
            "2024-13",
            "2024-05-1",
            "2024-05-01T25:00",
            "abcd",
            "2024-05-01T10",
        ] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
    }
}
