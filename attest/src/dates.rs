//! TOML dates to unix seconds, and line numbers of TOML spans.

use toml::value::{Datetime, Offset};

/// Unix seconds of a TOML date or date-time. A bare date is midnight UTC; a
/// local date-time is taken as UTC. A bare time is refused.
pub(crate) fn unix_seconds(dt: &Datetime) -> Result<u64, String> {
    let date = dt
        .date
        .ok_or_else(|| format!("`{dt}` has no date; write a date such as 2026-11-01"))?;
    let days = days_from_civil(i64::from(date.year), date.month.into(), date.day.into());
    let mut secs = days * 86_400;
    if let Some(t) = dt.time {
        secs += i64::from(t.hour) * 3600 + i64::from(t.minute) * 60 + i64::from(t.second);
    }
    if let Some(Offset::Custom { minutes }) = dt.offset {
        secs -= i64::from(minutes) * 60;
    }
    u64::try_from(secs).map_err(|_| format!("`{dt}` is before 1970"))
}

/// Unix seconds of a date (`2026-11-01`) or date-time
/// (`2026-11-01T12:00:00Z`, `2026-11-01T12:00:00+02:00`; without an offset,
/// UTC), as people write them on a command line.
pub fn parse_date(text: &str) -> Result<u64, String> {
    let dt: Datetime = text.trim().parse().map_err(|_| {
        format!("`{text}` is not a date such as 2026-11-01 or 2026-11-01T12:00:00Z")
    })?;
    unix_seconds(&dt)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// 1-based line and column of byte offset `at` in `text`.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text.as_bytes()[..at];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let col = at
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let d: Datetime = "2026-11-26".parse().unwrap();
        assert_eq!(unix_seconds(&d).unwrap(), 1_795_651_200);
        let d: Datetime = "1970-01-01T00:00:01Z".parse().unwrap();
        assert_eq!(unix_seconds(&d).unwrap(), 1);
        let d: Datetime = "2000-03-01T01:00:00+01:00".parse().unwrap();
        assert_eq!(unix_seconds(&d).unwrap(), 951_868_800);
        let d: Datetime = "12:00:00".parse().unwrap();
        assert!(unix_seconds(&d).is_err());
    }

    #[test]
    fn lines() {
        assert_eq!(line_col("ab\ncd\nef", 4), (2, 2));
        assert_eq!(line_col("ab", 0), (1, 1));
    }
}
