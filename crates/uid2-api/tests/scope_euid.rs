//! The same operator in EUID scope: token prefixes, scope bits, raw UIDs, key responses, error
//! hints and the TCF consent rule (`api.md` §5.1.2), driven through the router in process.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use uid2_api::{router, ApiConfig, AppState, NoOptOuts, Serving};
use uid2_protocol::base64;
use uid2_protocol::clock::{Clock, SystemClock};
use uid2_protocol::crypto::SecretKey;
use uid2_protocol::entropy::OsEntropy;
use uid2_protocol::envelope::client::{open_response, seal_request};
use uid2_protocol::identity::{first_level_hash, Dii, IdentityScope, IdentityType};
use uid2_protocol::token::advertising::AdvertisingToken;
use uid2_store::{DirSource, Snapshot, StoreSelection};

const KEY: &str = "UID2-C-L-999-fCXrMM.fsR3mDqAXELtWWMS+xG1s7RdgRTMqdOH2qaAo=";
const SECRET: &str = "DzBzbjTJcYL0swDtFs2krRNu+g1Eokm2tBU4dEuD0Wk=";
const TCF_SUFFICIENT: &str = "CPehNtWPehNtWABAMBFRACBoALAAAEJAAIYgAKwAQAKgArABAAqAAA";
const TCF_NO_PURPOSE_1: &str = "CPehXK9PehXK9ABAMBFRACBoADAAAEJAAIYgAKwAQAKgArABAAqAAA";

struct Operator {
    app: axum::Router,
    snapshot: Arc<Snapshot>,
}

fn operator(scope: IdentityScope, identity_v3: bool) -> Operator {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/local-store");
    let selection = StoreSelection {
        sites_and_keypairs: true,
        ..StoreSelection::default()
    };
    let snapshot =
        Arc::new(Snapshot::load(&DirSource::new(dir), selection, SystemClock.now_ms()).expect("store loads"));
    let config = ApiConfig {
        identity_scope: scope,
        identity_v3,
        client_side_token_generate: true,
        ..ApiConfig::default()
    };
    let serving = Arc::new(ArcSwapOption::from_pointee(Serving::new(Arc::clone(&snapshot), scope)));
    let state = AppState::builder(
        config,
        serving,
        Arc::new(NoOptOuts),
        Arc::new(SystemClock),
        Arc::new(OsEntropy),
    )
    .build();
    Operator {
        app: router(state),
        snapshot,
    }
}

/// Posts an enveloped request as the site-999 client; returns status and the decrypted JSON
/// (200) or the plain error JSON.
async fn post(op: &Operator, path: &str, payload: Value) -> (StatusCode, Value) {
    let secret = SecretKey::from_base64(SECRET).expect("fixture secret");
    let nonce = [7u8; 8];
    let envelope = seal_request(
        &secret,
        SystemClock.now_ms(),
        &nonce,
        payload.to_string().as_bytes(),
        &[1; 12],
    );
    let request = Request::post(path)
        .header("Authorization", format!("Bearer {KEY}"))
        .body(Body::from(base64::encode(&envelope)))
        .expect("request builds");
    let response = op.app.clone().oneshot(request).await.expect("router answers");
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    if status != StatusCode::OK {
        return (status, serde_json::from_slice(&body).unwrap_or(Value::Null));
    }
    let raw = base64::decode(&body).expect("base64 response");
    let opened = open_response(&secret, &raw).expect("response decrypts with the client secret");
    assert_eq!(opened.nonce, nonce, "nonce echoed");
    (status, serde_json::from_slice(&opened.json).expect("json"))
}

