//! `POST /v2/token/validate` (GENERATOR): does this advertising token hold this identity?
//!
//! Only the site that owns the token's site key may ask (key id → keyset → site); tokens under the
//! fallback publisher keyset are therefore never validatable. No opt-out check. Answers
//! `true`/`false`, or 400 "Unauthorised to validate token" / "Invalid token".

use axum::extract::{Request, State};
use axum::response::Response;
use uid2_protocol::token::advertising::AdvertisingToken;
use uid2_store::Role;

use crate::error::ApiError;
use crate::input::{get_string, missing_input_message, token_input};
use crate::mapping::{flh_of, raw_uid};
use crate::metrics::ResponseMeta;
use crate::request::{enveloped, Enveloped, Reply};
use crate::state::AppState;

pub(crate) async fn handle(State(app): State<AppState>, request: Request) -> Response {
    enveloped(app, &[Role::Generator], request, |app, req| async move {
        validate(&app, &req)
    })
    .await
}

fn validate(app: &AppState, req: &Enveloped) -> Result<Reply, ApiError> {
    let config = app.config();
    let meta = ResponseMeta::for_caller(&req.caller, &req.serving);
    let record = |result: &str| app.metrics().validate_result(&meta, result);

    let identity = match token_input(req.payload.as_ref(), config.phone_support) {
        None => {
            record("invalid_input");
            return Err(ApiError::client_error(missing_input_message(config.phone_support)));
        }
        Some(field) => field.as_dii().to_identity().ok_or_else(|| {
            record("invalid_input");
            ApiError::client_error("Invalid Identifier")
        })?,
    };
    let flh = flh_of(&req.serving, &identity);
    let expected =
        raw_uid(&req.serving, config, identity.id_type, &flh, req.now_ms).inspect_err(|_| record("error"))?;

    let keys = req.serving.store.key_manager();
    let token = req
        .payload
        .as_ref()
        .and_then(|p| get_string(p, "token"))
        .and_then(|t| AdvertisingToken::decode(&t, &keys).ok());
    let Some(token) = token else {
        record("invalid_token");
        return Err(ApiError::client_error("Invalid token"));
    };
    let owner = keys.keyset_of_key(token.site_key_id).map(|k| k.site_id);
    if owner != Some(req.caller.site_id) {
        record("unauthorized");
        return Err(ApiError::client_error("Unauthorised to validate token"));
    }
    // Constant time: the raw UID in the token is not the caller's to learn byte by byte.
    let matched = uid2_protocol::crypto::ct_eq(&token.raw_uid, expected.as_ref());
    record(if matched { "match" } else { "mismatch" });
    Reply::success(&matched)
}
