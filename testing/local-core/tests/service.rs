//! The local Core + OptOut service over HTTP, as the operator sees it: attestation with a real
//! RSA key, metadata and data files (plain and encrypted), token expiry, opt-out replicate and
//! listing, fault injection, and the binary itself. Every server binds 127.0.0.1:0, every
//! client call has a timeout, and each test works on its own copy of the test stores.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey};
use serde_json::{json, Value};
use uid2_local_core::{
    write_operators_file, FaultRule, LocalCore, OperatorRecord, OperatorType, Running, TokenCipher, LOCAL_OPERATOR_KEY,
};
use uid2_protocol::clock::FixedClock;
use uid2_store::cloud_keys::{decrypt_store_file, CloudKeyStore};

const DISABLED_KEY: &str = "UID2-O-L-999-dIsAbL.disabled0disabled0disabled0disabled01=";
const PRIVATE_KEY: &str = "UID2-O-L-124-pRiVaT.private00private00private00private001=";
const OPTOUT_ONLY_KEY: &str = "UID2-O-L-999-oPtOuT.optout000optout000optout000optout0001=";
const SGX_KEY: &str = "UID2-O-L-999-sGxKey.sgx0000000sgx0000000sgx0000000sgx00001=";
const UNKNOWN_KEY: &str = "UID2-O-L-999-nOtKnO.unknown00unknown00unknown00unknown001=";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A private copy of `testdata/local-store` and `testdata/reference-store` (side by side, so the
/// `../reference-store/…` locations still resolve), removed on drop.
struct TempStores {
    root: PathBuf,
}

impl TempStores {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "uid2-local-core-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&root);
        for name in ["local-store", "reference-store"] {
            copy_dir(&repo().join("testdata").join(name), &root.join(name), 4);
        }
        let operators = vec![
            OperatorRecord::for_key(LOCAL_OPERATOR_KEY, 999),
            record(DISABLED_KEY, 999, |r| r.disabled = true),
            record(PRIVATE_KEY, 124, |r| {
                r.operator_type = OperatorType::Private;
                r.roles = vec!["OPERATOR".into()];
            }),
            record(OPTOUT_ONLY_KEY, 999, |r| r.roles = vec!["OPTOUT".into()]),
            record(SGX_KEY, 999, |r| r.protocol = "azure-sgx".into()),
        ];
        write_operators_file(&root.join("local-store/operators/operators.json"), &operators).expect("operators");
        Self { root }
    }

    fn store(&self) -> PathBuf {
        self.root.join("local-store")
    }
}

