//! Access windows: the days and hours (in a time zone) a client may call, and a validity
//! period.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::SystemTime;

/// A window specification that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Not an IANA time zone name known to the bundled database.
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    /// Days not like `Mon-Fri` or `Sat,Sun`.
    #[error("bad days {0:?} (like Mon-Fri or Sat,Sun)")]
    Days(String),
    /// Hours not like `08:00-18:00`.
    #[error("bad hours {0:?} (like 08:00-18:00)")]
    Hours(String),
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Allowed days and hours in a time zone, with an optional validity period.
///
/// Hours are wall-clock time in the zone, so a 08:00–18:00 window follows daylight-saving
/// changes. An end before the start (`22:00-06:00`) runs past midnight into the next day; the
/// days name the day it starts on.
///
/// ```
/// use fhirwall::firewall::AccessWindow;
///
/// let w = AccessWindow::new("America/New_York", "Mon-Fri", "08:00-18:00")?;
/// // 2026-03-09 (Monday) 12:30 UTC = 08:30 EDT, the day after DST began.
/// assert!(w.permits_unix(1_773_059_400));
/// // 2026-03-07 (Saturday) 15:00 UTC.
/// assert!(!w.permits_unix(1_772_895_600));
/// # Ok::<(), fhirwall::firewall::WindowError>(())
/// ```
#[derive(Clone, Debug)]
pub struct AccessWindow {
    tz: jiff::tz::TimeZone,
    days: u8,
    start: u32,
    end: u32,
    valid_from: Option<i64>,
    valid_until: Option<i64>,
    cache: MinuteCache,
}

/// The answer for the last UTC minute asked about, so the time-zone conversion runs once a
/// minute rather than once a request: `minute * 2 + open`, or [`MinuteCache::EMPTY`].
///
/// The answer depends only on the local weekday, hour and minute, which stay the same through
/// a UTC minute when the zone's offset is whole minutes and doesn't change inside it; other
/// minutes (a transition mid-minute, a historical seconds offset) are never cached.
#[derive(Debug)]
struct MinuteCache(AtomicI64);

impl MinuteCache {
    const EMPTY: i64 = i64::MIN;

    fn get(&self, minute: i64) -> Option<bool> {
        let v = self.0.load(Ordering::Relaxed);
        (v != Self::EMPTY && v >> 1 == minute).then_some(v & 1 == 1)
    }

    fn set(&self, minute: i64, open: bool) {
        if let Some(v) = minute.checked_mul(2) {
            self.0.store(v | i64::from(open), Ordering::Relaxed);
        }
    }
}

impl Clone for MinuteCache {
    fn clone(&self) -> Self {
        MinuteCache(AtomicI64::new(self.0.load(Ordering::Relaxed)))
    }
}

impl AccessWindow {
    /// A window on `days` (`Mon-Fri`, `Sat,Sun`, `Mon-Sun`) between `hours` (`08:00-18:00`,
    /// end exclusive; `00:00-24:00` is the whole day) in the IANA time zone `tz`.
    pub fn new(tz: &str, days: &str, hours: &str) -> Result<Self, WindowError> {
        let zone = jiff::tz::TimeZone::get(tz).map_err(|_| WindowError::TimeZone(clip(tz)))?;
        let days_mask = parse_days(days).ok_or_else(|| WindowError::Days(clip(days)))?;
        let (start, end) = parse_hours(hours).ok_or_else(|| WindowError::Hours(clip(hours)))?;
        Ok(AccessWindow {
            tz: zone,
            days: days_mask,
            start,
            end,
            valid_from: None,
            valid_until: None,
            cache: MinuteCache(AtomicI64::new(MinuteCache::EMPTY)),
        })
    }

    /// Not before `unix_seconds`.
    pub fn valid_from(mut self, unix_seconds: i64) -> Self {
        self.valid_from = Some(unix_seconds);
        self
    }

    /// Not from `unix_seconds` on.
    pub fn valid_until(mut self, unix_seconds: i64) -> Self {
        self.valid_until = Some(unix_seconds);
        self
    }

    /// Whether `now` is inside the window.
    pub fn permits(&self, now: SystemTime) -> bool {
        self.permits_unix(super::sunset::unix(now))
    }

