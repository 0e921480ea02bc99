//! Attested mode, end to end: the real `uid2-operator` binary syncing from the local Core +
//! OptOut service (`testing/local-core`), over loopback HTTP.
//!
//! Every test builds its own world and shares nothing with the others:
//!
//! * a fresh temporary directory holding copies of `testdata/local-store` and
//!   `testdata/reference-store` side by side (the store's metadata points at
//!   `../reference-store/…`), plus `testdata/local-core/operators.json` as
//!   `local-store/operators/operators.json` (the site-999 operator key);
//! * local Core started **in process** on `127.0.0.1:0` over that store copy
//!   ([`uid2_local_core::LocalCore`]), so the test can edit store files, bump versions, inject
//!   faults and read Core's counters while the operator runs;
//! * an operator configuration written from `conf/attested-local-config.json` with every URL
//!   pointed at that Core, every store refreshed every 300 ms, the opt-out listing every second,
//!   an opt-out cache in the temporary directory, and free API/metrics ports (picked by binding
//!   `127.0.0.1:0` and releasing; a start that loses the race for a port is retried);
//! * the binary itself (`CARGO_BIN_EXE_uid2-operator --config <file>`) as a child process with
//!   `RUST_LOG=debug`, stdout and stderr captured to a log file in the temporary directory, killed
//!   when the test's [`OperatorProcess`] guard drops.
//!
//! Tests talk to the operator as an SDK would (the v2 envelope helpers of `harness`), decrypt the
//! tokens it issues with the keys of the store copy, and compute raw UIDs independently with
//! `uid2_protocol`. Every wait is bounded and polls; nothing asserts on timing beyond those bounds.
//! Every test ends by checking the operator's log for secrets (operator key, attestation-token
//! shapes, client keys and secrets, key and salt secrets).
//!
//! On failure the temporary directory is kept (its path is printed) and the operator's log is
//! printed without the HTTP client's connection chatter.
//!
//! Renewal of the attestation is only observable here through short-lived tokens: the operator's
//! periodic check (renew within 10 minutes of expiry) runs every 60 s and has no configuration
//! key, so with 5-second tokens the renewals a test can wait for are the lazy ones at expiry.
//! `never_presents_an_expired_attestation_token` pins the local Core's clock to the last
//! millisecond of each second: tokens carry whole-second expiries, so the operator must stop
//! presenting one before the millisecond `expiresAt` Core returns.

mod harness;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use harness::{now_ms, random, Operator, C999};
use serde_json::{json, Value};
use uid2_local_core::{Builder, FaultRule, LocalCore, Running, LOCAL_OPERATOR_KEY};
use uid2_protocol::crypto::{sha256, SecretKey};
use uid2_protocol::identity::{bucket_index, first_level_hash, raw_uid};
use uid2_protocol::token::advertising::AdvertisingToken;
use uid2_protocol::token::KeyRing;

const GENERATE: &str = "/v2/token/generate";
const REFRESH: &str = "/v2/token/refresh";
const LOGOUT: &str = "/v2/token/logout";
const MAP_V2: &str = "/v2/identity/map";
const MAP_V3: &str = "/v3/identity/map";
const OPTOUT_STATUS: &str = "/v2/optout/status";
const HEALTHCHECK: &str = "/ops/healthcheck";

/// Keyset of site 999 in the local store, and its only key there.
const SITE_KEYSET: i64 = 99_999;
const SITE_KEY: i32 = 99_999;

/// How long the operator may take to become healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);
/// How long a store change may take to reach the API (stores refresh every 300 ms).
const CHANGE_WITHIN: Duration = Duration::from_secs(15);
/// How long an opt-out may take to travel logout → OptOut delta → listing → index (1 s sync).
const OPTOUT_WITHIN: Duration = Duration::from_secs(20);
/// How long a refused operator may take to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(20);
/// How often waits poll.
const POLL: Duration = Duration::from_millis(100);

/// Every metadata route of Core and OptOut (not `/attest`, not the file routes).
const METADATA_PREFIXES: [&str; 10] = [
    "/clients/",
    "/sites/",
    "/key/",
    "/client_side_keypairs/",
    "/salt/",
    "/services/",
    "/service_links/",
    "/operator/",
    "/cloud_encryption_keys/",
    "/optout/refresh",
];

// ---------------------------------------------------------------------------------------------
// The world of one test: a store copy, local Core, the operator process
// ---------------------------------------------------------------------------------------------

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A temporary directory, removed on drop unless the test is failing (then its path is printed).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("uid2-attested-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test directory");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a directory");
    for entry in std::fs::read_dir(from).expect("read a test data directory").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a test data file");
        }
    }
}

/// Writes through a temporary name and a rename, so local Core never serves half a file.
fn write_atomic(path: &Path, bytes: &[u8]) {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).expect("write a store file");
    std::fs::rename(&partial, path).expect("rename a store file");
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn write_json(path: &Path, value: &Value) {
    let text = serde_json::to_string_pretty(value).expect("JSON text");
    write_atomic(path, text.as_bytes());
}

/// One test's store copy and local Core.
struct World {
    core: Running,
    store: PathBuf,
    /// Declared last: removed after Core has stopped.
    dir: TempDir,
}

impl World {
    async fn new(name: &str) -> Self {
        Self::with_core(name, |builder| builder).await
    }

    /// A world whose local Core is configured by `edit` (token lifetime, jitter…).
    async fn with_core(name: &str, edit: impl FnOnce(Builder) -> Builder) -> Self {
        let dir = TempDir::new(name);
        for store in ["local-store", "reference-store"] {
            copy_dir(&repo().join("testdata").join(store), &dir.0.join(store));
        }
        let store = dir.0.join("local-store");
        std::fs::create_dir_all(store.join("operators")).expect("create operators/");
        std::fs::copy(
            repo().join("testdata/local-core/operators.json"),
            store.join("operators/operators.json"),
        )
        .expect("copy operators.json");
        let core = edit(LocalCore::builder(&store))
            .start()
            .await
            .unwrap_or_else(|e| panic!("local Core does not start: {e}"));
        Self { core, store, dir }
    }

    /// The operator configuration: `conf/attested-local-config.json` pointed at this Core, with
    /// short refresh intervals, this test's opt-out cache and the given ports.
    fn operator_config(&self, http_port: u16, metrics_port: u16) -> Value {
        let mut config = read_json(&repo().join("conf/attested-local-config.json"));
        let object = config.as_object_mut().expect("the attested config is an object");
        for value in object.values_mut() {
            if let Some(text) = value.as_str() {
                if let Some(path) = text.strip_prefix("http://127.0.0.1:8088") {
                    *value = Value::String(format!("{}{path}", self.core.base_url()));
                }
            }
        }
        for key in [
            "auth_refresh_ms",
            "keyset_refresh_ms",
            "keysetkey_refresh_ms",
            "salt_refresh_ms",
            "site_refresh_ms",
            "client_side_keypairs_refresh_ms",
            "service_refresh_ms",
            "service_link_refresh_ms",
            "cloud_encryption_keys_refresh_ms",
            "config_scan_period_ms",
        ] {
            object.insert(key.to_owned(), json!(300));
        }
        object.insert("cloud_refresh_interval".to_owned(), json!(1));
        let cache = self.dir.0.join("optout-cache");
        object.insert("optout_data_dir".to_owned(), json!(cache.to_string_lossy()));
        object.insert("http_port".to_owned(), json!(http_port));
        object.insert("metrics_port".to_owned(), json!(metrics_port));
        let text = config.to_string();
        assert!(
            !text.contains(":8088"),
            "a URL still points at the default Core: {text}"
        );
        config
    }

    /// Starts the operator binary; returns once it answers HTTP or has exited (a start that lost
    /// a port to another process is retried with new ports).
    async fn spawn(&self) -> OperatorProcess {
        self.spawn_with(|_| {}).await
    }

    /// [`Self::spawn`] with an edit of the operator configuration.
    async fn spawn_with(&self, edit: impl Fn(&mut serde_json::Map<String, Value>)) -> OperatorProcess {
        for attempt in 0..5 {
            let (http_port, metrics_port) = free_ports();
            let config_path = self.dir.0.join(format!("operator-{attempt}.json"));
            let mut config = self.operator_config(http_port, metrics_port);
            if let Some(object) = config.as_object_mut() {
                edit(object);
            }
            std::fs::write(&config_path, config.to_string()).expect("write the operator config");
            let log = self.dir.0.join(format!("operator-{attempt}.log"));
            let mut process = OperatorProcess::spawn(&config_path, &log, http_port, metrics_port);
            match process.until_listening().await {
                Listening::Yes | Listening::Exited => return process,
                Listening::PortTaken => {
                    eprintln!("operator start {attempt}: a port was taken; retrying with new ports");
                }
            }
        }
        panic!("the operator could not bind free ports in 5 attempts");
    }

    /// Starts the operator and waits until `/ops/healthcheck` answers 200.
    async fn start(&self) -> OperatorProcess {
        let mut process = self.spawn().await;
        process.wait_healthy().await;
        process
    }

