//! Prometheus metrics, named like the reference's so existing dashboards keep working.
//!
//! Series (all carry `application="uid2-operator"`):
//! - `uid2_http_requests_total{api_contact,site_id,site_name,status,method,path}`;
//! - `vertx_http_server_requests_total{code,method,path}` and the latency histogram
//!   `vertx_http_server_response_time_seconds{code,method,path}`;
//! - `uid2_token_response_status_count_total{site_id,site_name,token_endpoint,
//!   token_response_status,advertising_token_version,cstg,platform_type}`;
//! - `uid2_token_validate_total{site_id,site_name,result}`;
//! - `uid2_operator_identity_map_inputs{api_contact,path,dii_type}` (histogram of batch sizes),
//!   `uid2_operator_identity_map_unmapped_total{api_contact,reason,path}`,
//!   `uid2_operator_identity_map_unmapped_requests_total{api_contact,path}`;
//! - `uid2_operator_optout_status_input_size` / `_optout_size{api_contact}` (histograms);
//! - `uid2_refresh_token_received_count_total{site_id,refresh_token_version}`;
//! - admission control (`admission.rs`), this operator's own: `uid2_operator_requests_shed_total`
//!   (answered 503 because the processing and waiting limits were full), and the gauges
//!   `uid2_operator_requests_processing` and `uid2_operator_requests_waiting`.
//!
//! Label values come from bounded sets only: route templates (unknown paths are `/unknown`),
//! site ids and contacts of configured clients, fixed status words. Never request content.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::auth::Caller;
use crate::state::Serving;

/// Who a response was for, attached to it by the handlers for the metrics layer.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResponseMeta {
    pub site_id: Option<i32>,
    pub site_name: Option<String>,
    pub contact: Option<String>,
}

impl ResponseMeta {
    pub fn for_caller(caller: &Caller, serving: &Serving) -> Self {
        Self {
            site_id: Some(caller.site_id),
            site_name: Some(site_name(serving, Some(caller.site_id))),
            contact: Some(caller.contact.clone()),
        }
    }

    pub fn for_site(site_id: i32, serving: &Serving) -> Self {
        Self {
            site_id: Some(site_id),
            site_name: Some(site_name(serving, Some(site_id))),
            contact: None,
        }
    }
}