#[tokio::test]
async fn euid_tokens_carry_the_euid_scope() {
    let op = operator(IdentityScope::Euid, true);
    for (payload, prefix, id_type) in [
        (json!({"email": "someone@example.com"}), "E4", IdentityType::Email),
        (json!({"phone": "+15551234567"}), "F4", IdentityType::Phone),
    ] {
        let (status, body) = post(&op, "/v2/token/generate", payload).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "success");
        let token = body["body"]["advertising_token"].as_str().expect("token");
        assert!(token.starts_with(prefix), "{token}");
        let decoded = AdvertisingToken::decode(token, &op.snapshot.key_manager()).expect("decodes");
        assert_eq!((decoded.scope, decoded.id_type), (IdentityScope::Euid, id_type));
        let envelope = body["body"]["refresh_token"].as_str().expect("refresh token");
        assert_eq!(envelope.len(), 388);
        assert_eq!(
            base64::decode(envelope).expect("b64")[0],
            0x10,
            "refresh envelope scope byte"
        );
    }
}

#[tokio::test]
async fn euid_raw_uids_are_v3_with_the_euid_prefix() {
    let op = operator(IdentityScope::Euid, true);
    let (status, body) = post(
        &op,
        "/v3/identity/map",
        json!({"email": ["someone@example.com"], "phone": ["+15551234567"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let email_uid = base64::decode(body["body"]["email"][0]["u"].as_str().expect("u")).expect("b64");
    let phone_uid = base64::decode(body["body"]["phone"][0]["u"].as_str().expect("u")).expect("b64");
    assert_eq!(email_uid.len(), 33);
    // Salt buckets give v3 (`0x10`/`0x14`); key-material buckets give v4 whose metadata byte
    // carries the EUID bit (test environment: `0x30`/`0x34`). Which one depends on the bucket.
    let now = SystemClock.now_ms();
    for (dii, uid, id_type) in [
        (Dii::Email("someone@example.com"), &email_uid, IdentityType::Email),
        (Dii::Phone("+15551234567"), &phone_uid, IdentityType::Phone),
    ] {
        let hash = dii.to_identity().expect("valid").hash;
        let flh = first_level_hash(&hash, op.snapshot.salts.first_level_salt());
        let entry = op.snapshot.salts.entry_for(&flh, now);
        let expected = match entry.current_salt() {
            Some(_) => 0x10 | (id_type.bits() << 2),
            None => 0x30 | (id_type.bits() << 2),
        };
        assert_eq!(uid[0], expected, "{id_type:?}");
    }
}

#[tokio::test]
async fn euid_key_responses_and_error_hints_name_euid() {
    let op = operator(IdentityScope::Euid, true);
    let (status, body) = post(&op, "/v2/key/bidstream", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["body"]["identity_scope"], "EUID");

    let request = Request::post("/v2/token/generate")
        .header("Authorization", format!("Bearer {KEY}"))
        .body(Body::from("not base64!"))
        .expect("request builds");
    let response = op.app.clone().oneshot(request).await.expect("answers");
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(
        text.contains("https://euid.eu/docs/getting-started/gs-encryption-decryption"),
        "{text}"
    );
}

#[tokio::test]
async fn euid_applies_the_tcf_consent_rule() {
    let op = operator(IdentityScope::Euid, true);
    let email = "consent@example.com";
    let (status, body) = post(
        &op,
        "/v2/token/generate",
        json!({"email": email, "tcf_consent_string": TCF_SUFFICIENT}),
    )
    .await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("success")));

    let (status, body) = post(
        &op,
        "/v2/token/generate",
        json!({"email": email, "tcf_consent_string": TCF_NO_PURPOSE_1}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "insufficient_user_consent"}));

    for bad in [json!("invalid_consent_string"), json!("")] {
        let (status, body) = post(
            &op,
            "/v2/token/generate",
            json!({"email": email, "tcf_consent_string": bad}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({"message": "User consent is invalid", "status": "client_error"})
        );
    }
}

#[tokio::test]
async fn uid2_ignores_consent_strings() {
    let op = operator(IdentityScope::Uid2, false);
    let (status, body) = post(
        &op,
        "/v2/token/generate",
        json!({"email": "consent@example.com", "tcf_consent_string": "garbage"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let token = body["body"]["advertising_token"].as_str().expect("token");
    assert!(token.starts_with("A4"), "{token}");
}
