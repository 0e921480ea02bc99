//! Graceful shutdown of the real binary: SIGTERM closes the listeners at once, every request in
//! progress is finished and answered correctly, idle connections do not hold the drain up, and
//! the process exits 0 within the drain grace.
//!
//! The operator binary (`UID2_OPERATOR_BIN`, else the one cargo built for these tests) runs in
//! local mode on the bundled store, on free loopback ports (found by binding port 0 and
//! releasing; a start that loses the race for a port is retried). Requests are held in progress
//! without any test hook in the operator: an identity map request is sent with
//! `Expect: 100-continue`, the operator's `100 Continue` says its handler is reading the body,
//! and the body is then sent in pieces, the last of them after SIGTERM. The signal goes through
//! the `kill` command. Every wait is bounded; the only timing assertion is the drain grace.

mod harness;
mod raw_http;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use harness::{Envelope, Operator, C999};
use raw_http::{head, Closed, RawConnection};

const MAP: &str = "/v2/identity/map";
const HEALTHCHECK: &str = "/ops/healthcheck";
/// `uid2_operator::DRAIN_GRACE`: in-flight requests finish within it, then the process exits.
const DRAIN_GRACE: Duration = uid2_operator::DRAIN_GRACE;
/// Generous bounds for anything that takes milliseconds on an idle machine.
const WITHIN: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

fn operator_binary() -> PathBuf {
    std::env::var_os("UID2_OPERATOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_uid2-operator")))
}

/// A temporary directory, removed on drop unless the test failed.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("uid2-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// The operator binary as a child process; killed on drop if it is still running.
struct OperatorProcess {
    child: tokio::process::Child,
    log: PathBuf,
    api: Operator,
}

impl OperatorProcess {
    /// Starts the binary in local mode with `extra` configuration keys, retrying on a port lost
    /// to another process between picking and binding it.
    async fn start(dir: &Path, extra: &serde_json::Value) -> Self {
        for attempt in 0..5 {
            let (http_port, metrics_port) = (free_port(), free_port());
            let mut config = serde_json::json!({ "http_port": http_port, "metrics_port": metrics_port });
            if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
                config.extend(extra.clone());
            }
            let config_file = dir.join("config.json");
            std::fs::write(&config_file, config.to_string()).expect("write the configuration");
            let log = dir.join(format!("operator-{attempt}.log"));
            let out = std::fs::File::create(&log).expect("create the operator log");
            let err = out.try_clone().expect("share the operator log");
            let mut command = tokio::process::Command::new(operator_binary());
            command
                .arg("--config")
                .arg(&config_file)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .kill_on_drop(true);
            for name in ["port_offset", "UID2_CONFIG", "core_api_token", "optout_api_token"] {
                command.env_remove(name);
            }
            let child = command.spawn().expect("spawn the operator binary");
            let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
            let mut process = Self {
                child,
                log,
                api: Operator::at(loopback(http_port), loopback(metrics_port)),
            };
            if process.until_healthy().await {
                return process;
            }
            assert!(
                process.log_text().contains("cannot listen"),
                "the operator exited at startup:\n{}",
                process.log_text()
            );
        }
        panic!("no free pair of ports in five attempts");
    }

    /// True once healthy; false if the process exited first.
    async fn until_healthy(&mut self) -> bool {
        let deadline = Instant::now() + WITHIN;
        while Instant::now() < deadline {
            if matches!(self.api.try_get(HEALTHCHECK).await, Ok(reply) if reply.status == 200) {
                return true;
            }
            if self.exited().is_some() {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("the operator was not healthy within {WITHIN:?}:\n{}", self.log_text());
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll the operator process")
    }

    fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn terminate(&self) {
        let pid = self.child.id().expect("the operator is running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid}: {status}");
    }

    async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return status;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("the operator did not exit within {limit:?}:\n{}", self.log_text());
    }
}

