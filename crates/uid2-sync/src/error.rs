//! Why a sync step failed. Every variant is safe to log: no operator key, token, URL query or
//! file content is ever inside.

use uid2_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("HTTP transport failed: {0}")]
    Transport(String),
    #[error("HTTP {status} from {what}")]
    Status { what: &'static str, status: u16 },
    #[error("the response is malformed: {0}")]
    Malformed(&'static str),
    #[error("not attested")]
    NotAttested,
    /// The opt-out cache directory cannot be created, written or read: the operator's own disk,
    /// not Core's answer. Carries the directory (configuration, not a secret) and the OS error.
    #[error("opt-out cache directory {dir}: {problem}")]
    OptOutCache { dir: String, problem: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SyncError {
    /// An I/O failure on the opt-out cache directory `dir` while `doing` something.
    pub(crate) fn optout_cache(dir: &std::path::Path, doing: &str, error: &std::io::Error) -> Self {
        Self::OptOutCache {
            dir: dir.display().to_string(),
            problem: format!("{doing}: {error}"),
        }
    }

    /// A transport error described without its URL (which may carry pre-signed credentials).
    pub(crate) fn transport(error: &reqwest::Error) -> Self {
        let kind = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "connection failed"
        } else if error.is_body() || error.is_decode() {
            "body could not be read"
        } else {
            "request failed"
        };
        Self::Transport(kind.to_owned())
    }
}