pub(crate) fn site_name(serving: &Serving, site_id: Option<i32>) -> String {
    site_id
        .and_then(|id| serving.site(id))
        .map(|s| s.name.clone())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    api_contact: String,
    site_id: String,
    site_name: String,
    status: String,
    method: String,
    path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    code: String,
    method: String,
    path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    site_id: String,
    site_name: String,
    token_endpoint: String,
    token_response_status: String,
    advertising_token_version: String,
    cstg: String,
    platform_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ValidateLabels {
    site_id: String,
    site_name: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MapInputLabels {
    api_contact: String,
    path: String,
    dii_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UnmappedLabels {
    api_contact: String,
    reason: String,
    path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContactPathLabels {
    api_contact: String,
    path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContactLabels {
    api_contact: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshVersionLabels {
    site_id: String,
    refresh_token_version: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

fn size_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 4.0, 9))
}

/// Which endpoint a token response came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TokenEndpoint {
    Generate,
    Refresh,
    ClientSideGenerate,
}

impl TokenEndpoint {
    fn name(self) -> &'static str {
        match self {
            Self::Generate => "GenerateV2",
            Self::Refresh => "RefreshV2",
            Self::ClientSideGenerate => "ClientSideTokenGenerateV2",
        }
    }
}

/// Where a token request came from, as the reference classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Platform {
    InApp,
    HasOriginHeader,
    Other,
}

impl Platform {
    pub fn of(headers: &HeaderMap) -> Self {
        let client_version = headers.get("x-uid2-client-version").and_then(|v| v.to_str().ok());
        if client_version.is_some_and(|v| ["Android", "ios", "tvos"].iter().any(|p| v.contains(p))) {
            return Self::InApp;
        }
        if headers.contains_key(axum::http::header::ORIGIN) {
            Self::HasOriginHeader
        } else {
            Self::Other
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::InApp => "InApp",
            Self::HasOriginHeader => "HasOriginHeader",
            Self::Other => "Other",
        }
    }
}

/// The operator's metric families and the registry that exposes them.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    server_requests: Family<ServerLabels, Counter>,
    response_time: HistogramFamily<ServerLabels>,
    token_responses: Family<TokenLabels, Counter>,
    validate: Family<ValidateLabels, Counter>,
    map_inputs: HistogramFamily<MapInputLabels>,
    map_unmapped: Family<UnmappedLabels, Counter>,
    map_unmapped_requests: Family<ContactPathLabels, Counter>,
    optout_status_inputs: HistogramFamily<ContactLabels>,
    optout_status_optouts: HistogramFamily<ContactLabels>,
    refresh_received: Family<RefreshVersionLabels, Counter>,
    requests_shed: Counter,
    requests_processing: Gauge,
    requests_waiting: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_labels(std::iter::once((
            std::borrow::Cow::Borrowed("application"),
            std::borrow::Cow::Borrowed("uid2-operator"),
        )));
        let http_requests = Family::default();
        registry.register(
            "uid2_http_requests",
            "HTTP requests by client, site, status and path",
            http_requests.clone(),
        );
        let server_requests = Family::default();
        registry.register(
            "vertx_http_server_requests",
            "HTTP requests by code, method and path",
            server_requests.clone(),
        );
        let response_time: HistogramFamily<ServerLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "vertx_http_server_response_time_seconds",
            "Request processing time by code, method and path",
            response_time.clone(),
        );
        let token_responses = Family::default();
        registry.register(
            "uid2_token_response_status_count",
            "Token endpoint responses by site, endpoint and outcome",
            token_responses.clone(),
        );
        let validate = Family::default();
        registry.register("uid2_token_validate", "Token validate results", validate.clone());
        let map_inputs: HistogramFamily<MapInputLabels> = Family::new_with_constructor(size_histogram);
        registry.register(
            "uid2_operator_identity_map_inputs",
            "Number of identifiers passed to identity map",
            map_inputs.clone(),
        );
        let map_unmapped = Family::default();
        registry.register(
            "uid2_operator_identity_map_unmapped",
            "Identifiers that could not be mapped, by reason",
            map_unmapped.clone(),
        );
        let map_unmapped_requests = Family::default();
        registry.register(
            "uid2_operator_identity_map_unmapped_requests",
            "Identity map requests with at least one unmapped identifier",
            map_unmapped_requests.clone(),
        );
        let optout_status_inputs: HistogramFamily<ContactLabels> = Family::new_with_constructor(size_histogram);
        registry.register(
            "uid2_operator_optout_status_input_size",
            "Advertising ids per opt-out status request",
            optout_status_inputs.clone(),
        );
        let optout_status_optouts: HistogramFamily<ContactLabels> = Family::new_with_constructor(size_histogram);
        registry.register(
            "uid2_operator_optout_status_optout_size",
            "Opted-out advertising ids per opt-out status request",
            optout_status_optouts.clone(),
        );
        let refresh_received = Family::default();
        registry.register(
            "uid2_refresh_token_received_count",
            "Refresh tokens received by version",
            refresh_received.clone(),
        );
        let requests_shed = Counter::default();
        registry.register(
            "uid2_operator_requests_shed",
            "API requests answered 503 because the processing and waiting limits were full",
            requests_shed.clone(),
        );
        let requests_processing = Gauge::default();
        registry.register(
            "uid2_operator_requests_processing",
            "API requests being processed (reading the body included)",
            requests_processing.clone(),
        );
        let requests_waiting = Gauge::default();
        registry.register(
            "uid2_operator_requests_waiting",
            "API requests waiting for a processing turn",
            requests_waiting.clone(),
        );
        Self {
            registry,
            http_requests,
            server_requests,
            response_time,
            token_responses,
            validate,
            map_inputs,
            map_unmapped,
            map_unmapped_requests,
            optout_status_inputs,
            optout_status_optouts,
            refresh_received,
            requests_shed,
            requests_processing,
            requests_waiting,
        }
    }
}

/// The route templates the operator serves; anything else is counted as `/unknown`.
const KNOWN_PATHS: &[&str] = &[
    "/v2/token/generate",
    "/v2/token/refresh",
    "/v2/token/validate",
    "/v2/token/logout",
    "/v2/token/client-generate",
    "/v2/identity/map",
    "/v3/identity/map",
    "/v2/identity/buckets",
    "/v2/optout/status",
    "/v2/key/latest",
    "/v2/key/sharing",
    "/v2/key/bidstream",
    "/ops/healthcheck",
];

pub(crate) fn path_label(path: &str) -> &'static str {
    KNOWN_PATHS.iter().find(|p| **p == path).copied().unwrap_or("/unknown")
}

