//! The API end to end in process, on one core: each request goes through the real axum router
//! with `tower::ServiceExt::oneshot` (body limit, bearer authentication, v2 envelope open,
//! handler, JSON, envelope seal, base64), everything but the socket and HTTP parsing.
//! - `api_map`: `POST /v3/identity/map` and `POST /v2/identity/map`, 5,000 distinct email hashes
//!   per request (the documented maximum batch), 20 different requests in turn, so 100,000
//!   distinct identities;
//! - `api`: `POST /v2/token/generate` (a different email each time) and `POST /v2/key/sharing`;
//! - `sha256_floor`: raw SHA-256 of the two input sizes every identity hashes.
//!
//! The serving state is built as the operator builds it in local mode: the bundled store
//! (`testdata/local-store`: clients, keysets, keys, runtime config), but with a production-size
//! salt table (1,048,576 buckets, made in memory by `uid2-store/benches/synthetic`) and a
//! 10,000,000-entry opt-out index, so that every identity's bucket and opt-out reads miss the
//! caches as in production. Requests are the site-999 test client's, sealed as base64 text as the
//! SDKs send them; the clock is fixed at start so envelopes never go stale during a long run.
//!
//! After the groups, a summary prints each map path's time per identity, identities/s on one core
//! and its ratio to the SHA-256 floor for the two hashes each identity needs, from this run's
//! numbers, against the targets (≥ 1.5 M identities/s per core, or ≥ 35 % of the floor).
//!
//! ```text
//! cargo bench -p uid2-api --bench api_in_process
//! ```

#[path = "../../uid2-protocol/benches/measurement/mod.rs"]
mod measurement;
#[path = "../../uid2-store/benches/synthetic/mod.rs"]
mod synthetic;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use axum::body::{to_bytes, Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::Router;
use criterion::{Criterion, SamplingMode, Throughput};
use measurement::floor::Floor;
use measurement::Tally;
use serde_json::Value;
use tokio::runtime::Runtime;
use tower::ServiceExt;
use uid2_api::{router, ApiConfig, AppState, OptOutIndex, Serving};
use uid2_protocol::base64;
use uid2_protocol::clock::{Clock, FixedClock, SystemClock};
use uid2_protocol::crypto::{sha256, SecretKey};
use uid2_protocol::entropy::OsEntropy;
use uid2_protocol::envelope::client::{open_response, seal_request};
use uid2_store::{DirSource, Loaded, Snapshot, StoreSelection};

/// The site-999 test client (MAPPER, GENERATOR, SHARER), from `testdata/local-store`.
const KEY: &str = "UID2-C-L-999-fCXrMM.fsR3mDqAXELtWWMS+xG1s7RdgRTMqdOH2qaAo=";
const SECRET: &str = "DzBzbjTJcYL0swDtFs2krRNu+g1Eokm2tBU4dEuD0Wk=";
/// The documented maximum identity map batch.
const MAP_BATCH: usize = 5_000;
/// Map requests taken in turn, each with its own identities.
const MAP_REQUESTS: usize = 20;
/// Token generate requests taken in turn, each for its own email.
const GENERATE_REQUESTS: usize = 4096;
/// The targets for a map request in process, per identity on one core.
const TARGET_IDENTITIES_PER_SECOND: f64 = 1.5e6;
const TARGET_FLOOR_RATIO: f64 = 0.35;

/// The store crate's opt-out index behind the API's trait, as the operator's wiring puts it.
struct StoreOptOuts(uid2_store::optout::OptOutIndex);

impl OptOutIndex for StoreOptOuts {
    fn opted_out_since(&self, first_level_hash: &[u8; 32]) -> Option<i64> {
        self.0.opted_out_since(first_level_hash)
    }

