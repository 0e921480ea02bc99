//! `POST /v2/identity/buckets` (MAPPER): which salt buckets rotated since a time, so advertisers
//! know which raw UIDs to map again.
//!
//! `since_timestamp` is an ISO-8601 *local* date-time read as UTC (`2024-01-31T10:00[:00[.000]]`,
//! no zone); an integer is not accepted, whatever the documentation says. Each answer entry is
//! `{"bucket_id", "last_updated": "yyyy-MM-ddTHH:mm:ss.SSS"}` (UTC, no zone), in salt-file order.

use axum::extract::{Request, State};
use axum::response::Response;
use serde::Serialize;
use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use uid2_store::Role;

use crate::error::ApiError;
use crate::input::get_string;
use crate::request::{enveloped, Enveloped, Reply};
use crate::state::AppState;

#[derive(Serialize)]
struct Bucket {
    bucket_id: String,
    last_updated: String,
}

pub(crate) async fn handle(State(app): State<AppState>, request: Request) -> Response {
    enveloped(app, &[Role::Mapper], request, |_app, req| async move { buckets(&req) }).await
}

fn buckets(req: &Enveloped) -> Result<Reply, ApiError> {
    let since = req
        .payload
        .as_ref()
        .and_then(|p| get_string(p, "since_timestamp"))
        .ok_or_else(|| ApiError::client_error("missing parameter since_timestamp"))?;
    let since_ms = parse_local_date_time_ms(&since)
        .ok_or_else(|| ApiError::client_error("invalid date, must conform to ISO 8601"))?;
    let salts = &req.serving.store.salts;
    let entries: Vec<Bucket> = salts
        .modified_since(since_ms, req.now_ms)
        .map(|e| Bucket {
            bucket_id: salts.bucket_id(e),
            last_updated: format_ms(e.last_updated_ms()),
        })
        .collect();
    Reply::success(&entries)
}

/// Java's `ISO_LOCAL_DATE_TIME`: `yyyy-MM-dd'T'HH:mm[:ss[.fffffffff]]`, `T` in either case.
pub(crate) fn parse_local_date_time_ms(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(['T', 't'])?;
    let mut d = date.splitn(3, '-');
    let year: i32 = digits(d.next()?, 4, 4)?;
    let month: u8 = digits(d.next()?, 2, 2)?;
    let day: u8 = digits(d.next()?, 2, 2)?;

    let (hm, rest) = match time.get(5..) {
        Some(rest) => (time.get(..5)?, rest),
        None => return None,
    };
    let (hour, minute) = hm.split_once(':')?;
    let hour: u8 = digits(hour, 2, 2)?;
    let minute: u8 = digits(minute, 2, 2)?;
    let (second, nanos) = if rest.is_empty() {
        (0u8, 0u32)
    } else {
        let rest = rest.strip_prefix(':')?;
        let (sec, frac) = match rest.split_once('.') {
            Some((s, f)) => (s, Some(f)),
            None => (rest, None),
        };
        let second: u8 = digits(sec, 2, 2)?;
        let nanos = match frac {
            None => 0,
            Some("") => 0,
            Some(f) => {
                let n: u32 = digits(f, 1, 9)?;
                n * 10u32.pow(9 - u32::try_from(f.len()).ok()?)
            }
        };
        (second, nanos)
    };
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    let instant = PrimitiveDateTime::new(date, time).assume_utc();
    i64::try_from(instant.unix_timestamp_nanos() / 1_000_000).ok()
}

fn digits<T: std::str::FromStr>(text: &str, min: usize, max: usize) -> Option<T> {
    if text.len() < min || text.len() > max || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `yyyy-MM-dd'T'HH:mm:ss.SSS` in UTC.
pub(crate) fn format_ms(ms: i64) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iso_local_date_times() {
        assert_eq!(parse_local_date_time_ms("1970-01-01T00:00"), Some(0));
        assert_eq!(parse_local_date_time_ms("2021-01-01T00:00:00"), Some(1_609_459_200_000));
        assert_eq!(
            parse_local_date_time_ms("2021-01-01t00:00:01.5"),
            Some(1_609_459_201_500)
        );
        assert_eq!(
            parse_local_date_time_ms("2021-01-01T00:00:00.123456789"),
            Some(1_609_459_200_123)
        );
        for bad in [
            "",
            "1609459200",
            "2021-01-01",
            "2021-01-01T00",
            "2021-01-01T00:00Z",
            "2021-01-01T00:00:00+01:00",
            "2021-02-30T00:00",
            "2021-13-01T00:00",
            "2021-01-01T24:00",
            "2021-1-01T00:00",
            "2021-01-01T00:00:00.1234567890",
            "2021-01-01 00:00:00",
        ] {
            assert_eq!(parse_local_date_time_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_with_three_fraction_digits() {
        assert_eq!(format_ms(1_806_364_800_001), "2027-03-30T00:00:00.001");
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000");
    }
}
