//! What the service has seen, for tests to assert on: successful attestations, requests per
//! path, and a bounded log of recent requests with the non-secret headers the operator sends.
//!
//! Nothing secret is kept: of `Authorization` and `Attestation-Token` only their presence is
//! recorded, and query strings (identity hashes on `/optout/replicate`) are dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How many requests the log keeps (oldest dropped first).
pub const LOG_CAPACITY: usize = 4096;
/// Longest header value kept in the log.
const MAX_HEADER_LEN: usize = 256;

/// One request as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// The path without its query string.
    pub path: String,
    pub status: u16,
    pub authorization: bool,
    pub attestation_token: bool,
    pub attestation_jwt: bool,
    /// `Encrypted: true` was sent.
    pub encrypted: bool,
    /// `UID-Instance-Id`, if sent.
    pub instance_id: Option<String>,
    /// `X-UID2-AppVersion`, if sent.
    pub app_version: Option<String>,
}

/// Shortens a header value for the log.
pub fn clip(value: &str) -> String {
    value.chars().take(MAX_HEADER_LEN).collect()
}

#[derive(Debug, Default)]
pub struct Activity {
    attestations: AtomicU64,
    replicated: AtomicU64,
    per_path: Mutex<HashMap<String, u64>>,
    log: Mutex<VecDeque<RequestRecord>>,
}

impl Activity {
    pub fn attested(&self) {
        self.attestations.fetch_add(1, Ordering::Relaxed);
    }

    pub fn replicated(&self) {
        self.replicated.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record(&self, record: RequestRecord) {
        if let Ok(mut counts) = self.per_path.lock() {
            *counts.entry(record.path.clone()).or_default() += 1;
        }
        if let Ok(mut log) = self.log.lock() {
            if log.len() >= LOG_CAPACITY {
                log.pop_front();
            }
            log.push_back(record);
        }
    }

    /// Successful `/attest` calls (tokens issued).
    pub fn attestation_count(&self) -> u64 {
        self.attestations.load(Ordering::Relaxed)
    }

    /// Opt-out entries written by `/optout/replicate`.
    pub fn replicate_count(&self) -> u64 {
        self.replicated.load(Ordering::Relaxed)
    }

    /// Requests (any status, faults included) whose path is exactly `path`.
    pub fn request_count(&self, path: &str) -> u64 {
        self.per_path
            .lock()
            .map(|c| c.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// The most recent requests, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.log.lock().map(|l| l.iter().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str) -> RequestRecord {
        RequestRecord {
            method: "GET".into(),
            path: path.into(),
            status: 200,
            authorization: true,
            attestation_token: true,
            attestation_jwt: false,
            encrypted: false,
            instance_id: None,
            app_version: None,
        }
    }

    #[test]
    fn counts_and_bounded_log() {
        let activity = Activity::default();
        for _ in 0..LOG_CAPACITY + 3 {
            activity.record(record("/a"));
        }
        activity.record(record("/b"));
        assert_eq!(activity.request_count("/a"), LOG_CAPACITY as u64 + 3);
        assert_eq!(activity.request_count("/b"), 1);
        assert_eq!(activity.request_count("/c"), 0);
        let log = activity.requests();
        assert_eq!(log.len(), LOG_CAPACITY);
        assert_eq!(log.last().map(|r| r.path.as_str()), Some("/b"));
        activity.attested();
        assert_eq!(activity.attestation_count(), 1);
        assert_eq!(clip(&"x".repeat(1000)).len(), 256);
    }
}
