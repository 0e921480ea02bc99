//! Client-side token generation: the key strings and ECDH + GCM envelope of `uid2_protocol::cstg`
//! and the request of `POST /v2/token/client-generate` as the operator binds it.
//!
//! Modes:
//! - `keys` (0): the rest is a stored private key, a stored public key and a client public key
//!   at once. A stored public key parses exactly when its body is a client public key the
//!   server accepts; a private key that parses agrees on the ECDH secret with its own public key.
//! - `aad` (1): the AAD for a timestamp and app name is the JSON array of them.
//! - `payload` (2): a payload sealed with the §8.12 shared secret opens to itself under its AAD
//!   and IV, and not under another AAD.
//! - `request` (3): the rest is the JSON body of a CSTG request, POSTed to the in-process
//!   operator from an allowed origin. The answer is 200, 400, 401, 403, or the reference's 500
//!   `unknown` for an unbindable body; never a bare 500.
//! - `sealed_request` (4): the rest is the plaintext, timestamp, app name and IV of a request
//!   that a browser holding the bundled site's public key seals correctly, so the operator opens
//!   it and parses the plaintext. The answer is 200, 400 or 403; a 200 opens with the ECDH secret
//!   to JSON with status `success` or `optout`.
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use uid2_fuzz::keys::{CSTG_CLIENT_SCALAR, CSTG_SERVER_PRIVATE, CSTG_SERVER_PUBLIC};
use uid2_fuzz::operator::{operator, Answer, CSTG_ORIGIN, CSTG_SUBSCRIPTION_ID};
use uid2_fuzz::{array, mode, value};
use uid2_protocol::crypto::gcm_open;
use uid2_protocol::cstg::client::{seal_payload, ClientKey};
use uid2_protocol::cstg::{aad, check_prefixed_spki, open_payload, ServerKey, KEY_PREFIX_LEN};

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = mode(data);
    match mode % 5 {
        0 => keys(rest),
        1 => aad_is_json(rest),
        2 => payload(rest),
        3 => request(rest),
        _ => sealed_request(rest),
    }
});

fn server() -> ServerKey {
    ServerKey::from_prefixed_pkcs8(CSTG_SERVER_PRIVATE).expect("the §8.12 server key parses")
}

fn client() -> ClientKey {
    ClientKey::from_scalar(&CSTG_CLIENT_SCALAR).expect("the §8.12 client scalar is valid")
}

fn keys(rest: &[u8]) {
    let text = String::from_utf8_lossy(rest);
    let stored_public_ok = check_prefixed_spki(&text).is_ok();
    let body = text.get(KEY_PREFIX_LEN..);
    let accepted = body.is_some_and(|b| server().shared_secret(b).is_ok());
    assert_eq!(
        stored_public_ok, accepted,
        "a stored public key and a client public key parse alike"
    );
    if stored_public_ok {
        let from_client = client()
            .shared_secret(&text)
            .expect("the client reaches a valid stored key");
        // Only the server's own public key gives the server's secret.
        if text.as_ref() == CSTG_SERVER_PUBLIC {
            let from_server = server()
                .shared_secret(&client().public_key_b64())
                .expect("the client's own key is valid");
            assert!(from_client == from_server);
        }
    }

    if let Ok(private) = ServerKey::from_prefixed_pkcs8(&text) {
        let public = format!("UID2-X-L-{}", private.public_key_b64());
        check_prefixed_spki(&public).expect("a parsed private key's public key is a valid stored key");
        let client = client();
        let from_client = client.shared_secret(&public).expect("valid public key");
        let from_server = private
            .shared_secret(&client.public_key_b64())
            .expect("the client's key is valid");
        assert!(from_client == from_server, "ECDH agrees");
    }
}

