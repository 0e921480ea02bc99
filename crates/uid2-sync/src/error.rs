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
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SyncError {
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