    fn advertising_id_opted_out_since(&self, advertising_id: &str) -> Option<i64> {
        self.0.advertising_id_opted_out_since(advertising_id)
    }
}

/// The router over a production-size serving state, and the fixed time it runs at.
fn operator() -> (Router, i64) {
    let now_ms = SystemClock.now_ms();
    let started = Instant::now();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/local-store");
    let mut snapshot =
        Snapshot::load(&DirSource::new(dir), StoreSelection::default(), now_ms).expect("the local store loads");
    snapshot.salts = Loaded::new(
        snapshot.salts.version + 1,
        synthetic::salt_store(synthetic::BUCKETS, now_ms),
    );
    let (optouts, _) = synthetic::optout_index(synthetic::OPTOUT_ENTRIES, 0);
    println!(
        "serving state: {} salt buckets, {} opt-outs, built in {:.1} s",
        snapshot.salts.snapshot_at(now_ms).len(),
        optouts.len(),
        started.elapsed().as_secs_f64()
    );
    let config = ApiConfig::default();
    let serving = Serving::new(Arc::new(snapshot), config.identity_scope);
    let state = AppState::builder(
        config,
        Arc::new(ArcSwapOption::from_pointee(serving)),
        Arc::new(StoreOptOuts(optouts)),
        Arc::new(FixedClock::at(now_ms)),
        Arc::new(OsEntropy),
    )
    .build();
    (router(state), now_ms)
}

/// A v2 envelope of `json` as the SDKs send it: sealed with the client secret, base64 text.
fn sealed_body(json: &str, now_ms: i64, seq: usize) -> Bytes {
    let secret = SecretKey::from_base64(SECRET).expect("fixture secret");
    // Distinct IVs and nonces, as a client draws them.
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(&(seq as u64).to_be_bytes());
    let nonce = (seq as u64).to_le_bytes();
    let envelope = seal_request(&secret, now_ms, &nonce, json.as_bytes(), &iv);
    Bytes::from(base64::encode(&envelope))
}

fn request(path: &str, body: &Bytes) -> Request<Body> {
    Request::post(path)
        .header("Authorization", format!("Bearer {KEY}"))
        .body(Body::from(body.clone()))
        .expect("request builds")
}

/// Sends one request; the status and the body as sent.
async fn send(app: &Router, path: &str, body: &Bytes) -> (StatusCode, Bytes) {
    let response = app
        .clone()
        .oneshot(request(path, body))
        .await
        .expect("the router answers");
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body collects");
    (status, bytes)
}

/// Sends one request outside the measurement and returns the decrypted `body` of its answer,
/// failing loudly on anything but a success: a bench that measures errors measures nothing.
fn checked(runtime: &Runtime, app: &Router, path: &str, body: &Bytes) -> Value {
    let (status, bytes) = runtime.block_on(send(app, path, body));
    assert_eq!(status, StatusCode::OK, "{path}: {}", String::from_utf8_lossy(&bytes));
    let secret = SecretKey::from_base64(SECRET).expect("fixture secret");
    let raw = base64::decode(&bytes).expect("a base64 answer");
    let opened = open_response(&secret, &raw).expect("the answer opens with the client secret");
    let mut json: Value = serde_json::from_slice(&opened.json).expect("JSON answer");
    assert_eq!(json["status"], "success", "{path}");
    json["body"].take()
}

/// Runs `path` with `bodies[i % len]` for `iters` requests on `runtime`; panics on a non-200.
fn timed_requests(runtime: &Runtime, app: &Router, path: &str, bodies: &[Bytes], iters: u64) -> std::time::Duration {
    runtime.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            let body = &bodies[(i % bodies.len() as u64) as usize];
            let (status, bytes) = send(app, path, body).await;
            assert_eq!(status, StatusCode::OK);
            black_box(bytes);
        }
        start.elapsed()
    })
}

