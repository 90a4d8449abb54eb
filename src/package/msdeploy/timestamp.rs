//! Entry timestamps: which time each zip entry gets, and its MS-DOS encoding (spec §1.3).
//!
//! msdeploy syncs by timestamp by default, so a package that stamps every file with one constant
//! (the usual reproducible-zip trick) can make a redeploy skip changed files. The policy here:
//! - files on disk keep their mtime, rounded down to an even second (DOS resolution);
//! - generated files (Manifest.xml, Parameters.xml, web.config…) get the build time;
//! - with `SOURCE_DATE_EPOCH`, every time is clamped to min(mtime, epoch) and generated files get
//!   the epoch, so a fresh checkout packs to identical bytes while each release (a later epoch)
//!   still looks newer to msdeploy.
//!
//! DOS fields are computed from UTC, never local time, so the build machine's time zone does not
//! leak into the bytes. The caller reads the clock and the environment; this module does neither.

use std::time::{SystemTime, UNIX_EPOCH};

/// 1980-01-01T00:00:00Z, the earliest DOS time.
pub const DOS_MIN_UNIX: i64 = 315_532_800;
/// 2107-12-31T23:59:58Z, the latest DOS time.
pub const DOS_MAX_UNIX: i64 = 4_354_819_198;

/// Where entry times come from: the build time and the optional `SOURCE_DATE_EPOCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimePolicy {
    /// Seconds since the Unix epoch when the build started.
    pub build_time: i64,
    /// `SOURCE_DATE_EPOCH`, when set.
    pub source_date_epoch: Option<i64>,
}

impl TimePolicy {
    /// A policy for a build started at `build_time` with an optional epoch.
    pub fn new(build_time: i64, source_date_epoch: Option<i64>) -> Self {
        Self {
            build_time,
            source_date_epoch,
        }
    }

    /// The time of a file that does not exist on disk (generated or implied directory).
    pub fn generated(&self) -> i64 {
        self.source_date_epoch.unwrap_or(self.build_time)
    }

    /// The time of a file whose mtime is `mtime` seconds since the Unix epoch.
    pub fn source(&self, mtime: i64) -> i64 {
        match self.source_date_epoch {
            Some(epoch) => mtime.min(epoch),
            None => mtime,
        }
    }

    /// The time for a file's [`SystemTime`] mtime (sub-seconds dropped).
    pub fn source_system_time(&self, mtime: SystemTime) -> i64 {
        self.source(unix_seconds(mtime))
    }
}

/// Whole seconds since the Unix epoch (negative before 1970), rounded down.
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() > 0 {
                -secs - 1
            } else {
                -secs
            }
        }
    }
}

/// An MS-DOS date and time as stored in zip headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DosDateTime {
    /// `(year-1980) << 9 | month << 5 | day`.
    pub date: u16,
    /// `hour << 11 | minute << 5 | second / 2`.
    pub time: u16,
}

impl DosDateTime {
    /// The DOS fields of `secs` in UTC, clamped to 1980–2107, seconds rounded down to even.
    pub fn from_unix(secs: i64) -> Self {
        let clamped = secs.clamp(DOS_MIN_UNIX, DOS_MAX_UNIX);
        // In range by construction, so the conversion cannot fail; fall back to 1980 anyway.
        let dt = time::OffsetDateTime::from_unix_timestamp(clamped)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let year = (dt.year() - 1980).clamp(0, 127) as u16;
        let date = (year << 9) | ((dt.month() as u16) << 5) | u16::from(dt.day());
        let time = (u16::from(dt.hour()) << 11)
            | (u16::from(dt.minute()) << 5)
            | (u16::from(dt.second()) / 2);
        Self { date, time }
    }

    /// Back to seconds since the Unix epoch, reading the fields as UTC; `None` if invalid.
    pub fn to_unix(self) -> Option<i64> {
        let year = 1980 + i32::from(self.date >> 9);
        let month = time::Month::try_from(((self.date >> 5) & 0x0f) as u8).ok()?;
        let day = (self.date & 0x1f) as u8;
        let date = time::Date::from_calendar_date(year, month, day).ok()?;
        let t = time::Time::from_hms(
            (self.time >> 11) as u8,
            ((self.time >> 5) & 0x3f) as u8,
            ((self.time & 0x1f) * 2) as u8,
        )
        .ok()?;
        Some(date.with_time(t).assume_utc().unix_timestamp())
    }
}

/// `yyyy-MM-ddTHH:mm:ssZ` in UTC, the date form WebPI feeds use (spec §6.2).
pub fn feed_date(secs: i64) -> String {
    let dt =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        dt.year(),
        dt.month() as u8,
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_time_is_the_mtime_without_an_epoch() {
        let p = TimePolicy::new(2_000_000_000, None);
        assert_eq!(p.source(1_500_000_000), 1_500_000_000);
        assert_eq!(p.generated(), 2_000_000_000);
    }

    #[test]
    fn epoch_clamps_newer_files_and_stamps_generated_ones() {
        let p = TimePolicy::new(2_000_000_000, Some(1_600_000_000));
        assert_eq!(p.source(1_500_000_000), 1_500_000_000);
        assert_eq!(p.source(1_700_000_000), 1_600_000_000);
        assert_eq!(p.generated(), 1_600_000_000);
    }

    #[test]
    fn dos_fields_come_from_utc_with_even_seconds() {
        // 2024-02-29T13:45:59Z
        let d = DosDateTime::from_unix(1_709_214_359);
        assert_eq!(d.date, (44 << 9) | (2 << 5) | 29);
        assert_eq!(d.time, (13 << 11) | (45 << 5) | 29);
        assert_eq!(d.to_unix(), Some(1_709_214_358));
    }

    #[test]
    fn dos_time_clamps_to_1980_and_2107() {
        assert_eq!(DosDateTime::from_unix(0).to_unix(), Some(DOS_MIN_UNIX));
        assert_eq!(
            DosDateTime::from_unix(i64::MAX).to_unix(),
            Some(DOS_MAX_UNIX)
        );
        assert_eq!(
            DosDateTime::from_unix(DOS_MIN_UNIX),
            DosDateTime {
                date: (1 << 5) | 1,
                time: 0
            }
        );
    }

    #[test]
    fn negative_system_times_round_down() {
        let t = UNIX_EPOCH - std::time::Duration::from_millis(1500);
        assert_eq!(unix_seconds(t), -2);
    }

    #[test]
    fn feed_dates_use_the_webpi_form() {
        assert_eq!(feed_date(1_709_214_359), "2024-02-29T13:45:59Z");
        assert_eq!(feed_date(0), "1970-01-01T00:00:00Z");
    }
}
