//! Event time: milliseconds since the Unix epoch, UTC. The engine never reads a clock; callers
//! pass `Timestamp`s in (the source's `occurredAt`, or an injected clock in tests and replay).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, UTC, millisecond resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }
    pub const fn millis(self) -> i64 {
        self.0
    }
    /// `self - other` in milliseconds.
    pub const fn since(self, other: Timestamp) -> i64 {
        self.0.saturating_sub(other.0)
    }
    pub const fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Civil date and time `(year, month, day, hour, minute, second, millisecond)`.
    fn civil(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let ms = self.0.rem_euclid(1000) as u32;
        let secs = self.0.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day, sod / 3600, sod / 60 % 60, sod % 60, ms)
    }

    /// `HH:MM` in UTC, as explanations show times.
    pub fn hhmm(self) -> String {
        let (_, _, _, h, m, _, _) = self.civil();
        format!("{h:02}:{m:02}")
    }

    /// Builds a timestamp from a civil UTC date and time (for tests and fixtures).
    pub fn from_civil(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32) -> Self {
        // Howard Hinnant's days_from_civil.
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = i64::from((month + 9) % 12);
        let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Self((days * 86_400 + i64::from(h * 3600 + m * 60 + s)) * 1000)
    }
}

/// RFC 3339 in UTC as Vigil writes times: `2025-11-27T09:05:00Z`, with `.mmm` when the
/// milliseconds are not zero. Written digit by digit into a buffer: every alert carries a
/// dozen times and a sepsis screen's explanation 60 more, and `write!` with padded fields,
/// through serde_json's `collect_str`, cost about 2,800 instructions a time.
struct Rfc3339 {
    text: [u8; 24],
    len: usize,
}

impl Rfc3339 {
    /// `None` outside the years 0 to 9999, which [`Timestamp`]'s `Display` writes with `write!`.
    fn of(t: Timestamp) -> Option<Rfc3339> {
        let (y, mo, d, h, mi, s, ms) = t.civil();
        let y = u32::try_from(y).ok().filter(|y| *y <= 9999)?;
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let mut digits = |at: usize, width: usize, mut v: u32| {
            for i in (at..at + width).rev() {
                text[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        digits(0, 4, y);
        digits(5, 2, mo);
        digits(8, 2, d);
        digits(11, 2, h);
        digits(14, 2, mi);
        digits(17, 2, s);
        let len = if ms == 0 {
            text[19] = b'Z';
            20
        } else {
            digits(20, 3, ms);
            24
        };
        Some(Rfc3339 { text, len })
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.text[..self.len]).unwrap_or_default()
    }
}

/// RFC 3339, UTC, `Z`; milliseconds only when not zero (`2025-11-27T09:05:00Z`).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = Rfc3339::of(*self) {
            return f.write_str(text.as_str());
        }
        let (y, mo, d, h, mi, s, ms) = self.civil();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match Rfc3339::of(*self) {
            Some(text) => s.serialize_str(text.as_str()),
            None => s.collect_str(self),
        }
    }
}

/// Reads what [`Serialize`] writes (and the other common RFC 3339 forms): alerts are read back
/// from `ALERTS` on recovery.
impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 timestamp: `{text}`")))
    }
}

impl Timestamp {
    /// The common forms of RFC 3339 (`2025-11-27T09:05:00Z`, with fraction and/or `±HH:MM`),
    /// parsed without allocation; `None` sends anything else to chrono's full parser.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let b = text.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> Option<u32> {
            b.get(range)?.iter().try_fold(0u32, |acc, &c| {
                c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
            })
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut i = 19;
        let mut millis = 0u32;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                if i - start < 3 {
                    millis = millis * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return None;
            }
            for _ in (i - start)..3 {
                millis *= 10;
            }
        }
        let offset_secs: i64 = match b.get(i)? {
            b'Z' | b'z' if i + 1 == b.len() => 0,
            sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
                let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let secs = i64::from(oh * 3600 + om * 60);
                if *sign == b'+' { secs } else { -secs }
            }
            _ => return None,
        };
        let t = Timestamp::from_civil(i64::from(year), month, day, hour, minute, second);
        Some(t.plus_millis(i64::from(millis) - offset_secs * 1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        let t = Timestamp::from_civil(2025, 11, 27, 9, 5, 0);
        assert_eq!(t.to_string(), "2025-11-27T09:05:00Z");
        assert_eq!(t.plus_millis(250).to_string(), "2025-11-27T09:05:00.250Z");
        assert_eq!(t.hhmm(), "09:05");
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_civil(2024, 2, 29, 23, 59, 59).to_string(),
            "2024-02-29T23:59:59Z"
        );
        assert_eq!(Timestamp(-1000).to_string(), "1969-12-31T23:59:59Z");
    }

    /// What `Display` wrote before [`Rfc3339`]: the reference for every time.
    fn the_long_way(t: Timestamp) -> String {
        let (y, mo, d, h, mi, s, ms) = t.civil();
        let mut text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
        if ms != 0 {
            text.push_str(&format!(".{ms:03}"));
        }
        text.push('Z');
        text
    }

    #[test]
    fn the_years_at_the_edges_of_four_digits() {
        for (t, text) in [
            (
                Timestamp::from_civil(0, 1, 1, 0, 0, 0),
                "0000-01-01T00:00:00Z",
            ),
            (
                Timestamp::from_civil(9999, 12, 31, 23, 59, 59).plus_millis(999),
                "9999-12-31T23:59:59.999Z",
            ),
            (
                Timestamp::from_civil(10_000, 1, 1, 0, 0, 0),
                "10000-01-01T00:00:00Z",
            ),
            (
                Timestamp::from_civil(-1, 12, 31, 23, 59, 59).plus_millis(1),
                "-001-12-31T23:59:59.001Z",
            ),
            (Timestamp(7), "1970-01-01T00:00:00.007Z"),
            (Timestamp(60), "1970-01-01T00:00:00.060Z"),
        ] {
            assert_eq!(t.to_string(), text);
            assert_eq!(
                serde_json::to_string(&t).expect("a string"),
                format!("\"{text}\"")
            );
        }
    }

    proptest::proptest! {
        /// Any time from 400 years before year 0 to 400 after 9999, and whole seconds (no
        /// milliseconds written): the same text as `write!` gives, through `Display` and
        /// through serde.
        #[test]
        fn every_time_is_written_as_before(
            ms in -75_000_000_000_000i64..266_000_000_000_000,
            whole in proptest::bool::ANY,
        ) {
            let t = Timestamp(if whole { ms - ms.rem_euclid(1000) } else { ms });
            let text = the_long_way(t);
            proptest::prop_assert_eq!(t.to_string(), text.clone());
            proptest::prop_assert_eq!(
                serde_json::to_string(&t).expect("a string"),
                format!("\"{text}\"")
            );
        }
    }

    #[test]
    fn civil_round_trips_known_epoch_values() {
        assert_eq!(
            Timestamp::from_civil(2025, 11, 27, 9, 5, 0).millis(),
            1_764_234_300_000
        );
        assert_eq!(
            Timestamp::from_civil(2000, 3, 1, 0, 0, 0).millis(),
            951_868_800_000
        );
    }
}
