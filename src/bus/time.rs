//! Event timestamps: UTC to the microsecond, written the way eventsource-py writes them and read
//! in every spelling it accepts.
//!
//! Written: `2026-11-28T10:15:30.123456Z` in event JSON and `2026-11-28T10:15:30.123456+00:00` in
//! headers, the fraction as six digits only when the microseconds are not zero (`…:31Z`,
//! `…:00.500000Z`). Read: `Z` or any offset (`+00:00`, `+0000`, `+02`, `-05:30`), `T`, `t` or a
//! space between date and time, seconds optional, any number of fraction digits (cut to
//! microseconds), no offset (taken as UTC), a date alone (midnight), and Unix times as numbers or
//! digit strings (seconds; milliseconds beyond 2×10¹⁰, as pydantic reads them).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// A point in time, UTC, to the microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Microseconds since 1970-01-01T00:00:00Z.
    micros: i64,
}

/// A timestamp that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampError {
    text: String,
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a timestamp: {:?}", self.text)
    }
}

impl std::error::Error for TimestampError {}

impl Timestamp {
    /// The time now.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// The timestamp `micros` microseconds after the Unix epoch (before it, when negative).
    pub fn from_unix_micros(micros: i64) -> Timestamp {
        Timestamp { micros }
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(self) -> i64 {
        self.micros
    }

    /// Milliseconds since the Unix epoch (Kafka's record timestamps).
    pub fn unix_millis(self) -> i64 {
        self.micros.div_euclid(1000)
    }

    /// `2026-11-28T10:15:30.123456Z`: the form event JSON uses.
    pub fn to_json_string(self) -> String {
        self.format("Z")
    }

    /// `2026-11-28T10:15:30.123456+00:00`: the form headers use.
    pub fn to_header_string(self) -> String {
        self.format("+00:00")
    }

    fn format(self, zone: &str) -> String {
        let seconds = self.micros.div_euclid(MICROS_PER_SECOND);
        let fraction = self.micros.rem_euclid(MICROS_PER_SECOND);
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let in_day = seconds.rem_euclid(SECONDS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (in_day / 3600, in_day / 60 % 60, in_day % 60);
        if (0..=9999).contains(&y) {
            // Every published event is stamped twice: written digit by digit, without the
            // formatting machinery (it took a sixth of the time of encoding an event).
            let mut out = String::with_capacity(26 + zone.len());
            push_digits(&mut out, y, 4);
            out.push('-');
            push_digits(&mut out, m, 2);
            out.push('-');
            push_digits(&mut out, d, 2);
            out.push('T');
            push_digits(&mut out, hh, 2);
            out.push(':');
            push_digits(&mut out, mm, 2);
            out.push(':');
            push_digits(&mut out, ss, 2);
            if fraction != 0 {
                out.push('.');
                push_digits(&mut out, fraction, 6);
            }
            out.push_str(zone);
            return out;
        }
        if fraction == 0 {
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{zone}")
        } else {
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{fraction:06}{zone}")
        }
    }

    /// Reads a timestamp in any spelling eventsource-py accepts (see the module docs).
    pub fn parse(text: &str) -> Result<Timestamp, TimestampError> {
        let error = || TimestampError { text: text.into() };
        let t = text.trim();
        if !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            if let Ok(n) = t.parse::<f64>() {
                if !t[1..].contains('-') {
                    return Timestamp::from_unix_number(n).ok_or_else(error);
                }
            }
        }
        parse_iso(t).ok_or_else(error)
    }

    /// A Unix time in seconds, or in milliseconds when its magnitude is beyond 2×10¹⁰.
    pub fn from_unix_number(n: f64) -> Option<Timestamp> {
        if !n.is_finite() {
            return None;
        }
        let seconds = if n.abs() > 2e10 { n / 1000.0 } else { n };
        let micros = (seconds * 1e6).round();
        (micros.abs() < 9.2e18).then(|| Timestamp::from_unix_micros(micros as i64))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        let micros = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_micros() as i64,
            Err(e) => -(e.duration().as_micros() as i64),
        };
        Timestamp { micros }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> SystemTime {
        if t.micros >= 0 {
            UNIX_EPOCH + Duration::from_micros(t.micros as u64)
        } else {
            UNIX_EPOCH - Duration::from_micros(t.micros.unsigned_abs())
        }
    }
}

/// The JSON form (`…Z`).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json_string())
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Timestamp, TimestampError> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_json_string())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp (ISO 8601 text or Unix seconds)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Timestamp::from_unix_number(v)
                    .ok_or_else(|| E::custom(format!("not a Unix time: {v}")))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Reads `YYYY-MM-DD[(T|t| )HH:MM[:SS[.fff…]]][Z|z|±HH[:]MM|±HH]`.