impl Drop for TempStores {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn record(key: &str, site_id: i32, edit: impl FnOnce(&mut OperatorRecord)) -> OperatorRecord {
    let mut record = OperatorRecord::for_key(key, site_id);
    edit(&mut record);
    record
}

fn copy_dir(from: &Path, to: &Path, depth: u32) {
    assert!(depth > 0, "test stores are shallow");
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target, depth - 1);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn operator_rsa() -> RsaPrivateKey {
    let pem = std::fs::read_to_string(repo().join("testdata/local-core/test-operator-rsa-2048.pem")).expect("pem");
    RsaPrivateKey::from_pkcs8_pem(&pem).expect("test RSA key")
}

fn public_key_b64(key: &RsaPrivateKey) -> String {
    let der = key.to_public_key().to_public_key_der().expect("SPKI");
    uid2_protocol::base64::encode(der.as_bytes())
}

fn attest_body(key: &RsaPrivateKey) -> Value {
    json!({
        "attestation_request": "AA==",
        "public_key": public_key_b64(key),
        "application_name": "uid2-operator",
        "application_version": "test",
        "operator_type": "public",
        "components": {"uid2-shared": "test", "uid2-attestation-api": "test"},
    })
}

async fn post_attest(core: &Running, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut request = client().post(format!("{}/attest", core.base_url())).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("attest");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Attests `key` and returns the decrypted attestation token.
async fn attest(core: &Running, key: &str) -> String {
    let rsa = operator_rsa();
    let (status, body) = post_attest(core, Some(key), &attest_body(&rsa)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sealed =
        uid2_protocol::base64::decode(body["body"]["attestation_token"].as_str().expect("token")).expect("base64");
    let plain = rsa.decrypt(Pkcs1v15Encrypt, &sealed).expect("PKCS#1 v1.5");
    String::from_utf8(plain).expect("UTF-8 token")
}

async fn get(core: &Running, path: &str, key: &str, token: Option<&str>, encrypted: bool) -> reqwest::Response {
    let mut request = client()
        .get(format!("{}{path}", core.base_url()))
        .bearer_auth(key)
        .header("UID-Instance-Id", "local-operator-0123456789abcdef")
        .header("X-UID2-AppVersion", "uid2-operator=test");
    if let Some(token) = token {
        request = request.header("Attestation-Token", token);
    }
    if encrypted {
        request = request.header("Encrypted", "true");
    }
    request.send().await.expect("request")
}

async fn get_json(core: &Running, path: &str, key: &str, token: &str, encrypted: bool) -> Value {
    let response = get(core, path, key, Some(token), encrypted).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.expect("JSON")
}

async fn download(url: &str) -> (StatusCode, Vec<u8>) {
    let response = client().get(url).send().await.expect("download");
    let status = response.status();
    (status, response.bytes().await.expect("body").to_vec())
}

async fn start(stores: &TempStores) -> Running {
    LocalCore::builder(stores.store()).start().await.expect("starts")
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const STORE_ROUTES: [(&str, &str); 8] = [
    ("/clients/refresh", "client_keys"),
    ("/sites/refresh", "sites"),
    ("/key/keyset/refresh", "keysets"),
    ("/key/keyset-keys/refresh", "keyset_keys"),
    ("/client_side_keypairs/refresh", "client_side_keypairs"),
    ("/salt/refresh", "salts"),
    ("/services/refresh", "services"),
    ("/service_links/refresh", "service_links"),
];

fn locations(metadata: &Value, data_key: &str) -> Vec<String> {
    match &metadata[data_key] {
        Value::Array(items) => items
            .iter()
            .map(|i| i["location"].as_str().expect("location").to_owned())
            .collect(),
        other => vec![other["location"].as_str().expect("location").to_owned()],
    }
}

#[tokio::test]
async fn attestation_with_a_real_rsa_key_gives_a_token_the_metadata_routes_accept() {
    let stores = TempStores::new();
    // The committed fixture operators file and its documented key.
    let core = LocalCore::builder(stores.store())
        .operators_file(repo().join("testdata/local-core/operators.json"))
        .start()
        .await
        .expect("starts");
    let rsa = operator_rsa();
    let before = now_s();
    let (status, body) = post_attest(&core, Some(LOCAL_OPERATOR_KEY), &attest_body(&rsa)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["body"]["optout_url"], core.base_url());
    let sealed =
        uid2_protocol::base64::decode(body["body"]["attestation_token"].as_str().expect("token")).expect("base64");
    assert_eq!(sealed.len(), 256, "RSA-2048 ciphertext");
    let token = String::from_utf8(rsa.decrypt(Pkcs1v15Encrypt, &sealed).expect("decrypts")).expect("UTF-8");

    // <b64(ct‖tag)>-<b64(iv)>-g, opening to "<key>,<expiry>,<nonce>".
    let parts: Vec<&str> = token.split('-').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[2], "g");
    assert_eq!(uid2_protocol::base64::decode(parts[1]).map(|iv| iv.len()), Ok(12));
    let opened = TokenCipher::derive(
        uid2_local_core::token::DEFAULT_ENC_KEY,
        uid2_local_core::token::DEFAULT_ENC_SALT,
    )
    .open(&token)
    .expect("opens with the test secrets");
    assert_eq!(opened.operator_key.as_str(), LOCAL_OPERATOR_KEY);
    let lifetime = opened.expires_at - before;
    assert!((7200 + 300..=7200 + 600 + 2).contains(&lifetime), "lifetime {lifetime}");
    let expires_at = time::OffsetDateTime::parse(
        body["body"]["expiresAt"].as_str().expect("expiresAt"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("ISO-8601 instant");
    assert_eq!(expires_at.unix_timestamp(), opened.expires_at);

    let clients = get_json(&core, "/clients/refresh", LOCAL_OPERATOR_KEY, &token, false).await;
    assert_eq!(clients["version"], 1);
    assert_eq!(core.attestation_count(), 1);
    assert_eq!(core.request_count("/clients/refresh"), 1);
    let seen = core.activity().requests();
    let last = seen.last().expect("logged");
    assert!(last.attestation_token && last.authorization && !last.encrypted);
    assert_eq!(last.instance_id.as_deref(), Some("local-operator-0123456789abcdef"));
    core.shutdown().await;
}

#[tokio::test]
async fn attestation_refusals_follow_core() {
    let stores = TempStores::new();
    let core = start(&stores).await;
    let rsa = operator_rsa();
    let body = attest_body(&rsa);

    let (status, answer) = post_attest(&core, Some(UNKNOWN_KEY), &body).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unrecognized_key"))
    );
    let (status, answer) = post_attest(&core, None, &body).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unrecognized_key"))
    );
    let (status, answer) = post_attest(&core, Some(DISABLED_KEY), &body).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    assert_eq!(answer["reason"], "key_disabled");
    let (status, answer) = post_attest(&core, Some(OPTOUT_ONLY_KEY), &body).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("insufficient_role"))
    );

    let mut private = body.clone();
    private["operator_type"] = json!("private");
    assert_eq!(
        post_attest(&core, Some(LOCAL_OPERATOR_KEY), &private).await.0,
        StatusCode::FORBIDDEN
    );
    private["operator_type"] = json!("");
    assert_eq!(
        post_attest(&core, Some(LOCAL_OPERATOR_KEY), &private).await.0,
        StatusCode::FORBIDDEN
    );
    // The private key's record is private: "PRIVATE" matches case-insensitively, "public" does not.
    private["operator_type"] = json!("PRIVATE");
    assert_eq!(post_attest(&core, Some(PRIVATE_KEY), &private).await.0, StatusCode::OK);
    assert_eq!(
        post_attest(&core, Some(PRIVATE_KEY), &body).await.0,
        StatusCode::FORBIDDEN
    );
    let mut untyped = body.clone();
    untyped.as_object_mut().expect("object").remove("operator_type");
    assert_eq!(
        post_attest(&core, Some(LOCAL_OPERATOR_KEY), &untyped).await.0,
        StatusCode::OK
    );

    // The protocol comes from the key record: for an azure-sgx key, `AA==` is no SGX quote, so
    // the MAA refuses it and Core answers "bad payload" (tests/azure_sgx.rs has the real path).
    let (status, answer) = post_attest(&core, Some(SGX_KEY), &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(answer.to_string().contains("bad payload"), "{answer}");

    let mut missing = body.clone();
    missing.as_object_mut().expect("object").remove("attestation_request");
    assert_eq!(
        post_attest(&core, Some(LOCAL_OPERATOR_KEY), &missing).await.0,
        StatusCode::BAD_REQUEST
    );
    missing["attestation_request"] = json!("");
    assert_eq!(
        post_attest(&core, Some(LOCAL_OPERATOR_KEY), &missing).await.0,
        StatusCode::BAD_REQUEST
    );
    let not_json = client()
        .post(format!("{}/attest", core.base_url()))
        .bearer_auth(LOCAL_OPERATOR_KEY)
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    // As Core: a missing or unusable public key is an encryption failure.
    let mut keyless = body.clone();
    keyless["public_key"] = json!("");
    assert_eq!(
        post_attest(&core, Some(LOCAL_OPERATOR_KEY), &keyless).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    assert_eq!(core.attestation_count(), 2);
    core.shutdown().await;
}

#[tokio::test]
async fn metadata_points_at_files_the_service_serves() {
    let stores = TempStores::new();
    let core = start(&stores).await;
    let token = attest(&core, LOCAL_OPERATOR_KEY).await;
    let store = std::fs::canonicalize(stores.store()).expect("store");
    let parent = store.parent().expect("parent").to_path_buf();

    for (route, data_key) in STORE_ROUTES {
        let metadata = get_json(&core, route, LOCAL_OPERATOR_KEY, &token, false).await;
        assert_eq!(metadata["version"], 1, "{route}");
        let urls = locations(&metadata, data_key);
        assert!(!urls.is_empty());
        for url in urls {
            let path = url
                .strip_prefix(&format!("{}/files/", core.base_url()))
                .unwrap_or_else(|| panic!("{route}: {url}"));
            let on_disk = match path.strip_prefix("_parent/") {
                Some(rest) => parent.join(rest),
                None => store.join(path),
            };
            let (status, bytes) = download(&url).await;
            assert_eq!(status, StatusCode::OK, "{url}");
            assert_eq!(bytes, std::fs::read(&on_disk).expect("file"), "{url}");
        }
    }
    // Relative locations inside the store stay inside; `../reference-store` ones use _parent.
    let keysets = get_json(&core, "/key/keyset/refresh", LOCAL_OPERATOR_KEY, &token, false).await;
    assert_eq!(
        keysets["keysets"]["location"],
        format!("{}/files/keysets/keysets.json", core.base_url())
    );
    let salts = get_json(&core, "/salt/refresh", LOCAL_OPERATOR_KEY, &token, false).await;
    assert_eq!(salts["first_level"], "fOGY/aRE44peL23i+cE9MkJrzmEeNZZziNZBfq7qqk8=");
    assert_eq!(salts["salts"][1]["size"], 5);

    let config = get_json(&core, "/operator/config", LOCAL_OPERATOR_KEY, &token, false).await;
    assert_eq!(config["runtime_config"]["identity_token_expires_after_seconds"], 3600);

    // Files are read on every request: a bumped version shows at once.
    let metadata_path = stores.store().join("keysets/metadata.json");
    let bumped = std::fs::read_to_string(&metadata_path)
        .expect("metadata")
        .replace("\"version\": 1", "\"version\": 2");
    std::fs::write(&metadata_path, bumped).expect("write");
    let keysets = get_json(&core, "/key/keyset/refresh", LOCAL_OPERATOR_KEY, &token, false).await;
    assert_eq!(keysets["version"], 2);

    // The operator key must match the token, and the token must be there and intact.
    assert_eq!(
        get(&core, "/clients/refresh", LOCAL_OPERATOR_KEY, None, false)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(
            &core,
            "/clients/refresh",
            LOCAL_OPERATOR_KEY,
            Some("AAAA-AAAA-g"),
            false
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    let private_token = attest_private(&core).await;
    assert_eq!(
        get(
            &core,
            "/clients/refresh",
            LOCAL_OPERATOR_KEY,
            Some(&private_token),
            false
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&core, "/clients/refresh", UNKNOWN_KEY, Some(&token), false)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Private operators: global stores yes, public-only stores 403.
    assert_eq!(
        get(&core, "/clients/refresh", PRIVATE_KEY, Some(&private_token), false)
            .await
            .status(),
        StatusCode::OK
    );
    for route in [
        "/sites/refresh",
        "/client_side_keypairs/refresh",
        "/services/refresh",
        "/service_links/refresh",
    ] {
        assert_eq!(
            get(&core, route, PRIVATE_KEY, Some(&private_token), false)
                .await
                .status(),
            StatusCode::FORBIDDEN,
            "{route}"
        );
    }
    core.shutdown().await;
}

#[tokio::test]
async fn classpath_locations_of_the_reference_store_resolve_against_the_store() {
    let stores = TempStores::new();
    let core = LocalCore::builder(stores.root.join("reference-store"))
        .operators_file(stores.store().join("operators/operators.json"))
        .start()
        .await
        .expect("starts");
    let token = attest(&core, LOCAL_OPERATOR_KEY).await;
    let clients = get_json(&core, "/clients/refresh", LOCAL_OPERATOR_KEY, &token, false).await;
    let url = clients["client_keys"]["location"].as_str().expect("location");
    assert_eq!(url, format!("{}/files/clients/clients.json", core.base_url()));
    let (status, bytes) = download(url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        bytes,
        std::fs::read(stores.root.join("reference-store/clients/clients.json")).expect("file")
    );
    // Its cloud keys say `siteId`; site 999 still gets its three.
    let keys = get_json(
        &core,
        "/cloud_encryption_keys/retrieve",
        LOCAL_OPERATOR_KEY,
        &token,
        false,
    )
    .await;
    assert_eq!(keys["cloud_encryption_keys"].as_array().map(Vec::len), Some(3));
    core.shutdown().await;
}

async fn attest_private(core: &Running) -> String {
    let rsa = operator_rsa();
    let mut body = attest_body(&rsa);
    body["operator_type"] = json!("private");
    let (status, answer) = post_attest(core, Some(PRIVATE_KEY), &body).await;
    assert_eq!(status, StatusCode::OK);
    let sealed =
        uid2_protocol::base64::decode(answer["body"]["attestation_token"].as_str().expect("token")).expect("base64");
    String::from_utf8(rsa.decrypt(Pkcs1v15Encrypt, &sealed).expect("decrypts")).expect("UTF-8")
}

#[tokio::test]
async fn file_routes_stay_inside_the_served_tree() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stores = TempStores::new();
    std::fs::write(stores.root.join("../uid2-local-core-outside.txt"), b"secret").ok();
    let core = start(&stores).await;
    for path in [
        "/files/_parent/%2E%2E/uid2-local-core-outside.txt",
        "/files/%2E%2E/%2E%2E/uid2-local-core-outside.txt",
        "/files/..%2F..%2Fuid2-local-core-outside.txt",
        "/files/_parent/..%2F/uid2-local-core-outside.txt",
        "/files/keysets",
        "/files/keysets/missing.json",
        "/files-encrypted/999/_parent/%2E%2E/uid2-local-core-outside.txt",
        "/files-encrypted/x/keysets/keysets.json",
    ] {
        // A raw request, so no client normalises the dots away.
        let mut stream = tokio::net::TcpStream::connect(core.local_addr())
            .await
            .expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("bounded")
            .expect("read");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 404") || answer.starts_with("HTTP/1.1 400"),
            "{path}: {answer}"
        );
        assert!(!answer.contains("secret"));
    }
    let _ = std::fs::remove_file(stores.root.join("../uid2-local-core-outside.txt"));
    core.shutdown().await;
}

#[tokio::test]
async fn encrypted_scope_files_open_with_the_sites_cloud_key() {
    let stores = TempStores::new();
    let core = start(&stores).await;
    let token = attest(&core, LOCAL_OPERATOR_KEY).await;
    let keys = get(
        &core,
        "/cloud_encryption_keys/retrieve",
        LOCAL_OPERATOR_KEY,
        Some(&token),
        false,
    )
    .await;
    assert_eq!(keys.status(), StatusCode::OK);
    let keys = keys.bytes().await.expect("keys");
    let parsed: Value = serde_json::from_slice(&keys).expect("JSON");
    let listed = parsed["cloud_encryption_keys"].as_array().expect("array");
    assert_eq!(listed.len(), 3, "only site 999's keys");
    assert!(listed.iter().all(|k| k["site_id"] == 999));
    let store = CloudKeyStore::parse_inline(&keys).expect("the operator's parser reads it");

    let store_root = std::fs::canonicalize(stores.store()).expect("store");
    let parent = store_root.parent().expect("parent").to_path_buf();
    for (route, data_key) in STORE_ROUTES {
        let metadata = get_json(&core, route, LOCAL_OPERATOR_KEY, &token, true).await;
        for url in locations(&metadata, data_key) {
            let path = url
                .strip_prefix(&format!("{}/files-encrypted/999/", core.base_url()))
                .unwrap_or_else(|| panic!("{route}: {url}"));
            let on_disk = match path.strip_prefix("_parent/") {
                Some(rest) => parent.join(rest),
                None => store_root.join(path),
            };
            let (status, envelope) = download(&url).await;
            assert_eq!(status, StatusCode::OK);
            let json: Value = serde_json::from_slice(&envelope).expect("envelope");
            assert_eq!(json["key_id"], 3, "the newest active key of site 999");
            let plain = decrypt_store_file("test", &envelope, &store).expect("opens");
            assert_eq!(plain, std::fs::read(&on_disk).expect("file"), "{url}");
        }
    }
    let logged = core.activity().requests();
    assert!(logged.iter().any(|r| r.path == "/salt/refresh" && r.encrypted));

    // Each operator gets its own site's keys.
    let private_token = attest_private(&core).await;
    assert_eq!(
        get(
            &core,
            "/cloud_encryption_keys/retrieve",
            PRIVATE_KEY,
            Some(&private_token),
            false
        )
        .await
        .status(),
        StatusCode::OK,
        "site 124 has keys in the sample"
    );
    core.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_after_the_configured_lifetime() {
    let stores = TempStores::new();
    let clock = Arc::new(FixedClock::at(1_800_000_000_250));
    let core = LocalCore::builder(stores.store())
        .token_lifetime(Duration::from_secs(30))
        .jitter(false)
        .clock(clock.clone())
        .start()
        .await
        .expect("starts");
    let rsa = operator_rsa();
    let (status, body) = post_attest(&core, Some(LOCAL_OPERATOR_KEY), &attest_body(&rsa)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["body"]["expiresAt"], "2027-01-15T08:00:30.250Z");
    let sealed =
        uid2_protocol::base64::decode(body["body"]["attestation_token"].as_str().expect("token")).expect("base64");
    let token = String::from_utf8(rsa.decrypt(Pkcs1v15Encrypt, &sealed).expect("decrypts")).expect("UTF-8");

    clock.set(1_800_000_029_999);
    assert_eq!(
        get(&core, "/salt/refresh", LOCAL_OPERATOR_KEY, Some(&token), false)
            .await
            .status(),
        StatusCode::OK
    );
    clock.set(1_800_000_030_000);
    for route in ["/salt/refresh", "/optout/refresh", "/operator/config"] {
        assert_eq!(
            get(&core, route, LOCAL_OPERATOR_KEY, Some(&token), false)
                .await
                .status(),
            StatusCode::UNAUTHORIZED,
            "{route}"
        );
    }
    // A fresh attestation works again.
    let fresh = attest(&core, LOCAL_OPERATOR_KEY).await;
    assert_eq!(
        get(&core, "/salt/refresh", LOCAL_OPERATOR_KEY, Some(&fresh), false)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(core.attestation_count(), 2);
    core.shutdown().await;
}

#[tokio::test]
async fn replicate_writes_a_delta_the_listing_serves() {
    let stores = TempStores::new();
    let core = start(&stores).await;
    let token = attest(&core, LOCAL_OPERATOR_KEY).await;

    let empty = get_json(&core, "/optout/refresh", LOCAL_OPERATOR_KEY, &token, false).await;
    assert_eq!(empty["optout_logs"], json!([]));

    let identity_hash = [0xFBu8; 32];
    let mut advertising_id = vec![0x04u8];
    advertising_id.extend([0x5Au8; 32]);
    let query = |hash: &[u8], id: &[u8]| {
        format!(
            "{}/optout/replicate?identity_hash={}&advertising_id={}",
            core.base_url(),
            uid2_protocol::base64::encode(hash)
                .replace('+', "%2B")
                .replace('/', "%2F"),
            uid2_protocol::base64::encode(id)
                .replace('+', "%2B")
                .replace('/', "%2F"),
        )
    };
    let before = now_s();
    let response = client()
        .post(query(&identity_hash, &advertising_id))
        .bearer_auth(LOCAL_OPERATOR_KEY)
        .header("UID-Instance-Id", "local-operator-1")
        .json(&json!({"email": "user@example.com", "client_ip": "127.0.0.1"}))
        .send()
        .await
        .expect("replicate");
    assert_eq!(response.status(), StatusCode::OK);
    let stamped: i64 = response
        .text()
        .await
        .expect("text")
        .trim()
        .parse()
        .expect("epoch seconds");
    assert!((before..=before + 5).contains(&stamped));

    let listing = get_json(&core, "/optout/refresh", LOCAL_OPERATOR_KEY, &token, false).await;
    let logs = listing["optout_logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 1);
    assert_eq!(listing["version"], stamped);
    assert_eq!(listing["generated"], stamped);
    assert_eq!(logs[0]["type"], "delta");
    assert_eq!(logs[0]["from"], stamped);
    assert_eq!(logs[0]["to"], stamped + 300);
    let location = logs[0]["location"].as_str().expect("location");
    let day = time::OffsetDateTime::from_unix_timestamp(stamped).expect("time").date();
    let folder = format!(
        "{}/files/optout/delta/{:04}-{:02}-{:02}/optout-delta-000_",
        core.base_url(),
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    assert!(location.starts_with(&folder), "{location}");
    let name = uid2_store::optout::OptOutFileName::parse(location).expect("reference file name");
    assert_eq!((name.replica, name.timestamp), (0, stamped));

    let (status, bytes) = download(location).await;
    assert_eq!(status, StatusCode::OK);
    let entries = uid2_store::optout::parse_file("optout", &bytes).expect("parses");
    assert_eq!(entries.len(), 3);
    assert!(entries[0].is_sentinel() && entries[2].is_sentinel());
    assert_eq!(entries[0].identity_hash, [0; 32]);
    assert_eq!(entries[2].identity_hash, [0xFF; 32]);
    assert_eq!(entries[1].identity_hash, identity_hash);
    assert_eq!(entries[1].advertising_id, advertising_id);
    assert_eq!(entries[1].timestamp, stamped);
    assert_eq!(core.activity().replicate_count(), 1);

    // No attestation needed, but the key needs OPTOUT (the private key has only OPERATOR); bad
    // parameters are 400.
    let refused = client()
        .post(query(&[1; 32], &[2; 32]))
        .bearer_auth(PRIVATE_KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let only_optout = client()
        .post(query(&[1; 32], &[2; 32]))
        .bearer_auth(OPTOUT_ONLY_KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(only_optout.status(), StatusCode::OK);
    for (hash, id) in [
        (vec![0u8; 32], vec![2u8; 32]),
        (vec![0xFF; 32], vec![2; 32]),
        (vec![1; 16], vec![2; 32]),
        (vec![1; 32], vec![2; 31]),
    ] {
        let bad = client()
            .post(query(&hash, &id))
            .bearer_auth(LOCAL_OPERATOR_KEY)
            .send()
            .await
            .expect("send");
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    }
    let bad_body = client()
        .post(query(&[1; 32], &[2; 32]))
        .bearer_auth(LOCAL_OPERATOR_KEY)
        .body("{nope")
        .send()
        .await
        .expect("send");
    assert_eq!(bad_body.status(), StatusCode::BAD_REQUEST);
    let listing = get_json(&core, "/optout/refresh", LOCAL_OPERATOR_KEY, &token, false).await;
    assert!(!listing["optout_logs"].as_array().expect("logs").is_empty());
    // The listing needs an attested operator.
    assert_eq!(
        get(&core, "/optout/refresh", LOCAL_OPERATOR_KEY, None, false)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    core.shutdown().await;
}

#[tokio::test]
async fn faults_from_the_library_and_over_http() {
    let stores = TempStores::new();
    let core = start(&stores).await;
    let token = attest(&core, LOCAL_OPERATOR_KEY).await;

    // A status for the next two requests, then normal service.
    core.faults()
        .add(FaultRule::status("/salt/refresh", 500).times(2))
        .expect("rule");
    for expected in [500, 500, 200] {
        let status = get(&core, "/salt/refresh", LOCAL_OPERATOR_KEY, Some(&token), false)
            .await
            .status();
        assert_eq!(status.as_u16(), expected);
    }
    assert_eq!(core.request_count("/salt/refresh"), 3);

    // Spoiled data files.
    let metadata = get_json(&core, "/key/keyset/refresh", LOCAL_OPERATOR_KEY, &token, false).await;
    let url = metadata["keysets"]["location"].as_str().expect("location").to_owned();
    let (_, real) = download(&url).await;
    core.faults()
        .add(FaultRule::truncated("/files/").times(1))
        .expect("rule");
    let (status, truncated) = download(&url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(truncated, real[..real.len() / 2]);
    core.faults().add(FaultRule::garbage("/files/").times(1)).expect("rule");
    let (_, garbage) = download(&url).await;
    assert_eq!(garbage.len(), real.len());
    assert!(serde_json::from_slice::<Value>(&garbage).is_err());
    assert_eq!(download(&url).await.1, real);

    // Delays.
    core.faults()
        .add(FaultRule::delay("/operator/config", Duration::from_millis(400)).times(1))
        .expect("rule");
    let started = Instant::now();
    assert_eq!(
        get(&core, "/operator/config", LOCAL_OPERATOR_KEY, Some(&token), false)
            .await
            .status(),
        StatusCode::OK
    );
    assert!(started.elapsed() >= Duration::from_millis(400));

    // Attestation refusals.
    core.faults().add(FaultRule::refuse_attestation(403)).expect("rule");
    let (status, body) = post_attest(&core, Some(LOCAL_OPERATOR_KEY), &attest_body(&operator_rsa())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["status"], "forbidden");
    core.faults().clear();
    assert_eq!(core.faults().rules(), vec![]);

    // Over HTTP: add, list, use, clear.
    let control = format!("{}/_test/faults", core.base_url());
    let added = client()
        .post(&control)
        .json(&json!({"rules": [
            {"path_prefix": "/attest", "status": 401},
            {"path_prefix": "/clients/", "status": 503, "times": 1}
        ]}))
        .send()
        .await
        .expect("add");
    assert_eq!(added.status(), StatusCode::OK);
    let listed: Value = client()
        .get(&control)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed["rules"].as_array().map(Vec::len), Some(2));
    let (status, body) = post_attest(&core, Some(LOCAL_OPERATOR_KEY), &attest_body(&operator_rsa())).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    assert_eq!(
        get(&core, "/clients/refresh", LOCAL_OPERATOR_KEY, Some(&token), false)
            .await
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&core, "/clients/refresh", LOCAL_OPERATOR_KEY, Some(&token), false)
            .await
            .status(),
        StatusCode::OK
    );
    for bad in [
        json!({"status": 42}),
        json!({"path_prefix": "/"}),
        json!({"statuss": 500}),
        json!([1]),
    ] {
        let refused = client().post(&control).json(&bad).send().await.expect("add");
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let cleared = client().delete(&control).send().await.expect("clear");
    assert_eq!(cleared.status(), StatusCode::OK);
    assert_eq!(
        post_attest(&core, Some(LOCAL_OPERATOR_KEY), &attest_body(&operator_rsa()))
            .await
            .0,
        StatusCode::OK
    );
    core.shutdown().await;
}

#[tokio::test]
async fn only_loopback_addresses_are_bound() {
    let stores = TempStores::new();
    let refused = LocalCore::builder(stores.store())
        .listen("0.0.0.0:0".parse().expect("addr"))
        .start()
        .await;
    assert!(matches!(refused, Err(uid2_local_core::StartError::NotLoopback(_))));
    assert!(LocalCore::builder(stores.root.join("missing")).start().await.is_err());
}

#[tokio::test]
async fn the_binary_serves_a_store_by_hand() {
    use tokio::io::AsyncBufReadExt;
    let stores = TempStores::new();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_uid2-local-core"))
        .args(["--store", &stores.store().to_string_lossy(), "--listen", "127.0.0.1:0"])
        .args([
            "--operators",
            &repo().join("testdata/local-core/operators.json").to_string_lossy(),
        ])
        .args(["--token-lifetime-seconds", "30", "--no-jitter"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("starts in time")
        .expect("reads")
        .expect("a line");
    let base = line.rsplit(' ').next().expect("url").to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    let rsa = operator_rsa();
    let response = client()
        .post(format!("{base}/attest"))
        .bearer_auth(LOCAL_OPERATOR_KEY)
        .json(&attest_body(&rsa))
        .send()
        .await
        .expect("attest");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    let expires = time::OffsetDateTime::parse(
        body["body"]["expiresAt"].as_str().expect("expiresAt"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("instant");
    let lifetime = expires.unix_timestamp() - now_s();
    assert!(
        (28..=31).contains(&lifetime),
        "--token-lifetime-seconds 30 --no-jitter: {lifetime}"
    );
    child.kill().await.expect("stops");
}

#[test]
fn the_attested_local_config_points_at_this_service() {
    let text = std::fs::read_to_string(repo().join("conf/attested-local-config.json")).expect("config");
    let config: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(config["core_api_token"], LOCAL_OPERATOR_KEY);
    assert_eq!(config["core_attest_url"], "http://127.0.0.1:8088/attest");
    let routes: Vec<&str> = STORE_ROUTES.iter().map(|(route, _)| *route).collect();
    for (key, path) in [
        ("clients_metadata_path", "/clients/refresh"),
        ("sites_metadata_path", "/sites/refresh"),
        ("keysets_metadata_path", "/key/keyset/refresh"),
        ("keyset_keys_metadata_path", "/key/keyset-keys/refresh"),
        ("client_side_keypairs_metadata_path", "/client_side_keypairs/refresh"),
        ("salts_metadata_path", "/salt/refresh"),
        ("services_metadata_path", "/services/refresh"),
        ("service_links_metadata_path", "/service_links/refresh"),
        ("runtime_config_metadata_path", "/operator/config"),
        ("cloud_encryption_keys_metadata_path", "/cloud_encryption_keys/retrieve"),
        ("optout_metadata_path", "/optout/refresh"),
        ("optout_api_uri", "/optout/replicate"),
    ] {
        assert_eq!(config[key], format!("http://127.0.0.1:8088{path}"), "{key}");
        assert!(!path.ends_with("refresh") || path == "/optout/refresh" || routes.contains(&path));
    }
    let records = uid2_local_core::OperatorStore::parse(
        &std::fs::read(repo().join("testdata/local-core/operators.json")).expect("fixture"),
    )
    .expect("parses");
    let record = records
        .authorize(LOCAL_OPERATOR_KEY, &["OPERATOR"])
        .expect("the key opens the fixture");
    assert_eq!((record.site_id, record.operator_type), (999, OperatorType::Public));
    assert!(record.has_role("OPTOUT") && !record.disabled && record.protocol == "trusted");
}

#[test]
fn the_simulated_azure_sgx_config_matches_its_key_and_allowlist_entry() {
    let text = std::fs::read_to_string(repo().join("conf/azure-sgx-simulated-local-config.json")).expect("config");
    let config: Value = serde_json::from_str(&text).expect("JSON");
    let trusted: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("conf/attested-local-config.json")).expect("config"))
            .expect("JSON");
    for (key, value) in trusted.as_object().expect("object") {
        if !["core_api_token", "enclave_platform", "optout_data_dir"].contains(&key.as_str()) {
            assert_eq!(&config[key], value, "{key} differs from the trusted local config");
        }
    }
    assert_eq!(config["core_api_token"], uid2_local_core::LOCAL_SGX_OPERATOR_KEY);
    assert_eq!(config["enclave_platform"], "azure-sgx");
    assert_eq!(
        config["sgx_simulation"]["mrenclave"],
        uid2_local_core::LOCAL_SIMULATED_MRENCLAVE
    );
    assert_eq!(config["sgx_simulation"]["product_id"], 770);
    assert_eq!(config["sgx_simulation"]["svn"], 2);
    assert_eq!(config["sgx_simulation"]["debuggable"], false);
    let records = uid2_local_core::OperatorStore::parse(
        &std::fs::read(repo().join("testdata/local-core/operators.json")).expect("fixture"),
    )
    .expect("parses");
    let record = records
        .authorize(uid2_local_core::LOCAL_SGX_OPERATOR_KEY, &["OPERATOR"])
        .expect("the key opens the fixture");
    assert_eq!(record.protocol, "azure-sgx");
    let allowlist = uid2_local_core::verifier::EnclaveAllowlist::parse(
        &std::fs::read(repo().join("testdata/local-core/enclaves.json")).expect("fixture"),
    )
    .expect("parses");
    assert!(allowlist.allows("azure-sgx", uid2_local_core::LOCAL_SIMULATED_MRENCLAVE));
}
