//! `POST /v2/optout/status` (MAPPER, SHARER, ID_READER): which of these raw UIDs opted out, and
//! since when (epoch milliseconds; the index stores seconds).

use axum::extract::{Request, State};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use uid2_store::Role;

use crate::error::ApiError;
use crate::request::{enveloped, Enveloped, Reply};
use crate::state::AppState;

#[derive(Serialize)]
struct OptedOut<'a> {
    advertising_id: &'a str,
    opted_out_since: i64,
}

#[derive(Serialize)]
struct StatusResponse<'a> {
    opted_out: Vec<OptedOut<'a>>,
}

pub(crate) async fn handle(State(app): State<AppState>, request: Request) -> Response {
    enveloped(
        app,
        &[Role::Mapper, Role::Sharer, Role::IdReader],
        request,
        |app, req| async move { status(&app, &req) },
    )
    .await
}

fn status(app: &AppState, req: &Enveloped) -> Result<Reply, ApiError> {
    let payload = req
        .payload
        .as_ref()
        .ok_or_else(|| ApiError::client_error("Invalid request body"))?;
    let ids = match payload.get("advertising_ids") {
        None | Some(Value::Null) => return Err(ApiError::client_error("Required Parameter Missing: advertising_ids")),
        Some(Value::Array(ids)) => ids,
        Some(_) => return Err(ApiError::unknown("Unknown error while getting optout status")),
    };
    if ids.len() > app.config().optout_status_max_request_size {
        return Err(ApiError::client_error("Request payload is too large"));
    }
    let index = app.inner.optout.as_ref();
    let opted_out: Vec<OptedOut<'_>> = ids
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|id| {
            index.advertising_id_opted_out_since(id).map(|since| OptedOut {
                advertising_id: id,
                opted_out_since: since.saturating_mul(1000),
            })
        })
        .collect();
    app.metrics()
        .optout_status(&req.caller.contact, ids.len(), opted_out.len());
    Reply::success(&StatusResponse { opted_out })
}
