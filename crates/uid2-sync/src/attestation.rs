//! The attestation handshake with Core and the token every later call carries.
//!
//! One attempt: a fresh RSA-2048 key; the platform's evidence for its public key; `POST
//! core_attest_url` with the operator key; Core answers `{"status":"success","body":{…}}` with
//! the token encrypted to the key (PKCS#1 v1.5) and `expiresAt`. Failure policy, as the
//! reference: 401 or 403 means Core refuses this operator → fatal, the process exits; anything
//! else is retried by the callers and by the periodic check, and after `attestation_failure_shutdown`
//! of continuous failure the process exits too. The token is renewed within `reattest_margin`
//! of its expiry. Attempts never overlap: one runs at a time and the others wait for its result.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::mpsc::UnboundedSender;
use uid2_attest::{AttestationKey, AttestationProvider};
use uid2_protocol::base64;
use uid2_protocol::clock::Clock;
use zeroize::Zeroizing;

use crate::client::{bearer, Identity};
use crate::config::{OperatorKey, SyncConfig};
use crate::error::SyncError;
use crate::metrics::SyncMetrics;
use crate::{Fatal, Observer};

/// How long before its (whole-second) expiry a token is no longer presented: a call made just
/// before expiry must not arrive just after it.
const USE_MARGIN_MS: i64 = 2_000;

/// Which service a call goes to: each has its own JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    Core,
    OptOut,
}

/// A valid attestation.
pub(crate) struct Token {
    token: Zeroizing<String>,
    expires_at_ms: i64,
    jwt_core: Option<Zeroizing<String>>,
    jwt_optout: Option<Zeroizing<String>>,
    /// Core's `optout_url`: the base for a relative `optout_metadata_path`.
    pub optout_url: Option<String>,
}

/// Why an attempt did not produce a token.
enum Failure {
    /// 401/403: Core refuses this operator.
    Refused {
        status: u16,
        reason: String,
    },
    Retryable(SyncError),
}

pub(crate) struct Attester {
    http: reqwest::Client,
    attest_url: String,
    operator_key: OperatorKey,
    operator_type: String,
    app_version: String,
    identity: Identity,
    provider: Arc<dyn AttestationProvider>,
    clock: Arc<dyn Clock>,
    current: RwLock<Option<Arc<Token>>>,
    single_flight: tokio::sync::Mutex<()>,
    failing_since: Mutex<Option<Instant>>,
    config: SyncConfig,
    fatal: UnboundedSender<Fatal>,
    observer: Arc<dyn Observer>,
    metrics: Arc<SyncMetrics>,
}

