//! The operator as an SDK meets it, for the HTTP integration tests: a real [`uid2_operator::App`]
//! bound on port 0 in local mode (the bundled store), the fixture clients of the reference's test
//! data, the v2 request envelope, and assertions on the reference's exact error bodies.
//!
//! Nothing here panics on an unexpected response except through the assertions a test asks for;
//! transport failures are reported as test failures with the route, never retried. Every request
//! has a timeout, so a hung server fails a test instead of stalling the run.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde_json::Value;
use tokio::sync::oneshot;
use uid2_operator::config::Config;
use uid2_protocol::crypto::{gcm_open, SecretKey, GCM_IV_LEN};
use uid2_protocol::entropy::{Entropy, OsEntropy};
use uid2_protocol::envelope::client::{open_response, seal_request};
use uid2_protocol::envelope::NONCE_LEN;

/// How long one request may take before the test fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A client of the reference's test data (`clients.json`; sdk.md §3.1).
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    pub name: &'static str,
    pub site_id: i32,
    pub key: &'static str,
    pub secret: &'static str,
}

impl Fixture {
    pub fn secret(&self) -> SecretKey {
        SecretKey::from_base64(self.secret).unwrap_or_else(|| panic!("fixture {} has a bad secret", self.name))
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.key)
    }
}

/// Site 999: MAPPER, GENERATOR, ID_READER, SHARER, OPTOUT; owns keyset 99999 in the bundled store.
pub const C999: Fixture = Fixture {
    name: "C999",
    site_id: 999,
    key: "UID2-C-L-999-fCXrMM.fsR3mDqAXELtWWMS+xG1s7RdgRTMqdOH2qaAo=",
    secret: "DzBzbjTJcYL0swDtFs2krRNu+g1Eokm2tBU4dEuD0Wk=",
};
/// Site 999 again, with the legacy key format (every salt is tried).
pub const C999_OLD: Fixture = Fixture {
    name: "C999old",
    site_id: 999,
    key: "LOCALbGlvbnVuZGVybGluZXdpbmRzY2FyZWRzb2Z0ZGVzZXI=",
    secret: "c3RlZXBzcGVuZHNsb3BlZnJlcXVlbnRseWRvd2lkZWM=",
};
/// Site 123, a DSP: ID_READER only.
pub const C123: Fixture = Fixture {
    name: "C123",
    site_id: 123,
    key: "UID2-C-L-123-t32pCM.5NCX1E94UgOd2f8zhsKmxzCoyhXohHYSSWR8U=",
    secret: "FsD4bvtjMkeTonx6HvQp6u0EiI1ApGH4pIZzZ5P7UcQ=",
};
/// Site 124, a publisher: GENERATOR only; no keyset, so its tokens use the fallback keyset 2.
pub const C124: Fixture = Fixture {
    name: "C124",
    site_id: 124,
    key: "UID2-C-L-124-H8VwqX.l2G4TCuUWYAqdqkeG/UqtFoPEoXirKn4kHWxc=",
    secret: "NcMgi6Y8C80SlxvV7pYlfcvEIo+2b0508tYQ3pKK8HM=",
};
/// Site 125, a data provider: MAPPER and SHARER, no ID_READER.
pub const C125: Fixture = Fixture {
    name: "C125",
    site_id: 125,
    key: "UID2-C-L-125-E5w9L8.T5og45yFqQeoj4ubh9IVqXcaSVwk7A5XyG958=",
    secret: "3YAgjckHGQyBgSFj64ZsLf8WlUnvrQhLKuG7rljp6W4=",
};
/// Site 126, an advertiser: MAPPER only.
pub const C126: Fixture = Fixture {
    name: "C126",
    site_id: 126,
    key: "UID2-C-L-126-GMP9tD.jn2o3vmXzn7vmKRlTT6BEUrPUaPJuQmDBdq38=",
    secret: "1ydXM0rEj+ROUazVpZjNZOGu2T5+f/BIiBfnK8xGh/A=",
};
/// Site 126 acting for service 2 (`service_id: 2`): MAPPER, subject to service links.
pub const C126_SERVICE: Fixture = Fixture {
    name: "C126svc",
    site_id: 126,
    key: "UID2-C-L-126-Tv40pS./TtagASU9S0tIqDyBSh283pla4mDyHBZvw+OQ=",
    secret: "qcWPpOZmlH2C0xRkdir+7Y+5hhgW1MicOhcqC8y2w8o=",
};
/// Site 127: OPTOUT only.
pub const C127: Fixture = Fixture {
    name: "C127",
    site_id: 127,
    key: "UID2-C-L-127-aHVydH.JlZnVzZWRmYXN0ZW5lbXliYWdpZGVudGl0eWU=",
    secret: "c3VpdG9wcG9zaXRlaW1hZ2Vsb29rc2ltcGxlc3RmaXI=",
};

