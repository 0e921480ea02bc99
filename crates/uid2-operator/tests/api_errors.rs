//! The public API's errors and edge behaviour, over real HTTP against the real operator.
//!
//! Every test starts its own operator in local mode (the bundled store: the reference's test data
//! plus keyset 99999 for site 999) on port 0 and talks to it as an SDK would. Expected statuses and
//! bodies are the Java reference's, as `shared/reference/api.md` gives them; the section of that
//! document is named beside each group. Where the operator deliberately differs from the reference
//! (`docs/compatibility.md`), the test asserts the operator's behaviour and says so.

mod harness;

use std::time::Duration;

use harness::*;
use reqwest::Method;
use serde_json::{json, Value};
use uid2_protocol::crypto::{gcm_open, gcm_seal_with_iv, sha256, SecretKey};
use uid2_protocol::cstg;
use uid2_protocol::entropy::OsEntropy;
use uid2_protocol::identity::{IdentityScope, IdentityType};
use uid2_protocol::token::refresh::RefreshToken;
use uid2_protocol::token::{OperatorIdentity, PublisherIdentity, TokenVersion};

const GENERATE: &str = "/v2/token/generate";
const REFRESH: &str = "/v2/token/refresh";
const VALIDATE: &str = "/v2/token/validate";
const LOGOUT: &str = "/v2/token/logout";
const CSTG: &str = "/v2/token/client-generate";
const MAP_V2: &str = "/v2/identity/map";
const MAP_V3: &str = "/v3/identity/map";
const BUCKETS: &str = "/v2/identity/buckets";
const OPTOUT_STATUS: &str = "/v2/optout/status";
const KEY_LATEST: &str = "/v2/key/latest";
const KEY_SHARING: &str = "/v2/key/sharing";
const KEY_BIDSTREAM: &str = "/v2/key/bidstream";

const POST_ROUTES: [&str; 12] = [
    GENERATE,
    REFRESH,
    VALIDATE,
    LOGOUT,
    CSTG,
    MAP_V2,
    MAP_V3,
    BUCKETS,
    OPTOUT_STATUS,
    KEY_LATEST,
    KEY_SHARING,
    KEY_BIDSTREAM,
];

fn b64(bytes: &[u8]) -> String {
    uid2_protocol::base64::encode(bytes)
}

fn sha256_b64(text: &str) -> String {
    b64(&sha256(&[text.as_bytes()]))
}

fn sha256_hex(text: &str) -> String {
    hex::encode(sha256(&[text.as_bytes()]))
}

fn auth(client: &Fixture) -> String {
    client.bearer()
}

/// An object's keys, sorted (independent of serde_json's `preserve_order`).
fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

fn without(mut value: Value, field: &str) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.remove(field);
    }
    value
}

/// Generates tokens for `email` with `client`; returns the decrypted success body.
async fn generate(op: &Operator, client: &Fixture, email: &str) -> Value {
    let response = op.v2_ok(GENERATE, client, &json!({ "email": email }).to_string()).await;
    assert_eq!(response["status"], "success", "generate {email}: {response}");
    response["body"].clone()
}