    /// Everything that must never appear in the operator's log.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![
            LOCAL_OPERATOR_KEY.to_owned(),
            LOCAL_OPERATOR_KEY
                .split_once('.')
                .map(|(_, s)| s.to_owned())
                .unwrap_or_default(),
        ];
        let clients = read_json(&self.dir.0.join("reference-store/clients/clients.json"));
        for client in clients.as_array().into_iter().flatten() {
            for field in ["key", "secret", "key_hash", "key_salt"] {
                secrets.extend(client[field].as_str().map(str::to_owned));
            }
        }
        let keys = read_json(&self.store.join("keyset_keys/keyset_keys.json"));
        secrets.extend(
            keys.as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k["secret"].as_str().map(str::to_owned)),
        );
        let salts = Salts::load(&self.store);
        secrets.push(salts.first_level.clone());
        secrets.push(salts.id_secret.clone());
        for line in &salts.lines {
            // Current and previous salts, v4 keys and key salts (columns 2, 4, 6, 7, 9, 10).
            for column in [2, 4, 6, 7, 9, 10] {
                secrets.extend(line.get(column).filter(|s| !s.is_empty()).cloned());
            }
        }
        secrets.retain(|s| s.len() >= 16);
        secrets
    }

    /// Adds a key to the store copy's `keyset_keys.json` (without touching the metadata).
    fn add_keyset_key(&self, id: i32, keyset_id: i64) -> SecretKey {
        let path = self.store.join("keyset_keys/keyset_keys.json");
        let mut keys = read_json(&path);
        let secret = SecretKey::from_bytes(random::<32>());
        let now_s = now_ms() / 1000;
        keys.as_array_mut().expect("keyset_keys.json is an array").push(json!({
            "id": id,
            "keyset_id": keyset_id,
            "created": now_s - 1,
            "activates": now_s - 1,
            "expires": 4_088_629_662i64,
            "secret": secret.to_base64(),
        }));
        write_json(&path, &keys);
        secret
    }

    /// Bumps the `version` of `<store>/<dir>/metadata.json`; returns the new version.
    fn bump_version(&self, dir: &str) -> i64 {
        let path = self.store.join(dir).join("metadata.json");
        let mut metadata = read_json(&path);
        let version = metadata["version"].as_i64().expect("metadata has a version") + 1;
        metadata["version"] = json!(version);
        write_json(&path, &metadata);
        version
    }

    /// Every key of the store copy (read now), for opening tokens.
    fn keys(&self) -> Keys {
        let keys = read_json(&self.store.join("keyset_keys/keyset_keys.json"));
        Keys(
            keys.as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| {
                    let id = i32::try_from(k["id"].as_i64()?).ok()?;
                    Some((id, SecretKey::from_base64(k["secret"].as_str()?)?))
                })
                .collect(),
        )
    }

    /// Generates a token for `email` as site 999 and returns the site key id it was sealed with
    /// (the token must open with the store's keys and name site 999).
    async fn site_key_of_new_token(&self, op: &Operator, email: &str) -> i32 {
        let response = op.v2_ok(GENERATE, &C999, &json!({ "email": email }).to_string()).await;
        assert_eq!(response["status"], "success", "generate {email}: {response}");
        let token = response["body"]["advertising_token"].as_str().unwrap_or_default();
        let decoded = AdvertisingToken::decode(token, &self.keys()).expect("the token opens with the store's keys");
        assert_eq!(decoded.publisher.site_id, 999, "{decoded:?}");
        decoded.site_key_id
    }

    /// Adds fault rules answering `status` on every metadata route.
    fn fail_metadata(&self, status: u16) {
        for prefix in METADATA_PREFIXES {
            self.core
                .faults()
                .add(FaultRule::status(prefix, status))
                .expect("a valid rule");
        }
    }
}

/// Two distinct ports that were free a moment ago.
fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let (a, b) = (bind(), bind());
    let port = |l: &std::net::TcpListener| l.local_addr().expect("a bound address").port();
    (port(&a), port(&b))
}

/// Key material by id, for [`AdvertisingToken::decode`].
struct Keys(HashMap<i32, SecretKey>);

impl KeyRing for Keys {
    fn secret(&self, key_id: i32) -> Option<&SecretKey> {
        self.0.get(&key_id)
    }
}

enum Listening {
    Yes,
    Exited,
    PortTaken,
}

/// The operator binary running as a child process; killed on drop.
struct OperatorProcess {
    child: tokio::process::Child,
    log: PathBuf,
    api: Operator,
    exit: Option<ExitStatus>,
}

