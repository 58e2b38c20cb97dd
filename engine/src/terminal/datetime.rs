//! Time for `$HOROLOG`, `$ZTIMESTAMP`, `$ZDATETIME` and `$ZDATE`. The clock is injected so
//! transcripts are deterministic.
//!
//! `$HOROLOG` is `days,seconds`: days since 1840-12-31 (day 1 is 1841-01-01) and seconds
//! since midnight, in *local* time as the clock reports its UTC offset. `$ZTIMESTAMP` is
//! the same in UTC with milliseconds (`67164,36000.25`).

use super::error::TermError;
use super::value::{int, num};
use crate::calendar::{civil_from_days, days_from_civil};
use crate::globals::Number;

/// `$HOROLOG` day number of 1970-01-01.
const UNIX_EPOCH_DAY: i64 = 47_117;
/// `$HOROLOG` day number of 9999-12-31, the last date `$ZDATETIME` formats.
const MAX_DAY: i64 = 2_980_013;

pub trait Clock {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    fn unix_millis(&self) -> i64;
    /// Seconds east of UTC of local time at this instant.
    fn utc_offset_seconds(&self) -> i32;
}

/// The system clock and time zone.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_millis(&self) -> i64 {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        d.as_millis() as i64
    }

    fn utc_offset_seconds(&self) -> i32 {
        let t = (self.unix_millis() / 1000) as libc::time_t;
        // SAFETY: localtime_r only writes the `tm` we own; a zeroed `tm` is a valid value.
        unsafe {
            let mut tm: libc::tm = std::mem::zeroed();
            if libc::localtime_r(&t, &mut tm).is_null() {
                0
            } else {
                tm.tm_gmtoff as i32
            }
        }
    }
}

/// A clock that always reads the same instant (tests, reproducible transcripts).
#[derive(Clone, Copy, Debug)]
pub struct FixedClock {
    pub unix_millis: i64,
    pub utc_offset_seconds: i32,
}

impl FixedClock {
    /// The given local date and time, with a zero UTC offset.
    pub fn at(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> FixedClock {
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64;
        FixedClock { unix_millis: secs * 1000, utc_offset_seconds: 0 }
    }
}

impl Clock for FixedClock {
    fn unix_millis(&self) -> i64 {
        self.unix_millis
    }
    fn utc_offset_seconds(&self) -> i32 {
        self.utc_offset_seconds
    }
}

pub fn horolog(clock: &dyn Clock) -> String {
    let secs = clock.unix_millis().div_euclid(1000) + clock.utc_offset_seconds() as i64;
    format!("{},{}", secs.div_euclid(86_400) + UNIX_EPOCH_DAY, secs.rem_euclid(86_400))
}

pub fn ztimestamp(clock: &dyn Clock) -> String {
    let ms = clock.unix_millis();
    let day = ms.div_euclid(86_400_000) + UNIX_EPOCH_DAY;
    let in_day = ms.rem_euclid(86_400_000);
    let secs = Number::from(in_day).div(Number::from(1000)).expect("nonzero divisor");
    format!("{day},{}", if in_day == 0 { "0".to_string() } else { secs.to_canonical() })
}

/// Splits `days[,seconds]`; seconds are truncated to whole seconds.
fn split_horolog(h: &[u8]) -> Result<(i64, i64), TermError> {
    let mut parts = h.splitn(2, |&b| b == b',');
    let day = int(parts.next().unwrap_or_default());
    let secs = parts.next().map(|s| num(s).trunc().to_i64().unwrap_or(-1)).unwrap_or(0);
    if !(0..=MAX_DAY).contains(&day) || !(0..86_400).contains(&secs) {
        return Err(TermError::new("VALUE OUT OF RANGE", String::from_utf8_lossy(h).into_owned()));
    }
    Ok((day, secs))
}

fn format_date(day: i64, format: i64) -> Result<String, TermError> {
    let (y, m, d) = civil_from_days(day - UNIX_EPOCH_DAY);
    Ok(match format {
        1 => format!("{m:02}/{d:02}/{y:04}"),
        3 => format!("{y:04}-{m:02}-{d:02}"),
        4 => format!("{d:02}/{m:02}/{y:04}"),
        8 => format!("{y:04}{m:02}{d:02}"),
        _ => return Err(TermError::function(format!("date format {format} is not supported (1, 3, 4, 8)"))),
    })
}

/// `$ZDATETIME(h[,format])`: formats 1 (`MM/DD/YYYY`, the default), 3 (`YYYY-MM-DD`),
/// 4 (`DD/MM/YYYY`) and 8 (`YYYYMMDD`), each followed by ` HH:MM:SS`.
pub fn zdatetime(h: &[u8], format: Option<&[u8]>) -> Result<String, TermError> {
    let (day, secs) = split_horolog(h)?;
    let date = format_date(day, format.map(int).unwrap_or(1))?;
    Ok(format!("{date} {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60))
}

/// `$ZDATE(h[,format])`: the date part only.
pub fn zdate(h: &[u8], format: Option<&[u8]>) -> Result<String, TermError> {
    let (day, _) = split_horolog(h)?;
    format_date(day, format.map(int).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horolog_and_formats() {
        let c = FixedClock::at(2021, 1, 14, 14, 13, 19);
        assert_eq!(horolog(&c), "65758,51199");
        assert_eq!(zdatetime(b"65758,51199", None).unwrap(), "01/14/2021 14:13:19");
        assert_eq!(zdatetime(b"65758,51199", Some(b"3")).unwrap(), "2021-01-14 14:13:19");
        assert_eq!(zdate(b"1", None).unwrap(), "01/01/1841");
        assert_eq!(zdate(b"0", Some(b"8")).unwrap(), "18401231");
        assert_eq!(zdatetime(b"2980013", None).unwrap(), "12/31/9999 00:00:00");
        assert_eq!(zdatetime(b"-1", None).unwrap_err().code, "VALUE OUT OF RANGE");
        let c = FixedClock { unix_millis: 1_500, utc_offset_seconds: 3600 };
        assert_eq!(horolog(&c), "47117,3601");
        assert_eq!(ztimestamp(&c), "47117,1.5");
    }
}
