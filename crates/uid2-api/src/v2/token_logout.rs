//! `POST /v2/token/logout` (OPTOUT): records an opt-out by forwarding it to the OptOut service.
//!
//! The first-level hash and current raw UID go upstream; the optional `email`, `phone` and
//! `clientIp` fields travel in the body, `UID-Trace-Id` as a header. Without a configured OptOut
//! service (local mode) or when it fails, the answer is the reference's plain 500.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use uid2_protocol::base64;
use uid2_store::Role;

use crate::error::ApiError;
use crate::input::{get_string, token_input};
use crate::mapping::{flh_of, raw_uid};
use crate::optout::LogoutRequest;
use crate::request::{enveloped, Enveloped, Reply};
use crate::state::AppState;

#[derive(Serialize)]
struct LogoutBody {
    optout: &'static str,
}

pub(crate) async fn handle(State(app): State<AppState>, request: Request) -> Response {
    enveloped(app, &[Role::Optout], request, |app, req| async move {
        logout(&app, &req).await
    })
    .await
}

async fn logout(app: &AppState, req: &Enveloped) -> Result<Reply, ApiError> {
    let config = app.config();
    let field = token_input(req.payload.as_ref(), config.phone_support);
    let identity = match &field {
        None => return Err(invalid("null")),
        Some(f) => f.as_dii().to_identity().ok_or_else(|| invalid("invalid identifier"))?,
    };
    let flh = flh_of(&req.serving, &identity);
    let advertising_id = raw_uid(&req.serving, config, identity.id_type, &flh, req.now_ms)?;

    let replicator = app.inner.logout.as_ref().ok_or_else(ApiError::internal)?;
    let field_of = |key: &str| req.payload.as_ref().and_then(|p| get_string(p, key));
    let upstream = LogoutRequest {
        identity_hash_b64: base64::encode(&flh),
        advertising_id_b64: base64::encode(&advertising_id),
        email: field_of("email"),
        phone: field_of("phone"),
        client_ip: field_of("clientIp"),
        trace_id: req
            .headers
            .get("uid-trace-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    replicator.replicate(upstream).await.map_err(|_| ApiError::internal())?;
    Reply::success(&LogoutBody { optout: "OK" })
}

fn invalid(what: &str) -> ApiError {
    ApiError::json(
        StatusCode::BAD_REQUEST,
        "invalid_token",
        format!("Invalid Token presented {what}"),
    )
}
