//! `POST /v2/token/generate` (GENERATOR): DII in, advertising token + refresh envelope out.
//!
//! Order: exactly one identity field (400) → valid identifier (400) → EUID consent (400 or
//! `insufficient_user_consent`) → opt-out (`optout`, no body) → mint. `policy` and
//! `optout_check` from older SDKs are ignored.

use axum::extract::{Request, State};
use axum::response::Response;
use uid2_protocol::token::privacy;
use uid2_store::Role;

use crate::consent::{self, Consent};
use crate::error::ApiError;
use crate::input::{missing_input_message, token_input};
use crate::mapping::flh_of;
use crate::metrics::{Platform, ResponseMeta, TokenEndpoint};
use crate::optout::is_opted_out;
use crate::request::{enveloped, Enveloped, Reply};
use crate::state::AppState;
use crate::tokens::{issue, IssueError, Subject};

pub(crate) async fn handle(State(app): State<AppState>, request: Request) -> Response {
    enveloped(app, &[Role::Generator], request, |app, req| async move {
        generate(&app, &req)
    })
    .await
}

fn generate(app: &AppState, req: &Enveloped) -> Result<Reply, ApiError> {
    let config = app.config();
    let meta = ResponseMeta::for_caller(&req.caller, &req.serving);
    let platform = Platform::of(&req.headers);
    let record = |status: &str, version: Option<&str>| {
        app.metrics()
            .token_response(TokenEndpoint::Generate, &meta, status, version, platform);
    };

    let field = token_input(req.payload.as_ref(), config.phone_support)
        .ok_or_else(|| ApiError::client_error(missing_input_message(config.phone_support)))?;
    let identity = field
        .as_dii()
        .to_identity()
        .ok_or_else(|| ApiError::client_error("Invalid Identifier"))?;

    match consent::check(config.identity_scope, config.tcf_vendor_id, req.payload.as_ref()) {
        Consent::Sufficient => {}
        Consent::Invalid => {
            record("InvalidUserConsentString", None);
            return Err(ApiError::client_error("User consent is invalid"));
        }
        Consent::Insufficient => {
            record("InsufficientUserConsent", None);
            return Ok(Reply::Status("insufficient_user_consent"));
        }
    }

    let flh = flh_of(&req.serving, &identity);
    if is_opted_out(&req.serving, app.inner.optout.as_ref(), identity.id_type, &flh, false) {
        record("OptOut", None);
        return Ok(Reply::Status("optout"));
    }

    let subject = Subject {
        site_id: req.caller.site_id,
        id_type: identity.id_type,
        first_level_hash: flh,
        privacy_bits: privacy::LEGACY,
        established_ms: req.now_ms,
    };
    match issue(app, &req.serving, &subject, req.now_ms) {
        Ok(body) => {
            record("Success", Some("V4"));
            Reply::success(&body)
        }
        Err(e) => {
            if matches!(e, IssueError::NoActiveKey) {
                record("NoActiveKey", None);
            }
            Err(e.into())
        }
    }
}
