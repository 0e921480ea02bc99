//! `POST /v2/token/client-generate` (no API key): client-side token generation (CSTG).
//!
//! A browser or app proves it belongs to a site with the site's public key: its payload is sealed
//! under the ECDH secret between an ephemeral key and the site's key pair (`subscription_id`). The
//! request is plain JSON, the answer base64 of `GCM(secret, JSON)`; errors are plain JSON. The
//! `Origin` (or, for apps, `app_name`) must belong to the site. Only hashed identities are
//! accepted. Tokens carry privacy bits 3 (client-side generated).
//!
//! Check order and messages are the reference's; so is its strictness about the request shape: an
//! unknown top-level field is its 500 "Unknown error while handling client side token generate".

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use uid2_protocol::cstg;
use uid2_protocol::identity::{Dii, IdentityType};
use uid2_protocol::token::privacy;

use crate::error::ApiError;
use crate::input::get_string;
use crate::mapping::flh_of;
use crate::metrics::{Platform, ResponseMeta, TokenEndpoint};
use crate::optout::is_opted_out;
use crate::origin::is_domain_allowed;
use crate::request::{read_body, Reply};
use crate::state::{AppState, Serving};
use crate::tokens::{issue, IssueError, Subject};

const UNKNOWN_ERROR: &str = "Unknown error while handling client side token generate";
const KNOWN_FIELDS: [&str; 6] = [
    "payload",
    "iv",
    "public_key",
    "timestamp",
    "subscription_id",
    "app_name",
];

/// The request body after the reference's (Jackson) binding rules.
struct CstgRequest {
    payload: Option<String>,
    iv: Option<String>,
    public_key: Option<String>,
    timestamp: i64,
    subscription_id: Option<String>,
    app_name: Option<String>,
}

impl CstgRequest {
    /// `Err` is the reference's 500 for an unbindable body.
    fn bind(body: &Map<String, Value>) -> Result<Self, ()> {
        if body.keys().any(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
            return Err(());
        }
        let text = |key: &str| -> Result<Option<String>, ()> {
            match body.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
                Some(_) => Err(()),
            }
        };
        let timestamp = match body.get("timestamp") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).ok_or(())?,
            Some(Value::String(s)) => s.trim().parse().map_err(|_| ())?,
            Some(_) => return Err(()),
        };
        Ok(Self {
            payload: text("payload")?,
            iv: text("iv")?,
            public_key: text("public_key")?,
            timestamp,
            subscription_id: text("subscription_id")?,
            app_name: text("app_name")?,
        })
    }
}