impl OperatorProcess {
    fn spawn(config: &Path, log: &Path, http_port: u16, metrics_port: u16) -> Self {
        let out = std::fs::File::create(log).expect("create the operator log");
        let err = out.try_clone().expect("share the operator log");
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_uid2-operator"));
        command
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "debug")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        // Nothing from the environment of the test run may redirect the operator: no operator key
        // override, no port shift, no proxy between it and loopback Core.
        for name in [
            "core_api_token",
            "optout_api_token",
            "port_offset",
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ] {
            command.env_remove(name);
        }
        let child = command.spawn().expect("spawn the operator binary");
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Self {
            child,
            log: log.to_path_buf(),
            api: Operator::at(loopback(http_port), loopback(metrics_port)),
            exit: None,
        }
    }

    /// The exit status, if the process has ended.
    fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("poll the operator process");
        }
        self.exit
    }

    fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    async fn until_listening(&mut self) -> Listening {
        let deadline = Instant::now() + HEALTHY_WITHIN;
        while Instant::now() < deadline {
            if self.api.try_get(HEALTHCHECK).await.is_ok() {
                return Listening::Yes;
            }
            if self.exited().is_some() {
                return if self.log_text().contains("cannot listen") {
                    Listening::PortTaken
                } else {
                    Listening::Exited
                };
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("the operator neither listened nor exited within {HEALTHY_WITHIN:?}");
    }

    /// Fails the test (with the log) if the operator has exited.
    #[track_caller]
    fn assert_running(&mut self) {
        if let Some(status) = self.exited() {
            panic!("the operator exited ({status}) while the test expected it to serve");
        }
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + HEALTHY_WITHIN;
        let mut last = String::new();
        while Instant::now() < deadline {
            self.assert_running();
            match self.api.try_get(HEALTHCHECK).await {
                Ok(reply) if reply.status == 200 => return,
                Ok(reply) => last = format!("{} {}", reply.status, reply.text()),
                Err(e) => last = e,
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("the operator was not healthy within {HEALTHY_WITHIN:?}; last healthcheck: {last}");
    }

    /// Waits for the process to exit on its own.
    async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return status;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("the operator did not exit within {limit:?}");
    }

    /// The value of the first series `name{…}` whose labels include every pair, or 0.
    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        series(&self.api.metrics().await, name, labels).unwrap_or(0.0)
    }

    async fn refresh_failures(&self, store: &str) -> f64 {
        self.metric("uid2_store_refresh_total", &[("store", store), ("result", "failure")])
            .await
    }

    /// The log must not hold any of `secrets`, an attestation token (`<b64>-<b64 IV>-g`) or a
    /// base64 run as long as the RSA-encrypted token (344 characters), nor a panic.
    #[track_caller]
    fn assert_log_clean(&self, secrets: &[String]) {
        let log = self.log_text();
        assert!(!log.is_empty(), "the operator wrote no log at all");
        for secret in secrets {
            assert!(
                !log.contains(secret.as_str()),
                "the operator log contains a secret ({}…)",
                secret.get(..6).unwrap_or_default()
            );
        }
        if let Some(at) = attestation_token_shape(&log) {
            panic!(
                "the operator log contains an attestation token shape near byte {at}: …{}",
                &log[at.saturating_sub(8)..at]
            );
        }
        let run = longest_base64_run(&log);
        assert!(run < 200, "the operator log contains a base64 run of {run} characters");
        assert!(!log.contains("panicked"), "the operator panicked");
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        for _ in 0..50 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if std::thread::panicking() {
            let log = self.log_text();
            let quiet: Vec<&str> = log.lines().filter(|l| !is_connection_chatter(l)).collect();
            let tail = &quiet[quiet.len().saturating_sub(80)..];
            eprintln!(
                "---- operator log ({}, last {} lines without connection chatter) ----\n{}\n---- end of operator log ----",
                self.log.display(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

fn is_connection_chatter(line: &str) -> bool {
    [
        "connection for",
        "connecting to",
        "connected to",
        "starting new connection",
        "store unchanged",
    ]
    .iter()
    .any(|needle| line.contains(needle))
}

#[test]
fn the_log_checks_recognise_attestation_tokens() {
    let cipher = uid2_local_core::TokenCipher::derive("test-key", "test-salt");
    let token = cipher.seal(
        LOCAL_OPERATOR_KEY,
        2_000_000_000,
        -5,
        &uid2_protocol::entropy::OsEntropy,
    );
    let line = format!("2026-01-01T00:00:00Z DEBUG sent attestation-token={token} to Core");
    assert!(attestation_token_shape(&line).is_some(), "{line}");
    assert!(attestation_token_shape("INFO opt-out sync: x-g, 2026-11-28T16:31:58Z -g").is_none());
    let rsa_sized = uid2_protocol::base64::encode(&[7u8; 256]);
    assert_eq!(longest_base64_run(&format!("token {rsa_sized}.")), 344);
}

/// `<≥20 base64 chars>-<16 base64 chars>-g` (an attestation token's end), as a byte offset.
fn attestation_token_shape(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let is_b64 = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=';
    bytes.windows(2).enumerate().find_map(|(i, w)| {
        if w != b"-g" || i < 38 {
            return None;
        }
        let iv = &bytes[i - 16..i];
        let dash = bytes[i - 17];
        let sealed = &bytes[i - 37..i - 17];
        (iv.iter().all(|b| is_b64(*b)) && dash == b'-' && sealed.iter().all(|b| is_b64(*b))).then_some(i)
    })
}

fn longest_base64_run(text: &str) -> usize {
    let mut longest = 0;
    let mut current = 0;
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            current += 1;
            longest = longest.max(current);
        } else {
            current = 0;
        }
    }
    longest
}

/// The value of the first series named `name` whose labels include every `label="value"` pair.
fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with('{'))
        .find(|line| labels.iter().all(|(k, v)| line.contains(&format!("{k}=\"{v}\""))))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Polls `probe` every [`POLL`] until it yields a value; fails the test after `limit`.
async fn eventually<T>(what: &str, limit: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(POLL).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Salts and raw UIDs, computed independently of the operator (tokens.md §1.2–1.4)
// ---------------------------------------------------------------------------------------------

/// The salt metadata and the snapshot in force (the last effective one) of a store.
struct Salts {
    metadata: Value,
    first_level: String,
    id_secret: String,
    /// The snapshot's lines, 11 columns each.
    lines: Vec<Vec<String>>,
}

impl Salts {
    fn load(store: &Path) -> Self {
        let metadata = read_json(&store.join("salts/metadata.json"));
        let now = now_ms();
        let snapshots = metadata["salts"].as_array().cloned().unwrap_or_default();
        let mut chosen = snapshots.last().cloned().expect("at least one salt snapshot");
        for snapshot in &snapshots {
            let effective = snapshot["effective"].as_i64().unwrap_or(i64::MAX);
            let expires = snapshot["expires"].as_i64().unwrap_or(i64::MAX);
            if effective <= now && now < expires {
                chosen = snapshot.clone();
            } else {
                break;
            }
        }
        let location = chosen["location"].as_str().expect("a snapshot location");
        let text = std::fs::read_to_string(store.join(location)).expect("read the salt file");
        Self {
            first_level: metadata["first_level"].as_str().unwrap_or_default().to_owned(),
            id_secret: metadata["id_secret"].as_str().unwrap_or_default().to_owned(),
            lines: text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.split(',').map(str::to_owned).collect())
                .collect(),
            metadata,
        }
    }

    fn flh(&self, email: &str) -> [u8; 32] {
        first_level_hash(&sha256(&[email.as_bytes()]), &self.first_level)
    }

    fn bucket(&self, flh: &[u8; 32]) -> usize {
        bucket_index(flh, self.lines.len())
    }

    fn current_salt(&self, bucket: usize) -> &str {
        &self.lines[bucket][2]
    }

    /// An email (already normalised) whose bucket has a current salt, so its raw UID is v2.
    fn salted_email(&self, tag: &str) -> String {
        (0..1000)
            .map(|i| format!("{tag}-{i}@example.com"))
            .find(|email| !self.current_salt(self.bucket(&self.flh(email))).is_empty())
            .expect("some email falls into a salted bucket")
    }

    fn raw_uid_v2(&self, email: &str, salt: &str) -> String {
        uid2_protocol::base64::encode(&raw_uid::v2(&self.flh(email), salt))
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Attest, sync, serve
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attests_syncs_and_serves() {
    let world = World::new("serve").await;
    // Salts cannot load yet: the operator listens but must report what it is missing.
    world
        .core
        .faults()
        .add(FaultRule::status("/salt/refresh", 500))
        .expect("a valid rule");
    let mut process = world.spawn().await;
    process.assert_running();
    let op = &process.api;

    // Wait until Core has refused the salts at least twice: the other stores have had their go.
    eventually("two refused salt polls", HEALTHY_WITHIN, async || {
        (world.core.request_count("/salt/refresh") >= 2).then_some(())
    })
    .await;
    let health = op.get(HEALTHCHECK).await;
    assert_eq!(
        health.status,
        503,
        "healthcheck while salts are missing: {}",
        health.text()
    );
    assert!(
        health.text().contains("salt-rotator"),
        "the 503 body names the salt store: {}",
        health.text()
    );
    let (reply, _) = op.v2(GENERATE, &C999, r#"{"email":"early@example.com"}"#).await;
    assert_eq!(
        (reply.status, reply.text()),
        (503, "Service Unavailable".to_owned()),
        "the API before the first full sync"
    );

    world.core.faults().clear();
    process.wait_healthy().await;
    let op = &process.api;
    assert_eq!(op.get(HEALTHCHECK).await.text(), "OK");

    // A token for site 999, sealed with keyset 99999's key, carrying the raw UID the salts give.
    let salts = Salts::load(&world.store);
    let email = salts.salted_email("serve");
    let response = op.v2_ok(GENERATE, &C999, &json!({ "email": email }).to_string()).await;
    assert_eq!(response["status"], "success", "{response}");
    let token = response["body"]["advertising_token"].as_str().unwrap_or_default();
    let decoded = AdvertisingToken::decode(token, &world.keys()).expect("the token opens with the store's keys");
    assert_eq!(decoded.site_key_id, SITE_KEY);
    assert_eq!(decoded.master_key_id, 101, "the master key of keyset -1");
    assert_eq!(decoded.publisher.site_id, 999);
    let flh = salts.flh(&email);
    let expected = raw_uid::v2(&flh, salts.current_salt(salts.bucket(&flh)));
    assert_eq!(decoded.raw_uid, expected.to_vec(), "raw UID of {email}");

    assert_eq!(world.core.attestation_count(), 1, "one attestation for the whole start");
    // How the operator called (sync.md §1.7, §2.3): metadata with the key, the attestation token
    // and its identity; data files at `location` with a bare GET; no encrypted scope.
    let requests = world.core.activity().requests();
    assert!(
        requests.iter().any(|r| r.path.starts_with("/files/")),
        "files were fetched"
    );
    for r in &requests {
        let what = format!("{} {} → {}", r.method, r.path, r.status);
        assert!(!r.encrypted, "{what}: Encrypted header without encrypted_files");
        if r.path.starts_with("/files/") {
            assert!(
                !r.authorization && !r.attestation_token && !r.attestation_jwt,
                "{what}: a data file must be fetched without credentials"
            );
        } else if r.path != "/attest" {
            assert!(
                r.authorization && r.attestation_token,
                "{what}: metadata without credentials"
            );
        }
        let instance = r.instance_id.as_deref().unwrap_or_default();
        assert!(
            r.path.starts_with("/files/") || instance.starts_with("local-operator-"),
            "{what}: UID-Instance-Id {instance:?}"
        );
        let version = r.app_version.as_deref().unwrap_or_default();
        assert!(
            r.path.starts_with("/files/") || version.starts_with("uid2-operator="),
            "{what}: X-UID2-AppVersion {version:?}"
        );
    }
    process.assert_running();
    process.assert_log_clean(&world.secrets());
}

/// With `encrypted_files`, the operator asks for Core's encrypted scope, loads the cloud keys first
/// and decrypts every store file (sync.md §3.10); it then serves exactly as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_store_files_are_decrypted_with_cloud_keys() {
    let world = World::new("encrypted").await;
    let mut process = world
        .spawn_with(|config| {
            config.insert("encrypted_files".to_owned(), json!(true));
        })
        .await;
    process.wait_healthy().await;
    let op = &process.api;
    let response = op.v2_ok(GENERATE, &C999, r#"{"email":"encrypted@example.com"}"#).await;
    assert_eq!(response["status"], "success", "{response}");
    let token = response["body"]["advertising_token"].as_str().unwrap_or_default();
    let decoded = AdvertisingToken::decode(token, &world.keys()).expect("the token opens with the store's keys");
    assert_eq!(decoded.site_key_id, SITE_KEY);

    let requests = world.core.activity().requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/cloud_encryption_keys/retrieve" && r.status == 200),
        "the cloud keys were fetched"
    );
    assert!(
        requests.iter().any(|r| r.path.starts_with("/files-encrypted/")),
        "store files came from the encrypted scope"
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.path.starts_with("/files/") && !r.path.starts_with("/files/optout/")),
        "no store file was fetched in the clear"
    );
    for r in requests
        .iter()
        .filter(|r| r.path.ends_with("/refresh") && !r.path.starts_with("/optout"))
    {
        assert!(r.encrypted, "{} without the Encrypted header", r.path);
    }
    process.assert_running();
    process.assert_log_clean(&world.secrets());
}

// ---------------------------------------------------------------------------------------------
// 2. Keyset keys: a new version is loaded, an edit without a version bump is not
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_keyset_key_is_picked_up_only_with_a_version_bump() {
    let world = World::new("newkey").await;
    let mut process = world.start().await;
    let op = &process.api;
    assert_eq!(world.site_key_of_new_token(op, "newkey@example.com").await, SITE_KEY);

    // The file changes, the version does not: the operator must keep the loaded keys.
    let new_id = 424_242;
    world.add_keyset_key(new_id, SITE_KEYSET);
    let polls = world.core.request_count("/key/keyset-keys/refresh");
    eventually("three more keyset-key polls", CHANGE_WITHIN, async || {
        (world.core.request_count("/key/keyset-keys/refresh") >= polls + 3).then_some(())
    })
    .await;
    assert_eq!(
        world.site_key_of_new_token(op, "newkey@example.com").await,
        SITE_KEY,
        "an edit without a version bump must be ignored"
    );
    assert_eq!(
        process.metric("uid2_store_version", &[("store", "keyset_keys")]).await,
        1.0
    );

    // Now the version moves: the new key (activated a second ago) signs the next tokens.
    let version = world.bump_version("keyset_keys");
    eventually("tokens under the new site key", CHANGE_WITHIN, async || {
        (world.site_key_of_new_token(op, "newkey@example.com").await == new_id).then_some(())
    })
    .await;
    assert_eq!(
        process.metric("uid2_store_version", &[("store", "keyset_keys")]).await,
        version as f64
    );

    // A lower version is never loaded, whatever the file holds.
    let rollback_id = 434_343;
    world.add_keyset_key(rollback_id, SITE_KEYSET);
    let path = world.store.join("keyset_keys/metadata.json");
    let mut metadata = read_json(&path);
    metadata["version"] = json!(version - 1);
    write_json(&path, &metadata);
    let polls = world.core.request_count("/key/keyset-keys/refresh");
    eventually("three more keyset-key polls", CHANGE_WITHIN, async || {
        (world.core.request_count("/key/keyset-keys/refresh") >= polls + 3).then_some(())
    })
    .await;
    assert_eq!(
        world.site_key_of_new_token(op, "newkey@example.com").await,
        new_id,
        "a lower version must be ignored"
    );
    process.assert_running();
    process.assert_log_clean(&world.secrets());
}

// ---------------------------------------------------------------------------------------------
// 3. Salt rotation: current and previous raw UIDs after a bucket rotates
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salt_rotation_gives_new_and_previous_raw_uids() {
    let world = World::new("salts").await;
    let mut process = world.start().await;
    let op = &process.api;

    let salts = Salts::load(&world.store);
    let email = salts.salted_email("rotate-me");
    let flh = salts.flh(&email);
    let bucket = salts.bucket(&flh);
    let old_salt = salts.current_salt(bucket).to_owned();

    let map = async |email: &str| -> Value {
        let response = op.v2_ok(MAP_V3, &C999, &json!({ "email": [email] }).to_string()).await;
        assert_eq!(response["status"], "success", "{response}");
        response["body"]["email"][0].clone()
    };
    let before = map(&email).await;
    assert_eq!(
        before["u"].as_str(),
        Some(salts.raw_uid_v2(&email, &old_salt).as_str()),
        "raw UID before the rotation: {before}"
    );

    // Rotate that bucket: a new current salt, the old one moved to previous, updated now.
    let now = now_ms();
    let new_salt = uid2_protocol::base64::encode(&random::<32>());
    let refresh_from = now + 30 * 86_400_000;
    let mut lines = salts.lines.clone();
    lines[bucket] = vec![
        lines[bucket][0].clone(),
        now.to_string(),
        new_salt.clone(),
        refresh_from.to_string(),
        old_salt.clone(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ];
    let text: String = lines.iter().map(|l| l.join(",") + "\n").collect();
    write_atomic(&world.store.join("salts/salts.txt.rotated"), text.as_bytes());
    let mut metadata = salts.metadata.clone();
    metadata["version"] = json!(metadata["version"].as_i64().unwrap_or(1) + 1);
    metadata["generated"] = json!(now / 1000);
    metadata["salts"] = json!([{
        "effective": now - 60_000,
        "expires": 253_402_329_599_000i64,
        "location": "salts/salts.txt.rotated",
        "size": lines.len(),
    }]);
    write_json(&world.store.join("salts/metadata.json"), &metadata);

    let new_uid = salts.raw_uid_v2(&email, &new_salt);
    let after = eventually("the rotated salt in identity map", CHANGE_WITHIN, async || {
        let item = map(&email).await;
        (item["u"].as_str() == Some(new_uid.as_str())).then_some(item)
    })
    .await;
    assert_eq!(
        after["p"].as_str(),
        Some(salts.raw_uid_v2(&email, &old_salt).as_str()),
        "the previous raw UID is the old salt's: {after}"
    );
    assert_eq!(
        after["r"].as_i64(),
        Some(refresh_from / 1000),
        "refresh_from in seconds: {after}"
    );
    process.assert_running();
    let mut secrets = world.secrets();
    secrets.push(new_salt);
    process.assert_log_clean(&secrets);
}

// ---------------------------------------------------------------------------------------------
// 4. Opt-out: logout → OptOut delta → index → every endpoint
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_opts_out_end_to_end() {
    let world = World::new("optout").await;
    let mut process = world.start().await;
    let op = &process.api;
    let email = "leaving@example.com";

    let generated = op.v2_ok(GENERATE, &C999, &json!({ "email": email }).to_string()).await;
    assert_eq!(generated["status"], "success", "{generated}");
    let refresh_token = generated["body"]["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let response_key = SecretKey::from_base64(generated["body"]["refresh_response_key"].as_str().unwrap_or_default())
        .expect("a refresh response key");
    let mapped = op.v2_ok(MAP_V2, &C999, &json!({ "email": [email] }).to_string()).await;
    let raw_uid = mapped["body"]["mapped"][0]["advertising_id"]
        .as_str()
        .expect("mapped before the logout")
        .to_owned();

    let before_s = now_ms() / 1000;
    let logout = op.v2_ok(LOGOUT, &C999, &json!({ "email": email }).to_string()).await;
    assert_eq!(logout, json!({ "body": { "optout": "OK" }, "status": "success" }));
    assert_eq!(
        world.core.request_count("/optout/replicate"),
        1,
        "one replicate call to OptOut"
    );
    let replicate = world
        .core
        .activity()
        .requests()
        .into_iter()
        .find(|r| r.path == "/optout/replicate")
        .expect("the replicate call was recorded");
    assert_eq!(replicate.status, 200);
    assert!(
        replicate.authorization && !replicate.attestation_token,
        "logout goes to OptOut with the operator key and no attestation (sync.md §15)"
    );

    eventually("generate answers optout", OPTOUT_WITHIN, async || {
        let response = op.v2_ok(GENERATE, &C999, &json!({ "email": email }).to_string()).await;
        (response == json!({ "status": "optout" })).then_some(())
    })
    .await;
    let after_s = now_ms() / 1000;

    let reply = op.post(REFRESH, &[], refresh_token).await;
    assert_eq!(
        reply.open_bare(&response_key),
        json!({ "status": "optout" }),
        "refresh after logout"
    );

    let mapped = op.v2_ok(MAP_V2, &C999, &json!({ "email": [email] }).to_string()).await;
    assert_eq!(
        mapped["body"],
        json!({ "mapped": [], "unmapped": [{ "identifier": email, "reason": "optout" }] }),
        "identity map after logout"
    );

    let status = op
        .v2_ok(
            OPTOUT_STATUS,
            &C999,
            &json!({ "advertising_ids": [raw_uid] }).to_string(),
        )
        .await;
    let listed = status["body"]["opted_out"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "opt-out status: {status}");
    assert_eq!(listed[0]["advertising_id"].as_str(), Some(raw_uid.as_str()));
    let since = listed[0]["opted_out_since"]
        .as_i64()
        .expect("opted_out_since is a number");
    assert_eq!(since % 1000, 0, "opted_out_since is whole seconds in ms: {since}");
    assert!(
        (before_s - 5) * 1000 <= since && since <= (after_s + 5) * 1000,
        "opted_out_since {since} is about the logout time ({before_s}..{after_s} s)"
    );
    process.assert_running();
    let mut secrets = world.secrets();
    secrets.push(raw_uid);
    process.assert_log_clean(&secrets);
}

// ---------------------------------------------------------------------------------------------
// 5. Core down, then back
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_last_good_data_while_core_is_down() {
    let world = World::new("down").await;
    let mut process = world.start().await;
    let op = &process.api;
    world.fail_metadata(500);

    let first = eventually("failed keyset-key refreshes", CHANGE_WITHIN, async || {
        let n = process.refresh_failures("keyset_keys").await;
        (n >= 2.0).then_some(n)
    })
    .await;
    assert_eq!(world.site_key_of_new_token(op, "down@example.com").await, SITE_KEY);
    assert_eq!(
        op.get(HEALTHCHECK).await.status,
        200,
        "background failures keep the operator healthy"
    );
    eventually("more failed refreshes", CHANGE_WITHIN, async || {
        (process.refresh_failures("keyset_keys").await > first).then_some(())
    })
    .await;
    // Every store and the opt-out sync count their failures.
    eventually("failures counted everywhere", CHANGE_WITHIN, async || {
        for store in ["clients", "salts", "keysets", "sites", "runtime_config"] {
            if process.refresh_failures(store).await < 1.0 {
                return None;
            }
        }
        let optout = process.metric("uid2_optout_sync_total", &[("result", "failure")]).await;
        (optout >= 1.0).then_some(())
    })
    .await;
    assert_eq!(world.site_key_of_new_token(op, "down@example.com").await, SITE_KEY);
    // And the raw UIDs are still those of the salts loaded before Core went down.
    let salts = Salts::load(&world.store);
    let email = salts.salted_email("down");
    let salt = salts.current_salt(salts.bucket(&salts.flh(&email))).to_owned();
    world.assert_answers(op, &salts, &email, &salt, SITE_KEY).await;

    // Core is back with a new keyset-key version.
    world.core.faults().clear();
    let new_id = 515_151;
    world.add_keyset_key(new_id, SITE_KEYSET);
    world.bump_version("keyset_keys");
    eventually("tokens under the new site key", CHANGE_WITHIN, async || {
        (world.site_key_of_new_token(op, "down@example.com").await == new_id).then_some(())
    })
    .await;
    assert_eq!(world.core.attestation_count(), 1, "the token outlived the outage");
    process.assert_running();
    process.assert_log_clean(&world.secrets());
}

// ---------------------------------------------------------------------------------------------
// 6. Garbage and truncated files are rejected whole
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_or_truncated_store_files_are_rejected() {
    let world = World::new("garbage").await;
    let mut process = world.start().await;
    let op = &process.api;
    let file_route = "/files/keyset_keys/";

    let new_id = 616_161;
    for rule in [FaultRule::garbage(file_route), FaultRule::truncated(file_route)] {
        let kind = format!("{:?}", rule.body);
        world.core.faults().clear();
        world.core.faults().add(rule).expect("a valid rule");
        let failures = process.refresh_failures("keyset_keys").await;
        if world.keys().0.contains_key(&new_id) {
            // Second round: the version is already bumped; Core serves the spoiled file again.
        } else {
            world.add_keyset_key(new_id, SITE_KEYSET);
            world.bump_version("keyset_keys");
        }
        eventually(&format!("{kind} file refused twice"), CHANGE_WITHIN, async || {
            (process.refresh_failures("keyset_keys").await >= failures + 2.0).then_some(())
        })
        .await;
        assert_eq!(
            world.site_key_of_new_token(op, "garbage@example.com").await,
            SITE_KEY,
            "{kind}: the old keys stay in use"
        );
        assert_eq!(
            process.metric("uid2_store_version", &[("store", "keyset_keys")]).await,
            1.0,
            "{kind}: the loaded version is unchanged"
        );
    }

    world.core.faults().clear();
    eventually("tokens under the new site key", CHANGE_WITHIN, async || {
        (world.site_key_of_new_token(op, "garbage@example.com").await == new_id).then_some(())
    })
    .await;
    assert_eq!(
        process.metric("uid2_store_version", &[("store", "keyset_keys")]).await,
        2.0
    );
    process.assert_running();
    process.assert_log_clean(&world.secrets());
}

// ---------------------------------------------------------------------------------------------
// 7. Attestation refused at startup: exit at once
// ---------------------------------------------------------------------------------------------

async fn refused_attestation_exits(status: u16) {
    let world = World::new(&format!("refused{status}")).await;
    world
        .core
        .faults()
        .add(FaultRule::refuse_attestation(status))
        .expect("a valid rule");
    let mut process = world.spawn().await;
    let exit = process.wait_exit(EXIT_WITHIN).await;
    assert!(
        !exit.success() && exit.code().is_some(),
        "HTTP {status}: the operator must exit with a non-zero status, got {exit}"
    );
    let log = process.log_text();
    let refusal = log
        .lines()
        .find(|line| line.contains("UID2 Core refused attestation"))
        .unwrap_or_else(|| panic!("HTTP {status}: no log line says Core refused attestation"));
    assert!(
        refusal.contains("ERROR"),
        "the refusal is logged as an error: {refusal}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("UID2 Core refused attestation") && l.contains(&status.to_string())),
        "HTTP {status}: the refusal names the status"
    );
    assert!(!log.contains("panicked"), "HTTP {status}: the operator panicked");
    assert!(
        !log.contains("stack backtrace"),
        "HTTP {status}: a backtrace was printed"
    );
    assert!(world.core.request_count("/attest") >= 1);
    assert_eq!(world.core.attestation_count(), 0, "no token was issued");
    process.assert_log_clean(&world.secrets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestation_refused_with_401_exits_non_zero() {
    refused_attestation_exits(401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestation_refused_with_403_exits_non_zero() {
    refused_attestation_exits(403).await;
}

// ---------------------------------------------------------------------------------------------
// 8. Re-attestation with short-lived tokens
// ---------------------------------------------------------------------------------------------

/// Core issues 5-second tokens. The operator's periodic renewal check (renew within 10 minutes of
/// expiry) runs at startup and then every 60 s, not configurable, so within this test's bound
/// renewals after the first check happen on the lazy path of sync.md §1.8: a call that finds its
/// token expired attests first. Observable: the operator attests again for every lifetime and
/// keeps loading store changes with the renewed tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reattests_as_short_lived_tokens_expire() {
    let lifetime = Duration::from_secs(5);
    let world = World::with_core("reattest", |b| b.token_lifetime(lifetime).jitter(false)).await;
    let mut process = world.start().await;
    let op = &process.api;

    // Four attestations need three renewals, one per lifetime at most; the bound leaves room
    // for a slow start on a busy machine (it once took longer than four lifetimes under load).
    eventually("four attestations", lifetime * 8, async || {
        (world.core.attestation_count() >= 4).then_some(())
    })
    .await;
    let attested = process.metric("uid2_attestation_total", &[("result", "success")]).await;
    assert!(attested >= 4.0, "the operator counts its attestations: {attested}");
    // Metadata calls still go through with the renewed tokens: a new version loads.
    let new_id = 818_181;
    world.add_keyset_key(new_id, SITE_KEYSET);
    world.bump_version("keyset_keys");
    eventually("tokens under the new site key", CHANGE_WITHIN, async || {
        (world.site_key_of_new_token(op, "renew@example.com").await == new_id).then_some(())
    })
    .await;
    process.assert_running();
    process.assert_log_clean(&world.secrets());
}

/// Local Core's clock for [`never_presents_an_expired_attestation_token`]: the wall clock moved to
/// the last millisecond of its second. Core seals the token's expiry as whole epoch seconds and
/// reports `expiresAt` with milliseconds (sync.md §1.6; the real Core does the same), so every
/// token this Core issues dies up to 999 ms before the `expiresAt` it announces — the worst case
/// of an attestation that happens late in a second. Validation is unaffected (it compares whole
/// seconds, and the whole second is the wall clock's).
#[derive(Debug)]
struct LateInTheSecond;

impl uid2_protocol::clock::Clock for LateInTheSecond {
    fn now_ms(&self) -> i64 {
        now_ms().div_euclid(1000) * 1000 + 999
    }
}

/// Around each expiry of a short-lived token, Core must never see the operator present a token it
/// has already expired: no 401 on any authenticated call over two lifetimes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_presents_an_expired_attestation_token() {
    let lifetime = Duration::from_secs(5);
    let world = World::with_core("expired", |b| {
        b.token_lifetime(lifetime)
            .jitter(false)
            .clock(std::sync::Arc::new(LateInTheSecond))
    })
    .await;
    let mut process = world.start().await;

    // Startup attests (lazily, then once more on the first periodic check); then two lifetimes.
    eventually("two renewals after startup", lifetime * 4, async || {
        (world.core.attestation_count() >= 4).then_some(())
    })
    .await;
    let refused: Vec<String> = world
        .core
        .activity()
        .requests()
        .iter()
        .filter(|r| r.status == 401)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        refused.is_empty(),
        "Core refused {} authenticated calls carrying an expired attestation token (the operator \
         uses a token until `expiresAt`, but Core's token expires at the whole second before it): \
         {refused:?}",
        refused.len()
    );
    process.assert_running();
    process.assert_log_clean(&world.secrets());
}

// ---------------------------------------------------------------------------------------------
// 9. No secrets in the log, on the paths that log most
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_no_secrets_or_identifiers() {
    let world = World::new("secrets").await;
    let mut process = world.start().await;
    let op = &process.api;
    let email = "private-person@example.com";

    let generated = op.v2_ok(GENERATE, &C999, &json!({ "email": email }).to_string()).await;
    let body = generated["body"].clone();
    let reply = op
        .post(REFRESH, &[], body["refresh_token"].as_str().unwrap_or_default())
        .await;
    assert_eq!(reply.status, 200, "refresh: {}", reply.text());
    let mapped = op.v2_ok(MAP_V2, &C999, &json!({ "email": [email] }).to_string()).await;
    let raw_uid = mapped["body"]["mapped"][0]["advertising_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Failure paths log too: metadata refused (401 and 500), a spoiled file, a failed logout.
    let failures = process.refresh_failures("keyset_keys").await;
    world
        .core
        .faults()
        .add(FaultRule::status("/key/", 401).times(4))
        .expect("a valid rule");
    world
        .core
        .faults()
        .add(FaultRule::status("/optout/refresh", 500).times(2))
        .expect("a valid rule");
    world
        .core
        .faults()
        .add(FaultRule::garbage("/files/keyset_keys/").times(2))
        .expect("a valid rule");
    world.add_keyset_key(717_171, SITE_KEYSET);
    world.bump_version("keyset_keys");
    eventually("refused keyset-key refreshes", CHANGE_WITHIN, async || {
        (process.refresh_failures("keyset_keys").await >= failures + 3.0).then_some(())
    })
    .await;
    world
        .core
        .faults()
        .add(FaultRule::status("/optout/replicate", 503).times(1))
        .expect("a valid rule");
    let (reply, _) = op.v2(LOGOUT, &C999, &json!({ "email": email }).to_string()).await;
    assert_eq!(
        reply.status,
        500,
        "a failed replicate is the reference's 500: {}",
        reply.text()
    );
    let logout = op.v2_ok(LOGOUT, &C999, &json!({ "email": email }).to_string()).await;
    assert_eq!(logout["status"], "success");
    eventually("the new key after the faults", CHANGE_WITHIN, async || {
        (world.site_key_of_new_token(op, email).await == 717_171).then_some(())
    })
    .await;

    process.assert_running();
    let mut secrets = world.secrets();
    for field in ["advertising_token", "refresh_token", "refresh_response_key"] {
        secrets.extend(body[field].as_str().map(str::to_owned));
    }
    secrets.push(email.to_owned());
    secrets.push(raw_uid);
    let salts = Salts::load(&world.store);
    secrets.push(uid2_protocol::base64::encode(&salts.flh(email)));
    process.assert_log_clean(&secrets);
}

// ---------------------------------------------------------------------------------------------
// 10. azure-sgx: quote → local Core → MAA simulator → token, and Core's refusals
// ---------------------------------------------------------------------------------------------

/// The MRENCLAVE the worlds below allowlist.
const SGX_MRENCLAVE: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

impl World {
    /// Turns the site-999 operator key into an `azure-sgx` key and allowlists [`SGX_MRENCLAVE`].
    fn make_azure_sgx(&self) {
        let path = self.store.join("operators/operators.json");
        let mut operators = read_json(&path);
        for record in operators.as_array_mut().into_iter().flatten() {
            record["protocol"] = json!("azure-sgx");
        }
        write_json(&path, &operators);
        let enclaves = json!([{
            "name": "uid2-operator (Rust) test enclave",
            "protocol": "azure-sgx",
            "identifier": SGX_MRENCLAVE,
            "created": 1_767_225_600,
        }]);
        write_json(&self.store.join("operators/enclaves.json"), &enclaves);
    }

    /// Starts the operator as an `azure-sgx` enclave whose simulated quotes carry `simulation`.
    async fn spawn_sgx(&self, simulation: Value) -> OperatorProcess {
        self.spawn_with(|config| {
            config.insert("enclave_platform".to_owned(), json!("azure-sgx"));
            config.insert("sgx_simulation".to_owned(), simulation.clone());
        })
        .await
    }
}

/// The identity of the package's Occlum.json: product 770, SVN 2, not debuggable.
fn sgx_identity() -> Value {
    json!({
        "mrenclave": SGX_MRENCLAVE,
        "mrsigner": "5151515151515151515151515151515151515151515151515151515151515151",
        "product_id": 770,
        "svn": 2,
        "debuggable": false,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sgx_attests_through_maa_syncs_and_serves() {
    let world = World::new("sgx").await;
    world.make_azure_sgx();
    let mut process = world.spawn_sgx(sgx_identity()).await;
    process.wait_healthy().await;
    assert!(world.core.attestation_count() >= 1);
    assert!(
        world.core.request_count("/maa/attest/SgxEnclave") >= 1,
        "Core verified the quote through the MAA"
    );
    assert!(
        world.core.request_count("/maa/certs") >= 1,
        "and checked the MAA's signature"
    );
    let key_id = world.site_key_of_new_token(&process.api, "sgx@example.com").await;
    assert_eq!(key_id, SITE_KEY, "tokens are sealed with the synced site key");
    let log = process.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("synthetic, unsigned SGX quotes")),
        "the simulation is announced as a warning"
    );
    process.assert_running();
    process.assert_log_clean(&world.secrets());
}

/// One refusal: the operator exits non-zero with Core's reason in an error line, and Core
/// issued no token.
async fn azure_sgx_refused(name: &str, simulation: Value, maa_fault: Option<Value>, reason: &str) {
    let world = World::new(name).await;
    world.make_azure_sgx();
    if let Some(rule) = maa_fault {
        let rule: FaultRule = serde_json::from_value(rule).expect("a fault rule");
        world.core.faults().add(rule).expect("a valid rule");
    }
    let mut process = world.spawn_sgx(simulation).await;
    let exit = process.wait_exit(EXIT_WITHIN).await;
    assert!(!exit.success() && exit.code().is_some(), "{name}: exit status {exit}");
    let log = process.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("UID2 Core refused attestation") && l.contains(reason)),
        "{name}: no error line names the refusal {reason:?}"
    );
    assert_eq!(world.core.attestation_count(), 0, "{name}: no token was issued");
    assert!(
        world.core.request_count("/maa/attest/SgxEnclave") >= 1,
        "{name}: the MAA was asked"
    );
    process.assert_log_clean(&world.secrets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sgx_wrong_mrenclave_exits() {
    let mut identity = sgx_identity();
    identity["mrenclave"] = json!("0badc0de".repeat(8));
    azure_sgx_refused("sgx-mrenclave", identity, None, "forbidden enclave").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sgx_debuggable_enclave_exits() {
    let mut identity = sgx_identity();
    identity["debuggable"] = json!(true);
    azure_sgx_refused("sgx-debug", identity, None, "forbidden enclave").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sgx_wrong_product_id_or_svn_exits() {
    let mut identity = sgx_identity();
    identity["product_id"] = json!(771);
    azure_sgx_refused("sgx-prodid", identity, None, "forbidden enclave").await;
    let mut identity = sgx_identity();
    identity["svn"] = json!(1);
    azure_sgx_refused("sgx-svn", identity, None, "forbidden enclave").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sgx_report_data_of_another_key_exits() {
    // A quote replayed from another operator: its report data is not this key's hash.
    let mut identity = sgx_identity();
    identity["replayed_report_data"] =
        json!(hex::encode(sha256(&[b"another operator's public key"])) + &"00".repeat(32));
    azure_sgx_refused("sgx-replay", identity, None, "bad payload").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sgx_bad_maa_signature_exits() {
    let fault = json!({"path_prefix": "/maa/attest/SgxEnclave", "body": "bad_signature"});
    azure_sgx_refused("sgx-signature", sgx_identity(), Some(fault), "bad payload").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sgx_without_an_sgx_device_fails_at_startup() {
    let world = World::new("sgx-nodevice").await;
    world.make_azure_sgx();
    let mut process = world
        .spawn_with(|config| {
            config.insert("enclave_platform".to_owned(), json!("azure-sgx"));
        })
        .await;
    let exit = process.wait_exit(EXIT_WITHIN).await;
    assert!(!exit.success(), "{exit}");
    let log = process.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("no SGX device at /dev/sgx")),
        "the log says why: {log}"
    );
    assert_eq!(world.core.request_count("/attest"), 0, "nothing was sent to Core");
}

// ---------------------------------------------------------------------------------------------
// 11. Faults: Core and OptOut slow, down, failing or serving spoiled files; versions going
//     backwards; an unusable opt-out cache. The operator keeps answering from its last good data
//     (checked by the raw UIDs and keys it answers with, not by status codes) and takes the new
//     data once the fault is gone.
// ---------------------------------------------------------------------------------------------

/// The operator's `core_request_timeout_ms` in the tests of slow Core and OptOut.
const REQUEST_TIMEOUT_MS: u64 = 1_500;
/// A delay well beyond it.
const BEYOND_TIMEOUT: Duration = Duration::from_secs(4);

/// The salt lines of `salts` with bucket `bucket` rotated to a new random salt (the old one
/// becomes its previous salt, updated now); returns the lines and the new salt.
fn rotated_lines(salts: &Salts, bucket: usize) -> (Vec<Vec<String>>, String) {
    let now = now_ms();
    let new_salt = uid2_protocol::base64::encode(&random::<32>());
    let mut lines = salts.lines.clone();
    let old_salt = lines[bucket][2].clone();
    lines[bucket] = vec![
        lines[bucket][0].clone(),
        now.to_string(),
        new_salt.clone(),
        (now + 30 * 86_400_000).to_string(),
        old_salt,
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ];
    (lines, new_salt)
}

impl World {
    /// Writes salt lines as `salts/<name>` in the store copy; returns the metadata location.
    fn write_salt_file(&self, name: &str, lines: &[Vec<String>]) -> String {
        let text: String = lines.iter().map(|l| l.join(",") + "\n").collect();
        write_atomic(&self.store.join("salts").join(name), text.as_bytes());
        format!("salts/{name}")
    }

    /// Replaces the salts metadata: `base`'s secrets, the given `version` and `generated`
    /// (seconds), and `snapshots` as `(effective ms, location)` of `size` lines each.
    fn write_salt_metadata(&self, base: &Salts, version: i64, generated_s: i64, snapshots: &[(i64, &str)]) {
        let mut metadata = base.metadata.clone();
        metadata["version"] = json!(version);
        metadata["generated"] = json!(generated_s);
        metadata["salts"] = snapshots
            .iter()
            .map(|(effective, location)| {
                json!({
                    "effective": effective,
                    "expires": 253_402_329_599_000i64,
                    "location": location,
                    "size": base.lines.len(),
                })
            })
            .collect();
        write_json(&self.store.join("salts/metadata.json"), &metadata);
    }

    /// The operator answers `email` with the data it should be serving: identity map v3 gives
    /// the raw UID of `salt`, and a new token opens with the store's keys, is sealed with
    /// `site_key` and carries that same raw UID.
    async fn assert_answers(&self, op: &Operator, salts: &Salts, email: &str, salt: &str, site_key: i32) {
        let expected = raw_uid::v2(&salts.flh(email), salt);
        let mapped = op.v2_ok(MAP_V3, &C999, &json!({ "email": [email] }).to_string()).await;
        assert_eq!(
            mapped["body"]["email"][0]["u"].as_str(),
            Some(uid2_protocol::base64::encode(&expected).as_str()),
            "identity map of {email}: {mapped}"
        );
        let response = op.v2_ok(GENERATE, &C999, &json!({ "email": email }).to_string()).await;
        assert_eq!(response["status"], "success", "generate {email}: {response}");
        let token = response["body"]["advertising_token"].as_str().unwrap_or_default();
        let decoded = AdvertisingToken::decode(token, &self.keys()).expect("the token opens with the store's keys");
        assert_eq!(
            decoded.site_key_id, site_key,
            "the key that sealed the token for {email}"
        );
        assert_eq!(
            decoded.raw_uid,
            expected.to_vec(),
            "the raw UID in the token for {email}"
        );
    }

    /// Stops local Core: its port refuses connections until [`Self::restart_core`] (a stand-in
    /// on another port, which nothing points at, holds the field meanwhile).
    async fn stop_core(&mut self) -> SocketAddr {
        let address = self.core.local_addr();
        let stand_in = LocalCore::builder(&self.store)
            .start()
            .await
            .unwrap_or_else(|e| panic!("the stand-in Core does not start: {e}"));
        std::mem::replace(&mut self.core, stand_in).shutdown().await;
        assert!(
            tokio::net::TcpStream::connect(address).await.is_err(),
            "Core's port still accepts connections"
        );
        address
    }

    /// Starts local Core again on the address it had (same store, same token secrets: the
    /// operator's attestation token stays valid). Its counters start from zero.
    async fn restart_core(&mut self, address: SocketAddr) {
        self.core = LocalCore::builder(&self.store)
            .listen(address)
            .start()
            .await
            .unwrap_or_else(|e| panic!("local Core does not start again on {address}: {e}"));
    }

    /// Writes one delta file holding opt-outs of `emails` (stamped now, between sentinels) into
    /// OptOut's bucket; returns its file name.
    fn write_optout_delta(&self, salts: &Salts, emails: &[String]) -> String {
        let now_s = now_ms() / 1000;
        let entries: Vec<uid2_store::optout::OptOutEntry> = emails
            .iter()
            .map(|email| {
                let flh = salts.flh(email);
                let salt = salts.current_salt(salts.bucket(&flh));
                uid2_store::optout::OptOutEntry {
                    identity_hash: flh,
                    advertising_id: raw_uid::v2(&flh, salt).to_vec(),
                    timestamp: now_s,
                }
            })
            .collect();
        let path = uid2_local_core::optout::write_delta(&self.store.join("optout"), &entries, now_s)
            .expect("write a delta file");
        path.file_name()
            .and_then(|n| n.to_str())
            .expect("a file name")
            .to_owned()
    }

    fn optout_cache(&self) -> PathBuf {
        self.dir.0.join("optout-cache")
    }
}

impl OperatorProcess {
    async fn optout_failures(&self) -> f64 {
        self.metric("uid2_optout_sync_total", &[("result", "failure")]).await
    }

    /// Waits until the opt-out sync has failed `n` more times than `since`.
    async fn wait_optout_failures(&self, since: f64, n: f64, what: &str) {
        eventually(what, OPTOUT_WITHIN, async || {
            (self.optout_failures().await >= since + n).then_some(())
        })
        .await;
    }

    /// Waits until every store in `stores` has failed `n` more refreshes than in `since`.
    async fn wait_refresh_failures(&self, since: &HashMap<&str, f64>, n: f64, what: &str) {
        eventually(what, CHANGE_WITHIN, async || {
            for (store, before) in since {
                if self.refresh_failures(store).await < before + n {
                    return None;
                }
            }
            Some(())
        })
        .await;
    }

    async fn failures_of(&self, stores: &[&'static str]) -> HashMap<&'static str, f64> {
        let mut map = HashMap::new();
        for store in stores {
            map.insert(*store, self.refresh_failures(store).await);
        }
        map
    }

    fn log_has_line(&self, needles: &[&str]) -> bool {
        self.log_text()
            .lines()
            .any(|line| needles.iter().all(|needle| line.contains(needle)))
    }
}

async fn opted_out(op: &Operator, email: &str) -> bool {
    let response = op.v2_ok(GENERATE, &C999, &json!({ "email": email }).to_string()).await;
    response == json!({ "status": "optout" })
}

/// Logs `email` out and waits until every endpoint sees the opt-out (the baseline the opt-out
/// fault tests must keep).
async fn logout_and_wait(op: &Operator, email: &str) {
    let logout = op.v2_ok(LOGOUT, &C999, &json!({ "email": email }).to_string()).await;
    assert_eq!(logout["body"]["optout"], "OK", "logout {email}: {logout}");
    eventually(&format!("{email} opted out"), OPTOUT_WITHIN, async || {
        opted_out(op, email).await.then_some(())
    })
    .await;
}

/// Core answers metadata calls only after the operator's request timeout: every store refresh
/// and the opt-out listing time out. The operator keeps serving the old salts and keys (a salt
/// rotation and a new key wait on Core meanwhile), stays healthy, says "timed out" in its log,
/// and loads both as soon as Core answers in time again, without attesting again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_slower_than_the_request_timeout_keeps_old_data_then_recovers() {
    let world = World::new("slow").await;
    let mut process = world
        .spawn_with(|config| {
            config.insert("core_request_timeout_ms".to_owned(), json!(REQUEST_TIMEOUT_MS));
        })
        .await;
    process.wait_healthy().await;
    let op = &process.api;
    let salts = Salts::load(&world.store);
    let email = salts.salted_email("slow");
    let bucket = salts.bucket(&salts.flh(&email));
    let old_salt = salts.current_salt(bucket).to_owned();
    world.assert_answers(op, &salts, &email, &old_salt, SITE_KEY).await;

    for prefix in METADATA_PREFIXES {
        world
            .core
            .faults()
            .add(FaultRule::delay(prefix, BEYOND_TIMEOUT))
            .expect("a valid rule");
    }
    let failures = process.failures_of(&["salts", "keyset_keys", "clients"]).await;
    let optout_failures = process.optout_failures().await;
    let (lines, new_salt) = rotated_lines(&salts, bucket);
    let location = world.write_salt_file("salts.txt.slow", &lines);
    let version = salts.metadata["version"].as_i64().unwrap_or(1) + 1;
    world.write_salt_metadata(&salts, version, now_ms() / 1000, &[(now_ms() - 60_000, &location)]);
    let new_key = 313_131;
    world.add_keyset_key(new_key, SITE_KEYSET);
    world.bump_version("keyset_keys");

    process
        .wait_refresh_failures(&failures, 2.0, "timed-out store refreshes")
        .await;
    process
        .wait_optout_failures(optout_failures, 1.0, "a timed-out opt-out listing")
        .await;
    world.assert_answers(op, &salts, &email, &old_salt, SITE_KEY).await;
    assert_eq!(
        op.get(HEALTHCHECK).await.status,
        200,
        "background timeouts keep it healthy"
    );
    assert!(
        process.log_has_line(&["store refresh failed", "timed out"]),
        "the log says the refresh timed out"
    );

    world.core.faults().clear();
    eventually("the rotated salt and the new key", CHANGE_WITHIN, async || {
        let mapped = op.v2_ok(MAP_V3, &C999, &json!({ "email": [&email] }).to_string()).await;
        let rotated = mapped["body"]["email"][0]["u"].as_str() == Some(salts.raw_uid_v2(&email, &new_salt).as_str());
        (rotated && world.site_key_of_new_token(op, "slow@example.com").await == new_key).then_some(())
    })
    .await;
    world.assert_answers(op, &salts, &email, &new_salt, new_key).await;
    assert_eq!(world.core.attestation_count(), 1, "the token outlived the slow spell");
    process.assert_running();
    let mut secrets = world.secrets();
    secrets.push(new_salt);
    process.assert_log_clean(&secrets);
}

/// Core and OptOut stop listening (connections refused) while a salt rotation and a new key
/// wait in the store. The operator keeps answering with the old salts and key and the opt-outs
/// it has, stays healthy, says "connection failed", and once Core listens again on the same
/// address loads the new data with the attestation token it already had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_down_keeps_old_data_then_recovers() {
    let mut world = World::new("refused").await;
    let mut process = world.start().await;
    let salts = Salts::load(&world.store);
    let email = salts.salted_email("refused");
    let bucket = salts.bucket(&salts.flh(&email));
    let old_salt = salts.current_salt(bucket).to_owned();
    let leaver = salts.salted_email("refused-leaver");
    logout_and_wait(&process.api, &leaver).await;
    world
        .assert_answers(&process.api, &salts, &email, &old_salt, SITE_KEY)
        .await;

    let address = world.stop_core().await;
    let failures = process
        .failures_of(&["salts", "keyset_keys", "clients", "keysets"])
        .await;
    let optout_failures = process.optout_failures().await;
    let (lines, new_salt) = rotated_lines(&salts, bucket);
    let location = world.write_salt_file("salts.txt.after-outage", &lines);
    let version = salts.metadata["version"].as_i64().unwrap_or(1) + 1;
    world.write_salt_metadata(&salts, version, now_ms() / 1000, &[(now_ms() - 60_000, &location)]);
    let new_key = 323_232;
    world.add_keyset_key(new_key, SITE_KEYSET);
    world.bump_version("keyset_keys");

    process
        .wait_refresh_failures(&failures, 2.0, "refused store refreshes")
        .await;
    process
        .wait_optout_failures(optout_failures, 2.0, "refused opt-out listings")
        .await;
    let op = &process.api;
    world.assert_answers(op, &salts, &email, &old_salt, SITE_KEY).await;
    assert!(
        opted_out(op, &leaver).await,
        "the opt-outs indexed before the outage stay"
    );
    assert_eq!(op.get(HEALTHCHECK).await.status, 200, "an outage keeps it healthy");
    assert!(
        process.log_has_line(&["store refresh failed", "connection failed"]),
        "the log says the connection failed"
    );

    world.restart_core(address).await;
    eventually("the rotated salt and the new key", CHANGE_WITHIN, async || {
        let mapped = op.v2_ok(MAP_V3, &C999, &json!({ "email": [&email] }).to_string()).await;
        let rotated = mapped["body"]["email"][0]["u"].as_str() == Some(salts.raw_uid_v2(&email, &new_salt).as_str());
        (rotated && world.site_key_of_new_token(op, "refused@example.com").await == new_key).then_some(())
    })
    .await;
    world.assert_answers(op, &salts, &email, &new_salt, new_key).await;
    assert!(opted_out(op, &leaver).await);
    assert_eq!(
        world.core.attestation_count(),
        0,
        "the restarted Core accepted the token the operator already had"
    );
    process.assert_running();
    let mut secrets = world.secrets();
    secrets.push(new_salt);
    process.assert_log_clean(&secrets);
}

/// Salt metadata whose version goes backwards, or stays, is never loaded, whatever its
/// `generated` time or its files say; a greater version is loaded even with an older
/// `generated` time. This is the reference's rule (sync.md §2.4: `version` is the only field
/// used for change detection, `generated` is informational), followed as it is. (The same
/// rule for keyset keys: `new_keyset_key_is_picked_up_only_with_a_version_bump`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salt_metadata_going_backwards_is_not_loaded() {
    let world = World::new("backwards").await;
    let mut process = world.start().await;
    let op = &process.api;
    let salts = Salts::load(&world.store);
    let email = salts.salted_email("backwards");
    let bucket = salts.bucket(&salts.flh(&email));
    let version = salts.metadata["version"].as_i64().unwrap_or(1);
    let effective = now_ms() - 60_000;
    let salts_version = async || process.metric("uid2_store_version", &[("store", "salts")]).await;
    let polls_pass = async || {
        let polls = world.core.request_count("/salt/refresh");
        eventually("three more salt polls", CHANGE_WITHIN, async || {
            (world.core.request_count("/salt/refresh") >= polls + 3).then_some(())
        })
        .await;
    };

    // Version + 10, generated now: loaded.
    let (lines, salt_a) = rotated_lines(&salts, bucket);
    let a = world.write_salt_file("salts.txt.a", &lines);
    let generated_a = now_ms() / 1000;
    world.write_salt_metadata(&salts, version + 10, generated_a, &[(effective, &a)]);
    eventually("salts version + 10", CHANGE_WITHIN, async || {
        (salts_version().await == (version + 10) as f64).then_some(())
    })
    .await;
    world.assert_answers(op, &salts, &email, &salt_a, SITE_KEY).await;

    // A lower version with a newer generated time, then the same version with other files.
    for (name, lower_or_same, generated) in [
        ("salts.txt.lower", version + 9, generated_a + 3_600),
        ("salts.txt.same", version + 10, generated_a + 7_200),
    ] {
        let (lines, ignored_salt) = rotated_lines(&salts, bucket);
        let location = world.write_salt_file(name, &lines);
        world.write_salt_metadata(&salts, lower_or_same, generated, &[(effective, &location)]);
        polls_pass().await;
        world.assert_answers(op, &salts, &email, &salt_a, SITE_KEY).await;
        assert_eq!(salts_version().await, (version + 10) as f64, "{name}");
        let mapped = op.v2_ok(MAP_V3, &C999, &json!({ "email": [&email] }).to_string()).await;
        assert_ne!(
            mapped["body"]["email"][0]["u"].as_str(),
            Some(salts.raw_uid_v2(&email, &ignored_salt).as_str()),
            "{name} must not be served"
        );
    }

    // A greater version with an older generated time: loaded, as the reference does.
    let (lines, salt_b) = rotated_lines(&salts, bucket);
    let b = world.write_salt_file("salts.txt.b", &lines);
    world.write_salt_metadata(&salts, version + 11, generated_a - 86_400, &[(effective, &b)]);
    eventually("salts version + 11", CHANGE_WITHIN, async || {
        (salts_version().await == (version + 11) as f64).then_some(())
    })
    .await;
    world.assert_answers(op, &salts, &email, &salt_b, SITE_KEY).await;
    process.assert_running();
    let mut secrets = world.secrets();
    secrets.extend([salt_a, salt_b]);
    process.assert_log_clean(&secrets);
}

/// A new salts version lists two snapshot files: the one in force now, and one for later. While
/// Core serves the later file spoiled (garbage, truncated, or HTTP 500), the whole version is
/// refused: the operator must not take the good file without the other (a half-loaded salt
/// store), and keeps answering with the old salts. Once the file is served whole, both load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoiled_salt_file_refuses_the_whole_salt_version() {
    let world = World::new("salt-files").await;
    let mut process = world.start().await;
    let op = &process.api;
    let salts = Salts::load(&world.store);
    let email = salts.salted_email("salt-files");
    let bucket = salts.bucket(&salts.flh(&email));
    let old_salt = salts.current_salt(bucket).to_owned();

    let (now_lines, new_salt) = rotated_lines(&salts, bucket);
    let (later_lines, later_salt) = rotated_lines(&salts, bucket);
    let in_force = world.write_salt_file("salts.txt.in-force", &now_lines);
    let later = world.write_salt_file("salts.txt.later", &later_lines);
    let spoiled_route = "/files/salts/salts.txt.later";
    let version = salts.metadata["version"].as_i64().unwrap_or(1) + 1;
    let mut first = true;
    for rule in [
        FaultRule::garbage(spoiled_route),
        FaultRule::truncated(spoiled_route),
        FaultRule::status(spoiled_route, 500),
    ] {
        let kind = format!("{:?}/{:?}", rule.body, rule.status);
        world.core.faults().clear();
        world.core.faults().add(rule).expect("a valid rule");
        let failures = process.failures_of(&["salts"]).await;
        if first {
            first = false;
            world.write_salt_metadata(
                &salts,
                version,
                now_ms() / 1000,
                &[(now_ms() - 60_000, &in_force), (now_ms() + 86_400_000, &later)],
            );
        }
        process
            .wait_refresh_failures(&failures, 2.0, &format!("{kind}: salt version refused"))
            .await;
        world.assert_answers(op, &salts, &email, &old_salt, SITE_KEY).await;
        assert_eq!(
            process.metric("uid2_store_version", &[("store", "salts")]).await,
            (version - 1) as f64,
            "{kind}: the loaded salts version is unchanged"
        );
    }

    world.core.faults().clear();
    eventually("the new salts", CHANGE_WITHIN, async || {
        let mapped = op.v2_ok(MAP_V3, &C999, &json!({ "email": [&email] }).to_string()).await;
        (mapped["body"]["email"][0]["u"].as_str() == Some(salts.raw_uid_v2(&email, &new_salt).as_str())).then_some(())
    })
    .await;
    world.assert_answers(op, &salts, &email, &new_salt, SITE_KEY).await;
    process.assert_running();
    let mut secrets = world.secrets();
    secrets.extend([new_salt, later_salt]);
    process.assert_log_clean(&secrets);
}

/// OptOut fails in turn: its listing answers 500, then answers only after the operator's
/// request timeout, then the listed files answer 500. Each time a user logs out meanwhile
/// (the logout itself reaches OptOut). The operator keeps the opt-outs it has indexed, keeps
/// issuing the newcomer correct tokens (the opt-out has not reached it), stays healthy, and
/// indexes the opt-out once OptOut answers again. A slow file (within bounds) delays the
/// opt-out without holding up any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optout_failing_or_slow_keeps_the_index_then_catches_up() {
    let world = World::new("optout-faults").await;
    let mut process = world
        .spawn_with(|config| {
            config.insert("core_request_timeout_ms".to_owned(), json!(REQUEST_TIMEOUT_MS));
        })
        .await;
    process.wait_healthy().await;
    let op = &process.api;
    let salts = Salts::load(&world.store);
    let first = salts.salted_email("optout-first");
    logout_and_wait(op, &first).await;

    for (tag, rule) in [
        ("listing-500", FaultRule::status("/optout/refresh", 500)),
        ("listing-slow", FaultRule::delay("/optout/refresh", BEYOND_TIMEOUT)),
        ("files-500", FaultRule::status("/files/optout/", 500)),
    ] {
        let email = salts.salted_email(&format!("optout-{tag}"));
        let salt = salts.current_salt(salts.bucket(&salts.flh(&email))).to_owned();
        world.core.faults().add(rule).expect("a valid rule");
        let failures = process.optout_failures().await;
        let logout = op.v2_ok(LOGOUT, &C999, &json!({ "email": &email }).to_string()).await;
        assert_eq!(logout["body"]["optout"], "OK", "{tag}: logout still reaches OptOut");
        process
            .wait_optout_failures(failures, 2.0, &format!("{tag}: failed opt-out syncs"))
            .await;
        world.assert_answers(op, &salts, &email, &salt, SITE_KEY).await;
        assert!(opted_out(op, &first).await, "{tag}: the indexed opt-outs stay");
        assert_eq!(op.get(HEALTHCHECK).await.status, 200, "{tag}: still healthy");
        world.core.faults().clear();
        eventually(&format!("{tag}: {email} opted out"), OPTOUT_WITHIN, async || {
            opted_out(op, &email).await.then_some(())
        })
        .await;
    }
    assert!(
        process.log_has_line(&["opt-out sync failed", "timed out"]),
        "the log says the listing timed out"
    );

    // Slow but within bounds: requests are answered at once while the file crawls in.
    let email = salts.salted_email("optout-slow-file");
    let salt = salts.current_salt(salts.bucket(&salts.flh(&email))).to_owned();
    world
        .core
        .faults()
        .add(FaultRule::delay("/files/optout/", Duration::from_secs(3)))
        .expect("a valid rule");
    let logout = op.v2_ok(LOGOUT, &C999, &json!({ "email": &email }).to_string()).await;
    assert_eq!(logout["body"]["optout"], "OK");
    let started = Instant::now();
    world.assert_answers(op, &salts, &email, &salt, SITE_KEY).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answering waited on the slow download ({:?})",
        started.elapsed()
    );
    eventually("the slow file indexed", OPTOUT_WITHIN, async || {
        opted_out(op, &email).await.then_some(())
    })
    .await;
    assert!(opted_out(op, &first).await);
    process.assert_running();
    process.assert_log_clean(&world.secrets());
}

/// OptOut serves a new delta of four opt-outs as garbage (of the right length), then truncated
/// to its first half (three whole entries: the start sentinel and two users, so its length alone
/// looks fine). Neither is indexed, not even in part: all four users keep getting correct
/// tokens, their ids are not in `/v2/optout/status`, earlier opt-outs stay, and no copy of the
/// spoiled file stays in the cache to be read instead of the real one. Served whole, the delta
/// is indexed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoiled_optout_files_are_never_indexed() {
    let world = World::new("optout-spoiled").await;
    let mut process = world.start().await;
    let op = &process.api;
    let salts = Salts::load(&world.store);
    let first = salts.salted_email("spoiled-first");
    logout_and_wait(op, &first).await;

    for (n, rule) in [
        FaultRule::garbage("/files/optout/"),
        FaultRule::truncated("/files/optout/"),
    ]
    .into_iter()
    .enumerate()
    {
        let kind = format!("{:?}", rule.body);
        let emails: Vec<String> = (0..4)
            .map(|i| salts.salted_email(&format!("spoiled-{n}-{i}")))
            .collect();
        world.core.faults().add(rule).expect("a valid rule");
        let failures = process.optout_failures().await;
        let file = world.write_optout_delta(&salts, &emails);
        process
            .wait_optout_failures(failures, 2.0, &format!("{kind} delta refused"))
            .await;
        let mut raw_uids = Vec::new();
        for email in &emails {
            let salt = salts.current_salt(salts.bucket(&salts.flh(email)));
            world.assert_answers(op, &salts, email, salt, SITE_KEY).await;
            raw_uids.push(salts.raw_uid_v2(email, salt));
        }
        let status = op
            .v2_ok(
                OPTOUT_STATUS,
                &C999,
                &json!({ "advertising_ids": &raw_uids }).to_string(),
            )
            .await;
        assert_eq!(
            status["body"]["opted_out"],
            json!([]),
            "{kind}: no id of the spoiled delta is opted out"
        );
        assert!(opted_out(op, &first).await, "{kind}: the indexed opt-outs stay");
        assert!(
            !world.optout_cache().join(&file).exists(),
            "{kind}: the spoiled file was kept in the cache"
        );
        assert!(
            process.log_has_line(&["opt-out sync failed", "keeping the current index"]),
            "{kind}: the log says why"
        );

        world.core.faults().clear();
        eventually(&format!("{kind}: the delta indexed"), OPTOUT_WITHIN, async || {
            for email in &emails {
                if !opted_out(op, email).await {
                    return None;
                }
            }
            Some(())
        })
        .await;
        let status = op
            .v2_ok(
                OPTOUT_STATUS,
                &C999,
                &json!({ "advertising_ids": &raw_uids }).to_string(),
            )
            .await;
        assert_eq!(
            status["body"]["opted_out"].as_array().map(Vec::len),
            Some(4),
            "{kind}: {status}"
        );
    }
    process.assert_running();
    process.assert_log_clean(&world.secrets());
}

/// The disk under the opt-out cache is full: the one file the operator must write, a new delta
/// (its `.partial` download name), is a link to `/dev/full`, whose writes fail with ENOSPC exactly
/// as a full filesystem's do (no root, no tmpfs needed). The operator removes a partial file it
/// could not finish, so the test puts the link back after each failed pass, well within the 1 s
/// between passes. The operator logs an ERROR naming the cache directory and "No space left on
/// device" on every pass, keeps its index and keeps serving; once the space is back, the delta
/// is indexed.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_under_the_optout_cache_is_a_clear_error_then_recovers() {
    let world = World::new("disk-full").await;
    let mut process = world.start().await;
    let op = &process.api;
    let salts = Salts::load(&world.store);
    let first = salts.salted_email("disk-full-first");
    logout_and_wait(op, &first).await;

    // Hold the listing while the delta and the link are put in place.
    world
        .core
        .faults()
        .add(FaultRule::status("/optout/refresh", 503))
        .expect("a valid rule");
    let email = salts.salted_email("disk-full-new");
    let file = world.write_optout_delta(&salts, std::slice::from_ref(&email));
    let partial = world.optout_cache().join(Path::new(&file).with_extension("partial"));
    let fill_disk = || {
        if std::fs::symlink_metadata(&partial).is_err() {
            std::os::unix::fs::symlink("/dev/full", &partial).expect("link the partial file to /dev/full");
        }
    };
    fill_disk();
    let failures = process.optout_failures().await;
    world.core.faults().clear();

    eventually("opt-out syncs failing on the full disk", OPTOUT_WITHIN, async || {
        fill_disk();
        (process.optout_failures().await >= failures + 3.0).then_some(())
    })
    .await;
    fill_disk();
    let cache = world.optout_cache().display().to_string();
    assert!(
        process.log_has_line(&["ERROR", "opt-out cache directory", &cache, "No space left on device"]),
        "an ERROR line names the cache directory and the full disk"
    );
    let salt = salts.current_salt(salts.bucket(&salts.flh(&email))).to_owned();
    world.assert_answers(op, &salts, &email, &salt, SITE_KEY).await;
    assert!(opted_out(op, &first).await, "the index is kept");
    assert_eq!(op.get(HEALTHCHECK).await.status, 200);

    std::fs::remove_file(&partial).expect("free the space");
    eventually("the delta indexed once there is space", OPTOUT_WITHIN, async || {
        opted_out(op, &email).await.then_some(())
    })
    .await;
    process.assert_running();
    process.assert_log_clean(&world.secrets());
}

/// An opt-out cache directory the operator cannot use stops it at startup, before attesting,
/// with an ERROR line naming the directory and the OS error, a non-zero exit and no panic: a
/// path through a regular file (cannot be created, whoever runs the test), and a directory
/// without write permission (only checked when the test runs unprivileged: root writes anyway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_optout_cache_directory_stops_startup_with_a_clear_error() {
    let world = World::new("cache-dir").await;
    let file = world.dir.0.join("a-file");
    std::fs::write(&file, b"not a directory").expect("write a file");
    let read_only = world.dir.0.join("read-only");
    std::fs::create_dir_all(&read_only).expect("create a directory");
    let mut cases = vec![(file.join("optout-cache"), "Not a directory")];
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        if std::fs::write(read_only.join("probe"), b"x").is_ok() {
            eprintln!("running privileged: the read-only directory case is skipped");
        } else {
            cases.push((read_only.clone(), "Permission denied"));
        }
    }
    for (dir, os_error) in cases {
        let mut process = world
            .spawn_with(|config| {
                config.insert("optout_data_dir".to_owned(), json!(dir.to_string_lossy()));
            })
            .await;
        let exit = process.wait_exit(EXIT_WITHIN).await;
        assert!(
            !exit.success() && exit.code().is_some(),
            "{}: exit {exit}",
            dir.display()
        );
        let shown = dir.display().to_string();
        assert!(
            process.log_has_line(&["ERROR", "startup failed", "opt-out cache directory", &shown, os_error]),
            "{shown}: an ERROR line names the directory and {os_error:?}"
        );
        assert!(!process.log_text().contains("panicked"), "{shown}: no panic");
        process.assert_log_clean(&world.secrets());
    }
    assert_eq!(world.core.request_count("/attest"), 0, "nothing was sent to Core");
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o755));
}
