//! Minting an identity: the advertising token, the refresh token inside its 388-character
//! envelope, and the three times the publisher needs. Shared by generate, refresh and CSTG.
//!
//! Keys: master = active key of keyset −1; site = active key of the publisher's enabled default
//! keyset, else of site 2's (the fallback publisher keyset); refresh = active key of keyset −2.
//! No active key for any of these is the reference's 500 "No active encryption key available".

use serde::Serialize;
use uid2_protocol::crypto::SecretKey;
use uid2_protocol::identity::IdentityType;
use uid2_protocol::token::advertising::AdvertisingToken;
use uid2_protocol::token::refresh::RefreshToken;
use uid2_protocol::token::{refresh_envelope, OperatorIdentity, PublisherIdentity, TokenVersion};

use crate::error::ApiError;
use crate::mapping;
use crate::state::{AppState, Serving};

pub(crate) const NO_ACTIVE_KEY: &str = "No active encryption key available";

/// The success body of generate, refresh and CSTG, in the reference's field order.
#[derive(Serialize)]
pub(crate) struct IdentityResponse {
    pub advertising_token: String,
    pub refresh_token: String,
    pub identity_expires: i64,
    pub refresh_expires: i64,
    pub refresh_from: i64,
    pub refresh_response_key: String,
}

/// Why no identity could be minted.
#[derive(Debug)]
pub(crate) enum IssueError {
    NoActiveKey,
    Internal,
}

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::NoActiveKey => ApiError::unknown(NO_ACTIVE_KEY),
            IssueError::Internal => ApiError::json(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "error", ""),
        }
    }
}

/// Who and what a token is for.
pub(crate) struct Subject {
    pub site_id: i32,
    pub id_type: IdentityType,
    pub first_level_hash: [u8; 32],
    pub privacy_bits: i32,
    pub established_ms: i64,
}

pub(crate) fn issue(
    app: &AppState,
    serving: &Serving,
    subject: &Subject,
    now_ms: i64,
) -> Result<IdentityResponse, IssueError> {
    let config = app.config();
    let rc = &serving.store.runtime_config;
    let keys = serving.store.key_manager();
    let master = keys.master_key(now_ms).ok_or(IssueError::NoActiveKey)?;
    let (site, _choice) = keys
        .site_key(subject.site_id, now_ms)
        .map_err(|_| IssueError::Internal)?
        .ok_or(IssueError::NoActiveKey)?;
    let refresh = keys.refresh_key(now_ms).ok_or(IssueError::NoActiveKey)?;

    let raw_uid = mapping::raw_uid(serving, config, subject.id_type, &subject.first_level_hash, now_ms)
        .map_err(|_| IssueError::Internal)?;

    let after = |seconds: i32| now_ms.saturating_add(i64::from(seconds) * 1000);
    let identity_expires = after(rc.identity_token_expires_after_seconds);
    let refresh_expires = after(rc.refresh_token_expires_after_seconds);
    let refresh_from = after(rc.refresh_identity_token_after_seconds);
    let entropy = app.inner.entropy.as_ref();
    let scope = config.identity_scope;

    let advertising = AdvertisingToken {
        version: TokenVersion::V4,
        scope,
        id_type: subject.id_type,
        master_key_id: master.id,
        expires_ms: identity_expires,
        created_ms: now_ms,
        operator: OperatorIdentity::SERVICE,
        site_key_id: site.id,
        publisher: PublisherIdentity::site(subject.site_id),
        privacy_bits: subject.privacy_bits,
        established_ms: subject.established_ms,
        refreshed_ms: now_ms,
        raw_uid,
    }
    .encode(&master.secret, &site.secret, entropy);

    let inner_refresh = RefreshToken {
        version: TokenVersion::V3,
        scope,
        id_type: subject.id_type,
        key_id: refresh.id,
        expires_ms: refresh_expires,
        created_ms: now_ms,
        operator: OperatorIdentity::SERVICE,
        publisher: PublisherIdentity::site(subject.site_id),
        privacy_bits: subject.privacy_bits,
        established_ms: subject.established_ms,
        first_level_hash: subject.first_level_hash,
    }
    .encode(&refresh.secret, entropy);

    let response_key = SecretKey::generate(entropy);
    let envelope = refresh_envelope::seal(
        scope,
        refresh.id,
        &refresh.secret,
        &inner_refresh,
        &response_key,
        entropy,
    )
    .map_err(|_| IssueError::Internal)?;

    Ok(IdentityResponse {
        advertising_token: advertising,
        refresh_token: envelope,
        identity_expires,
        refresh_expires,
        refresh_from,
        refresh_response_key: response_key.to_base64(),
    })
}
