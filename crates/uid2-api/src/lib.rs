//! The UID2 operator's public HTTP API, wire-compatible with the Java reference operator.
//!
//! [`router`] builds the whole API over an [`AppState`]; tests bind it on port 0 or call it with
//! `oneshot`, the binary serves it. Every enveloped endpoint goes through the same edge
//! (`request.rs`): 1 MiB body limit (413) → bearer authentication and roles (401) → v2 envelope
//! (400) → handler → sealed reply. Errors become responses in one place (`error.rs`) and are
//! never encrypted; logs and errors never carry request bodies, identifiers, tokens or keys.
//! In front of every route but `/ops/healthcheck`, admission control (`admission.rs`) bounds the
//! requests processed and waiting and sheds the rest with 503.

mod admission;
mod answer;
mod auth;
mod consent;
mod cors;
mod error;
mod input;
mod mapping;
mod metrics;
mod ops;
mod optout;
mod origin;
mod request;
mod service_link;
mod state;
mod tokens;
mod v2;

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

// Public interface.
pub use error::ApiError;
pub use metrics::Metrics;
pub use optout::{LogoutRequest, NoOptOuts, OptOutIndex, OptOutReplicator, ReplicateError, ReplicateFuture};
pub use request::{BodyReadTimeout, MAX_BODY_BYTES};
pub use state::{ApiConfig, AppState, AppStateBuilder, Health, Serving};

/// The public API on one router: every route of the reference, CORS, metrics and the 404 page.
///
/// Layers, outermost first: metrics (every answer is counted, shed ones too), CORS (a shed 503
/// carries the same CORS headers as any answer), then admission control on the API routes only.
/// `/ops/healthcheck` and the 404 page are outside admission: they cost nothing, and a probe must
/// see a saturated operator as alive. Each call builds its own admission limits, shared by every
/// clone of the returned router.
pub fn router(state: AppState) -> Router {
    let config = state.config().clone();
    let admission = Arc::new(admission::Admission::new(
        config.max_concurrent_requests,
        config.max_queued_requests,
        Arc::clone(state.metrics()),
    ));
    let mut api = Router::new()
        .route("/v2/token/generate", post(v2::token_generate::handle))
        .route("/v2/token/refresh", post(v2::token_refresh::handle))
        .route("/v2/token/validate", post(v2::token_validate::handle))
        .route("/v2/token/logout", post(v2::token_logout::handle))
        .route("/v2/identity/map", post(v2::identity_map_v2::handle))
        .route("/v3/identity/map", post(v2::identity_map_v3::handle))
        .route("/v2/identity/buckets", post(v2::identity_buckets::handle))
        .route("/v2/key/latest", post(v2::keys::latest))
        .route("/v2/key/sharing", post(v2::keys::sharing))
        .route("/v2/key/bidstream", post(v2::keys::bidstream));
    if config.optout_status_api_enabled {
        api = api.route("/v2/optout/status", post(v2::optout_status::handle));
    }
    if config.client_side_token_generate {
        api = api.route("/v2/token/client-generate", post(v2::token_client_generate::handle));
    }
    // `route_layer`: only the routes above; the healthcheck and the fallback come after it.
    let api = api
        .route_layer(axum::middleware::from_fn_with_state(admission, admission::admit))
        .route("/ops/healthcheck", get(ops::healthcheck));
    let metrics = Arc::clone(state.metrics());
    api.fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(cors::cors))
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::record))
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        "<html><body><h1>Resource not found</h1></body></html>",
    )
        .into_response()
}