// ---------------------------------------------------------------------------------------------
// Envelope (api.md §3.1, §3.4, §3.5)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn envelope_body_missing_unencrypted_and_not_base64() {
    let op = Operator::start().await;

    let reply = op.v2_raw(GENERATE, &C999, "text/plain", Vec::new()).await;
    assert_client_error(&reply, "Invalid body: Body is missing.");

    // Plain JSON, short and long, is recognised as such.
    let reply = op
        .v2_raw(GENERATE, &C999, "application/json", r#"{"email":"test@example.com"}"#)
        .await;
    assert_client_error(&reply, UNENCRYPTED_JSON);

    // Base64 of JSON: under 45 bytes (too short) and over it (version byte '{').
    let short = b64(br#"{"email":"a@b.com"}"#);
    assert_client_error(&op.v2_raw(GENERATE, &C999, "text/plain", short).await, UNENCRYPTED_JSON);
    let long = b64(br#"{"email":"a.rather.long.address.for.a.test@example.com"}"#);
    assert_client_error(&op.v2_raw(GENERATE, &C999, "text/plain", long).await, UNENCRYPTED_JSON);

    let not_b64 = format!("Invalid body: Body is not valid base64.{HINT}");
    assert_client_error(
        &op.v2_raw(GENERATE, &C999, "text/plain", "this is not base64!").await,
        &not_b64,
    );
    // Java's basic decoder allows no whitespace: a trailing newline makes a good envelope invalid.
    let envelope = Envelope::now(&C999, r#"{"email":"test@example.com"}"#);
    let reply = op
        .v2_raw(GENERATE, &C999, "text/plain", format!("{}\n", envelope.base64()))
        .await;
    assert_client_error(&reply, &not_b64);
    // A JSON array is not "unencrypted JSON" (only an object is).
    assert_client_error(&op.v2_raw(GENERATE, &C999, "text/plain", "[1,2]").await, &not_b64);
}

#[tokio::test]
async fn envelope_too_short_bad_version_bad_secret() {
    let op = Operator::start().await;

    let too_short = format!("Invalid body: Body too short. Check encryption method.{HINT}");
    let reply = op.v2_raw(GENERATE, &C999, "text/plain", b64(&[1u8; 44])).await;
    assert_client_error(&reply, &too_short);

    // The version is reported as an unsigned byte.
    for version in [0u8, 2, 255] {
        let mut bytes = Envelope::now(&C999, "{}").bytes;
        bytes[0] = version;
        let reply = op.v2_raw(GENERATE, &C999, "text/plain", b64(&bytes)).await;
        assert_client_error(
            &reply,
            &format!("Invalid body: Invalid request envelope format version: received {version}, must be 1.{HINT}"),
        );
    }

    // Sealed with another client's secret, and a flipped ciphertext byte.
    let wrong = Envelope::seal(&C124.secret(), now_ms(), br#"{"email":"test@example.com"}"#);
    let bad_secret = format!("Invalid body: Check encryption key (ClientSecret).{HINT}");
    assert_client_error(
        &op.v2_raw(GENERATE, &C999, "text/plain", wrong.base64()).await,
        &bad_secret,
    );
    let mut tampered = Envelope::now(&C999, r#"{"email":"test@example.com"}"#).bytes;
    tampered[20] ^= 1;
    assert_client_error(
        &op.v2_raw(GENERATE, &C999, "text/plain", b64(&tampered)).await,
        &bad_secret,
    );
}

#[tokio::test]
async fn envelope_timestamp_window_is_about_two_minutes() {
    let op = Operator::start().await;
    let stale = "Invalid timestamp: Request too old or client time drift.";
    let secret = C999.secret();
    let body = br#"{"email":"test@example.com"}"#;

    for (offset_ms, accepted) in [
        (-130_000, false), // too old
        (-90_000, true),   // 60–119 s old is accepted (the docs say 60 s; the code says < 2 min)
        (60_000, true),    // a client a minute ahead
        (130_000, false),  // too far in the future
    ] {
        let envelope = Envelope::seal(&secret, now_ms() + offset_ms, body);
        let reply = op.v2_raw(GENERATE, &C999, "text/plain", envelope.base64()).await;
        if accepted {
            let response = reply.open(&secret, &envelope.nonce);
            assert_eq!(response["status"], "success", "offset {offset_ms}");
        } else {
            assert_client_error(&reply, stale);
        }
    }
}

#[tokio::test]
async fn envelope_payload_must_be_a_json_object() {
    let op = Operator::start().await;
    let not_json = "Invalid payload in body: Data is not valid json string.";
    for payload in ["[1]", "not json", "\"text\"", "null", "42", "{\"email\":", "{} {}"] {
        let (reply, _) = op.v2(GENERATE, &C999, payload).await;
        assert_client_error(&reply, not_json);
    }
    // Invalid UTF-8 outside a string: the reference decodes the bytes with replacement characters
    // and its JSON parser then fails on the trailing U+FFFD.
    let envelope = Envelope::seal(&C999.secret(), now_ms(), b"{\"email\":\"a@example.com\"}\xff");
    let reply = op.v2_raw(GENERATE, &C999, "text/plain", envelope.base64()).await;
    assert_client_error(&reply, not_json);
}

#[tokio::test]
async fn envelope_payload_invalid_utf8_in_a_string_is_replaced() {
    let op = Operator::start().await;
    let secret = C999.secret();
    let envelope = Envelope::seal(&secret, now_ms(), b"{\"email\":\"\xff\xfe@example.com\"}");
    let reply = op.v2_raw(GENERATE, &C999, "text/plain", envelope.base64()).await;
    // "\u{FFFD}\u{FFFD}@example.com" is a valid email for the reference's normaliser.
    assert_eq!(reply.open(&secret, &envelope.nonce)["status"], "success");
}

#[tokio::test]
async fn envelope_payload_comments_are_not_json() {
    // A deliberate difference (docs/compatibility.md): the reference's Jackson codec allows C-style
    // comments; this operator parses standard JSON only. No SDK sends comments.
    let op = Operator::start().await;
    let envelope = Envelope::now(&C999, "{\"email\":\"test@example.com\" /* a comment */}");
    let reply = op.v2_raw(GENERATE, &C999, "text/plain", envelope.base64()).await;
    assert_client_error(&reply, "Invalid payload in body: Data is not valid json string.");
}

#[tokio::test]
async fn envelope_binary_fallback_and_form_encoding() {
    let op = Operator::start().await;
    let secret = C999.secret();
    let body = r#"{"email":"test@example.com"}"#;

    // Binary in, binary out; the content type is compared case-insensitively.
    for content_type in ["application/octet-stream", "Application/Octet-Stream"] {
        let envelope = Envelope::now(&C999, body);
        let reply = op.v2_raw(GENERATE, &C999, content_type, envelope.bytes.clone()).await;
        assert_eq!(reply.status, 200, "{content_type}: {}", reply.text());
        assert_eq!(reply.content_type(), Some("application/octet-stream"));
        let response = reply.open(&secret, &envelope.nonce);
        assert_eq!(response["status"], "success");
        assert!(
            uid2_protocol::base64::decode(&reply.body).is_err(),
            "a binary reply is raw bytes, not base64"
        );
    }

    // Base64 text labelled octet-stream: the binary parse fails, the text fallback succeeds, and
    // the answer is base64 text/plain.
    let envelope = Envelope::now(&C999, body);
    let reply = op
        .v2_raw(GENERATE, &C999, "application/octet-stream", envelope.base64())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.content_type(), Some("text/plain"));
    assert_eq!(reply.open(&secret, &envelope.nonce)["status"], "success");

    // A parameter makes the content type text: raw bytes are then not base64.
    let envelope = Envelope::now(&C999, body);
    let reply = op
        .v2_raw(
            GENERATE,
            &C999,
            "application/octet-stream; charset=utf-8",
            envelope.bytes.clone(),
        )
        .await;
    assert_client_error(&reply, &format!("Invalid body: Body is not valid base64.{HINT}"));

    // Binary garbage that is not base64 either: the binary attempt's error is reported.
    let mut bytes = envelope.bytes.clone();
    bytes[0] = 7;
    let reply = op.v2_raw(GENERATE, &C999, "application/octet-stream", bytes).await;
    assert_client_error(
        &reply,
        &format!("Invalid body: Invalid request envelope format version: received 7, must be 1.{HINT}"),
    );

    // Form-encoded (what the Java and Python SDKs send): the raw body is the base64, never
    // URL-decoded, so '+' and '/' must survive. Find an envelope whose base64 has both.
    let mut sent = 0;
    for _ in 0..200 {
        let envelope = Envelope::now(&C999, body);
        let text = envelope.base64();
        if !(text.contains('+') && text.contains('/')) {
            continue;
        }
        let reply = op
            .v2_raw(GENERATE, &C999, "application/x-www-form-urlencoded", text)
            .await;
        assert_eq!(reply.content_type(), Some("text/plain"));
        assert_eq!(reply.open(&secret, &envelope.nonce)["status"], "success");
        sent += 1;
        if sent == 3 {
            break;
        }
    }
    assert_eq!(sent, 3, "no envelope with both '+' and '/' in 200 tries");

    // No content type at all is text too.
    let envelope = Envelope::now(&C999, body);
    let bearer = auth(&C999);
    let reply = op
        .post(GENERATE, &[("authorization", bearer.as_str())], envelope.base64())
        .await;
    assert_eq!(reply.content_type(), Some("text/plain"));
    assert_eq!(reply.open(&secret, &envelope.nonce)["status"], "success");
}

#[tokio::test]
async fn envelope_base64_leniency_and_fallback_errors() {
    let op = Operator::start().await;
    let secret = C999.secret();
    let body = r#"{"email":"test@example.com"}"#;

    // Padding is optional for Java's basic decoder; find an envelope whose base64 has some.
    let mut checked = false;
    for _ in 0..20 {
        let envelope = Envelope::now(&C999, body);
        let text = envelope.base64();
        if !text.ends_with('=') {
            continue;
        }
        let reply = op
            .v2_raw(GENERATE, &C999, "text/plain", text.trim_end_matches('='))
            .await;
        assert_eq!(reply.open(&secret, &envelope.nonce)["status"], "success");
        checked = true;
        break;
    }
    assert!(checked, "no padded envelope in 20 tries");

    // The URL-safe alphabet is not accepted.
    let envelope = Envelope::now(&C999, body);
    let url_safe = envelope.base64().replace('+', "-").replace('/', "_");
    if url_safe != envelope.base64() {
        let reply = op.v2_raw(GENERATE, &C999, "text/plain", url_safe).await;
        assert_client_error(&reply, &format!("Invalid body: Body is not valid base64.{HINT}"));
    }

    // Binary label, valid base64 body, but the envelope inside is sealed with the wrong secret:
    // the fallback's error (not the binary attempt's "received 65") is reported.
    let wrong = Envelope::seal(&C124.secret(), now_ms(), body.as_bytes());
    let reply = op
        .v2_raw(GENERATE, &C999, "application/octet-stream", wrong.base64())
        .await;
    assert_client_error(
        &reply,
        &format!("Invalid body: Check encryption key (ClientSecret).{HINT}"),
    );
}

#[tokio::test]
async fn key_endpoints_accept_an_empty_payload() {
    let op = Operator::start().await;
    for path in [KEY_SHARING, KEY_BIDSTREAM, KEY_LATEST] {
        let (reply, nonce) = op.v2_empty(path, &C999).await;
        assert_eq!(reply.open(&C999.secret(), &nonce)["status"], "success", "{path}");
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication and roles (api.md §2)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn auth_failures_are_a_bare_401() {
    let op = Operator::start().await;
    let envelope = Envelope::now(&C999, r#"{"email":"test@example.com"}"#);

    // Missing header, unknown key, wrong scheme, empty key.
    for headers in [
        vec![],
        vec![(
            "authorization",
            "Bearer UID2-C-L-999-nopeno.nopenopenopenopenopenopenopenopenopeno=",
        )],
        vec![("authorization", "Bearer not-a-key")],
        vec![("authorization", "Basic dXNlcjpwYXNz")],
        vec![("authorization", "Bearer")],
        vec![("authorization", "Bearer ")],
        vec![("authorization", C999.key)],
    ] {
        let reply = op.post(GENERATE, &headers, envelope.base64()).await;
        assert_unauthorized(&reply);
    }

    // A valid key without the route's role: site 124 is GENERATOR only.
    for path in [
        MAP_V2,
        MAP_V3,
        BUCKETS,
        OPTOUT_STATUS,
        KEY_SHARING,
        KEY_BIDSTREAM,
        KEY_LATEST,
        LOGOUT,
    ] {
        let (reply, _) = op.v2(path, &C124, r#"{"email":["test@example.com"]}"#).await;
        assert_unauthorized(&reply);
    }
    // Site 123 (ID_READER) cannot generate; site 125 (no ID_READER) cannot download bidstream keys;
    // site 127 (OPTOUT) cannot map.
    assert_unauthorized(&op.v2(GENERATE, &C123, r#"{"email":"a@b.com"}"#).await.0);
    assert_unauthorized(&op.v2_empty(KEY_BIDSTREAM, &C125).await.0);
    assert_unauthorized(&op.v2_empty(KEY_LATEST, &C125).await.0);
    assert_unauthorized(&op.v2(MAP_V2, &C127, r#"{"email":["a@b.com"]}"#).await.0);

    // Auth runs before the envelope: garbage without a key is a 401, not a 400.
    assert_unauthorized(&op.post(GENERATE, &[], "garbage").await);

    // A disabled client would also get this 401, but the fixtures have no disabled client (every
    // row of clients.json has "disabled": false), so that case is not covered here.
}

#[tokio::test]
async fn bearer_prefix_is_case_insensitive_and_trimmed() {
    let op = Operator::start().await;
    let secret = C999.secret();
    for header in [
        format!("bearer {}", C999.key),
        format!("BEARER {}", C999.key),
        format!("  Bearer {}  ", C999.key),
    ] {
        let envelope = Envelope::now(&C999, r#"{"email":"test@example.com"}"#);
        let reply = op
            .post(
                GENERATE,
                &[("authorization", header.as_str()), ("content-type", "text/plain")],
                envelope.base64(),
            )
            .await;
        assert_eq!(reply.open(&secret, &envelope.nonce)["status"], "success", "{header:?}");
    }
    // The key itself is not trimmed again: two spaces after the prefix is a different key.
    let envelope = Envelope::now(&C999, r#"{"email":"test@example.com"}"#);
    let header = format!("Bearer  {}", C999.key);
    let reply = op
        .post(GENERATE, &[("authorization", header.as_str())], envelope.base64())
        .await;
    assert_unauthorized(&reply);

    // The legacy key format (no site id in the key) authenticates too.
    let (reply, nonce) = op.v2_empty(KEY_SHARING, &C999_OLD).await;
    assert_eq!(reply.open(&C999_OLD.secret(), &nonce)["body"]["caller_site_id"], 999);
}

#[tokio::test]
async fn amzn_trace_id_is_echoed_on_authenticated_routes() {
    let op = Operator::start().await;
    let envelope = Envelope::now(&C999, r#"{"email":"test@example.com"}"#);
    let bearer = auth(&C999);
    let reply = op
        .post(
            GENERATE,
            &[("authorization", bearer.as_str()), ("x-amzn-trace-id", "Root=1-abc")],
            envelope.base64(),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-amzn-trace-id"), Some("Root=1-abc"));
}

// ---------------------------------------------------------------------------------------------
// Framework responses: 413, 404, 405 (api.md §1, §1.2)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn body_over_one_mib_is_413_before_auth() {
    let op = Operator::start().await;
    let too_big = vec![b'A'; (1 << 20) + 1];
    let bearer = auth(&C999);
    for path in POST_ROUTES {
        let with_auth = op
            .post(path, &[("authorization", bearer.as_str())], too_big.clone())
            .await;
        assert_plain(&with_auth, 413, "Request Entity Too Large");
        let without_auth = op.post(path, &[], too_big.clone()).await;
        assert_plain(&without_auth, 413, "Request Entity Too Large");
    }

    // Exactly 1 MiB is allowed through to the envelope check (it decodes; byte 0 is 0).
    let at_limit = vec![b'A'; 1 << 20];
    let reply = op.v2_raw(GENERATE, &C999, "text/plain", at_limit).await;
    assert_client_error(
        &reply,
        &format!("Invalid body: Invalid request envelope format version: received 0, must be 1.{HINT}"),
    );
}

#[tokio::test]
async fn chunked_body_over_one_mib_is_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let op = Operator::start().await;
    let run = async {
        let stream = tokio::net::TcpStream::connect(op.address).await.expect("connect");
        let (mut reader, mut writer) = stream.into_split();
        // Read while writing: the server answers as soon as the body passes the limit and then
        // closes, possibly with a reset; whatever arrived before that is kept.
        let read = tokio::spawn(async move {
            let mut response = Vec::new();
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                response.extend_from_slice(&buffer[..n]);
            }
            response
        });
        let head = format!(
            "POST {GENERATE} HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\
             Connection: close\r\n\r\n",
            op.address
        );
        let chunk = vec![b'A'; 64 * 1024];
        // 17 chunks of 64 KiB = 1 MiB + 64 KiB; writes after the server closed may fail.
        if writer.write_all(head.as_bytes()).await.is_ok() {
            for _ in 0..17 {
                let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                frame.extend_from_slice(&chunk);
                frame.extend_from_slice(b"\r\n");
                if writer.write_all(&frame).await.is_err() {
                    break;
                }
            }
            let _ = writer.write_all(b"0\r\n\r\n").await;
        }
        let response = read.await.unwrap_or_default();
        String::from_utf8_lossy(&response).into_owned()
    };
    let response = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the chunked request finishes");
    assert!(
        response.starts_with("HTTP/1.1 413"),
        "expected 413, got: {}",
        response.lines().next().unwrap_or("")
    );
    assert!(response.ends_with("Request Entity Too Large"), "{response}");
}

#[tokio::test]
async fn unknown_paths_are_404_html() {
    let op = Operator::start().await;
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/nope"),
        (Method::POST, "/v2/token/unknown"),
        (Method::POST, "/v1/token/generate"),
        (Method::POST, "/v2/token/generate/"),
        (Method::GET, "/metrics"),
    ] {
        let reply = op.send(method, path, &[], Vec::new()).await;
        assert_eq!(reply.status, 404, "{}", reply.route);
        assert_eq!(
            reply.content_type(),
            Some("text/html; charset=utf-8"),
            "{}",
            reply.route
        );
        assert_eq!(reply.text(), "<html><body><h1>Resource not found</h1></body></html>");
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let op = Operator::start().await;
    for path in POST_ROUTES {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let reply = op.send(method, path, &[], Vec::new()).await;
            assert_eq!(reply.status, 405, "{}", reply.route);
            assert_eq!(reply.header("allow"), Some("POST"), "{}", reply.route);
            assert!(reply.body.is_empty(), "{}: {}", reply.route, reply.text());
        }
    }
}

#[tokio::test]
async fn healthcheck_405_allows_get() {
    // The router also answers HEAD where it answers GET, so `Allow` lists both
    // (docs/compatibility.md); the reference lists GET only.
    let op = Operator::start().await;
    let reply = op.post("/ops/healthcheck", &[], Vec::new()).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET,HEAD"));
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn healthcheck_is_ok() {
    let op = Operator::start().await;
    let reply = op.get("/ops/healthcheck").await;
    assert_eq!((reply.status, reply.text()), (200, "OK".to_owned()));
}

// ---------------------------------------------------------------------------------------------
// CORS (api.md §1.3)
// ---------------------------------------------------------------------------------------------

const ALLOW_HEADERS: &str = "X-UID2-Client-Version,Access-Control-Request-Method,Access-Control-Allow-Credentials,\
Access-Control-Allow-Origin,Access-Control-Allow-Headers,Content-Type";

#[tokio::test]
async fn cors_preflight() {
    let op = Operator::start().await;
    let with_auth = format!("{ALLOW_HEADERS},Authorization");
    for (path, allow_headers) in [
        (GENERATE, ALLOW_HEADERS),
        (VALIDATE, with_auth.as_str()),
        (MAP_V2, ALLOW_HEADERS),
        (CSTG, ALLOW_HEADERS),
        ("/no/such/path", ALLOW_HEADERS),
    ] {
        let reply = op
            .send(
                Method::OPTIONS,
                path,
                &[
                    ("origin", "https://publisher.example"),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type"),
                ],
                Vec::new(),
            )
            .await;
        assert_eq!(reply.status, 204, "{path}");
        assert!(reply.body.is_empty());
        assert_eq!(
            reply.header("access-control-allow-methods"),
            Some("GET,POST,OPTIONS"),
            "{path}"
        );
        assert_eq!(
            reply.header("access-control-allow-headers"),
            Some(allow_headers),
            "{path}"
        );
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some("https://publisher.example"),
            "{path}"
        );
        assert!(reply.header_all("vary").iter().any(|v| v.contains("Origin")), "{path}");
        assert_eq!(reply.header("access-control-allow-credentials"), None, "{path}");
        assert_eq!(reply.header("access-control-max-age"), None, "{path}");
        assert_eq!(reply.header("access-control-expose-headers"), None, "{path}");
    }

    // OPTIONS without Access-Control-Request-Method is routed normally.
    let reply = op
        .send(
            Method::OPTIONS,
            GENERATE,
            &[("origin", "https://a.example")],
            Vec::new(),
        )
        .await;
    assert_eq!(reply.status, 405);
    let reply = op
        .send(
            Method::OPTIONS,
            "/no/such/path",
            &[("origin", "https://a.example")],
            Vec::new(),
        )
        .await;
    assert_eq!(reply.status, 404);

    // A preflight with an empty Origin is refused like any other request.
    let reply = op
        .send(
            Method::OPTIONS,
            GENERATE,
            &[("origin", ""), ("access-control-request-method", "POST")],
            Vec::new(),
        )
        .await;
    assert_plain(&reply, 403, "Forbidden");
}

#[tokio::test]
async fn cors_preflight_has_no_body() {
    // HTTP forbids Content-Length on a 204, so the header the reference sends (`0`) is dropped by
    // the HTTP layer (docs/compatibility.md); the response has no body either way.
    let op = Operator::start().await;
    let reply = op
        .send(
            Method::OPTIONS,
            GENERATE,
            &[
                ("origin", "https://publisher.example"),
                ("access-control-request-method", "POST"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(reply.status, 204);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("content-length"), None);
}

#[tokio::test]
async fn cors_origin_is_echoed_and_empty_origin_is_403() {
    let op = Operator::start().await;
    let envelope = Envelope::now(&C999, r#"{"email":"test@example.com"}"#);
    let bearer = auth(&C999);

    // On a success and on an error alike.
    let reply = op
        .post(
            GENERATE,
            &[("authorization", bearer.as_str()), ("origin", "https://any.thing:8443")],
            envelope.base64(),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://any.thing:8443")
    );
    assert!(reply.header_all("vary").iter().any(|v| v.contains("Origin")));
    let reply = op.post(GENERATE, &[("origin", "null")], "x").await;
    assert_unauthorized(&reply);
    assert_eq!(reply.header("access-control-allow-origin"), Some("null"));

    // Without Origin: no Allow-Origin, still Vary: Origin.
    let reply = op.post(GENERATE, &[], "x").await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert!(reply.header_all("vary").iter().any(|v| v.contains("Origin")));

    // An empty Origin is the only one the reference's regex refuses.
    let reply = op
        .post(
            GENERATE,
            &[("authorization", bearer.as_str()), ("origin", "")],
            envelope.base64(),
        )
        .await;
    assert_plain(&reply, 403, "Forbidden");
}

// ---------------------------------------------------------------------------------------------
// /v2/token/generate (api.md §5.1, §6)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn generate_requires_exactly_one_identity() {
    let op = Operator::start().await;
    for payload in [
        "{}",
        r#"{"email":null}"#,
        r#"{"policy":1}"#,
        r#"{"email":"a@example.com","phone":"+12345678901"}"#,
        r#"{"email":"a@example.com","email_hash":"tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ="}"#,
        r#"{"phone":"+12345678901","phone_hash":"tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ="}"#,
        r#"{"email":"a@example.com","email_hash":"x","phone":"y","phone_hash":"z"}"#,
    ] {
        let (reply, _) = op.v2(GENERATE, &C999, payload).await;
        assert_client_error(&reply, EXACTLY_ONE);
    }
    // No JSON at all after the nonce.
    let (reply, _) = op.v2_empty(GENERATE, &C999).await;
    assert_client_error(&reply, EXACTLY_ONE);
}

#[tokio::test]
async fn generate_rejects_invalid_identifiers() {
    let op = Operator::start().await;
    for payload in [
        json!({ "email": "" }),
        json!({ "email": "no-at-sign" }),
        json!({ "email": "a@" }),
        json!({ "email": "@b.com" }),
        json!({ "email": "a@ba@z.com" }),
        json!({ "email": "+@gmail.com" }),
        json!({ "email": 123 }),
        json!({ "email": {"nested": true} }),
        json!({ "phone": "12345678901" }),
        json!({ "phone": "+1234" }),
        json!({ "phone": "+1234567890123456" }),
        json!({ "phone": "+1 234 567 8901" }),
        json!({ "email_hash": "abc" }),
        json!({ "email_hash": "tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ" }), // 43 chars
        json!({ "email_hash": "zz".repeat(32) }),                               // 64 chars, not hex
        json!({ "phone_hash": "!".repeat(44) }),
    ] {
        let (reply, _) = op.v2(GENERATE, &C999, &payload.to_string()).await;
        assert_client_error(&reply, "Invalid Identifier");
    }
}

#[tokio::test]
async fn generate_success_shape_and_ignored_fields() {
    let op = Operator::start().await;
    let before = now_ms();
    for payload in [
        json!({ "email": "test@example.com", "policy": 1 }),
        json!({ "email": "test@example.com", "optout_check": 1 }),
        json!({ "email": "test@example.com", "policy": "anything", "optout_check": {"x": 1}, "extra": [1] }),
        json!({ "email_hash": sha256_b64("test@example.com") }),
        json!({ "email_hash": sha256_hex("test@example.com") }),
        json!({ "email_hash": sha256_hex("test@example.com").to_uppercase() }),
        json!({ "phone": "+12345678901" }),
        json!({ "phone_hash": sha256_b64("+12345678901") }),
    ] {
        let response = op.v2_ok(GENERATE, &C999, &payload.to_string()).await;
        assert_eq!(response["status"], "success", "{payload}");
        let body = &response["body"];
        assert_eq!(
            keys_of(body),
            [
                "advertising_token",
                "identity_expires",
                "refresh_expires",
                "refresh_from",
                "refresh_response_key",
                "refresh_token",
            ],
            "{payload}"
        );
        let token = body["advertising_token"].as_str().unwrap_or_default();
        let prefix = if payload.get("phone").is_some() || payload.get("phone_hash").is_some() {
            "B4"
        } else {
            "A4"
        };
        assert!(token.starts_with(prefix), "{payload}: {token}");
        assert!(
            !token.contains(['+', '/', '=']),
            "V4 tokens are base64url without padding"
        );
        assert_eq!(body["refresh_token"].as_str().map(str::len), Some(388));
        assert_eq!(body["refresh_response_key"].as_str().map(str::len), Some(44));
        let identity_expires = body["identity_expires"].as_i64().unwrap_or_default();
        assert!(
            (before + 3_600_000..before + 3_660_000).contains(&identity_expires),
            "identity_expires is ms: {identity_expires}"
        );
        let refresh_expires = body["refresh_expires"].as_i64().unwrap_or_default();
        assert!((before + 86_400_000..before + 86_460_000).contains(&refresh_expires));
        let refresh_from = body["refresh_from"].as_i64().unwrap_or_default();
        assert!((before + 900_000..before + 960_000).contains(&refresh_from));
    }
}

#[tokio::test]
async fn generate_opted_out_identities() {
    let op = Operator::start().await;
    for payload in [
        json!({ "email": "optout@example.com" }),
        json!({ "email": "  OptOut@Example.com " }),
        json!({ "email_hash": sha256_b64("optout@example.com") }),
        json!({ "email_hash": sha256_hex("optout@example.com") }),
        json!({ "phone": "+00000000000" }),
        json!({ "phone_hash": sha256_b64("+00000000000") }),
    ] {
        let (reply, nonce) = op.v2(GENERATE, &C999, &payload.to_string()).await;
        let opened = reply.open(&C999.secret(), &nonce);
        assert_eq!(opened, json!({ "status": "optout" }), "{payload}");
    }
    // The refresh-only opt-out identity generates normally.
    let body = generate(&op, &C999, "refresh-optout@example.com").await;
    assert!(body["advertising_token"].is_string());
}

// ---------------------------------------------------------------------------------------------
// /v2/token/refresh (api.md §5.2)
// ---------------------------------------------------------------------------------------------

fn refresh_key() -> SecretKey {
    SecretKey::from_base64(REFRESH_KEY_SECRET).expect("fixture refresh key")
}

/// Opens a 388-character refresh envelope with the test data's refresh key: the inner token.
fn inner_refresh_token(envelope: &str) -> String {
    let bytes = uid2_protocol::base64::decode(envelope).expect("envelope is base64");
    assert_eq!(bytes.len(), 291);
    assert_eq!(
        i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]),
        REFRESH_KEY_ID
    );
    let json = gcm_open(&refresh_key(), &bytes[5..], &[]).expect("envelope opens with key 102");
    let value: Value = serde_json::from_slice(&json).expect("envelope JSON");
    value["refresh_token"].as_str().unwrap_or_default().to_owned()
}

/// An inner V3 refresh token forged with the test data's refresh key.
fn forged_refresh_token(site_id: i32, established_ms: i64, expires_ms: i64) -> String {
    let token = RefreshToken {
        version: TokenVersion::V3,
        scope: IdentityScope::Uid2,
        id_type: IdentityType::Email,
        key_id: REFRESH_KEY_ID,
        expires_ms,
        created_ms: established_ms,
        operator: OperatorIdentity {
            site_id: 0,
            operator_type: 1,
            version: 0,
            key_id: 0,
        },
        publisher: PublisherIdentity::site(site_id),
        privacy_bits: 1,
        established_ms,
        first_level_hash: [7u8; 32],
    };
    token.encode(&refresh_key(), &OsEntropy)
}

#[tokio::test]
async fn refresh_errors_depend_on_authentication() {
    let op = Operator::start().await;
    let bearer = auth(&C999);
    let authed = [("authorization", bearer.as_str())];

    // Empty body: authenticated → invalid_token; unauthenticated → error.
    assert_error(
        &op.post(REFRESH, &authed, Vec::new()).await,
        400,
        "invalid_token",
        "Invalid Token presented",
    );
    assert_error(
        &op.post(REFRESH, &[], Vec::new()).await,
        400,
        "error",
        "Error refreshing token",
    );

    // Garbage of any length other than 388.
    let (a168, a387) = ("A".repeat(168), "A".repeat(387));
    for garbage in ["garbage", "AAAA", "not base64 at all!", a168.as_str(), a387.as_str()] {
        assert_error(
            &op.post(REFRESH, &authed, garbage).await,
            400,
            "invalid_token",
            "Invalid Token presented",
        );
        assert_error(
            &op.post(REFRESH, &[], garbage).await,
            400,
            "error",
            "Error refreshing token",
        );
    }
    // Any Authorization value is fine for refresh; a wrong key is just "unauthenticated".
    let reply = op
        .post(REFRESH, &[("authorization", "Bearer wrong-key")], "garbage")
        .await;
    assert_error(&reply, 400, "error", "Error refreshing token");
    // A key without any useful role still authenticates (roles are not checked here).
    let c127 = auth(&C127);
    let reply = op.post(REFRESH, &[("authorization", c127.as_str())], "garbage").await;
    assert_error(&reply, 400, "invalid_token", "Invalid Token presented");
}

#[tokio::test]
async fn refresh_envelope_errors() {
    let op = Operator::start().await;

    // 388 characters that are not base64.
    let reply = op.post(REFRESH, &[], "!".repeat(388)).await;
    assert_client_error(&reply, "Invalid body: Body is not valid base64.");

    // 388 base64 characters naming a key that does not exist (key id 0).
    let reply = op.post(REFRESH, &[], "A".repeat(388)).await;
    assert_client_error(
        &reply,
        "Invalid key: Generator of this token (Key ID: 0) does not exist.",
    );

    // A real key id (the refresh key) with a ciphertext that does not open.
    let mut bytes = vec![0u8; 291];
    bytes[1..5].copy_from_slice(&REFRESH_KEY_ID.to_be_bytes());
    bytes[5..].iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    let reply = op.post(REFRESH, &[], b64(&bytes)).await;
    assert_client_error(&reply, "Invalid data: Check encryption method and encryption key.");

    // It opens, but the JSON inside is not the envelope's.
    let plaintext = format!(r#"{{"something":"{}"}}"#, "x".repeat(258 - 16));
    assert_eq!(plaintext.len(), 258);
    let blob = gcm_seal_with_iv(&refresh_key(), &[3u8; 12], plaintext.as_bytes(), &[]);
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(&REFRESH_KEY_ID.to_be_bytes());
    bytes.extend_from_slice(&blob);
    assert_eq!(bytes.len(), 291);
    let bearer = auth(&C999);
    let reply = op
        .post(REFRESH, &[("authorization", bearer.as_str())], b64(&bytes))
        .await;
    assert_client_error(
        &reply,
        "Invalid format: Payload is not valid json or missing required data.",
    );
}

/// A 388-character refresh envelope sealed with the refresh key around any 258-byte JSON text.
fn forged_envelope(json: &str) -> String {
    assert_eq!(json.len(), 258, "the envelope JSON must be 258 bytes");
    let blob = gcm_seal_with_iv(&refresh_key(), &random::<12>(), json.as_bytes(), &[]);
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(&REFRESH_KEY_ID.to_be_bytes());
    bytes.extend_from_slice(&blob);
    b64(&bytes)
}

#[tokio::test]
async fn refresh_envelope_without_inner_token_is_an_invalid_token() {
    let op = Operator::start().await;
    let key = b64(&[5u8; 32]);
    let prefix = format!(r#"{{"refresh_response_key":"{key}","padding":""#);
    let json = format!("{prefix}{}\"}}", "x".repeat(258 - prefix.len() - 2));
    let envelope = forged_envelope(&json);
    assert_eq!(envelope.len(), 388);
    assert_error(
        &op.post(REFRESH, &[], envelope.clone()).await,
        400,
        "error",
        "Error refreshing token",
    );
    let bearer = auth(&C999);
    assert_error(
        &op.post(REFRESH, &[("authorization", bearer.as_str())], envelope).await,
        400,
        "invalid_token",
        "Invalid Token presented",
    );
}

#[tokio::test]
async fn refresh_corrupt_inner_token_is_an_invalid_token() {
    // The reference lets a GCM failure under a known key, or a 1-byte token, escape as
    // 500 "Unknown error while refreshing token v2"; this operator answers like any other invalid
    // token (docs/compatibility.md).
    let op = Operator::start().await;
    let first = generate(&op, &C999, "corrupt@example.com").await;
    let inner = inner_refresh_token(first["refresh_token"].as_str().unwrap_or_default());
    let mut bytes = uid2_protocol::base64::decode(&inner).expect("inner token is base64");
    let last = bytes.len() - 1;
    bytes[last] ^= 1; // the GCM tag
    let corrupt = b64(&bytes);
    let bearer = auth(&C999);
    for body in [corrupt.as_str(), "AA=="] {
        let reply = op.post(REFRESH, &[], body.to_owned()).await;
        assert_error(&reply, 400, "error", "Error refreshing token");
        let reply = op
            .post(REFRESH, &[("authorization", bearer.as_str())], body.to_owned())
            .await;
        assert_error(&reply, 400, "invalid_token", "Invalid Token presented");
    }
}

#[tokio::test]
async fn refresh_envelope_length_counts_characters() {
    // 388 characters that are not ASCII (776 bytes) still take the envelope path.
    let op = Operator::start().await;
    let reply = op.post(REFRESH, &[], "é".repeat(388)).await;
    assert_client_error(&reply, "Invalid body: Body is not valid base64.");
}

#[tokio::test]
async fn refresh_envelope_length_is_in_utf16_units() {
    let op = Operator::start().await;
    let reply = op.post(REFRESH, &[], "\u{1F600}".repeat(194)).await;
    assert_client_error(&reply, "Invalid body: Body is not valid base64.");
}

#[tokio::test]
async fn refresh_round_trips_a_generated_envelope() {
    let op = Operator::start().await;
    let first = generate(&op, &C999, "refresh-me@example.com").await;
    let refresh_token = first["refresh_token"].as_str().unwrap_or_default().to_owned();
    let response_key =
        SecretKey::from_base64(first["refresh_response_key"].as_str().unwrap_or_default()).expect("response key");

    // Unauthenticated, as a browser SDK refreshes.
    let reply = op.post(REFRESH, &[], refresh_token.clone()).await;
    assert_eq!(reply.content_type(), Some("text/plain"));
    let refreshed = reply.open_bare(&response_key);
    assert_eq!(refreshed["status"], "success", "{refreshed}");
    let body = &refreshed["body"];
    assert!(body["advertising_token"].as_str().is_some_and(|t| t.starts_with("A4")));
    assert_eq!(body["refresh_token"].as_str().map(str::len), Some(388));
    assert_eq!(body["refresh_response_key"].as_str().map(str::len), Some(44));

    // The same token can be used again (no single-use tracking), authenticated and as binary.
    let bearer = auth(&C999);
    let reply = op
        .post(
            REFRESH,
            &[
                ("authorization", bearer.as_str()),
                ("content-type", "application/octet-stream"),
            ],
            refresh_token.clone(),
        )
        .await;
    assert_eq!(reply.content_type(), Some("application/octet-stream"));
    assert_eq!(reply.open_bare(&response_key)["status"], "success");

    // Form-encoded, as the Python SDK sends it.
    let reply = op
        .post(
            REFRESH,
            &[("content-type", "application/x-www-form-urlencoded")],
            refresh_token.clone(),
        )
        .await;
    assert_eq!(reply.open_bare(&response_key)["status"], "success");

    // The new refresh token works too.
    let next = body["refresh_token"].as_str().unwrap_or_default().to_owned();
    let next_key = SecretKey::from_base64(body["refresh_response_key"].as_str().unwrap_or_default()).expect("next key");
    let reply = op.post(REFRESH, &[], next).await;
    assert_eq!(reply.open_bare(&next_key)["status"], "success");
}

#[tokio::test]
async fn refresh_legacy_bare_token_gets_plain_json() {
    let op = Operator::start().await;
    let first = generate(&op, &C999, "legacy@example.com").await;
    let inner = inner_refresh_token(first["refresh_token"].as_str().unwrap_or_default());
    assert_eq!(inner.len(), 168);

    let reply = op.post(REFRESH, &[], inner).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.content_type(), Some("application/json"));
    let response = reply.json();
    assert_eq!(response["status"], "success");
    // The client is upgraded: the new refresh token is a 388-character envelope.
    assert_eq!(response["body"]["refresh_token"].as_str().map(str::len), Some(388));
    assert_eq!(
        response["body"]["refresh_response_key"].as_str().map(str::len),
        Some(44)
    );
}

#[tokio::test]
async fn refresh_opt_out_reaches_everyone() {
    let op = Operator::start().await;
    let first = generate(&op, &C999, "refresh-optout@example.com").await;
    let refresh_token = first["refresh_token"].as_str().unwrap_or_default().to_owned();
    let key = SecretKey::from_base64(first["refresh_response_key"].as_str().unwrap_or_default()).expect("response key");

    let reply = op.post(REFRESH, &[], refresh_token.clone()).await;
    assert_eq!(reply.open_bare(&key), json!({ "status": "optout" }));
    let bearer = auth(&C999);
    let reply = op
        .post(REFRESH, &[("authorization", bearer.as_str())], refresh_token.clone())
        .await;
    assert_eq!(reply.open_bare(&key), json!({ "status": "optout" }));

    // Bare inner token: plain JSON opt-out.
    let reply = op.post(REFRESH, &[], inner_refresh_token(&refresh_token)).await;
    assert_eq!((reply.status, reply.text()), (200, r#"{"status":"optout"}"#.to_owned()));
}

#[tokio::test]
async fn refresh_expired_and_deprecated_tokens() {
    let op = Operator::start().await;
    let bearer = auth(&C999);
    let now = now_ms();

    let expired = forged_refresh_token(999, now - 2 * 86_400_000, now - 60_000);
    assert_error(
        &op.post(REFRESH, &[("authorization", bearer.as_str())], expired.clone())
            .await,
        400,
        "expired_token",
        "Expired Token presented",
    );
    assert_error(
        &op.post(REFRESH, &[], expired).await,
        400,
        "error",
        "Error refreshing token",
    );

    // Established before 2021-03-08T17:00Z: answered exactly like an opt-out, to everyone.
    let deprecated = forged_refresh_token(999, 1_609_459_200_000, now + 86_400_000);
    let reply = op.post(REFRESH, &[], deprecated).await;
    assert_eq!((reply.status, reply.text()), (200, r#"{"status":"optout"}"#.to_owned()));

    // A well-formed, unexpired token for a site without a keyset refreshes (fallback keyset 2).
    let fine = forged_refresh_token(124, now - 60_000, now + 86_400_000);
    let reply = op.post(REFRESH, &[], fine).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["status"], "success");
}

// ---------------------------------------------------------------------------------------------
// /v2/token/validate (api.md §5.3)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn validate_answers_true_false_and_errors() {
    let op = Operator::start().await;
    let token = generate(&op, &C999, "validate@example.com").await["advertising_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let response = op
        .v2_ok(
            VALIDATE,
            &C999,
            &json!({ "token": token, "email": "validate@example.com" }).to_string(),
        )
        .await;
    assert_eq!(response, json!({ "body": true, "status": "success" }));
    // Normalisation applies, and the hashed form is the same identity.
    for identity in [
        json!({ "token": token, "email": " Validate@Example.COM " }),
        json!({ "token": token, "email_hash": sha256_b64("validate@example.com") }),
        json!({ "token": token, "email_hash": sha256_hex("validate@example.com") }),
    ] {
        let response = op.v2_ok(VALIDATE, &C999, &identity.to_string()).await;
        assert_eq!(response["body"], true, "{identity}");
    }

    let response = op
        .v2_ok(
            VALIDATE,
            &C999,
            &json!({ "token": token, "email": "someone-else@example.com" }).to_string(),
        )
        .await;
    assert_eq!(response, json!({ "body": false, "status": "success" }));

    // One character in the middle changed: the GCM tag no longer matches.
    let mid = token.len() / 2;
    let replacement = if token[mid..].starts_with('A') { "B" } else { "A" };
    let tampered = format!("{}{replacement}{}", &token[..mid], &token[mid + 1..]);
    for bad in [
        json!({ "token": "garbage", "email": "validate@example.com" }),
        json!({ "token": "", "email": "validate@example.com" }),
        json!({ "token": "A4", "email": "validate@example.com" }),
        json!({ "token": tampered, "email": "validate@example.com" }),
        json!({ "email": "validate@example.com" }),
    ] {
        let (reply, _) = op.v2(VALIDATE, &C999, &bad.to_string()).await;
        assert_client_error(&reply, "Invalid token");
    }

    // Input errors come first.
    let (reply, _) = op.v2(VALIDATE, &C999, &json!({ "token": token }).to_string()).await;
    assert_client_error(&reply, EXACTLY_ONE);
    let (reply, _) = op
        .v2(VALIDATE, &C999, &json!({ "token": token, "email": "nope" }).to_string())
        .await;
    assert_client_error(&reply, "Invalid Identifier");
}

#[tokio::test]
async fn validate_refuses_tokens_of_other_sites() {
    let op = Operator::start().await;
    let unauthorised = "Unauthorised to validate token";

    // A site-999 token validated by site 124 (GENERATOR too).
    let token_999 = generate(&op, &C999, "validate@example.com").await["advertising_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (reply, _) = op
        .v2(
            VALIDATE,
            &C124,
            &json!({ "token": token_999, "email": "validate@example.com" }).to_string(),
        )
        .await;
    assert_client_error(&reply, unauthorised);

    // Site 124 has no keyset: its tokens use the fallback keyset 2 (site 2), so not even site 124
    // may validate them.
    let token_124 = generate(&op, &C124, "validate@example.com").await["advertising_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for client in [&C124, &C999] {
        let (reply, _) = op
            .v2(
                VALIDATE,
                client,
                &json!({ "token": token_124, "email": "validate@example.com" }).to_string(),
            )
            .await;
        assert_client_error(&reply, unauthorised);
    }

    // A CSTG token of site 123.
    let (token_123, _) = cstg_token(&op, &sha256_b64("validate@example.com")).await;
    let (reply, _) = op
        .v2(
            VALIDATE,
            &C999,
            &json!({ "token": token_123, "email": "validate@example.com" }).to_string(),
        )
        .await;
    assert_client_error(&reply, unauthorised);
}

// ---------------------------------------------------------------------------------------------
// /v2/token/logout (api.md §5.4)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn logout_errors() {
    let op = Operator::start().await;
    for payload in ["{}", r#"{"email":"a@b.com","phone":"+12345678901"}"#] {
        let (reply, _) = op.v2(LOGOUT, &C999, payload).await;
        assert_error(&reply, 400, "invalid_token", "Invalid Token presented null");
    }
    let (reply, _) = op.v2(LOGOUT, &C999, r#"{"email":"not-an-email"}"#).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["status"], "invalid_token");
    assert!(reply.json()["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("Invalid Token presented ")));
    // Local mode has no OptOut service (`optout_api_uri` unset): the reference's plain 500.
    let (reply, _) = op.v2(LOGOUT, &C127, r#"{"email":"test@example.com"}"#).await;
    assert_plain(&reply, 500, "Internal Server Error");
}

// ---------------------------------------------------------------------------------------------
// /v2/identity/map (api.md §5.6)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn identity_map_v2_input_errors() {
    let op = Operator::start().await;
    for (payload, message) in [
        (r#"{"email":"a@b.com"}"#, "email must be an array"),
        (r#"{"email_hash":{"a":1}}"#, "email_hash must be an array"),
        (r#"{"phone":"+12345678901"}"#, "phone must be an array"),
        (r#"{"phone_hash":5}"#, "phone_hash must be an array"),
        // The first such error wins.
        (
            r#"{"email":[],"email_hash":"x","phone":"y"}"#,
            "email_hash must be an array",
        ),
    ] {
        let (reply, _) = op.v2(MAP_V2, &C999, payload).await;
        assert_client_error(&reply, message);
    }
    for payload in [
        "{}",
        r#"{"policy":1}"#,
        r#"{"email":["a@b.com"],"phone":["+12345678901"]}"#,
        r#"{"email":["a@b.com"],"email_hash":["x"]}"#,
    ] {
        let (reply, _) = op.v2(MAP_V2, &C999, payload).await;
        assert_client_error(&reply, EXACTLY_ONE);
    }
    let (reply, _) = op.v2_empty(MAP_V2, &C999).await;
    assert_client_error(&reply, EXACTLY_ONE);
}

#[tokio::test]
async fn identity_map_v2_results() {
    let op = Operator::start().await;

    // Several keys present, all empty: an empty `mapped` and no `unmapped` key at all.
    for payload in [
        r#"{"email":[],"email_hash":[]}"#,
        r#"{"email":[]}"#,
        r#"{"phone":[],"link_id":"x"}"#,
    ] {
        let response = op.v2_ok(MAP_V2, &C999, payload).await;
        assert_eq!(
            response,
            json!({ "body": { "mapped": [] }, "status": "success" }),
            "{payload}"
        );
    }

    // Order is kept; opt-outs and invalid identifiers are unmapped with their reason.
    let response = op
        .v2_ok(
            MAP_V2,
            &C126,
            r#"{"email":["ok@example.com","optout@example.com","not-an-email","Other@Example.com"],"policy":1}"#,
        )
        .await;
    let body = &response["body"];
    let mapped: Vec<&str> = body["mapped"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["identifier"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(mapped, ["ok@example.com", "Other@Example.com"]);
    for m in body["mapped"].as_array().into_iter().flatten() {
        assert_eq!(keys_of(m), ["advertising_id", "bucket_id", "identifier"], "{m}");
    }
    assert_eq!(
        body["unmapped"],
        json!([
            { "identifier": "optout@example.com", "reason": "optout" },
            { "identifier": "not-an-email", "reason": "invalid identifier" },
        ])
    );

    // Identifiers are echoed as sent: a hex hash stays hex (upper or lower case), and maps to the
    // same raw UID as the base64 form of the same hash.
    let hex_lower = sha256_hex("test@example.com");
    let hex_upper = hex_lower.to_uppercase();
    let base64 = sha256_b64("test@example.com");
    let response = op
        .v2_ok(
            MAP_V2,
            &C999,
            &json!({ "email_hash": [hex_lower, hex_upper, base64, "short"] }).to_string(),
        )
        .await;
    let mapped = response["body"]["mapped"].as_array().cloned().unwrap_or_default();
    assert_eq!(mapped.len(), 3, "{response}");
    assert_eq!(mapped[0]["identifier"], hex_lower.as_str());
    assert_eq!(mapped[1]["identifier"], hex_upper.as_str());
    assert_eq!(mapped[2]["identifier"], base64.as_str());
    assert_eq!(mapped[0]["advertising_id"], mapped[2]["advertising_id"]);
    assert_eq!(mapped[1]["advertising_id"], mapped[2]["advertising_id"]);
    assert_eq!(
        response["body"]["unmapped"],
        json!([{ "identifier": "short", "reason": "invalid identifier" }])
    );

    // The raw email maps to the same raw UID as its hash.
    let response = op.v2_ok(MAP_V2, &C999, r#"{"email":["Test@Example.com"]}"#).await;
    assert_eq!(
        response["body"]["mapped"][0]["advertising_id"],
        mapped[2]["advertising_id"]
    );
}

#[tokio::test]
async fn identity_map_v2_null_element_is_an_invalid_identifier() {
    // The reference throws on a null element (500 "Unknown error while mapping identity v2");
    // api.md §5.6 lets a reimplementation treat it as an invalid identifier instead, which is what
    // this operator does.
    let op = Operator::start().await;
    let response = op.v2_ok(MAP_V2, &C999, r#"{"email":[null,"a@example.com"]}"#).await;
    assert_eq!(
        response["body"]["unmapped"],
        json!([{ "identifier": null, "reason": "invalid identifier" }])
    );
    assert_eq!(response["body"]["mapped"][0]["identifier"], "a@example.com");
}

#[tokio::test]
async fn identity_map_v2_echoes_non_string_elements_as_text() {
    // The reference reads elements with Vert.x `JsonArray.getString`, which turns any value into
    // its text, and echoes that text.
    let op = Operator::start().await;
    let response = op.v2_ok(MAP_V2, &C999, r#"{"email":[123,true,{"a":1}]}"#).await;
    assert_eq!(
        response["body"],
        json!({
            "mapped": [],
            "unmapped": [
                { "identifier": "123", "reason": "invalid identifier" },
                { "identifier": "true", "reason": "invalid identifier" },
                { "identifier": "{\"a\":1}", "reason": "invalid identifier" },
            ]
        })
    );
}

#[tokio::test]
async fn identity_map_service_client_without_link_store_is_refused() {
    // Client 8 (site 126, service 2) maps only through service links; local mode does not load
    // them (`validate_service_links` off), so the reference refuses it (api.md §2).
    let op = Operator::start().await;
    for path in [MAP_V2, MAP_V3] {
        let (reply, _) = op.v2(path, &C126_SERVICE, r#"{"email":["a@example.com"]}"#).await;
        assert_error(&reply, 401, "unauthorized", "Invalid link_id");
    }
}

// ---------------------------------------------------------------------------------------------
// /v3/identity/map (api.md §5.7)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn identity_map_v3_strict_format() {
    let op = Operator::start().await;
    for payload in [
        r#"{"email":[],"link_id":"x"}"#,
        r#"{"link_id":"testId2"}"#,
        r#"{"emails":["a@b.com"]}"#,
        r#"{"email":[null]}"#,
        r#"{"email":["a@b.com",null]}"#,
        r#"{"email":"a@b.com"}"#,
        r#"{"phone_hash":{"a":1}}"#,
        r#"{"email":[["nested"]]}"#,
        r#"{"email":[{"a":1}]}"#,
    ] {
        let (reply, _) = op.v2(MAP_V3, &C999, payload).await;
        assert_client_error(&reply, "Incorrect request format");
    }
    let missing = "Required Parameter Missing: one or more of [email, email_hash, phone, phone_hash] must be specified";
    let (reply, _) = op.v2(MAP_V3, &C999, "{}").await;
    assert_client_error(&reply, missing);
    let (reply, _) = op.v2_empty(MAP_V3, &C999).await;
    assert_client_error(&reply, missing);
}

#[tokio::test]
async fn identity_map_v3_response_shape() {
    let op = Operator::start().await;
    let now_s = now_ms() / 1000;

    // Empty and null arrays still give all four keys.
    for payload in [r#"{"email":[]}"#, r#"{"email":null,"phone":[]}"#] {
        let response = op.v2_ok(MAP_V3, &C999, payload).await;
        assert_eq!(
            response,
            json!({ "body": { "email": [], "email_hash": [], "phone": [], "phone_hash": [] }, "status": "success" })
        );
    }

    // Twenty emails land in every salt bucket; two buckets have no previous salt or key, so `p` is
    // explicitly null for some of them (and a string for others).
    let emails: Vec<String> = (0..20).map(|i| format!("user{i}@example.com")).collect();
    let payload = json!({
        "email": emails,
        "email_hash": [sha256_b64("optout@example.com"), "bad"],
        "phone": ["+12345678901", "123"],
        "phone_hash": [],
    });
    let response = op.v2_ok(MAP_V3, &C999, &payload.to_string()).await;
    let body = &response["body"];
    assert_eq!(keys_of(body), ["email", "email_hash", "phone", "phone_hash"]);

    let items = body["email"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 20);
    let (mut null_p, mut some_p) = (0, 0);
    for item in &items {
        assert_eq!(keys_of(item), ["p", "r", "u"], "{item}");
        let object = item.as_object().cloned().unwrap_or_default();
        match &object["p"] {
            Value::Null => null_p += 1,
            Value::String(_) => some_p += 1,
            other => panic!("p is {other}"),
        }
        let r = object["r"].as_i64().unwrap_or_default();
        assert!(r >= now_s && r < 100_000_000_000, "r must be epoch seconds: {r}");
        assert!(object["u"].as_str().is_some_and(|u| u.len() == 44));
    }
    assert!(null_p > 0 && some_p > 0, "p null {null_p} times, set {some_p} times");

    assert_eq!(
        body["email_hash"],
        json!([{ "e": "optout" }, { "e": "invalid identifier" }])
    );
    assert!(body["phone"][0]["u"].is_string());
    assert_eq!(body["phone"][1], json!({ "e": "invalid identifier" }));
    assert_eq!(body["phone_hash"], json!([]));
}

#[tokio::test]
async fn identity_map_v3_binary_round_trip() {
    // The Python SDK's v3 client sends binary and expects binary back.
    let op = Operator::start().await;
    let envelope = Envelope::now(&C999, r#"{"email_hash":[],"phone_hash":[]}"#);
    let reply = op
        .v2_raw(MAP_V3, &C999, "application/octet-stream", envelope.bytes.clone())
        .await;
    assert_eq!(reply.content_type(), Some("application/octet-stream"));
    assert_eq!(reply.open(&C999.secret(), &envelope.nonce)["status"], "success");
}

// ---------------------------------------------------------------------------------------------
// /v2/identity/buckets (api.md §5.8)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn identity_buckets_errors_and_shape() {
    let op = Operator::start().await;
    for payload in [
        "{}",
        r#"{"since_timestamp":null}"#,
        r#"{"since":"2020-01-01T00:00:00"}"#,
    ] {
        let (reply, _) = op.v2(BUCKETS, &C999, payload).await;
        assert_client_error(&reply, "missing parameter since_timestamp");
    }
    for payload in [
        r#"{"since_timestamp":1609459200}"#,
        r#"{"since_timestamp":"1609459200"}"#,
        r#"{"since_timestamp":"2021-01-01T00:00:00Z"}"#,
        r#"{"since_timestamp":"2021-01-01T00:00:00+00:00"}"#,
        r#"{"since_timestamp":"2021-01-01"}"#,
        r#"{"since_timestamp":"2021-01-01 00:00:00"}"#,
        r#"{"since_timestamp":"2021-02-30T00:00:00"}"#,
        r#"{"since_timestamp":""}"#,
        r#"{"since_timestamp":true}"#,
    ] {
        let (reply, _) = op.v2(BUCKETS, &C999, payload).await;
        assert_client_error(&reply, "invalid date, must conform to ISO 8601");
    }

    let response = op
        .v2_ok(BUCKETS, &C999, r#"{"since_timestamp":"2020-01-01T00:00:00"}"#)
        .await;
    let buckets = response["body"].as_array().cloned().unwrap_or_default();
    assert_eq!(buckets.len(), 5, "{response}");
    for bucket in &buckets {
        assert_eq!(keys_of(bucket), ["bucket_id", "last_updated"]);
        let last = bucket["last_updated"].as_str().unwrap_or_default();
        let shape_ok = last.len() == 23
            && last.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                10 => b == b'T',
                13 | 16 => b == b':',
                19 => b == b'.',
                _ => b.is_ascii_digit(),
            });
        assert!(shape_ok, "last_updated {last:?}");
    }
    assert_eq!(buckets[0]["last_updated"], "2027-03-30T00:00:00.001");

    // Only the buckets updated at or after the time, minutes-only form accepted.
    let response = op
        .v2_ok(BUCKETS, &C999, r#"{"since_timestamp":"2027-03-30T00:00"}"#)
        .await;
    let later: Vec<&str> = response["body"]
        .as_array()
        .map(|a| a.iter().filter_map(|b| b["last_updated"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(later, ["2027-03-30T00:00:00.001", "2027-05-29T00:00:00.001"]);
}

#[tokio::test]
async fn identity_buckets_empty_payload_is_a_client_error() {
    // The reference dereferences the missing payload and answers 500; a client mistake is a 400
    // here (docs/compatibility.md).
    let op = Operator::start().await;
    let (reply, _) = op.v2_empty(BUCKETS, &C999).await;
    assert_client_error(&reply, "missing parameter since_timestamp");
}

// ---------------------------------------------------------------------------------------------
// /v2/optout/status (api.md §5.9)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn optout_status_errors_and_limits() {
    let op = Operator::start().await;
    for payload in ["{}", r#"{"advertising_ids":null}"#, r#"{"ids":[]}"#] {
        let (reply, _) = op.v2(OPTOUT_STATUS, &C999, payload).await;
        assert_client_error(&reply, "Required Parameter Missing: advertising_ids");
    }
    let (reply, _) = op.v2_empty(OPTOUT_STATUS, &C999).await;
    assert_client_error(&reply, "Invalid request body");

    let id = b64(&[9u8; 32]);
    let too_many = json!({ "advertising_ids": vec![id.clone(); 5001] });
    let (reply, _) = op.v2(OPTOUT_STATUS, &C999, &too_many.to_string()).await;
    assert_client_error(&reply, "Request payload is too large");
    let at_limit = json!({ "advertising_ids": vec![id.clone(); 5000] });
    let response = op.v2_ok(OPTOUT_STATUS, &C999, &at_limit.to_string()).await;
    assert_eq!(response["body"], json!({ "opted_out": [] }));

    for client in [&C999, &C123, &C125, &C126] {
        let response = op.v2_ok(OPTOUT_STATUS, client, r#"{"advertising_ids":[]}"#).await;
        assert_eq!(
            response,
            json!({ "body": { "opted_out": [] }, "status": "success" }),
            "{}",
            client.name
        );
    }

    // Not an array: the reference's documented 500.
    let (reply, _) = op.v2(OPTOUT_STATUS, &C999, r#"{"advertising_ids":"abc"}"#).await;
    assert_error(&reply, 500, "unknown", "Unknown error while getting optout status");
}

// ---------------------------------------------------------------------------------------------
// Key endpoints (api.md §5.10–5.12, §9)
// ---------------------------------------------------------------------------------------------

fn key_ids(keys: &Value) -> Vec<i64> {
    keys.as_array()
        .map(|a| a.iter().filter_map(|k| k["id"].as_i64()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn key_sharing_for_site_999() {
    let op = Operator::start().await;
    let (reply, nonce) = op.v2_empty(KEY_SHARING, &C999).await;
    let response = reply.open(&C999.secret(), &nonce);
    assert_eq!(response["status"], "success");
    let body = &response["body"];

    assert_eq!(
        keys_of(body),
        [
            "allow_clock_skew_seconds",
            "caller_site_id",
            "default_keyset_id",
            "identity_scope",
            "keys",
            "master_keyset_id",
            "max_sharing_lifetime_seconds",
            "site_data",
            "token_expiry_seconds",
        ]
    );
    assert_eq!(body["caller_site_id"], 999);
    assert_eq!(body["master_keyset_id"], 9_999_999);
    assert_eq!(body["default_keyset_id"], 99_999);
    assert_eq!(body["token_expiry_seconds"], json!("2592000"), "a JSON string");
    assert_eq!(body["max_sharing_lifetime_seconds"], 2_592_010);
    assert_eq!(body["identity_scope"], "UID2");
    assert_eq!(body["allow_clock_skew_seconds"], 1800);
    // CSTG is on in local mode; site 999 is not in the site store, and the master key's site −1
    // never is, so the list is present and empty.
    assert_eq!(body["site_data"], json!([]));

    let ids = key_ids(&body["keys"]);
    assert!(ids.contains(&101) && ids.contains(&99_999), "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted by id: {ids:?}");
    assert!(!ids.contains(&102), "the refresh key is never shared");
    for key in body["keys"].as_array().into_iter().flatten() {
        let expected = match key["id"].as_i64() {
            Some(101) => json!(9_999_999),
            Some(99_999) => json!(99_999),
            _ => Value::Null,
        };
        assert_eq!(key.get("keyset_id").cloned().unwrap_or(Value::Null), expected, "{key}");
        assert!(key.get("site_id").is_none());
        let secret = key["secret"].as_str().unwrap_or_default();
        assert!(SecretKey::from_base64(secret).is_some(), "{key}");
        // Key times are seconds.
        assert!(key["expires"].as_i64().is_some_and(|e| e < 10_000_000_000), "{key}");
    }
}

#[tokio::test]
async fn key_sharing_for_other_roles() {
    let op = Operator::start().await;

    // DSP site 123 (ID_READER, no SHARER). §9.1: master always; its own keysets 501 (key 104) and
    // 502 (key 5); keyset 901 (key 11) lists 123 in allowed_sites; and, being an ID_READER, every
    // keyset whose allowed_sites is null, which includes the bundled store's keyset 99999. sdk.md
    // §3.5 lists 5, 11, 101, 104 because the reference's own store has no keyset 99999.
    let (reply, nonce) = op.v2_empty(KEY_SHARING, &C123).await;
    let body = reply.open(&C123.secret(), &nonce)["body"].clone();
    assert_eq!(key_ids(&body["keys"]), [5, 11, 101, 104, 99_999]);
    assert_eq!(body["caller_site_id"], 123);
    assert_eq!(body["default_keyset_id"], 501);
    assert!(body.get("max_sharing_lifetime_seconds").is_none(), "only for SHARER");
    for key in body["keys"].as_array().into_iter().flatten() {
        let expected = match key["id"].as_i64() {
            Some(5) => json!(502),
            Some(104) => json!(501),
            Some(101) => json!(9_999_999),
            _ => Value::Null,
        };
        assert_eq!(key.get("keyset_id").cloned().unwrap_or(Value::Null), expected, "{key}");
    }
    // Key 11's stored secret is non-canonical base64; it is served canonically.
    let key11 = body["keys"]
        .as_array()
        .and_then(|a| a.iter().find(|k| k["id"] == 11))
        .cloned()
        .unwrap_or_default();
    assert_eq!(key11["secret"], "YgyxOX4yX1gYhCINq7O9XxM6jX+etXqSXluZxjB1aG0=");
    // site_data: the owner sites of the returned keys that have names, ascending; local mode also
    // lists app names (key_sharing_endpoint_provide_app_names, as the reference's local config),
    // and each list is sorted case-sensitively.
    assert_eq!(
        body["site_data"],
        json!([
            {
                "id": 123,
                "domain_names": [
                    "123456789",
                    "com.123.Game.App.android",
                    "com.123.Game.App.ios",
                    "com.uid2.devapp",
                    "localhost",
                    "uidapi.com",
                ],
            },
            {
                "id": 127,
                "domain_names": ["13456789", "com.UID2.operator.TEST", "example.com", "unifiedid.com"],
            },
        ])
    );

    // Site 125 (MAPPER + SHARER, no ID_READER): DENY_ALL for null ACLs, so the master key only, no
    // default keyset (omitted, not null), and a max sharing lifetime.
    let (reply, nonce) = op.v2_empty(KEY_SHARING, &C125).await;
    let body = reply.open(&C125.secret(), &nonce)["body"].clone();
    assert_eq!(key_ids(&body["keys"]), [101]);
    assert!(body.get("default_keyset_id").is_none());
    assert_eq!(body["max_sharing_lifetime_seconds"], 2_592_010);
    assert_eq!(body["site_data"], json!([]));
}

#[tokio::test]
async fn key_site_data_without_app_names() {
    let op = Operator::start_with(|c| c.api.key_sharing_provide_app_names = false).await;
    for path in [KEY_SHARING, KEY_BIDSTREAM] {
        let (reply, nonce) = op.v2_empty(path, &C123).await;
        let body = reply.open(&C123.secret(), &nonce)["body"].clone();
        assert_eq!(
            body["site_data"],
            json!([
                { "id": 123, "domain_names": ["localhost", "uidapi.com"] },
                { "id": 127, "domain_names": ["example.com", "unifiedid.com"] },
            ]),
            "{path}"
        );
    }
}

#[tokio::test]
async fn key_bidstream_and_latest() {
    let op = Operator::start().await;

    let (reply, nonce) = op.v2_empty(KEY_BIDSTREAM, &C999).await;
    let body = reply.open(&C999.secret(), &nonce)["body"].clone();
    assert_eq!(
        keys_of(&body),
        [
            "allow_clock_skew_seconds",
            "identity_scope",
            "keys",
            "max_bidstream_lifetime_seconds",
            "site_data",
        ]
    );
    assert_eq!(body["max_bidstream_lifetime_seconds"], 3610);
    assert_eq!(body["identity_scope"], "UID2");
    assert!(body["keys"].as_array().is_some_and(|k| !k.is_empty()));
    for key in body["keys"].as_array().into_iter().flatten() {
        assert!(key.get("keyset_id").is_none(), "bidstream never names keysets: {key}");
    }

    let (reply, nonce) = op.v2_empty(KEY_BIDSTREAM, &C123).await;
    let body = reply.open(&C123.secret(), &nonce)["body"].clone();
    assert_eq!(key_ids(&body["keys"]), [5, 11, 101, 104, 99_999]);
    assert!(body["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|k| k.get("keyset_id").is_none()));

    // The legacy download: an array, each key with its keyset owner's site_id.
    let (reply, nonce) = op.v2_empty(KEY_LATEST, &C123).await;
    let body = reply.open(&C123.secret(), &nonce)["body"].clone();
    let sites: Vec<(i64, i64)> = body
        .as_array()
        .map(|a| {
            a.iter()
                .map(|k| (k["id"].as_i64().unwrap_or(0), k["site_id"].as_i64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(sites, [(5, 123), (11, 127), (101, -1), (104, 123), (99_999, 999)]);
    for key in body.as_array().into_iter().flatten() {
        assert_eq!(
            keys_of(key),
            ["activates", "created", "expires", "id", "secret", "site_id"]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// /v2/token/client-generate (api.md §5.5)
// ---------------------------------------------------------------------------------------------

/// A CSTG request as the JS SDK builds it; returns the body and the shared secret.
fn cstg_request(payload_json: &str, timestamp: i64, app_name: Option<&str>) -> (Value, SecretKey) {
    let client = cstg::client::ClientKey::generate();
    let secret = client
        .shared_secret(CSTG_SERVER_PUBLIC_KEY)
        .expect("the site's public key is valid");
    let iv = random::<12>();
    let aad = cstg::aad(timestamp, app_name);
    let sealed = cstg::client::seal_payload(&secret, &iv, payload_json.as_bytes(), &aad);
    let mut body = json!({
        "payload": b64(&sealed),
        "iv": b64(&iv),
        "public_key": client.public_key_b64(),
        "timestamp": timestamp,
        "subscription_id": CSTG_SUBSCRIPTION_ID,
    });
    if let Some(name) = app_name {
        body["app_name"] = json!(name);
    }
    (body, secret)
}

async fn cstg_post(op: &Operator, origin: Option<&str>, body: &str) -> Reply {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(origin) = origin {
        headers.push(("origin", origin));
    }
    op.post(CSTG, &headers, body.to_owned()).await
}

/// A site-123 advertising token from CSTG, and the full decrypted response.
async fn cstg_token(op: &Operator, email_hash: &str) -> (String, Value) {
    let (body, secret) = cstg_request(&json!({ "email_hash": email_hash }).to_string(), now_ms(), None);
    let reply = cstg_post(op, Some("https://www.uidapi.com"), &body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.content_type(), None, "a CSTG 200 has no Content-Type");
    let response = reply.open_bare(&secret);
    assert_eq!(response["status"], "success", "{response}");
    (
        response["body"]["advertising_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        response,
    )
}

#[tokio::test]
async fn cstg_success_and_optout() {
    let op = Operator::start().await;
    let (token, response) = cstg_token(&op, &sha256_b64("cstg@example.com")).await;
    assert!(token.starts_with("A4"));
    assert_eq!(response["body"]["refresh_token"].as_str().map(str::len), Some(388));

    let (body, secret) = cstg_request(
        &json!({ "email_hash": sha256_b64("optout@example.com") }).to_string(),
        now_ms(),
        None,
    );
    let reply = cstg_post(&op, Some("http://localhost:8080"), &body.to_string()).await;
    assert_eq!(reply.open_bare(&secret), json!({ "status": "optout" }));

    // The app name replaces the origin check (and is part of the AAD); the timestamp is not
    // checked for freshness.
    let (body, secret) = cstg_request(
        &json!({ "phone_hash": sha256_b64("+12345678901") }).to_string(),
        1,
        Some("com.123.Game.App.android"),
    );
    let reply = cstg_post(&op, None, &body.to_string()).await;
    let response = reply.open_bare(&secret);
    assert!(response["body"]["advertising_token"]
        .as_str()
        .is_some_and(|t| t.starts_with("B4")));

    // App names match case-insensitively, and a bad Origin does not matter then.
    let (body, secret) = cstg_request(&email_hash_of("app@example.com"), now_ms(), Some("COM.UID2.DEVAPP"));
    let reply = cstg_post(&op, Some("https://evil.example"), &body.to_string()).await;
    assert_eq!(reply.open_bare(&secret)["status"], "success");

    // A missing timestamp is 0 in the AAD.
    let (body, secret) = cstg_request(&email_hash_of("ts@example.com"), 0, None);
    let body = without(body, "timestamp");
    let reply = cstg_post(&op, Some("http://sub.localhost:3000"), &body.to_string()).await;
    assert_eq!(reply.open_bare(&secret)["status"], "success");
}

fn email_hash_of(email: &str) -> String {
    json!({ "email_hash": sha256_b64(email) }).to_string()
}

#[tokio::test]
async fn cstg_request_errors() {
    let op = Operator::start().await;
    let origin = Some("https://uidapi.com");
    let email_hash = json!({ "email_hash": sha256_b64("cstg@example.com") }).to_string();

    assert_client_error(&cstg_post(&op, origin, "not json").await, "json payload is not valid");
    assert_client_error(&cstg_post(&op, origin, "[1,2]").await, "json payload is not valid");
    assert_client_error(&cstg_post(&op, origin, "").await, "json payload expected but not found");

    let (mut body, _) = cstg_request(&email_hash, now_ms(), None);
    body["subscription_id"] = json!("nope");
    assert_client_error(&cstg_post(&op, origin, &body.to_string()).await, "bad subscription_id");
    let (body, _) = cstg_request(&email_hash, now_ms(), None);
    let body = without(body, "subscription_id");
    assert_client_error(&cstg_post(&op, origin, &body.to_string()).await, "bad subscription_id");

    // Origins that are not the site's (registrable domain via the PSL; IPs never match).
    let (body, _) = cstg_request(&email_hash, now_ms(), None);
    for bad in [
        None,
        Some("https://evil.example"),
        Some("https://uidapi.com.evil.example"),
        Some("http://127.0.0.1"),
        Some("not a url"),
        Some("https://a.b.localhost"),
    ] {
        let reply = cstg_post(&op, bad, &body.to_string()).await;
        assert_error(&reply, 403, "invalid_http_origin", "unexpected http origin");
    }
    let (body, _) = cstg_request(&email_hash, now_ms(), Some("com.evil.app"));
    assert_error(
        &cstg_post(&op, origin, &body.to_string()).await,
        403,
        "invalid_app_name",
        "unexpected app name",
    );

    // Missing parameters, after the origin check.
    for field in ["payload", "iv", "public_key"] {
        let (body, _) = cstg_request(&email_hash, now_ms(), None);
        let body = without(body, field);
        assert_client_error(
            &cstg_post(&op, origin, &body.to_string()).await,
            "required parameters: payload, iv, public_key",
        );
    }

    let (mut body, _) = cstg_request(&email_hash, now_ms(), None);
    body["public_key"] = json!("bm90IGEga2V5");
    assert_client_error(&cstg_post(&op, origin, &body.to_string()).await, "bad public key");
    body["public_key"] = json!("!!!");
    assert_client_error(&cstg_post(&op, origin, &body.to_string()).await, "bad public key");

    let sixteen = b64(&[0u8; 16]);
    for iv in ["AAAA", "!!!!", sixteen.as_str()] {
        let (mut body, _) = cstg_request(&email_hash, now_ms(), None);
        body["iv"] = json!(iv);
        assert_client_error(&cstg_post(&op, origin, &body.to_string()).await, "bad iv");
    }

    // Decryption failures: garbage payload, wrong AAD (timestamp), non-base64 payload.
    let (mut body, _) = cstg_request(&email_hash, now_ms(), None);
    body["payload"] = json!(b64(&[1u8; 40]));
    assert_client_error(
        &cstg_post(&op, origin, &body.to_string()).await,
        "payload decryption failed",
    );
    let (mut body, _) = cstg_request(&email_hash, 1000, None);
    body["timestamp"] = json!(1001);
    assert_client_error(
        &cstg_post(&op, origin, &body.to_string()).await,
        "payload decryption failed",
    );
    let (mut body, _) = cstg_request(&email_hash, now_ms(), None);
    body["payload"] = json!("!!!");
    assert_client_error(
        &cstg_post(&op, origin, &body.to_string()).await,
        "payload decryption failed",
    );

    // What is inside must be a JSON object with exactly one hash.
    let (body, _) = cstg_request("not json", now_ms(), None);
    assert_client_error(
        &cstg_post(&op, origin, &body.to_string()).await,
        "encrypted payload contains invalid json",
    );
    let exactly_one = "please provide exactly one of: email_hash, phone_hash";
    for inner in [
        json!({}),
        json!({ "email": "cstg@example.com" }),
        json!({ "email_hash": sha256_b64("a@b.com"), "phone_hash": sha256_b64("+12345678901") }),
    ] {
        let (body, _) = cstg_request(&inner.to_string(), now_ms(), None);
        assert_client_error(&cstg_post(&op, origin, &body.to_string()).await, exactly_one);
    }
    let (body, _) = cstg_request(r#"{"email_hash":"not a hash"}"#, now_ms(), None);
    assert_client_error(&cstg_post(&op, origin, &body.to_string()).await, "Invalid Identifier");

    // Check order: subscription before origin, origin before parameters.
    let reply = cstg_post(&op, Some("https://evil.example"), r#"{"subscription_id":"nope"}"#).await;
    assert_client_error(&reply, "bad subscription_id");
    let reply = cstg_post(&op, Some("https://evil.example"), r#"{"subscription_id":"4WvryDGbR5"}"#).await;
    assert_error(&reply, 403, "invalid_http_origin", "unexpected http origin");
    let reply = cstg_post(&op, origin, r#"{"subscription_id":"4WvryDGbR5"}"#).await;
    assert_client_error(&reply, "required parameters: payload, iv, public_key");

    // The reference binds the body strictly: an unknown top-level field is its 500.
    let (mut body, _) = cstg_request(&email_hash, now_ms(), None);
    body["unexpected"] = json!(1);
    assert_error(
        &cstg_post(&op, origin, &body.to_string()).await,
        500,
        "unknown",
        "Unknown error while handling client side token generate",
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration that changes errors (api.md §10.1)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn phone_support_off_changes_messages() {
    let op = Operator::start_with(|c| c.api.phone_support = false).await;
    let email_only = "Required Parameter Missing: exactly one of email or email_hash must be specified";

    for payload in ["{}", r#"{"phone":"+12345678901"}"#, r#"{"phone_hash":"x"}"#] {
        let (reply, _) = op.v2(GENERATE, &C999, payload).await;
        assert_client_error(&reply, email_only);
    }
    // Phone fields are not even looked at, so email plus phone is fine.
    let response = op
        .v2_ok(GENERATE, &C999, r#"{"email":"a@example.com","phone":"+12345678901"}"#)
        .await;
    assert_eq!(response["status"], "success");

    let (reply, _) = op.v2(MAP_V2, &C999, r#"{"phone":["+12345678901"]}"#).await;
    assert_client_error(&reply, email_only);
    let (reply, _) = op.v2(MAP_V3, &C999, "{}").await;
    assert_client_error(
        &reply,
        "Required Parameter Missing: one or more of [email, email_hash] must be specified",
    );
    // v3 maps phones even with phone support off.
    let response = op.v2_ok(MAP_V3, &C999, r#"{"phone":["+12345678901"]}"#).await;
    assert!(response["body"]["phone"][0]["u"].is_string(), "{response}");

    let origin = Some("http://localhost");
    let (body, _) = cstg_request(
        &json!({ "phone_hash": sha256_b64("+12345678901") }).to_string(),
        now_ms(),
        None,
    );
    assert_client_error(
        &cstg_post(&op, origin, &body.to_string()).await,
        "phone support not enabled",
    );
    let (body, _) = cstg_request("{}", now_ms(), None);
    assert_client_error(
        &cstg_post(&op, origin, &body.to_string()).await,
        "please provide email_hash",
    );
}

#[tokio::test]
async fn euid_scope_changes_hints_tokens_and_scope() {
    let op = Operator::start_with(|c| c.api.identity_scope = IdentityScope::Euid).await;
    let hint = " See https://euid.eu/docs/getting-started/gs-encryption-decryption for details on the request envelope format.";
    let reply = op.v2_raw(GENERATE, &C999, "text/plain", "not base64!").await;
    assert_client_error(&reply, &format!("Invalid body: Body is not valid base64.{hint}"));
    let reply = op.v2_raw(GENERATE, &C999, "text/plain", r#"{"email":"a@b.com"}"#).await;
    assert_client_error(
        &reply,
        &UNENCRYPTED_JSON.replace("https://unifiedid.com", "https://euid.eu"),
    );

    let body = generate(&op, &C999, "test@example.com").await;
    assert!(body["advertising_token"].as_str().is_some_and(|t| t.starts_with("E4")));
    let (reply, nonce) = op.v2_empty(KEY_SHARING, &C999).await;
    assert_eq!(reply.open(&C999.secret(), &nonce)["body"]["identity_scope"], "EUID");

    // TCF consent is checked only when the field is present; empty or garbage is invalid.
    for consent in ["", "not a tcf string"] {
        let (reply, _) = op
            .v2(
                GENERATE,
                &C999,
                &json!({ "email": "test@example.com", "tcf_consent_string": consent }).to_string(),
            )
            .await;
        assert_client_error(&reply, "User consent is invalid");
    }

    // A UID2 refresh token is invalid under an EUID operator.
    let now = now_ms();
    let uid2_token = forged_refresh_token(999, now - 60_000, now + 86_400_000);
    let bearer = auth(&C999);
    assert_error(
        &op.post(REFRESH, &[("authorization", bearer.as_str())], uid2_token)
            .await,
        400,
        "invalid_token",
        "Invalid Token presented",
    );
}

#[tokio::test]
async fn optional_routes_can_be_turned_off() {
    let op = Operator::start_with(|c| {
        c.api.optout_status_api_enabled = false;
        c.api.client_side_token_generate = false;
    })
    .await;
    for path in [OPTOUT_STATUS, CSTG] {
        let reply = op.post(path, &[], "{}").await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.text(), "<html><body><h1>Resource not found</h1></body></html>");
    }
    // Without CSTG there is no site_data in key responses.
    for path in [KEY_SHARING, KEY_BIDSTREAM] {
        let (reply, nonce) = op.v2_empty(path, &C999).await;
        let body = reply.open(&C999.secret(), &nonce)["body"].clone();
        assert!(body.get("site_data").is_none(), "{path}: {body}");
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed input never panics and never 5xx's except where the reference does
// ---------------------------------------------------------------------------------------------

/// The 5xx answers api.md documents for the reference, per route.
fn documented_5xx(path: &str, reply: &Reply) -> bool {
    let json_error = |status: &str, message: &str| reply.status == 500 && reply.text() == error_body(status, message);
    let plain_500 = reply.status == 500 && reply.text() == "Internal Server Error";
    match path {
        CSTG => json_error("unknown", "Unknown error while handling client side token generate"),
        OPTOUT_STATUS => json_error("unknown", "Unknown error while getting optout status"),
        MAP_V2 => json_error("unknown", "Unknown error while mapping identity v2"),
        REFRESH => json_error("unknown", "Unknown error while refreshing token v2"),
        BUCKETS | LOGOUT | VALIDATE => plain_500,
        _ => false,
    }
}

fn deep(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// The malformed request number `case` for `path`: (headers, body).
fn malformed(path: &str, case: usize, rng: &mut Xorshift) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let bearer = ("authorization", C999.bearer());
    let text = ("content-type", "text/plain".to_owned());
    let binary = ("content-type", "application/octet-stream".to_owned());
    let json_ct = ("content-type", "application/json".to_owned());
    let origin = ("origin", "http://localhost".to_owned());
    let sealed = |json: &[u8]| Envelope::seal(&C999.secret(), now_ms(), json).bytes;
    let all_fields = |value: &str| {
        format!(
            r#"{{"email":{value},"email_hash":{value},"phone":{value},"phone_hash":{value},"token":{value},"since_timestamp":{value},"advertising_ids":{value},"payload":{value},"iv":{value},"public_key":{value},"timestamp":{value},"subscription_id":{value}}}"#
        )
    };
    match case {
        0 => {
            let len = rng.below(600);
            (vec![bearer, text], rng.bytes(len))
        }
        1 => {
            let len = rng.below(600);
            (vec![bearer, binary], rng.bytes(len))
        }
        2 => {
            let len = rng.below(600);
            (vec![origin], rng.bytes(len))
        }
        // Invalid UTF-8, including at exactly the refresh envelope's length.
        3 => (vec![bearer, text], vec![0xFF; 388]),
        4 => (
            vec![bearer, json_ct, origin],
            b"{\"email\":\"\xc3\x28\",\"payload\":\"\xff\"}".to_vec(),
        ),
        // Right version byte, random rest: a bad secret.
        5 => {
            let len = 45 + rng.below(200);
            let mut bytes = rng.bytes(len);
            bytes[0] = 1;
            (vec![bearer, text], b64(&bytes).into_bytes())
        }
        // A valid envelope truncated somewhere.
        6 => {
            let full = sealed(br#"{"email":"test@example.com"}"#);
            let cut = rng.below(full.len());
            (vec![bearer, text], b64(&full[..cut]).into_bytes())
        }
        7 => {
            let full = sealed(br#"{"email":"test@example.com"}"#);
            let cut = rng.below(full.len());
            (vec![bearer, binary], full[..cut].to_vec())
        }
        // Deep nesting: past serde_json's recursion limit, then just under it in every field.
        8 => {
            let json = format!(r#"{{"email":{}}}"#, deep(5000));
            (vec![bearer, text, origin], b64(&sealed(json.as_bytes())).into_bytes())
        }
        9 => {
            let json = all_fields(&deep(100));
            if path == CSTG {
                (vec![json_ct, origin], json.into_bytes())
            } else {
                (vec![bearer, text], b64(&sealed(json.as_bytes())).into_bytes())
            }
        }
        // Huge numbers, in range for JSON and out of range for every integer type.
        10 => {
            let json = all_fields("123456789012345678901234567890123456789");
            if path == CSTG {
                (vec![json_ct, origin], json.into_bytes())
            } else {
                (vec![bearer, text], b64(&sealed(json.as_bytes())).into_bytes())
            }
        }
        11 => {
            let json = all_fields("-1.7976931348623157e308");
            if path == CSTG {
                (vec![json_ct, origin], json.into_bytes())
            } else {
                (vec![bearer, binary], sealed(json.as_bytes()))
            }
        }
        12 => {
            let json = r#"{"email":1e999999,"timestamp":1e400}"#;
            if path == CSTG {
                (vec![json_ct, origin], json.as_bytes().to_vec())
            } else {
                (vec![bearer, text], b64(&sealed(json.as_bytes())).into_bytes())
            }
        }
        // Wrong types everywhere.
        13 => {
            let json = r#"{"email":{"a":[1,{"b":null}]},"email_hash":true,"phone":[[],{}],"phone_hash":-0.0,"token":{},"since_timestamp":[],"advertising_ids":[null,1,{}],"payload":[],"iv":{},"public_key":false,"timestamp":"soon","subscription_id":["4WvryDGbR5"],"app_name":{}}"#;
            if path == CSTG {
                (vec![json_ct, origin], json.as_bytes().to_vec())
            } else {
                (vec![bearer, text], b64(&sealed(json.as_bytes())).into_bytes())
            }
        }
        // 388 random base64 characters (the refresh envelope's length).
        14 => {
            let bytes = rng.bytes(291);
            (vec![bearer, text], b64(&bytes).into_bytes())
        }
        // Random base64 text labelled binary: the fallback path.
        15 => {
            let len = 45 + rng.below(300);
            let bytes = rng.bytes(len);
            (vec![bearer, binary], b64(&bytes).into_bytes())
        }
        // A CSTG-shaped body with random field values.
        16 => {
            let field = |rng: &mut Xorshift| {
                let len = rng.below(80);
                b64(&rng.bytes(len))
            };
            let json = json!({
                "payload": field(rng),
                "iv": field(rng),
                "public_key": field(rng),
                "timestamp": rng.next_u64(),
                "subscription_id": CSTG_SUBSCRIPTION_ID,
            });
            (vec![bearer, json_ct, origin], json.to_string().into_bytes())
        }
        // Odd headers: a garbage key, a control-free but weird content type.
        _ => {
            let key = format!("Bearer {}", b64(&rng.bytes(40)));
            let envelope = sealed(br#"{"email":"test@example.com"}"#);
            (
                vec![
                    ("authorization", key),
                    ("content-type", "multipart/form-data; boundary=x".to_owned()),
                ],
                b64(&envelope).into_bytes(),
            )
        }
    }
}

#[tokio::test]
async fn malformed_requests_never_crash_or_5xx() {
    const CASES: usize = 18;
    let op = Operator::start().await;
    let mut rng = Xorshift::new(0x5EED_0F0B_AD1D_EA00);
    let run = async {
        let mut sent = 0usize;
        for path in POST_ROUTES {
            for case in 0..CASES {
                let (headers, body) = malformed(path, case, &mut rng);
                let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let reply = op.post(path, &headers, body).await;
                sent += 1;
                assert!(
                    reply.status < 500 || documented_5xx(path, &reply),
                    "case {case} on {path}: HTTP {} {}",
                    reply.status,
                    reply.text()
                );
                assert!(
                    reply.status != 200 || path == REFRESH || case >= 9,
                    "case {case} on {path} succeeded"
                );
            }
        }
        sent
    };
    let sent = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the malformed-input run finishes in time");
    assert_eq!(sent, POST_ROUTES.len() * CASES);
    // Still serving afterwards.
    assert_eq!(op.get("/ops/healthcheck").await.status, 200);
    let (reply, nonce) = op.v2_empty(KEY_SHARING, &C999).await;
    assert_eq!(reply.open(&C999.secret(), &nonce)["status"], "success");
}

// ---------------------------------------------------------------------------------------------
// --check-config (the binary)
// ---------------------------------------------------------------------------------------------

fn check_config(name: &str, text: &str) -> std::process::Output {
    let path = std::env::temp_dir().join(format!("uid2-api-errors-{}-{name}.json", std::process::id()));
    std::fs::write(&path, text).expect("write the config file");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_uid2-operator"))
        .arg("--check-config")
        .arg("--config")
        .arg(&path)
        .env_remove("port_offset")
        .env_remove("core_api_token")
        .env_remove("optout_api_token")
        .output()
        .expect("run uid2-operator --check-config");
    let _ = std::fs::remove_file(&path);
    output
}

#[test]
fn check_config_names_every_bad_key() {
    let bad = r#"{
        "identity_scope": "xyz",
        "enable_phone_support": "yes",
        "http_port": 70000,
        "tcf_vendor_id": "21",
        "optout_status_max_request_size": -1,
        "http_bind_address": "not-an-ip",
        "enable_v2_encryption": false,
        "core_api_token": "very-secret-operator-key"
    }"#;
    let output = check_config("bad", bad);
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for key in [
        "identity_scope",
        "enable_phone_support",
        "http_port",
        "tcf_vendor_id",
        "optout_status_max_request_size",
        "http_bind_address",
        "enable_v2_encryption",
    ] {
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stderr.contains("very-secret-operator-key") && !stdout.contains("very-secret-operator-key"),
        "a secret was printed"
    );

    let output = check_config("malformed", "{ not json");
    assert_eq!(output.status.code(), Some(64));

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_uid2-operator"))
        .args(["--check-config", "--config", "/nonexistent/uid2-operator-config.json"])
        .output()
        .expect("run uid2-operator");
    assert_eq!(output.status.code(), Some(64));
}

#[test]
fn check_config_accepts_a_good_file() {
    let good = r#"{"identity_scope":"uid2","http_port":8080,"enable_phone_support":true,"storage_mock":true,
                   "no_such_key":1}"#;
    let output = check_config("good", good);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("no_such_key"),
        "unknown keys are warned about: {stdout}"
    );
}