impl Metrics {
    /// Prometheus text exposition of every series.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Registers extra collectors (the sync layer's store metrics) alongside the API's.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub(crate) fn token_response(
        &self,
        endpoint: TokenEndpoint,
        meta: &ResponseMeta,
        status: &str,
        version: Option<&str>,
        platform: Platform,
    ) {
        self.token_responses
            .get_or_create(&TokenLabels {
                site_id: site_label(meta.site_id),
                site_name: meta.site_name.clone().unwrap_or_else(|| "unknown".into()),
                token_endpoint: endpoint.name().into(),
                token_response_status: status.into(),
                advertising_token_version: version.unwrap_or("null").into(),
                cstg: matches!(endpoint, TokenEndpoint::ClientSideGenerate).to_string(),
                platform_type: platform.name().into(),
            })
            .inc();
    }

    pub(crate) fn validate_result(&self, meta: &ResponseMeta, result: &str) {
        self.validate
            .get_or_create(&ValidateLabels {
                site_id: site_label(meta.site_id),
                site_name: meta.site_name.clone().unwrap_or_else(|| "unknown".into()),
                result: result.into(),
            })
            .inc();
    }

    pub(crate) fn identity_map(&self, contact: &str, path: &str, counts: &[(&str, usize)], invalid: u64, optout: u64) {
        for (dii_type, count) in counts.iter().filter(|(_, c)| *c > 0) {
            self.map_inputs
                .get_or_create(&MapInputLabels {
                    api_contact: contact.into(),
                    path: path.into(),
                    dii_type: (*dii_type).into(),
                })
                .observe(*count as f64);
        }
        for (reason, n) in [("invalid", invalid), ("optout", optout)] {
            if n > 0 {
                self.map_unmapped
                    .get_or_create(&UnmappedLabels {
                        api_contact: contact.into(),
                        reason: reason.into(),
                        path: path.into(),
                    })
                    .inc_by(n);
            }
        }
        if invalid + optout > 0 {
            self.map_unmapped_requests
                .get_or_create(&ContactPathLabels {
                    api_contact: contact.into(),
                    path: path.into(),
                })
                .inc();
        }
    }

    pub(crate) fn optout_status(&self, contact: &str, inputs: usize, optouts: usize) {
        let labels = ContactLabels {
            api_contact: contact.into(),
        };
        self.optout_status_inputs.get_or_create(&labels).observe(inputs as f64);
        self.optout_status_optouts
            .get_or_create(&labels)
            .observe(optouts as f64);
    }

    pub(crate) fn refresh_token_received(&self, site_id: Option<i32>, version: &str) {
        self.refresh_received
            .get_or_create(&RefreshVersionLabels {
                site_id: site_label(site_id),
                refresh_token_version: version.into(),
            })
            .inc();
    }

    pub(crate) fn request_shed(&self) {
        self.requests_shed.inc();
    }

    pub(crate) fn request_processing(&self, delta: i64) {
        self.requests_processing.inc_by(delta);
    }

    pub(crate) fn request_waiting(&self, delta: i64) {
        self.requests_waiting.inc_by(delta);
    }

    fn http_request(&self, meta: &ResponseMeta, status: u16, method: &str, path: &'static str, seconds: f64) {
        let code = status.to_string();
        self.http_requests
            .get_or_create(&HttpLabels {
                api_contact: meta.contact.clone().unwrap_or_else(|| "unknown".into()),
                site_id: site_label(meta.site_id),
                site_name: meta.site_name.clone().unwrap_or_else(|| "unknown".into()),
                status: code.clone(),
                method: method.into(),
                path: path.into(),
            })
            .inc();
        // As in the reference's Vert.x metrics, 404s are not recorded per path.
        if status != 404 {
            let labels = ServerLabels {
                code,
                method: method.into(),
                path: path.into(),
            };
            self.server_requests.get_or_create(&labels).inc();
            self.response_time.get_or_create(&labels).observe(seconds);
        }
    }
}

fn site_label(site_id: Option<i32>) -> String {
    site_id.map(|s| s.to_string()).unwrap_or_else(|| "null".into())
}

/// Counts every request and its latency once the response is known.
pub(crate) async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let path = path_label(request.uri().path());
    let response = next.run(request).await;
    let meta = response.extensions().get::<ResponseMeta>().cloned().unwrap_or_default();
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics.http_request(&meta, status, &method, path, elapsed.as_secs_f64());
    // The route label, never the raw URI: unknown paths are `/unknown`, and nothing from the
    // request body or headers is logged.
    tracing::debug!(
        method = %method,
        route = path,
        status,
        micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        site_id = meta.site_id,
        "request"
    );
    response
}
