//! Key distribution: `/v2/key/sharing` (SHARER, ID_READER), `/v2/key/bidstream` (ID_READER) and
//! the legacy `/v2/key/latest` (ID_READER).
//!
//! Which keys a caller sees (no time filter; the refresh keyset −2 never): master keys always; a
//! key of an enabled keyset if the keyset is the caller's, lists the caller in `allowed_sites`, or
//! — for ID_READER callers only — has `allowed_sites: null`. Quirks SDKs depend on:
//! `master_keyset_id` is 9999999; `token_expiry_seconds` is a string; `keyset_id` is present only
//! on the caller's own keys (and 9999999 on master keys) in sharing, never in bidstream; the
//! lifetimes carry a 10-second tolerance; `site_data` appears only with CSTG on.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use uid2_store::{KeysetKey, Role, MASTER_KEYSET_ID, MASTER_KEYSET_ID_FOR_SDKS};

use crate::error::ApiError;
use crate::request::{enveloped, Enveloped, Reply};
use crate::state::{AppState, Serving};

/// Added to every advertised maximum lifetime (`TOKEN_LIFETIME_TOLERANCE`).
const LIFETIME_TOLERANCE_SECONDS: i64 = 10;

#[derive(Serialize)]
struct KeyJson {
    id: i32,
    created: i64,
    activates: i64,
    expires: i64,
    secret: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    keyset_id: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    site_id: Option<i32>,
}

impl KeyJson {
    fn of(key: &KeysetKey) -> Self {
        Self {
            id: key.id,
            created: key.created,
            activates: key.activates,
            expires: key.expires,
            secret: key.secret.to_base64(),
            keyset_id: None,
            site_id: None,
        }
    }
}

#[derive(Serialize)]
struct SiteJson {
    id: i32,
    domain_names: Vec<String>,
}

#[derive(Serialize)]
struct SharingResponse {
    caller_site_id: i32,
    master_keyset_id: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_keyset_id: Option<i32>,
    token_expiry_seconds: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_sharing_lifetime_seconds: Option<i64>,
    identity_scope: &'static str,
    allow_clock_skew_seconds: i64,
    keys: Vec<KeyJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    site_data: Option<Vec<SiteJson>>,
}

#[derive(Serialize)]
struct BidstreamResponse {
    max_bidstream_lifetime_seconds: i64,
    identity_scope: &'static str,
    allow_clock_skew_seconds: i64,
    keys: Vec<KeyJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    site_data: Option<Vec<SiteJson>>,
}

pub(crate) async fn sharing(State(app): State<AppState>, request: Request) -> Response {
    enveloped(app, &[Role::Sharer, Role::IdReader], request, |app, req| async move {
        sharing_reply(&app, &req)
    })
    .await
}

pub(crate) async fn bidstream(State(app): State<AppState>, request: Request) -> Response {
    enveloped(app, &[Role::IdReader], request, |app, req| async move {
        bidstream_reply(&app, &req)
    })
    .await
}

pub(crate) async fn latest(State(app): State<AppState>, request: Request) -> Response {
    enveloped(app, &[Role::IdReader], request, |_app, req| async move {
        latest_reply(&req)
    })
    .await
}

fn visible<'a>(serving: &'a Serving, req: &Enveloped) -> Vec<&'a KeysetKey> {
    serving
        .store
        .key_manager()
        .visible_keys(req.caller.site_id, req.caller.has_role(Role::IdReader))
}

fn site_data(app: &AppState, serving: &Serving, keys: &[&KeysetKey]) -> Option<Vec<SiteJson>> {
    if !app.config().client_side_token_generate {
        return None;
    }
    let sites = &serving.store.sites;
    let data = serving
        .store
        .key_manager()
        .site_data(keys, sites, app.config().key_sharing_provide_app_names);
    Some(
        data.into_iter()
            .map(|(id, domain_names)| SiteJson { id, domain_names })
            .collect(),
    )
}

fn sharing_reply(app: &AppState, req: &Enveloped) -> Result<Reply, ApiError> {
    let serving = &req.serving;
    let config = app.config();
    let rc = &serving.store.runtime_config;
    let manager = serving.store.key_manager();
    let caller_site = req.caller.site_id;
    let default_keyset_id = manager
        .default_keyset(caller_site)
        .map_err(|_| ApiError::internal())?
        .map(|k| k.keyset_id);
    let keys = visible(serving, req);
    let keys_json = keys
        .iter()
        .map(|key| {
            let mut json = KeyJson::of(key);
            let owner = manager.keyset(key.keyset_id).map(|k| k.site_id);
            if owner == Some(caller_site) {
                json.keyset_id = Some(key.keyset_id);
            } else if key.keyset_id == MASTER_KEYSET_ID {
                json.keyset_id = Some(MASTER_KEYSET_ID_FOR_SDKS);
            }
            json
        })
        .collect();
    let response = SharingResponse {
        caller_site_id: caller_site,
        master_keyset_id: MASTER_KEYSET_ID_FOR_SDKS,
        default_keyset_id,
        token_expiry_seconds: rc.sharing_token_expiry_seconds.to_string(),
        max_sharing_lifetime_seconds: req
            .caller
            .has_role(Role::Sharer)
            .then(|| i64::from(rc.effective_max_sharing_lifetime_seconds()) + LIFETIME_TOLERANCE_SECONDS),
        identity_scope: config.identity_scope.name(),
        allow_clock_skew_seconds: config.allow_clock_skew_seconds,
        keys: keys_json,
        site_data: site_data(app, serving, &keys),
    };
    Reply::success(&response)
}

fn bidstream_reply(app: &AppState, req: &Enveloped) -> Result<Reply, ApiError> {
    let serving = &req.serving;
    let config = app.config();
    let keys = visible(serving, req);
    let response = BidstreamResponse {
        max_bidstream_lifetime_seconds: i64::from(
            serving.store.runtime_config.effective_max_bidstream_lifetime_seconds(),
        ) + LIFETIME_TOLERANCE_SECONDS,
        identity_scope: config.identity_scope.name(),
        allow_clock_skew_seconds: config.allow_clock_skew_seconds,
        keys: keys.iter().map(|k| KeyJson::of(k)).collect(),
        site_data: site_data(app, serving, &keys),
    };
    Reply::success(&response)
}

fn latest_reply(req: &Enveloped) -> Result<Reply, ApiError> {
    let site_id = req.caller.site_id;
    if site_id <= 2 {
        return Err(ApiError::json(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            format!("Unexpected client site id {site_id}"),
        ));
    }
    let manager = req.serving.store.key_manager();
    let keys: Vec<KeyJson> = visible(&req.serving, req)
        .into_iter()
        .map(|key| {
            let mut json = KeyJson::of(key);
            json.site_id = manager.keyset(key.keyset_id).map(|k| k.site_id);
            json
        })
        .collect();
    Reply::success(&keys)
}
