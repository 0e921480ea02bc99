//! The identity map request JSON, `POST /v2/identity/map` and `POST /v3/identity/map`, through
//! the in-process operator's real router.
//!
//! Mode byte: bit 0 picks v3, bit 1 sends the envelope as raw bytes instead of base64. The rest
//! is the plaintext JSON payload, sealed with the bundled site-999 client's secret (a MAPPER),
//! so authentication and the envelope always pass and the payload binding, normalization,
//! opt-out check and mapping run on whatever the JSON holds. Invariants:
//! - the answer is 200 or 400, never 500 (or 401/413: the key is valid, the body small);
//! - a 200 opens with the client secret, echoes the nonce, and is `{"body":…,"status":"success"}`;
//! - v3: each of the four answer arrays has exactly as many items as the request's array of the
//!   same name, each item either mapped (`u`, `p`, `r`) or an error (`e`);
//! - v2: `mapped` plus `unmapped` account for every item of the one non-empty request array.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use uid2_fuzz::mode;
use uid2_fuzz::operator::{open_v2, operator, seal_v2, CLIENT_KEY};

const FIELDS: [&str; 4] = ["email", "email_hash", "phone", "phone_hash"];

fuzz_target!(|data: &[u8]| {
    let (mode, json) = mode(data);
    let v3 = mode & 1 == 1;
    let binary = mode & 2 == 2;
    let nonce = [mode, 1, 2, 3, 4, 5, 6, 7];
    let body = seal_v2(json, &nonce, binary);
    let authorization = format!("Bearer {CLIENT_KEY}");
    let mut headers: Vec<(&str, &[u8])> = vec![("authorization", authorization.as_bytes())];
    if binary {
        headers.push(("content-type", b"application/octet-stream"));
    }
    let path = if v3 { "/v3/identity/map" } else { "/v2/identity/map" };
    let answer = operator().post(path, &headers, body);
    match answer.status.as_u16() {
        400 => return,
        200 => {}
        other => panic!("{path} answered {other}"),
    }
    let reply = open_v2(&answer, &nonce, binary);
    assert_eq!(reply["status"], "success");
    let request: Value = serde_json::from_str(&String::from_utf8_lossy(json)).expect("a 200 request was JSON");
    if v3 {
        check_v3(&request, &reply["body"]);
    } else {
        check_v2(&request, &reply["body"]);
    }
});

fn items(request: &Value, field: &str) -> usize {
    request.get(field).and_then(Value::as_array).map_or(0, Vec::len)
}

fn check_v3(request: &Value, body: &Value) {
    for field in FIELDS {
        let answers = body[field].as_array().expect("v3 answers every field with an array");
        assert_eq!(answers.len(), items(request, field), "v3 {field}: one answer per item");
        for answer in answers {
            let mapped = answer.get("u").is_some() && answer.get("p").is_some() && answer.get("r").is_some();
            let failed = answer.get("e").is_some_and(Value::is_string);
            assert!(mapped != failed, "v3 {field}: an item is mapped or an error");
        }
    }
}

fn check_v2(request: &Value, body: &Value) {
    let mapped = body["mapped"].as_array().expect("v2 answers a mapped array").len();
    let unmapped = body.get("unmapped").and_then(Value::as_array).map_or(0, Vec::len);
    let sent: usize = FIELDS.iter().map(|f| items(request, f)).sum();
    assert_eq!(mapped + unmapped, sent, "v2: every item is mapped or unmapped");
}