    /// Whether `unix_seconds` is inside the window.
    pub fn permits_unix(&self, unix_seconds: i64) -> bool {
        if self.valid_from.is_some_and(|f| unix_seconds < f)
            || self.valid_until.is_some_and(|u| unix_seconds >= u)
        {
            return false;
        }
        let minute = unix_seconds.div_euclid(60);
        if let Some(open) = self.cache.get(minute) {
            return open;
        }
        let Ok(ts) = jiff::Timestamp::from_second(unix_seconds) else {
            return false;
        };
        let offset = self.tz.to_offset(ts);
        let open = self.open_at(offset.to_datetime(ts));
        let same_all_minute = minute
            .checked_mul(60)
            .and_then(|s| Some((s, s.checked_add(59)?)))
            .and_then(|(a, b)| {
                Some((
                    jiff::Timestamp::from_second(a).ok()?,
                    jiff::Timestamp::from_second(b).ok()?,
                ))
            })
            .is_some_and(|(a, b)| {
                offset.seconds() % 60 == 0
                    && self.tz.to_offset(a) == offset
                    && self.tz.to_offset(b) == offset
            });
        if same_all_minute {
            self.cache.set(minute, open);
        }
        open
    }

    /// Whether the local time `local` is inside the days and hours.
    fn open_at(&self, local: jiff::civil::DateTime) -> bool {
        let day = u32::from(local.weekday().to_monday_zero_offset().unsigned_abs());
        let minute =
            u32::from(local.hour().unsigned_abs()) * 60 + u32::from(local.minute().unsigned_abs());
        let on = |d: u32| self.days & (1 << d) != 0;
        if self.start <= self.end {
            on(day) && minute >= self.start && minute < self.end
        } else {
            (on(day) && minute >= self.start) || (on((day + 6) % 7) && minute < self.end)
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

fn day_index(s: &str) -> Option<u8> {
    let s = s.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| s.starts_with(d) && s.len() >= 3)
        .and_then(|i| u8::try_from(i).ok())
}

fn parse_days(s: &str) -> Option<u8> {
    let mut mask = 0u8;
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day_index(a)?, day_index(b)?);
                let mut d = a;
                loop {
                    mask |= 1 << d;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => mask |= 1 << day_index(part)?,
        }
    }
    (mask != 0).then_some(mask)
}

fn parse_time(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

fn parse_hours(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    let (a, b) = (parse_time(a)?, parse_time(b)?);
    (a != b && a < 24 * 60).then_some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_days("Mon-Fri"), Some(0b0011111));
        assert_eq!(parse_days("Sat,Sun"), Some(0b1100000));
        assert_eq!(parse_days("Fri-Mon"), Some(0b1110001));
        assert_eq!(parse_days("Funday"), None);
        assert_eq!(parse_hours("08:00-18:00"), Some((480, 1080)));
        assert_eq!(parse_hours("00:00-24:00"), Some((0, 1440)));
        assert_eq!(parse_hours("8-18"), None);
        assert_eq!(parse_hours("25:00-26:00"), None);
    }

    proptest::proptest! {
        /// The minute cache never changes an answer: a window asked in any order agrees with
        /// a fresh one (whose cache is empty) at every second.
        #[test]
        fn cache_agrees_with_fresh_windows(
            times in proptest::collection::vec(-2_000_000_000i64..4_000_000_000, 1..40),
            zone in proptest::sample::select(vec![
                "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe",
                "Africa/Monrovia", "UTC",
            ]),
        ) {
            let w = AccessWindow::new(zone, "Mon-Fri", "22:00-06:30").unwrap();
            for t in times {
                for s in [t, t + 1, t + 59, t - 1] {
                    let fresh = AccessWindow::new(zone, "Mon-Fri", "22:00-06:30").unwrap();
                    proptest::prop_assert_eq!(w.permits_unix(s), fresh.permits_unix(s), "{} at {}", zone, s);
                }
            }
        }

        #[test]
        fn parsers_never_panic(s in ".{0,40}") {
            let _ = parse_days(&s);
            let _ = parse_hours(&s);
        }
    }
}