/// The CSTG key pair of site 123 (`client_side_keypairs.json`).
pub const CSTG_SUBSCRIPTION_ID: &str = "4WvryDGbR5";
pub const CSTG_SERVER_PUBLIC_KEY: &str = "UID2-X-L-MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtXJdTSZAYHvoRDWiehMHoWF1BNPuqLs5w2ZHiAZ1IJc7O4/z0ojPTB0V+KYX/wxQK0hxx6kxCvHj335eI/ZQsQ==";

/// The refresh key (keyset −2, key 102) of the test data; lets a test open or forge refresh
/// envelopes the way only the operator could.
pub const REFRESH_KEY_ID: i32 = 102;
pub const REFRESH_KEY_SECRET: &str = "RgyxkP4yP1gYhCINq7O9PxM6jX+etPqSQluZxjB1aG8=";

/// The documentation hint appended to most envelope errors (api.md §3.4).
pub const HINT: &str =
    " See https://unifiedid.com/docs/getting-started/gs-encryption-decryption for details on the request envelope format.";
pub const UNENCRYPTED_JSON: &str = "Invalid body: The request body is unencrypted JSON. It must be an encrypted request \
envelope. See https://unifiedid.com/docs/getting-started/gs-encryption-decryption#encryption-and-decryption-code-examples \
for encryption and decryption code examples.";
pub const EXACTLY_ONE: &str =
    "Required Parameter Missing: exactly one of [email, email_hash, phone, phone_hash] must be specified";

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    OsEntropy.fill(&mut out);
    out
}

/// A request envelope as an SDK builds it: `0x01 ‖ GCM(secret, ts ‖ nonce ‖ json)`.
pub struct Envelope {
    pub bytes: Vec<u8>,
    pub nonce: [u8; NONCE_LEN],
}

impl Envelope {
    pub fn seal(secret: &SecretKey, timestamp_ms: i64, json: &[u8]) -> Self {
        let nonce = random::<NONCE_LEN>();
        let iv = random::<GCM_IV_LEN>();
        Self {
            bytes: seal_request(secret, timestamp_ms, &nonce, json, &iv),
            nonce,
        }
    }

    pub fn now(client: &Fixture, json: &str) -> Self {
        Self::seal(&client.secret(), now_ms(), json.as_bytes())
    }

    pub fn base64(&self) -> String {
        uid2_protocol::base64::encode(&self.bytes)
    }
}

