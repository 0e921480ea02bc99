//! The operator's public API in process: the real `uid2_api::router` over the store bundled for
//! local mode (every store enabled, client-side token generation on), a clock fixed at
//! [`NOW_MS`] and zero-filled randomness, so a run is repeatable. Requests go through
//! `tower::ServiceExt::oneshot` on a current-thread runtime: body limit, authentication,
//! envelope, handler and sealing all run; only the socket and HTTP parsing are left out.
//!
//! Built once per fuzzing process, on first use.

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwapOption;
use axum::body::{to_bytes, Body};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;
use uid2_api::{router, ApiConfig, AppState, OptOutIndex, Serving};
use uid2_protocol::clock::FixedClock;
use uid2_protocol::crypto::SecretKey;
use uid2_protocol::entropy::ScriptedEntropy;
use uid2_protocol::envelope::client::{open_response, seal_request};
use uid2_store::{Snapshot, StoreSelection};

/// 2025-06-15: every bundled key is active and the second salt snapshot is in force.
pub const NOW_MS: i64 = 1_750_000_000_000;

/// The bundled site-999 client (MAPPER, GENERATOR, SHARER, …) and its envelope secret.
pub const CLIENT_KEY: &str = "UID2-C-L-999-fCXrMM.fsR3mDqAXELtWWMS+xG1s7RdgRTMqdOH2qaAo=";
pub const CLIENT_SECRET: &str = "DzBzbjTJcYL0swDtFs2krRNu+g1Eokm2tBU4dEuD0Wk=";

/// The bundled client-side keypair (site 123, domains `localhost` and `uidapi.com`).
pub const CSTG_SUBSCRIPTION_ID: &str = "4WvryDGbR5";
pub const CSTG_ORIGIN: &str = "http://localhost";

/// Opt-outs for every first-level hash whose first byte is below 16 (one identity in 16), so
/// the opted-out branches of the handlers are reached too.
struct SomeOptOuts;

impl OptOutIndex for SomeOptOuts {
    fn opted_out_since(&self, first_level_hash: &[u8; 32]) -> Option<i64> {
        (first_level_hash[0] < 16).then_some(1_700_000_000)
    }

    fn advertising_id_opted_out_since(&self, advertising_id: &str) -> Option<i64> {
        advertising_id.starts_with('A').then_some(1_700_000_000)
    }
}

pub struct Operator {
    runtime: tokio::runtime::Runtime,
    router: Router,
    pub snapshot: Arc<Snapshot>,
    pub config: ApiConfig,
}

/// What the router answered.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The process's operator.
pub fn operator() -> &'static Operator {
    static OPERATOR: OnceLock<Operator> = OnceLock::new();
    OPERATOR.get_or_init(Operator::build)
}

impl Operator {
    fn build() -> Self {
        let source = uid2_operator::local_store::source();
        let snapshot = Snapshot::load(&source, StoreSelection::all(), NOW_MS).expect("the bundled store loads");
        snapshot
            .check_ready(NOW_MS)
            .expect("the bundled store can serve at NOW_MS");
        let snapshot = Arc::new(snapshot);
        let config = ApiConfig {
            client_side_token_generate: true,
            ..ApiConfig::default()
        };
        let serving = Serving::new(Arc::clone(&snapshot), config.identity_scope);
        let state = AppState::builder(
            config.clone(),
            Arc::new(ArcSwapOption::from_pointee(serving)),
            Arc::new(SomeOptOuts),
            Arc::new(FixedClock::at(NOW_MS)),
            Arc::new(ScriptedEntropy::default()),
        )
        .build();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        Self {
            runtime,
            router: router(state),
            snapshot,
            config,
        }
    }

    /// POSTs `body` to `path`. Headers whose name or value is not valid HTTP are left out (the
    /// HTTP layer in front of the router would have refused them).
    pub fn post(&self, path: &str, headers: &[(&str, &[u8])], body: Vec<u8>) -> Answer {
        let mut request = Request::post(path)
            .body(Body::from(body))
            .expect("a POST request builds");
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
                request.headers_mut().append(name, value);
            }
        }
        self.runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("the router is infallible");
            let status = response.status();
            let headers = response.headers().clone();
            let body = to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("an in-memory body collects");
            Answer {
                status,
                headers,
                body: body.to_vec(),
            }
        })
    }
}

/// The site-999 client's envelope secret.
pub fn client_secret() -> SecretKey {
    SecretKey::from_base64(CLIENT_SECRET).expect("the bundled client secret is 32 bytes of base64")
}

/// A v2 request envelope of `json` at [`NOW_MS`], raw (for `application/octet-stream`) or base64.
pub fn seal_v2(json: &[u8], nonce: &[u8; 8], binary: bool) -> Vec<u8> {
    let envelope = seal_request(&client_secret(), NOW_MS, nonce, json, &[7; 12]);
    if binary {
        envelope
    } else {
        uid2_protocol::base64::encode(&envelope).into_bytes()
    }
}

/// Opens a 200 answer to an enveloped request: it must decrypt with the client secret, echo the
/// nonce and carry JSON. Panics otherwise, which the fuzzer reports.
pub fn open_v2(answer: &Answer, nonce: &[u8; 8], binary: bool) -> serde_json::Value {
    let raw = if binary {
        answer.body.clone()
    } else {
        uid2_protocol::base64::decode(&answer.body).expect("a text answer is base64")
    };
    let opened = open_response(&client_secret(), &raw).expect("the answer opens with the client secret");
    assert_eq!(&opened.nonce, nonce, "the answer echoes the request nonce");
    serde_json::from_slice(&opened.json).expect("the sealed answer is JSON")
}
