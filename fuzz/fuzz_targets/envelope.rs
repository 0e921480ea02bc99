//! The v2 request/response envelope (`uid2_protocol::envelope`).
//!
//! Mode byte, low bit: the request's `Content-Type` is `application/octet-stream`. Then:
//! - `wire` (0): the rest is a request body as received, opened with the §8.10 client secret at
//!   the §8.10 time (so the committed vectors open). Whatever opens must re-seal and re-open to
//!   the same request.
//! - `sealed` (1): the rest is a timestamp offset, nonce, IV and plaintext JSON, sealed as an SDK
//!   would; opening must give back exactly the timestamp, nonce and the JSON object the plaintext
//!   parses to (or the right refusal), and the wrong secret must be refused.
//! - `response` (2): the rest is a response body opened by the SDK side, and a sealed response
//!   round trip.
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use uid2_fuzz::keys::{client_secret, ENVELOPE_NOW_MS};
use uid2_fuzz::{array, mode, value};
use uid2_protocol::crypto::SecretKey;
use uid2_protocol::entropy::ScriptedEntropy;
use uid2_protocol::envelope::client::{open_response, seal_request};
use uid2_protocol::envelope::{open_request, seal_response, timestamp_in_window, EnvelopeError, OpenedRequest};

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = mode(data);
    let octet_stream = mode & 1 == 1;
    match (mode >> 1) % 3 {
        0 => wire(rest, octet_stream),
        1 => sealed(rest, octet_stream),
        _ => response(rest),
    }
});

fn wire(body: &[u8], octet_stream: bool) {
    let secret = client_secret();
    let Ok(opened) = open_request(body, octet_stream, &secret, ENVELOPE_NOW_MS) else {
        return;
    };
    assert!(timestamp_in_window(opened.timestamp_ms, ENVELOPE_NOW_MS));
    if !has_float(&opened) {
        assert_eq!(
            reseal(&opened, &secret),
            opened.clone(),
            "what opens re-seals to the same request"
        );
    }
}

/// serde_json parses floats with best-effort precision (its `float_roundtrip` feature is off, as
/// in the operator), so a float may not survive print-then-parse; such payloads are not compared.
fn has_float(opened: &OpenedRequest) -> bool {
    fn walk(value: &Value) -> bool {
        match value {
            Value::Number(n) => n.is_f64(),
            Value::Array(items) => items.iter().any(walk),
            Value::Object(map) => map.values().any(walk),
            _ => false,
        }
    }
    opened.payload.as_ref().is_some_and(|map| map.values().any(walk))
}

/// Seals the opened request again (text form) and opens it.
fn reseal(opened: &OpenedRequest, secret: &SecretKey) -> OpenedRequest {
    let json = opened
        .payload
        .as_ref()
        .map(|map| serde_json::to_vec(map).expect("a JSON map serializes"))
        .unwrap_or_default();
    let sealed = seal_request(secret, opened.timestamp_ms, &opened.nonce, &json, &[9; 12]);
    let text = uid2_protocol::base64::encode(&sealed);
    let reopened = open_request(text.as_bytes(), false, secret, ENVELOPE_NOW_MS).expect("a re-sealed request opens");
    OpenedRequest {
        binary: opened.binary,
        ..reopened
    }
}

fn sealed(rest: &[u8], octet_stream: bool) {
    let mut u = Unstructured::new(rest);
    // Mostly near "now", sometimes anywhere.
    let offset: i16 = value(&mut u);
    let timestamp_ms = if offset == i16::MIN {
        value::<i64>(&mut u)
    } else {
        ENVELOPE_NOW_MS.saturating_add(i64::from(offset) * 8)
    };
    let nonce = array::<8>(&mut u);
    let iv = array::<12>(&mut u);
    let json = u.take_rest();

    let secret = client_secret();
    let envelope = seal_request(&secret, timestamp_ms, &nonce, json, &iv);
    let body = if octet_stream {
        envelope.clone()
    } else {
        uid2_protocol::base64::encode(&envelope).into_bytes()
    };
    let result = open_request(&body, octet_stream, &secret, ENVELOPE_NOW_MS);

    let expected = if !timestamp_in_window(timestamp_ms, ENVELOPE_NOW_MS) {
        Err(EnvelopeError::StaleTimestamp)
    } else if json.is_empty() {
        Ok(None)
    } else {
        // The operator reads the plaintext as UTF-8 with replacement characters, as Java does.
        match serde_json::from_str::<Value>(&String::from_utf8_lossy(json)) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            _ => Err(EnvelopeError::PayloadNotJson),
        }
    };
    match (result, expected) {
        (Ok(opened), Ok(payload)) => {
            assert_eq!(opened.timestamp_ms, timestamp_ms);
            assert_eq!(opened.nonce, nonce);
            assert_eq!(opened.binary, octet_stream);
            assert!(opened.payload == payload, "the payload is the plaintext's JSON object");
            if !has_float(&opened) {
                assert_eq!(reseal(&opened, &secret), opened, "the payload round-trips");
            }
        }
        (Err(got), Err(want)) => assert_eq!(got, want),
        (got, want) => panic!(
            "sealed request: got {:?}, expected {:?}",
            got.map(|_| "opened"),
            want.map(|_| "opened")
        ),
    }

    // Any other secret is refused as a bad secret, before the timestamp or the JSON are read.
    let other = SecretKey::from_bytes([0x5a; 32]);
    assert_eq!(
        open_request(&body, octet_stream, &other, ENVELOPE_NOW_MS).err(),
        Some(EnvelopeError::BadSecret)
    );
}

fn response(rest: &[u8]) {
    let secret = client_secret();
    if let Ok(opened) = open_response(&secret, rest) {
        assert!(opened.json.len() + 16 + 12 + 16 == rest.len());
    }

    let mut u = Unstructured::new(rest);
    let now_ms: i64 = value(&mut u);
    let nonce = array::<8>(&mut u);
    let iv = array::<12>(&mut u);
    let json = u.take_rest();
    let sealed = seal_response(&secret, now_ms, &nonce, json, &ScriptedEntropy::new([iv]));
    let opened = open_response(&secret, &sealed).expect("a sealed response opens");
    assert_eq!(opened.timestamp_ms, now_ms);
    assert_eq!(opened.nonce, nonce);
    assert_eq!(opened.json, json);
}