fn aad_is_json(rest: &[u8]) {
    let mut u = Unstructured::new(rest);
    let timestamp: i64 = value(&mut u);
    let with_name: bool = value(&mut u);
    let name = String::from_utf8_lossy(u.take_rest());
    let name = with_name.then_some(name.as_ref());
    let bytes = aad(timestamp, name);
    let parsed: Value = serde_json::from_slice(&bytes).expect("the AAD is JSON");
    let expected = match name {
        Some(name) => json!([timestamp, name]),
        None => json!([timestamp]),
    };
    assert_eq!(parsed, expected);
}

fn payload(rest: &[u8]) {
    let secret = server()
        .shared_secret(&client().public_key_b64())
        .expect("the §8.12 secret");
    let mut u = Unstructured::new(rest);
    let iv = array::<12>(&mut u);
    let timestamp: i64 = value(&mut u);
    let plaintext = u.take_rest();
    let aad = aad(timestamp, None);
    let sealed = seal_payload(&secret, &iv, plaintext, &aad);
    assert_eq!(
        open_payload(&secret, &iv, &sealed, &aad).ok().as_deref(),
        Some(plaintext)
    );
    let other = self::aad(timestamp.wrapping_add(1), None);
    assert!(open_payload(&secret, &iv, &sealed, &other).is_err(), "the AAD is bound");
    assert!(
        open_payload(&secret, &iv[..11], &sealed, &aad).is_err(),
        "the IV is 12 bytes"
    );
}

fn post(body: Vec<u8>) -> Answer {
    operator().post(
        "/v2/token/client-generate",
        &[
            ("origin", CSTG_ORIGIN.as_bytes()),
            ("content-type", b"application/json"),
        ],
        body,
    )
}

fn request(rest: &[u8]) {
    let answer = post(rest.to_vec());
    match answer.status.as_u16() {
        200 | 400 | 401 | 403 => {}
        500 => {
            let json: Value = serde_json::from_slice(&answer.body).expect("a CSTG 500 is JSON");
            assert_eq!(json["status"], "unknown", "only the reference's binding error is a 500");
        }
        other => panic!("CSTG answered {other}"),
    }
}

fn sealed_request(rest: &[u8]) {
    let mut u = Unstructured::new(rest);
    let shape: u8 = value(&mut u);
    let iv = array::<12>(&mut u);
    let timestamp: i64 = value(&mut u);
    let app_name = if shape & 1 == 1 {
        let len = usize::from(value::<u8>(&mut u) % 32);
        Some(String::from_utf8_lossy(u.bytes(len).unwrap_or_default()).into_owned())
    } else {
        None
    };
    let plaintext = u.take_rest();

    let operator = operator();
    let keypair = operator
        .snapshot
        .keypairs
        .keypair(CSTG_SUBSCRIPTION_ID)
        .expect("the bundled keypair");
    let client = client();
    let secret = client
        .shared_secret(&keypair.public_key)
        .expect("the bundled public key is valid");
    let sealed = seal_payload(&secret, &iv, plaintext, &aad(timestamp, app_name.as_deref()));
    let mut body = json!({
        "payload": uid2_protocol::base64::encode(&sealed),
        "iv": uid2_protocol::base64::encode(&iv),
        "public_key": client.public_key_b64(),
        "timestamp": timestamp,
        "subscription_id": CSTG_SUBSCRIPTION_ID,
    });
    if let Some(name) = &app_name {
        body["app_name"] = Value::String(name.clone());
    }
    let answer = post(serde_json::to_vec(&body).expect("JSON serializes"));
    let status = answer.status.as_u16();
    assert!(
        matches!(status, 200 | 400 | 403),
        "a well-sealed CSTG request answered {status}"
    );
    if status == 200 {
        let sealed = uid2_protocol::base64::decode(&answer.body).expect("a CSTG answer is base64");
        let opened = gcm_open(&secret, &sealed, &[]).expect("the answer opens with the ECDH secret");
        let json: Value = serde_json::from_slice(&opened).expect("the answer is JSON");
        assert!(json["status"] == "success" || json["status"] == "optout");
    }
}
