//! Event time: milliseconds since the Unix epoch, UTC. The engine never reads a clock; callers
//! pass `Timestamp`s in (the source's `occurredAt`, or an injected clock in tests and replay).

use std::fmt;

use serde::{Serialize, Serializer};

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

/// RFC 3339, UTC, `Z`; milliseconds only when not zero (`2025-11-27T09:05:00Z`).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        s.collect_str(self)
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