fn parse_iso(t: &str) -> Option<Timestamp> {
    let b = t.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = b.get(from..from + len)?;
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| s.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * SECONDS_PER_DAY;
    let mut micros = 0;
    let mut i = 10;
    if i < b.len() {
        if !matches!(b[i], b'T' | b't' | b' ') {
            return None;
        }
        let (hh, mm) = (num(i + 1, 2)?, num(i + 4, 2)?);
        if b.get(i + 3) != Some(&b':') || hh > 23 || mm > 59 {
            return None;
        }
        seconds += hh * 3600 + mm * 60;
        i += 6;
        if b.get(i) == Some(&b':') {
            let ss = num(i + 1, 2)?;
            if ss > 59 {
                return None;
            }
            seconds += ss;
            i += 3;
            if matches!(b.get(i), Some(b'.' | b',')) {
                let start = i + 1;
                let mut end = start;
                while b.get(end).is_some_and(u8::is_ascii_digit) {
                    end += 1;
                }
                if end == start {
                    return None;
                }
                // Digits beyond the sixth are cut, as microsecond clocks do.
                let digits = &t[start..end.min(start + 6)];
                micros = digits.parse::<i64>().ok()? * 10i64.pow(6 - digits.len() as u32);
                i = end;
            }
        }
        match b.get(i) {
            None => {}
            Some(b'Z' | b'z') if i + 1 == b.len() => {}
            Some(&sign @ (b'+' | b'-')) => {
                let oh = num(i + 1, 2)?;
                let rest = &b[i + 3..];
                let om = match rest {
                    [] => 0,
                    [b':', ..] if rest.len() == 3 => num(i + 4, 2)?,
                    _ if rest.len() == 2 => num(i + 3, 2)?,
                    _ => return None,
                };
                if oh > 23 || om > 59 {
                    return None;
                }
                let offset = oh * 3600 + om * 60;
                // Local time = UTC + offset.
                seconds -= if sign == b'+' { offset } else { -offset };
            }
            _ => return None,
        }
    }
    Some(Timestamp::from_unix_micros(
        seconds.checked_mul(MICROS_PER_SECOND)? + micros,
    ))
}

