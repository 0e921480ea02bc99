//! HTTP to Core and OptOut.
//!
//! Metadata and API calls carry the operator's credentials: `Authorization: Bearer <operator
//! key>`, `Attestation-Token`, `Attestation-JWT` when Core issued one, `X-UID2-AppVersion`,
//! `UID-Instance-Id`, and `Encrypted: true` for the encrypted scope. Data files at the
//! `location`s Core hands out are fetched with a **bare** GET — no credentials at all — because
//! they are pre-signed URLs that reject a second authentication mechanism.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};

use crate::attestation::{Attester, Audience};
use crate::config::SyncConfig;
use crate::error::SyncError;

/// Data files can be hundreds of megabytes (a full opt-out partition).
const FILE_TIMEOUT: Duration = Duration::from_secs(600);

/// The identity headers every call carries.
#[derive(Clone)]
pub(crate) struct Identity {
    pub app_version: HeaderValue,
    pub instance_id: HeaderValue,
}

impl Identity {
    pub fn new(config: &SyncConfig) -> Self {
        let instance = format!("{}-{:016x}", config.instance_id_prefix, rand::random::<u64>());
        Self {
            app_version: HeaderValue::from_str(&format!("uid2-operator={}", config.app_version))
                .unwrap_or_else(|_| HeaderValue::from_static("uid2-operator=unknown")),
            instance_id: HeaderValue::from_str(&instance).unwrap_or_else(|_| HeaderValue::from_static("uid2-operator")),
        }
    }

    pub fn insert(&self, headers: &mut HeaderMap) {
        headers.insert("x-uid2-appversion", self.app_version.clone());
        headers.insert("uid-instance-id", self.instance_id.clone());
    }
}

/// A `Bearer` header for the operator key, marked sensitive so it never shows in debug output.
/// (The header value's own buffer belongs to the HTTP stack and is not wiped; the text it is
/// built from is.)
pub(crate) fn bearer(key: &str) -> Option<HeaderValue> {
    let text = zeroize::Zeroizing::new(format!("Bearer {key}"));
    let mut value = HeaderValue::from_str(&text).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Calls to Core and OptOut on behalf of the attested operator.
#[derive(Clone)]
pub(crate) struct CoreClient {
    http: reqwest::Client,
    attester: Arc<Attester>,
    encrypted_files: bool,
    /// Metadata and API answers are small: give up on a stuck Core or OptOut after this
    /// ([`crate::SyncConfig::request_timeout`]); the loops keep the last good data and retry.
    request_timeout: Duration,
}

impl CoreClient {
    pub fn new(
        http: reqwest::Client,
        attester: Arc<Attester>,
        encrypted_files: bool,
        request_timeout: Duration,
    ) -> Self {
        Self {
            http,
            attester,
            encrypted_files,
            request_timeout,
        }
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// GET a metadata or API URL with the operator's credentials; attests first if needed.
    pub async fn get_authenticated(
        &self,
        url: &str,
        audience: Audience,
        what: &'static str,
    ) -> Result<Vec<u8>, SyncError> {
        let mut headers = self.attester.credentials(audience).await?;
        if self.encrypted_files && audience == Audience::Core {
            headers.insert("encrypted", HeaderValue::from_static("true"));
        }
        let response = self
            .http
            .get(url)
            .headers(headers)
            .timeout(self.request_timeout)
            .send()
            .await
            .map_err(|e| SyncError::transport(&e))?;
        let status = response.status();
        if status.as_u16() != 200 {
            return Err(SyncError::Status {
                what,
                status: status.as_u16(),
            });
        }
        Ok(response.bytes().await.map_err(|e| SyncError::transport(&e))?.to_vec())
    }

    /// GET a data file at a `location`, with no headers at all.
    pub async fn get_file(&self, url: &str, what: &'static str) -> Result<Vec<u8>, SyncError> {
        let response = self
            .http
            .get(url)
            .timeout(FILE_TIMEOUT)
            .send()
            .await
            .map_err(|e| SyncError::transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(SyncError::Status {
                what,
                status: status.as_u16(),
            });
        }
        Ok(response.bytes().await.map_err(|e| SyncError::transport(&e))?.to_vec())
    }

    pub fn attester(&self) -> &Arc<Attester> {
        &self.attester
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}