fn main() {
    let mut c = measurement::criterion();
    let tally = Tally::default();
    // One thread: the figures are per core, and the operator runs handlers on its workers.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (app, now_ms) = operator();
    let floor = Floor::for_salts(synthetic::FIRST_LEVEL_SALT.len(), synthetic::BUCKET_SALT_LEN);

    identity_maps(&mut c, &tally, &runtime, &app, now_ms);
    small_requests(&mut c, &tally, &runtime, &app, now_ms);
    floor.bench(&mut c, &tally);
    c.final_summary();

    if measurement::measuring() {
        let per_identity = |id: &str| tally.ns_per_op(id).map(|ns| ns / MAP_BATCH as f64);
        let rows = [
            (
                "POST /v3/identity/map (5,000 email hashes)",
                per_identity("v3_identity_map_5000"),
            ),
            (
                "POST /v2/identity/map (5,000 email hashes)",
                per_identity("v2_identity_map_5000"),
            ),
        ];
        floor.print_ratios("uid2-api: identity map in process through the router", &tally, &rows);
        let floor_ns = floor.per_identity_ns(&tally);
        for (path, ns) in rows {
            let (Some(ns), Some(floor_ns)) = (ns, floor_ns) else {
                continue;
            };
            let (rate, ratio) = (1e9 / ns, floor_ns / ns);
            let met = rate >= TARGET_IDENTITIES_PER_SECOND || ratio >= TARGET_FLOOR_RATIO;
            println!(
                "target (>= 1.5 M identities/s per core or >= 35 % of the floor) {}: {path}",
                if met { "met" } else { "NOT met" }
            );
        }
        tally.print_all("uid2-api (ns per request)");
    }
}

fn identity_maps(c: &mut Criterion, tally: &Tally, runtime: &Runtime, app: &Router, now_ms: i64) {
    // Both versions accept `{"email_hash":[…]}`, so they are sent the same bodies.
    let bodies: Vec<Bytes> = (0..MAP_REQUESTS)
        .map(|r| {
            let hashes: Vec<String> = (0..MAP_BATCH)
                .map(|i| {
                    let email = format!("user{}@example.com", r * MAP_BATCH + i);
                    format!("\"{}\"", base64::encode(&sha256(&[email.as_bytes()])))
                })
                .collect();
            sealed_body(&format!(r#"{{"email_hash":[{}]}}"#, hashes.join(",")), now_ms, r)
        })
        .collect();
    let v3 = checked(runtime, app, "/v3/identity/map", &bodies[0]);
    let mapped = v3["email_hash"]
        .as_array()
        .map_or(0, |items| items.iter().filter(|i| i["u"].is_string()).count());
    assert_eq!(mapped, MAP_BATCH, "v3 maps every identity");
    let v2 = checked(runtime, app, "/v2/identity/map", &bodies[0]);
    assert_eq!(
        v2["mapped"].as_array().map(Vec::len),
        Some(MAP_BATCH),
        "v2 maps every identity"
    );

    let mut group = c.benchmark_group("api_map");
    // Milliseconds per request: a few hundred per run, taken as equal-sized samples.
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    group.throughput(Throughput::Elements(MAP_BATCH as u64));
    for (id, path) in [
        ("v3_identity_map_5000", "/v3/identity/map"),
        ("v2_identity_map_5000", "/v2/identity/map"),
    ] {
        tally.bench(&mut group, id, |iters| {
            timed_requests(runtime, app, path, &bodies, iters)
        });
    }
    group.finish();
}

fn small_requests(c: &mut Criterion, tally: &Tally, runtime: &Runtime, app: &Router, now_ms: i64) {
    let generate: Vec<Bytes> = (0..GENERATE_REQUESTS)
        .map(|i| sealed_body(&format!(r#"{{"email":"publisher.user{i}@example.com"}}"#), now_ms, i))
        .collect();
    let sharing = [sealed_body("{}", now_ms, 0)];
    let token = checked(runtime, app, "/v2/token/generate", &generate[0]);
    assert!(token["advertising_token"].is_string(), "generate mints a token");
    let keys = checked(runtime, app, "/v2/key/sharing", &sharing[0]);
    assert!(
        keys["keys"].as_array().is_some_and(|k| !k.is_empty()),
        "sharing lists keys"
    );

    let mut group = c.benchmark_group("api");
    group.throughput(Throughput::Elements(1));
    tally.bench(&mut group, "token_generate", |iters| {
        timed_requests(runtime, app, "/v2/token/generate", &generate, iters)
    });
    tally.bench(&mut group, "key_sharing", |iters| {
        timed_requests(runtime, app, "/v2/key/sharing", &sharing, iters)
    });
    group.finish();
}
