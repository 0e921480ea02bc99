//! The `azure-sgx` protocol over HTTP: the MAA simulator on the real Azure example quote and on
//! synthetic quotes, and Core's verifier accepting an allowlisted enclave and refusing every
//! way a quote or an MAA answer can be wrong. Servers bind 127.0.0.1:0; each test has its own
//! operators and enclaves files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::{Client, StatusCode};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey};
use serde_json::{json, Value};
use uid2_attest::quote::{synthetic, EnclaveIdentity};
use uid2_attest::sgx::report_data;
use uid2_local_core::verifier::signing_key;
use uid2_local_core::{write_operators_file, BodyFault, FaultRule, LocalCore, OperatorRecord, Running};
use uid2_protocol::base64;

const SGX_KEY: &str = "UID2-O-L-999-sGxKey.sgx0000000sgx0000000sgx0000000sgx00001=";
const ALLOWED_MRENCLAVE: [u8; 32] = [0x5A; 32];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// Operators and enclaves files in a private directory, removed on drop.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "uid2-local-core-sgx-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut record = OperatorRecord::for_key(SGX_KEY, 999);
        record.protocol = "azure-sgx".into();
        write_operators_file(&dir.join("operators.json"), &[record]).expect("operators");
        let enclaves = json!([
            {"name": "rust operator", "protocol": "azure-sgx", "identifier": hex::encode_upper(ALLOWED_MRENCLAVE), "created": 1},
            {"name": "other protocol", "protocol": "trusted", "identifier": hex::encode([0x6B; 32]), "created": 1},
        ]);
        std::fs::write(dir.join("enclaves.json"), enclaves.to_string()).expect("enclaves");
        Self { dir }
    }

    async fn start(&self) -> Running {
        LocalCore::builder(repo().join("testdata/local-store"))
            .operators_file(self.dir.join("operators.json"))
            .enclaves_file(self.dir.join("enclaves.json"))
            .start()
            .await
            .expect("starts")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn operator_rsa() -> RsaPrivateKey {
    let pem = std::fs::read_to_string(repo().join("testdata/local-core/test-operator-rsa-2048.pem")).expect("pem");
    RsaPrivateKey::from_pkcs8_pem(&pem).expect("test RSA key")
}

fn spki(key: &RsaPrivateKey) -> Vec<u8> {
    key.to_public_key()
        .to_public_key_der()
        .expect("SPKI")
        .as_bytes()
        .to_vec()
}

fn identity() -> EnclaveIdentity {
    EnclaveIdentity {
        mr_enclave: ALLOWED_MRENCLAVE,
        mr_signer: [0x3C; 32],
        isv_prod_id: 770,
        isv_svn: 2,
        debuggable: false,
    }
}

async fn post_attest(core: &Running, quote: &[u8], public_key: &[u8]) -> (StatusCode, Value) {
    let body = json!({
        "attestation_request": base64::encode(quote),
        "public_key": base64::encode(public_key),
        "application_name": "uid2-operator",
        "application_version": "test",
        "operator_type": "public",
        "components": {},
    });
    let response = client()
        .post(format!("{}/attest", core.base_url()))
        .bearer_auth(SGX_KEY)
        .json(&body)
        .send()
        .await
        .expect("attest");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn maa_attest(core: &Running, body: &Value) -> (StatusCode, Value) {
    let response = client()
        .post(format!(
            "{}/maa/attest/SgxEnclave?api-version=2020-10-01",
            core.base_url()
        ))
        .json(body)
        .send()
        .await
        .expect("MAA attest");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("testdata/sgx").join(name)).expect("testdata/sgx")
}

#[tokio::test]
async fn the_maa_simulator_attests_the_real_azure_example_quote_like_maa() {
    let fixture = Fixture::new();
    let core = fixture.start().await;
    let quote = testdata("azure-example-quote.bin");
    let runtime_data = testdata("azure-example-runtime-data.bin");
    // PascalCase and standard base64, as UID2's old Core sent it.
    let (status, answer) = maa_attest(
        &core,
        &json!({"Quote": base64::encode_url(&quote), "RuntimeData": {"Data": base64::encode(&runtime_data), "DataType": "Binary"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let token = answer["token"].as_str().expect("token");

    let certs: Value = client()
        .get(format!("{}/maa/certs", core.base_url()))
        .send()
        .await
        .expect("certs")
        .json()
        .await
        .expect("JWKS");
    assert!(certs["keys"][0].get("n").is_none(), "keys carry only x5c, as MAA's");
    let unverified = uid2_local_core::jwt::Unverified::parse(token).expect("a JWT");
    assert_eq!(unverified.header["jku"], format!("{}/maa/certs", core.base_url()));
    let key = signing_key(&certs, unverified.key_id().expect("kid")).expect("published key");
    let claims = unverified.verify(&key).expect("signed by the published key");
    assert_eq!(
        claims["x-ms-sgx-mrenclave"],
        "d971961f724b71dfc5f1553ac4efb68ad160e849602cdd851cb840423e592a73"
    );
    assert_eq!(
        claims["x-ms-sgx-mrsigner"],
        "856823123027010ed0ce1f7d515b6be1d7505e5828fba19785676030d8fffc28"
    );
    assert_eq!(claims["x-ms-sgx-product-id"], 4639);
    assert_eq!(claims["x-ms-sgx-svn"], 1);
    assert_eq!(claims["x-ms-sgx-is-debuggable"], false);
    assert_eq!(claims["x-ms-attestation-type"], "sgx");
    assert_eq!(claims["x-ms-sgx-ehd"], base64::encode_url(&runtime_data));
    assert_eq!(claims["iss"], format!("{}/maa", core.base_url()));
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(lifetime, 8 * 3600);

    // Like MAA: runtime data whose hash is not the report data, a cut quote, no api-version.
    let mut other = runtime_data.clone();
    other[0] ^= 1;
    let (status, answer) = maa_attest(
        &core,
        &json!({"quote": base64::encode_url(&quote), "runtimeData": {"data": base64::encode_url(&other), "dataType": "Binary"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .contains("runtime data"),
        "{answer}"
    );
    let (status, answer) = maa_attest(
        &core,
        &json!({"quote": base64::encode_url(&quote[..1000]), "runtimeData": {"data": base64::encode_url(&runtime_data)}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .contains("invalid SGX quote"),
        "{answer}"
    );
    let response = client()
        .post(format!("{}/maa/attest/SgxEnclave", core.base_url()))
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["x-ms-error-code"], "InvalidParameter");
}

#[tokio::test]
async fn an_allowlisted_enclave_gets_a_token_encrypted_to_its_key() {
    let fixture = Fixture::new();
    let core = fixture.start().await;
    let rsa = operator_rsa();
    let quote = synthetic(&identity(), &report_data(&spki(&rsa)));
    let (status, answer) = post_attest(&core, &quote, &spki(&rsa)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let sealed = base64::decode(answer["body"]["attestation_token"].as_str().expect("token")).expect("base64");
    let token = rsa
        .decrypt(Pkcs1v15Encrypt, &sealed)
        .expect("encrypted to the quoted key");
    assert!(!token.is_empty());
    assert_eq!(core.attestation_count(), 1);
    assert_eq!(core.request_count("/maa/attest/SgxEnclave"), 1, "Core asked the MAA");
    assert_eq!(core.request_count("/maa/certs"), 1, "and fetched its signing keys");
}

#[tokio::test]
async fn every_wrong_enclave_or_binding_is_refused() {
    let fixture = Fixture::new();
    let core = fixture.start().await;
    let rsa = operator_rsa();
    let key = spki(&rsa);
    let bound = report_data(&key);

    let cases: Vec<(&str, EnclaveIdentity, [u8; 64], &str)> = vec![
        (
            "MRENCLAVE not allowlisted",
            EnclaveIdentity {
                mr_enclave: [0x6B; 32],
                ..identity()
            },
            bound,
            "forbidden enclave",
        ),
        (
            "debuggable",
            EnclaveIdentity {
                debuggable: true,
                ..identity()
            },
            bound,
            "forbidden enclave",
        ),
        (
            "product id 771",
            EnclaveIdentity {
                isv_prod_id: 771,
                ..identity()
            },
            bound,
            "forbidden enclave",
        ),
        (
            "SVN 1",
            EnclaveIdentity {
                isv_svn: 1,
                ..identity()
            },
            bound,
            "forbidden enclave",
        ),
        (
            "SVN 3 (exactly 2 is required, as the reference)",
            EnclaveIdentity {
                isv_svn: 3,
                ..identity()
            },
            bound,
            "forbidden enclave",
        ),
        (
            "report data of another key",
            identity(),
            report_data(b"another operator's key"),
            "bad payload",
        ),
    ];
    for (what, identity, data, message) in cases {
        let (status, answer) = post_attest(&core, &synthetic(&identity, &data), &key).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {answer}");
        assert_eq!(answer["message"], format!("attestation failure; {message}"), "{what}");
    }
    let (status, _) = post_attest(&core, b"not a quote", &key).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "garbage evidence");
    assert_eq!(core.attestation_count(), 0);
}

#[tokio::test]
async fn a_forged_maa_signature_is_refused() {
    let fixture = Fixture::new();
    let core = fixture.start().await;
    let rsa = operator_rsa();
    let quote = synthetic(&identity(), &report_data(&spki(&rsa)));
    let rule: FaultRule =
        serde_json::from_value(json!({"path_prefix": "/maa/attest/SgxEnclave", "body": "bad_signature", "times": 1}))
            .expect("rule");
    assert_eq!(rule.body, Some(BodyFault::BadSignature));
    core.faults().add(rule).expect("fault");
    let (status, answer) = post_attest(&core, &quote, &spki(&rsa)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["message"], "attestation failure; bad payload");
    // The fault was used up: the same quote now passes, so the signature was the only problem.
    let (status, answer) = post_attest(&core, &quote, &spki(&rsa)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn an_unreachable_maa_is_an_internal_error_the_operator_retries() {
    let fixture = Fixture::new();
    let offline = LocalCore::builder(repo().join("testdata/local-store"))
        .operators_file(fixture.dir.join("operators.json"))
        .enclaves_file(fixture.dir.join("enclaves.json"))
        .maa_url("http://127.0.0.1:9/maa")
        .start()
        .await
        .expect("core with an unreachable MAA");
    let rsa = operator_rsa();
    let quote = synthetic(&identity(), &report_data(&spki(&rsa)));
    let (status, answer) = post_attest(&offline, &quote, &spki(&rsa)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    assert_eq!(offline.attestation_count(), 0);
}

#[tokio::test]
async fn an_expired_or_foreign_issuer_maa_token_is_refused() {
    use std::sync::Arc;
    use uid2_protocol::clock::FixedClock;

    let fixture = Fixture::new();
    let rsa = operator_rsa();
    let quote = synthetic(&identity(), &report_data(&spki(&rsa)));
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    // An MAA whose clock is 9 hours behind issues tokens that expired an hour ago (8 h life).
    let stale_maa = LocalCore::builder(repo().join("testdata/local-store"))
        .operators_file(fixture.dir.join("operators.json"))
        .enclaves_file(fixture.dir.join("enclaves.json"))
        .clock(Arc::new(FixedClock::at(now_ms - 9 * 3600 * 1000)))
        .start()
        .await
        .expect("stale MAA");
    let core = LocalCore::builder(repo().join("testdata/local-store"))
        .operators_file(fixture.dir.join("operators.json"))
        .enclaves_file(fixture.dir.join("enclaves.json"))
        .maa_url(format!("{}/maa", stale_maa.base_url()))
        .start()
        .await
        .expect("core");
    let (status, answer) = post_attest(&core, &quote, &spki(&rsa)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["message"], "attestation failure; bad payload");

    // The same MAA named by another host: its tokens' issuer is not the configured URL.
    let port = stale_maa.local_addr().port();
    let renamed = LocalCore::builder(repo().join("testdata/local-store"))
        .operators_file(fixture.dir.join("operators.json"))
        .enclaves_file(fixture.dir.join("enclaves.json"))
        .maa_url(format!("http://localhost:{port}/maa"))
        .start()
        .await
        .expect("core");
    let (status, _) = post_attest(&renamed, &quote, &spki(&rsa)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Control: the right MAA URL with a current clock succeeds.
    let current = fixture.start().await;
    assert_eq!(post_attest(&current, &quote, &spki(&rsa)).await.0, StatusCode::OK);
}