/// Appends the last `width` decimal digits of `value` (not negative), zero-padded.
fn push_digits(out: &mut String, value: i64, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10_i64.pow(place) % 10) as u8;
        out.push(char::from(b'0' + digit));
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count from March, so that the leap day ends a year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date `days` days after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        Timestamp::parse(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .unix_micros()
    }

    #[test]
    fn writes_the_fraction_only_when_there_is_one() {
        let t = Timestamp::parse("2026-11-28T10:15:30.123456Z").unwrap();
        assert_eq!(t.to_json_string(), "2026-11-28T10:15:30.123456Z");
        assert_eq!(t.to_header_string(), "2026-11-28T10:15:30.123456+00:00");
        let half = Timestamp::parse("2026-11-28T10:16:00.5Z").unwrap();
        assert_eq!(half.to_json_string(), "2026-11-28T10:16:00.500000Z");
        let whole = Timestamp::parse("2026-11-28T10:15:31Z").unwrap();
        assert_eq!(whole.to_header_string(), "2026-11-28T10:15:31+00:00");
    }

    #[test]
    fn the_digit_writer_spells_every_time_as_the_formatter_does() {
        // The formatter's spelling, for comparison.
        let reference = |t: Timestamp| {
            let seconds = t.micros.div_euclid(MICROS_PER_SECOND);
            let fraction = t.micros.rem_euclid(MICROS_PER_SECOND);
            let in_day = seconds.rem_euclid(SECONDS_PER_DAY);
            let (y, m, d) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
            let (hh, mm, ss) = (in_day / 3600, in_day / 60 % 60, in_day % 60);
            let head = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}");
            match fraction {
                0 => format!("{head}Z"),
                f => format!("{head}.{f:06}Z"),
            }
        };
        let mut micros: i64 = -62_167_219_200_000_000; // 0000-01-01T00:00:00Z
        let end: i64 = 253_402_300_800_000_000; // 10000-01-01T00:00:00Z
        let mut step: i64 = 1;
        while micros < end + 86_400_000_000 {
            let t = Timestamp::from_unix_micros(micros);
            assert_eq!(t.to_json_string(), reference(t), "at {micros} µs");
            micros += step;
            step = step * 3 + 7;
            if step > 4_000_000_000_000_000 {
                step = 999_983;
            }
        }
        let last = Timestamp::from_unix_micros(end - 1);
        assert_eq!(last.to_json_string(), "9999-12-31T23:59:59.999999Z");
        assert_eq!(
            Timestamp::from_unix_micros(end).to_json_string(),
            "10000-01-01T00:00:00Z"
        );
        let before = Timestamp::from_unix_micros(-62_167_219_200_000_001);
        assert_eq!(before.to_json_string(), "-001-12-31T23:59:59.999999Z");
    }

    #[test]
    fn reads_every_spelling_python_accepts() {
        let z = at("2026-11-28T10:15:30.123456Z");
        for same in [
            "2026-11-28T10:15:30.123456+00:00",
            "2026-11-28T10:15:30.123456+0000",
            "2026-11-28 10:15:30.123456Z",
            "2026-11-28t10:15:30.123456z",
            "2026-11-28T10:15:30.123456789Z",
            "2026-11-28T10:15:30.123456",
            "2026-11-28T12:15:30.123456+02:00",
            "2026-11-28T12:15:30.123456+02",
            "2026-11-28T04:45:30.123456-05:30",
            "2026-11-28T10:15:30,123456Z",
        ] {
            assert_eq!(at(same), z, "{same}");
        }
        assert_eq!(at("2026-11-28T10:15Z"), at("2026-11-28T10:15:00Z"));
        assert_eq!(at("2026-11-28"), at("2026-11-28T00:00:00Z"));
        assert_eq!(at("1796552204"), 1_796_552_204_000_000);
        assert_eq!(at("1796552204.5"), 1_796_552_204_500_000);
        assert_eq!(at("1796552204500"), 1_796_552_204_500_000, "milliseconds");
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T10:15:30.Z",
            "2026-11-28T10:15:30Zjunk",
            "2026-11-28X10:15:30Z",
            "2026-11-28T10:15:30+5",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn calendar_conversions_agree_across_eras_and_leap_days() {
        for days in [
            -800_000, -719_468, -1, 0, 1, 10_957, 11_016, 20_000, 2_932_896,
        ] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(at("1969-12-31T23:59:59.999999Z"), -1);
    }

    #[test]
    fn serde_round_trips_through_the_json_form() {
        let t = Timestamp::parse("2026-12-01T09:00:00.001Z").unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2026-12-01T09:00:00.001000Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        assert_eq!(
            serde_json::from_str::<Timestamp>("1796552204.25").unwrap(),
            Timestamp::from_unix_micros(1_796_552_204_250_000)
        );
    }
}