pub(crate) async fn handle(State(app): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut meta = ResponseMeta::default();
    let mut platform = Platform::of(&parts.headers);
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let result = async {
        let body = read_body(&parts.headers, body).await?;
        let serving = app.serving().ok_or_else(ApiError::not_ready)?;
        let record = |meta: &ResponseMeta, platform: Platform, status: &str| {
            app.metrics()
                .token_response(TokenEndpoint::ClientSideGenerate, meta, status, None, platform);
        };
        let fail = |meta: &ResponseMeta, platform: Platform, status: &str, error: ApiError| {
            record(meta, platform, status);
            error
        };

        let json: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|_| {
                fail(
                    &meta,
                    platform,
                    "BadJsonPayload",
                    ApiError::client_error("json payload is not valid"),
                )
            })?
        };
        let object = match json {
            Value::Object(map) => map,
            Value::Null => {
                return Err(fail(
                    &meta,
                    platform,
                    "PayloadHasNoBody",
                    ApiError::client_error("json payload expected but not found"),
                ))
            }
            _ => {
                return Err(fail(
                    &meta,
                    platform,
                    "BadJsonPayload",
                    ApiError::client_error("json payload is not valid"),
                ))
            }
        };
        let req = CstgRequest::bind(&object)
            .map_err(|_| fail(&meta, platform, "Unknown", ApiError::unknown(UNKNOWN_ERROR)))?;
        if req.app_name.is_some() {
            platform = Platform::InApp;
        }

        let keypair = req
            .subscription_id
            .as_deref()
            .and_then(|id| serving.store.keypairs.keypair(id))
            .ok_or_else(|| {
                fail(
                    &meta,
                    platform,
                    "BadSubscriptionId",
                    ApiError::client_error("bad subscription_id"),
                )
            })?;
        meta = ResponseMeta::for_site(keypair.site_id, &serving);
        if keypair.disabled {
            return Err(fail(
                &meta,
                platform,
                "Unauthorized",
                ApiError::json(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ));
        }
        if let Some(error) = check_origin(
            &app,
            &serving,
            keypair.site_id,
            req.app_name.as_deref(),
            origin.as_deref(),
        ) {
            let status = if req.app_name.is_some() {
                "InvalidAppName"
            } else {
                "InvalidHttpOrigin"
            };
            return Err(fail(&meta, platform, status, error));
        }

        let (Some(payload), Some(iv), Some(public_key)) = (&req.payload, &req.iv, &req.public_key) else {
            return Err(fail(
                &meta,
                platform,
                "MissingParams",
                ApiError::client_error("required parameters: payload, iv, public_key"),
            ));
        };
        let secret = keypair.private.shared_secret(public_key).map_err(|_| {
            fail(
                &meta,
                platform,
                "BadPublicKey",
                ApiError::client_error("bad public key"),
            )
        })?;
        let iv = uid2_protocol::base64::decode(iv)
            .ok()
            .filter(|iv| iv.len() == 12)
            .ok_or_else(|| fail(&meta, platform, "BadIV", ApiError::client_error("bad iv")))?;
        let aad = cstg::aad(req.timestamp, req.app_name.as_deref());
        let plaintext = uid2_protocol::base64::decode(payload)
            .ok()
            .and_then(|sealed| cstg::open_payload(&secret, &iv, &sealed, &aad).ok())
            .ok_or_else(|| {
                fail(
                    &meta,
                    platform,
                    "BadPayload",
                    ApiError::client_error("payload decryption failed"),
                )
            })?;
        let inner = match serde_json::from_slice::<Value>(&plaintext) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(fail(
                    &meta,
                    platform,
                    "BadPayload",
                    ApiError::client_error("encrypted payload contains invalid json"),
                ))
            }
        };

        let phone_support = app.config().phone_support;
        let email_hash = get_string(&inner, "email_hash");
        let phone_hash = get_string(&inner, "phone_hash");
        if phone_hash.is_some() && !phone_support {
            return Err(fail(
                &meta,
                platform,
                "BadPayload",
                ApiError::client_error("phone support not enabled"),
            ));
        }
        let which = if phone_support {
            "please provide exactly one of: email_hash, phone_hash"
        } else {
            "please provide email_hash"
        };
        let dii = match (&email_hash, &phone_hash) {
            (Some(e), None) => Dii::EmailHash(e),
            (None, Some(p)) => Dii::PhoneHash(p),
            (None, None) => return Err(fail(&meta, platform, "MissingParams", ApiError::client_error(which))),
            (Some(_), Some(_)) => return Err(fail(&meta, platform, "BadPayload", ApiError::client_error(which))),
        };
        let identity = dii
            .to_identity()
            .ok_or_else(|| ApiError::client_error("Invalid Identifier"))?;

        let now_ms = app.inner.clock.now_ms();
        let reply = mint(
            &app,
            &serving,
            keypair.site_id,
            identity.id_type,
            &flh_of(&serving, &identity),
            now_ms,
        )
        .inspect(|r| {
            let status = if matches!(r, Reply::Status(_)) {
                "OptOut"
            } else {
                "Success"
            };
            app.metrics().token_response(
                TokenEndpoint::ClientSideGenerate,
                &meta,
                status,
                (status == "Success").then_some("V4"),
                platform,
            );
        })
        .inspect_err(|_| record(&meta, platform, "NoActiveKey"))?;
        let sealed = cstg::seal_response(&secret, &reply.into_json(), app.inner.entropy.as_ref());
        Ok::<Response, ApiError>((StatusCode::OK, uid2_protocol::base64::encode(&sealed)).into_response())
    }
    .await;
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    if response.status() == StatusCode::OK {
        // The reference sets no Content-Type on this 200.
        response.headers_mut().remove(header::CONTENT_TYPE);
    }
    response.extensions_mut().insert(meta);
    response
}

fn mint(
    app: &AppState,
    serving: &Serving,
    site_id: i32,
    id_type: IdentityType,
    flh: &[u8; 32],
    now_ms: i64,
) -> Result<Reply, ApiError> {
    if is_opted_out(serving, app.inner.optout.as_ref(), id_type, flh, false) {
        return Ok(Reply::Status("optout"));
    }
    let subject = Subject {
        site_id,
        id_type,
        first_level_hash: *flh,
        privacy_bits: privacy::CSTG,
        established_ms: now_ms,
    };
    match issue(app, serving, &subject, now_ms) {
        Ok(body) => Reply::success(&body),
        Err(e @ IssueError::NoActiveKey) | Err(e @ IssueError::Internal) => Err(e.into()),
    }
}

/// `None` when the request may proceed; otherwise the 403 to send.
fn check_origin(
    app: &AppState,
    serving: &Serving,
    site_id: i32,
    app_name: Option<&str>,
    origin: Option<&str>,
) -> Option<ApiError> {
    if !app.config().cstg_domain_name_check {
        return None;
    }
    let site = serving.site(site_id);
    if let Some(name) = app_name {
        let allowed = site.is_some_and(|s| s.app_names.iter().any(|a| a.eq_ignore_ascii_case(name)));
        return (!allowed).then(|| ApiError::json(StatusCode::FORBIDDEN, "invalid_app_name", "unexpected app name"));
    }
    let allowed = origin.is_some_and(|o| site.is_some_and(|s| is_domain_allowed(o, &s.domain_names)));
    (!allowed).then(|| ApiError::json(StatusCode::FORBIDDEN, "invalid_http_origin", "unexpected http origin"))
}
