//! `GET /ops/healthcheck`: `200 OK` when every component is healthy, else 503 with one
//! `component: reason` line per unhealthy component (the reference's format).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub(crate) async fn healthcheck(State(app): State<AppState>) -> Response {
    match app.health().check() {
        Ok(()) => (StatusCode::OK, "OK").into_response(),
        Err(reasons) => (StatusCode::SERVICE_UNAVAILABLE, reasons).into_response(),
    }
}