/// A whole HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub route: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of a repeated header, in order.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; a test failure if it is not.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "{}: body is not JSON (HTTP {}): {}",
                self.route,
                self.status,
                self.text()
            )
        })
    }

    /// Opens a 200 v2 response: base64 text or raw bytes, sealed with `secret`, echoing `nonce`.
    #[track_caller]
    pub fn open(&self, secret: &SecretKey, nonce: &[u8; NONCE_LEN]) -> Value {
        assert_eq!(
            self.status,
            200,
            "{}: expected 200, got {}: {}",
            self.route,
            self.status,
            self.text()
        );
        let raw = if self.content_type() == Some("application/octet-stream") {
            self.body.clone()
        } else {
            uid2_protocol::base64::decode(&self.body)
                .unwrap_or_else(|_| panic!("{}: 200 body is not base64: {}", self.route, self.text()))
        };
        let opened = open_response(secret, &raw)
            .unwrap_or_else(|_| panic!("{}: 200 body does not open with the client secret", self.route));
        assert_eq!(
            &opened.nonce, nonce,
            "{}: response does not echo the request nonce",
            self.route
        );
        let age = (now_ms() - opened.timestamp_ms).abs();
        assert!(age < 60_000, "{}: response timestamp is {age} ms off", self.route);
        serde_json::from_slice(&opened.json).unwrap_or_else(|_| {
            panic!(
                "{}: sealed payload is not JSON: {}",
                self.route,
                String::from_utf8_lossy(&opened.json)
            )
        })
    }

    /// Opens a body sealed as a bare GCM blob (`IV ‖ ct ‖ tag`, no timestamp or nonce), as the
    /// refresh and CSTG responses are.
    #[track_caller]
    pub fn open_bare(&self, key: &SecretKey) -> Value {
        assert_eq!(
            self.status,
            200,
            "{}: expected 200, got {}: {}",
            self.route,
            self.status,
            self.text()
        );
        let raw = if self.content_type() == Some("application/octet-stream") {
            self.body.clone()
        } else {
            uid2_protocol::base64::decode(&self.body)
                .unwrap_or_else(|_| panic!("{}: 200 body is not base64: {}", self.route, self.text()))
        };
        let json = gcm_open(key, &raw, &[]).unwrap_or_else(|_| panic!("{}: 200 body does not open", self.route));
        serde_json::from_slice(&json).unwrap_or_else(|_| {
            panic!(
                "{}: sealed payload is not JSON: {}",
                self.route,
                String::from_utf8_lossy(&json)
            )
        })
    }
}

/// The body the reference writes for a JSON error: compact, `message` before `status`.
pub fn error_body(status: &str, message: &str) -> String {
    serde_json::to_string(&serde_json::json!({ "message": message, "status": status })).unwrap_or_default()
}

/// An error response exactly as the reference writes it: HTTP code, `application/json`, body.
#[track_caller]
pub fn assert_error(reply: &Reply, http: u16, status: &str, message: &str) {
    assert_eq!(
        (reply.status, reply.text()),
        (http, error_body(status, message)),
        "{}: wrong error",
        reply.route
    );
    assert_eq!(
        reply.content_type(),
        Some("application/json"),
        "{}: error content type",
        reply.route
    );
}

/// 400 `client_error` with `message`.
#[track_caller]
pub fn assert_client_error(reply: &Reply, message: &str) {
    assert_error(reply, 400, "client_error", message);
}