impl Attester {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        http: reqwest::Client,
        config: &SyncConfig,
        identity: Identity,
        provider: Box<dyn AttestationProvider>,
        clock: Arc<dyn Clock>,
        fatal: UnboundedSender<Fatal>,
        observer: Arc<dyn Observer>,
        metrics: Arc<SyncMetrics>,
    ) -> Self {
        Self {
            http,
            attest_url: config.attest_url.clone(),
            operator_key: config.operator_key.clone(),
            operator_type: config.operator_type.clone(),
            app_version: config.app_version.clone(),
            identity,
            provider: Arc::from(provider),
            clock,
            current: RwLock::new(None),
            single_flight: tokio::sync::Mutex::new(()),
            failing_since: Mutex::new(None),
            config: config.clone(),
            fatal,
            observer,
            metrics,
        }
    }

    fn token(&self) -> Option<Arc<Token>> {
        self.current.read().ok().and_then(|t| t.clone())
    }

    /// Core writes the expiry into the token in whole seconds, so the token dies up to a second
    /// before the millisecond `expiresAt` it returns; stop using it a little before that.
    fn usable(&self, token: &Token) -> bool {
        let dies_at_ms = token.expires_at_ms.div_euclid(1000) * 1000;
        self.clock.now_ms() < dies_at_ms.saturating_sub(USE_MARGIN_MS)
    }

    fn due(&self, token: &Token) -> bool {
        let margin = i64::try_from(self.config.reattest_margin.as_millis()).unwrap_or(i64::MAX);
        self.clock.now_ms() > token.expires_at_ms.saturating_sub(margin)
    }

    /// A usable token, attesting now if there is none (the reference attests lazily too).
    pub async fn valid_token(&self) -> Result<Arc<Token>, SyncError> {
        if let Some(token) = self.token().filter(|t| self.usable(t)) {
            return Ok(token);
        }
        self.attest_if(|this, current| current.is_none_or(|t| !this.usable(t)))
            .await
    }

    /// The periodic check: renew when within the margin of expiry (or never attested).
    pub async fn renew_if_due(&self) {
        let needed = self.token().is_none_or(|t| self.due(&t));
        if needed {
            let _ = self
                .attest_if(|this, current| current.is_none_or(|t| this.due(t)))
                .await;
        }
    }

    /// Runs one attempt unless, once it holds the single-flight lock, `still_needed` says another
    /// attempt already did the job.
    async fn attest_if(&self, still_needed: impl Fn(&Self, Option<&Token>) -> bool) -> Result<Arc<Token>, SyncError> {
        let _guard = self.single_flight.lock().await;
        let current = self.token();
        if !still_needed(self, current.as_deref()) {
            return current.ok_or(SyncError::NotAttested);
        }
        match self.attempt().await {
            Ok(token) => {
                let token = Arc::new(token);
                if let Ok(mut slot) = self.current.write() {
                    *slot = Some(Arc::clone(&token));
                }
                if let Ok(mut since) = self.failing_since.lock() {
                    *since = None;
                }
                self.metrics.attestation("success", token.expires_at_ms);
                self.observer.health("attestation", None);
                tracing::info!(expires_at_ms = token.expires_at_ms, "attested to UID2 Core");
                Ok(token)
            }
            Err(Failure::Refused { status, reason }) => {
                self.metrics.attestation("refused", 0);
                tracing::error!(status, reason = %reason, "UID2 Core refused attestation; shutting down");
                let _ = self.fatal.send(Fatal::AttestationRefused { status, reason });
                Err(SyncError::NotAttested)
            }
            Err(Failure::Retryable(error)) => {
                self.metrics.attestation("failure", 0);
                let since = self
                    .failing_since
                    .lock()
                    .map(|mut s| *s.get_or_insert_with(Instant::now))
                    .unwrap_or_else(|_| Instant::now());
                tracing::warn!(%error, failing_for_s = since.elapsed().as_secs(), "attestation failed; will retry");
                if self.token().is_none() {
                    self.observer
                        .health("attestation", Some(format!("not attested: {error}")));
                }
                if since.elapsed() >= self.config.attestation_failure_shutdown {
                    let _ = self.fatal.send(Fatal::AttestationFailing {
                        for_seconds: since.elapsed().as_secs(),
                    });
                }
                Err(error)
            }
        }
    }

    async fn attempt(&self) -> Result<Token, Failure> {
        let retry = Failure::Retryable;
        // Key generation and an SGX quote (a device round trip, retried with sleeps) are
        // blocking work; keep them off the async workers that serve the API.
        let provider = Arc::clone(&self.provider);
        let user_data = self.attest_url.clone();
        let (key, evidence) = tokio::task::spawn_blocking(move || {
            let key = AttestationKey::generate().map_err(|_| SyncError::Malformed("RSA key generation failed"))?;
            let evidence = provider
                .attestation_request(key.public_key_der(), user_data.as_bytes())
                .map_err(|e| {
                    tracing::warn!(error = %e, "attestation evidence unavailable");
                    SyncError::Malformed("attestation evidence unavailable")
                })?;
            Ok((key, evidence))
        })
        .await
        .map_err(|_| retry(SyncError::Malformed("attestation evidence task stopped")))?
        .map_err(retry)?;
        let body = json!({
            "attestation_request": base64::encode(&evidence),
            "public_key": base64::encode(key.public_key_der()),
            "application_name": "uid2-operator",
            "application_version": self.app_version,
            "operator_type": self.operator_type,
            "components": {},
        });
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(auth) = bearer(self.operator_key.expose()) {
            headers.insert(AUTHORIZATION, auth);
        }
        self.identity.insert(&mut headers);
        let response = self
            .http
            .post(&self.attest_url)
            .headers(headers)
            .timeout(std::time::Duration::from_secs(60))
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| retry(SyncError::transport(&e)))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| retry(SyncError::transport(&e)))?;
        if status == 401 || status == 403 {
            return Err(Failure::Refused {
                status,
                reason: refusal_reason(&bytes),
            });
        }
        if status != 200 {
            return Err(retry(SyncError::Status {
                what: "core attest",
                status,
            }));
        }
        let parsed: Value =
            serde_json::from_slice(&bytes).map_err(|_| retry(SyncError::Malformed("attest response is not JSON")))?;
        if parsed.get("status").and_then(Value::as_str) != Some("success") {
            return Err(retry(SyncError::Malformed("attest response status is not success")));
        }
        let body = parsed
            .get("body")
            .ok_or(retry(SyncError::Malformed("attest response has no body")))?;
        let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_owned);
        let encrypted = text("attestation_token").ok_or(retry(SyncError::Malformed("attestation_token missing")))?;
        let expires_at = text("expiresAt").ok_or(retry(SyncError::Malformed("expiresAt missing")))?;
        let expires_at_ms = OffsetDateTime::parse(&expires_at, &Rfc3339)
            .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
            .map_err(|_| retry(SyncError::Malformed("expiresAt is not an ISO-8601 instant")))?;
        let ciphertext =
            base64::decode(&encrypted).map_err(|_| retry(SyncError::Malformed("attestation_token is not base64")))?;
        let plain = key
            .decrypt(&ciphertext)
            .map_err(|_| retry(SyncError::Malformed("attestation_token does not decrypt with our key")))?;
        let token = String::from_utf8(plain.to_vec())
            .map_err(|_| retry(SyncError::Malformed("attestation_token is not text")))?;
        Ok(Token {
            token: Zeroizing::new(token),
            expires_at_ms,
            jwt_core: text("attestation_jwt_core").map(Zeroizing::new),
            jwt_optout: text("attestation_jwt_optout").map(Zeroizing::new),
            optout_url: text("optout_url"),
        })
    }

    /// The headers of an authenticated call to Core or OptOut.
    pub async fn credentials(&self, audience: Audience) -> Result<HeaderMap, SyncError> {
        let token = self.valid_token().await?;
        let mut headers = HeaderMap::new();
        if let Some(auth) = bearer(self.operator_key.expose()) {
            headers.insert(AUTHORIZATION, auth);
        }
        let mut sensitive = |name: &'static str, value: &str| {
            if let Ok(mut v) = HeaderValue::from_str(value) {
                v.set_sensitive(true);
                headers.insert(name, v);
            }
        };
        sensitive("attestation-token", &token.token);
        let jwt = match audience {
            Audience::Core => token.jwt_core.as_ref(),
            Audience::OptOut => token.jwt_optout.as_ref(),
        };
        if let Some(jwt) = jwt {
            sensitive("attestation-jwt", jwt);
        }
        self.identity.insert(&mut headers);
        Ok(headers)
    }

    /// The headers of a logout replicated to OptOut: the operator key and identity, no
    /// attestation (OptOut only checks the key's role there).
    pub fn replicate_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(auth) = bearer(self.operator_key.expose()) {
            headers.insert(AUTHORIZATION, auth);
        }
        self.identity.insert(&mut headers);
        headers
    }
}