/// Polls until a connection to `address` is refused.
async fn until_refused(address: SocketAddr, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(address)).await {
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => return,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "{address} still accepts connections after {limit:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// An identity map request for `emails` by site 999, with `Expect: 100-continue`.
fn map_request(json: &str) -> (Vec<u8>, Vec<u8>, Envelope) {
    let envelope = Envelope::now(&C999, json);
    let body = envelope.base64().into_bytes();
    let bearer = C999.bearer();
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "text/plain"),
        ("Expect", "100-continue"),
    ];
    (head("POST", MAP, &headers, Some(body.len())), body, envelope)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_refuses_new_connections_and_finishes_every_request_in_flight() {
    const IN_FLIGHT: usize = 4;
    let dir = TempDir::new("shutdown");
    let mut process = OperatorProcess::start(&dir.0, &serde_json::json!({})).await;
    let op = &process.api;

    let json = r#"{"email":["drain-a@example.com","drain-b@example.com","drain-c@example.com"]}"#;
    let expected = op.v2_ok(MAP, &C999, json).await;
    assert_eq!(
        expected["body"]["mapped"].as_array().map(Vec::len),
        Some(3),
        "{expected}"
    );

    // Requests in their handlers, each with half of its body received.
    let mut in_flight = Vec::new();
    for i in 0..IN_FLIGHT {
        let (head, body, envelope) = map_request(json);
        let mut conn = RawConnection::connect(op.address, &format!("in flight {i}")).await;
        conn.send(&head).await;
        let interim = conn.response(WITHIN).await;
        assert_eq!(interim.status, 100, "{}", interim.text());
        conn.send(&body[..body.len() / 2]).await;
        in_flight.push((conn, body, envelope));
    }
    // A keep-alive connection with nothing in progress must not hold the drain up.
    let mut idle = RawConnection::connect(op.address, "idle").await;
    idle.send(&head("GET", HEALTHCHECK, &[], None)).await;
    assert_eq!(idle.response(WITHIN).await.status, 200);

    let signalled = Instant::now();
    process.terminate();
    let op = &process.api;
    until_refused(op.address, WITHIN).await;
    until_refused(op.metrics_address, WITHIN).await;
    assert_eq!(
        idle.closed_within(WITHIN).await,
        Closed::Yes,
        "the idle connection is closed"
    );
    assert!(
        process.exited().is_none(),
        "the operator exited with requests in flight"
    );

    // The rest of each body arrives after the signal, in pieces; every request is answered.
    for (conn, body, _) in &mut in_flight {
        let rest = &body[body.len() / 2..];
        let (first, second) = rest.split_at(rest.len() / 2);
        conn.send(first).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        conn.send(second).await;
    }
    for (conn, _, envelope) in &mut in_flight {
        let reply = conn.response(WITHIN).await;
        assert_eq!(
            reply.header("connection"),
            Some("close"),
            "draining closes after the answer"
        );
        let answer = reply.open(&C999.secret(), &envelope.nonce);
        assert_eq!(answer, expected, "the same mapping as before the signal");
        assert_eq!(conn.closed_within(WITHIN).await, Closed::Yes);
    }

    let status = process.wait_exit(DRAIN_GRACE + Duration::from_secs(5)).await;
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "exit status: {status}\n{}", process.log_text());
    assert!(
        took < DRAIN_GRACE,
        "drained in {took:?}, past the {DRAIN_GRACE:?} grace"
    );
    let log = process.log_text();
    assert!(log.contains("shutdown requested"), "{log}");
    assert!(log.contains("drained"), "{log}");
    assert!(!log.contains("drain grace elapsed"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_outlives_the_grace_does_not_keep_the_process_alive() {
    // A body that never completes, and a body timeout longer than the grace: the drain gives up
    // at the grace and the process still exits 0.
    let dir = TempDir::new("shutdown-grace");
    let mut process = OperatorProcess::start(&dir.0, &serde_json::json!({ "http_body_read_timeout_ms": 60_000 })).await;
    let op = &process.api;
    let (head, body, _) = map_request(r#"{"email":["stuck@example.com"]}"#);
    let mut conn = RawConnection::connect(op.address, "stuck").await;
    conn.send(&head).await;
    assert_eq!(conn.response(WITHIN).await.status, 100);
    conn.send(&body[..body.len() / 2]).await;

    let signalled = Instant::now();
    process.terminate();
    let status = process.wait_exit(DRAIN_GRACE + WITHIN).await;
    assert_eq!(status.code(), Some(0), "exit status: {status}\n{}", process.log_text());
    assert!(
        signalled.elapsed() >= DRAIN_GRACE,
        "the stuck request was given the whole grace"
    );
    assert!(process.log_text().contains("drain grace elapsed"));
    assert_eq!(conn.closed_within(WITHIN).await, Closed::Yes);
}