/// The auth middleware's 401: `{"status":"unauthorized"}`, no message.
#[track_caller]
pub fn assert_unauthorized(reply: &Reply) {
    assert_eq!(
        (reply.status, reply.text()),
        (401, r#"{"status":"unauthorized"}"#.to_owned()),
        "{}: expected the auth 401",
        reply.route
    );
    assert_eq!(reply.content_type(), Some("application/json"), "{}", reply.route);
}

/// A plain-text framework response (413, 500, 403 …).
#[track_caller]
pub fn assert_plain(reply: &Reply, http: u16, text: &str) {
    assert_eq!((reply.status, reply.text()), (http, text.to_owned()), "{}", reply.route);
}

/// One operator serving the bundled local store, stopped when dropped.
pub struct Operator {
    pub address: SocketAddr,
    pub metrics_address: SocketAddr,
    base: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

impl Operator {
    /// Local mode with the default configuration (CSTG on), on port 0.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Local mode with a configuration edit applied after loading.
    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> Self {
        let loaded = match uid2_operator::config::load(None, &|_| None) {
            Ok(loaded) => loaded,
            Err(problems) => panic!("the default configuration does not load: {problems:?}"),
        };
        let mut config = loaded.config;
        config.http_port = 0;
        config.metrics_port = 0;
        edit(&mut config);
        let app = match uid2_operator::App::build(config).await {
            Ok(app) => app,
            Err(error) => panic!("the operator does not start: {error}"),
        };
        let address = app.api_address().expect("the API listener has an address");
        let metrics_address = app.metrics_address().expect("the metrics listener has an address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("an HTTP client");
        Self {
            address,
            metrics_address,
            base: format!("http://{address}"),
            http,
            stop: Some(stop),
        }
    }

    /// A client of an operator running elsewhere (another process) at these addresses. Dropping
    /// it stops nothing: whoever started that operator stops it.
    pub fn at(address: SocketAddr, metrics_address: SocketAddr) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("an HTTP client");
        Self {
            address,
            metrics_address,
            base: format!("http://{address}"),
            http,
            stop: None,
        }
    }

    /// A GET that reports a transport failure instead of failing the test, for polling a server
    /// that may not be listening yet (or any more). Times out after 2 s.
    pub async fn try_get(&self, path: &str) -> Result<Reply, String> {
        let route = format!("GET {path}");
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| format!("{route}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| format!("{route}: {e}"))?.to_vec();
        Ok(Reply {
            route,
            status,
            headers,
            body,
        })
    }

    /// Any request; a transport failure (refused, reset, timeout) fails the test.
    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
        let route = format!("{method} {path}");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = match request.body(body).send().await {
            Ok(r) => r,
            Err(error) => panic!("{route}: no HTTP response: {error}"),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(error) => panic!("{route}: body not read: {error}"),
        };
        Reply {
            route,
            status,
            headers,
            body,
        }
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
        self.send(Method::POST, path, headers, body.into()).await
    }

    /// The Prometheus text of the metrics listener.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.metrics_address);
        match self.http.get(url).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(error) => panic!("GET /metrics: no HTTP response: {error}"),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], Vec::new()).await
    }

    /// An authenticated v2 call with a fresh envelope as base64 `text/plain`; returns the reply
    /// and the nonce to check the response against.
    pub async fn v2(&self, path: &str, client: &Fixture, json: &str) -> (Reply, [u8; NONCE_LEN]) {
        let envelope = Envelope::now(client, json);
        let bearer = client.bearer();
        let reply = self
            .post(
                path,
                &[
                    (AUTHORIZATION.as_str(), bearer.as_str()),
                    (CONTENT_TYPE.as_str(), "text/plain"),
                ],
                envelope.base64(),
            )
            .await;
        (reply, envelope.nonce)
    }

    /// An authenticated v2 call whose payload is an empty plaintext (no JSON after the nonce).
    pub async fn v2_empty(&self, path: &str, client: &Fixture) -> (Reply, [u8; NONCE_LEN]) {
        self.v2(path, client, "").await
    }

    /// A v2 call that must succeed; returns the decrypted `{"body":…,"status":…}`.
    pub async fn v2_ok(&self, path: &str, client: &Fixture, json: &str) -> Value {
        let (reply, nonce) = self.v2(path, client, json).await;
        assert_eq!(reply.status, 200, "{path} {json}: {}", reply.text());
        assert_eq!(reply.content_type(), Some("text/plain"), "{path}");
        reply.open(&client.secret(), &nonce)
    }

    /// Posts a raw v2 body with the client's bearer key and the given content type.
    pub async fn v2_raw(&self, path: &str, client: &Fixture, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        let bearer = client.bearer();
        self.post(
            path,
            &[
                (AUTHORIZATION.as_str(), bearer.as_str()),
                (CONTENT_TYPE.as_str(), content_type),
            ],
            body,
        )
        .await
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A small deterministic generator (xorshift64*), so malformed-input runs are reproducible.
pub struct Xorshift(u64);

impl Xorshift {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % (n.max(1) as u64)).unwrap_or(0)
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64().to_le_bytes()[0]).collect()
    }
}