/// Core's refusal body is `{"status":"…","reason":"…","message":…}`; keep the machine-readable
/// words for the log.
/// Core's words for a refusal (`status`, `reason`, `message`, whichever are present), reduced to
/// harmless characters for the log.
fn refusal_reason(bytes: &[u8]) -> String {
    let parsed: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let words: Vec<&str> = ["status", "reason", "message"]
        .iter()
        .filter_map(|field| parsed.get(*field).and_then(Value::as_str))
        .filter(|word| !word.is_empty())
        .collect();
    let text = if words.is_empty() {
        "no reason given".to_owned()
    } else {
        words.join(": ")
    };
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || " _-:;,.".contains(*c))
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::refusal_reason;

    #[test]
    fn refusal_reasons_are_cores_words_sanitised() {
        assert_eq!(
            refusal_reason(br#"{"status":"forbidden","message":"attestation failure; forbidden enclave"}"#),
            "forbidden: attestation failure; forbidden enclave"
        );
        assert_eq!(
            refusal_reason(br#"{"status":"unauthorized","reason":"unrecognized_key","message":"x"}"#),
            "unauthorized: unrecognized_key: x"
        );
        assert_eq!(refusal_reason(b"<html>"), "no reason given");
        assert_eq!(
            refusal_reason(br#"{"message":"a\u001b[31mb\n<script>"}"#),
            "a31mbscript"
        );
        assert_eq!(
            refusal_reason(format!(r#"{{"message":"{}"}}"#, "y".repeat(500)).as_bytes()).len(),
            200
        );
    }
}
