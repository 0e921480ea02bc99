//! Opt-out file names: `optout-delta-<NNN>_<yyyy-MM-ddTHH.mm.ssZ>_<8 hex>.dat` and
//! `optout-partition-…`, where `NNN` is the writing replica (999 = synthetic) and the time uses
//! `.` for `:`. The kind is recognised by the substring anywhere in a path or URL, as the
//! reference does; the time is the text between the first and second `_` of the file name.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::error::{Problem, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OptOutFileKind {
    Delta,
    Partition,
}

impl OptOutFileKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Delta => "optout-delta-",
            Self::Partition => "optout-partition-",
        }
    }
}

/// The replica id of synthetic files (test opt-outs the OptOut service generates).
pub const SYNTHETIC_REPLICA: u16 = 999;

/// A parsed opt-out file name.
///
/// Names order by time first (then kind, replica and suffix), so a sorted set of them reads in
/// the order the files were written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OptOutFileName {
    pub kind: OptOutFileKind,
    pub replica: u16,
    /// Epoch seconds.
    pub timestamp: i64,
    /// The 8 hex characters that make names unique.
    pub suffix: String,
}

impl OptOutFileName {
    /// Parses the file name at the end of a path or URL (a query string is ignored).
    pub fn parse(path_or_url: &str) -> Result<Self, StoreError> {
        let bad = || StoreError::new("optout", Problem::OptOutFileName);
        let without_query = path_or_url.split(['?', '#']).next().unwrap_or_default();
        let name = without_query.rsplit('/').next().unwrap_or_default();
        let (kind, rest) = if let Some(rest) = name.strip_prefix(OptOutFileKind::Delta.prefix()) {
            (OptOutFileKind::Delta, rest)
        } else if let Some(rest) = name.strip_prefix(OptOutFileKind::Partition.prefix()) {
            (OptOutFileKind::Partition, rest)
        } else {
            return Err(bad());
        };
        let rest = rest.strip_suffix(".dat").ok_or_else(bad)?;
        let mut parts = rest.splitn(3, '_');
        let replica = parts.next().ok_or_else(bad)?;
        let time_text = parts.next().ok_or_else(bad)?;
        let suffix = parts.next().ok_or_else(bad)?;
        if replica.len() != 3 || !replica.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let replica: u16 = replica.parse().map_err(|_| bad())?;
        let timestamp = OffsetDateTime::parse(&time_text.replace('.', ":"), &Rfc3339)
            .map_err(|_| bad())?
            .unix_timestamp();
        Ok(Self {
            kind,
            replica,
            timestamp,
            suffix: suffix.to_owned(),
        })
    }

    /// The canonical file name.
    pub fn format(&self) -> String {
        let time = OffsetDateTime::from_unix_timestamp(self.timestamp)
            .ok()
            .and_then(|t| {
                t.format(format_description!("[year]-[month]-[day]T[hour].[minute].[second]Z"))
                    .ok()
            })
            .unwrap_or_default();
        format!("{}{:03}_{}_{}.dat", self.kind.prefix(), self.replica, time, self.suffix)
    }

    /// Written by the synthetic replica (999): the reference always indexes these, never
    /// expires them and leaves them out of the partition-per-day choice.
    pub fn is_synthetic(&self) -> bool {
        self.replica == SYNTHETIC_REPLICA
    }

    /// `yyyy-MM-dd` of the file's time (UTC): the day folder of deltas in cloud storage.
    pub fn day(&self) -> String {
        OffsetDateTime::from_unix_timestamp(self.timestamp)
            .ok()
            .and_then(|t| t.format(format_description!("[year]-[month]-[day]")).ok())
            .unwrap_or_default()
    }
}

impl Ord for OptOutFileName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Every field takes part, so the order agrees with the derived `Eq`.
        (self.timestamp, self.kind, self.replica, &self.suffix).cmp(&(
            other.timestamp,
            other.kind,
            other.replica,
            &other.suffix,
        ))
    }
}

impl PartialOrd for OptOutFileName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_reference_names() {
        let name = "optout-delta-000_2023-12-08T12.39.13Z_0a1b2c3d.dat";
        let parsed = OptOutFileName::parse(&format!("https://bucket/optout-v2/delta/2023-12-08/{name}?X-Amz=1"))
            .expect("reference delta name");
        assert_eq!(parsed.kind, OptOutFileKind::Delta);
        assert_eq!(parsed.replica, 0);
        assert_eq!(parsed.timestamp, 1_702_039_153);
        assert_eq!(parsed.suffix, "0a1b2c3d");
        assert_eq!(parsed.format(), name);
        assert_eq!(parsed.day(), "2023-12-08");

        let partition =
            OptOutFileName::parse("optout-partition-999_2024-01-01T00.00.00Z_ffffffff.dat").expect("partition name");
        assert_eq!((partition.kind, partition.replica), (OptOutFileKind::Partition, 999));
    }

    #[test]
    fn rejects_other_names() {
        for bad in [
            "",
            "optout-delta-000_2023-12-08T12.39.13Z_0a1b2c3d.txt",
            "optout-delta-0_2023-12-08T12.39.13Z_0a1b2c3d.dat",
            "optout-delta-000_yesterday_0a1b2c3d.dat",
            "optout-snapshot-000_2023-12-08T12.39.13Z_0a1b2c3d.dat",
            "optout-delta-000.dat",
        ] {
            assert!(OptOutFileName::parse(bad).is_err(), "{bad}");
        }
    }
}
