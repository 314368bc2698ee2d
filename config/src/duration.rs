//! Durations as operators write them: `"250ms"`, `"90s"`, `"5m"`, `"6h"`, `"1d"`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// A non-negative duration with millisecond resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(u64);

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration `{0}`: expected a whole number and a unit (ms, s, m, h, d), e.g. \"90s\""
)]
pub struct DurationError(pub String);

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }
    pub const fn from_secs(s: u64) -> Self {
        Self(s * 1000)
    }
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// As milliseconds in the engine's signed time arithmetic (saturating).
    pub fn as_millis_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DurationError(s.to_string());
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (digits, unit) = s.split_at(split);
        let n: u64 = digits.parse().map_err(|_| err())?;
        let factor = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(err()),
        };
        n.checked_mul(factor).map(Duration).ok_or_else(err)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        for (unit, factor) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
        ] {
            if ms != 0 && ms % factor == 0 {
                return write!(f, "{}{unit}", ms / factor);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!("250ms".parse(), Ok(Duration::from_millis(250)));
        assert_eq!("90s".parse(), Ok(Duration::from_secs(90)));
        assert_eq!("5m".parse(), Ok(Duration::from_secs(300)));
        assert_eq!("6h".parse(), Ok(Duration::from_secs(21_600)));
        assert_eq!("1d".parse(), Ok(Duration::from_secs(86_400)));
        assert_eq!("0s".parse(), Ok(Duration::from_secs(0)));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "5",
            "m",
            "5 m",
            "-5m",
            "5min",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_in_largest_whole_unit() {
        assert_eq!(Duration::from_secs(900).to_string(), "15m");
        assert_eq!(Duration::from_millis(1500).to_string(), "1500ms");
        assert_eq!(Duration::from_secs(0).to_string(), "0ms");
    }
}
