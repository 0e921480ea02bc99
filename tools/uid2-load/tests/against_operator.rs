//! The `uid2-load` binary against a real operator (local mode, the bundled store) bound on port 0
//! in this process: every scenario completes with only correct answers, the bounds hold, a
//! wrong secret makes the exit status say so, and `--allow-shedding` tells shed requests from
//! failed ones.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::Command;
use tokio::sync::oneshot;

/// A local-mode operator on an ephemeral port, stopped when dropped.
struct Operator {
    address: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn operator() -> Operator {
    operator_with(|_| {}).await
}

/// The same with a configuration edit.
async fn operator_with(edit: impl FnOnce(&mut uid2_operator::config::Config)) -> Operator {
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
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    Operator { address, _stop: stop }
}

/// Runs the binary (bounded by its own `--duration`, and by a kill after 60 s); exit code and the
/// `--json` summary.
async fn load(operator: &Operator, args: &[&str]) -> (i32, Value) {
    let url = format!("http://{}", operator.address);
    let run = Command::new(env!("CARGO_BIN_EXE_uid2-load"))
        .args(["--url", &url, "--json", "--duration", "20"])
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(Duration::from_secs(60), run).await {
        Ok(Ok(output)) => output,
        other => panic!("uid2-load did not finish: {other:?}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "no JSON summary; stdout {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_gets_only_correct_answers() {
    let op = operator().await;
    for (scenario, extra) in [
        ("generate", &[][..]),
        ("refresh", &[][..]),
        ("key-sharing", &[][..]),
        ("map-v2", &["--batch", "50"][..]),
        ("map-v3", &["--batch", "50", "--binary"][..]),
    ] {
        let mut args = vec!["--scenario", scenario, "--requests", "40", "--connections", "4"];
        args.extend_from_slice(extra);
        let (code, summary) = load(&op, &args).await;
        assert_eq!(code, 0, "{scenario}: {summary}");
        assert_eq!(summary["ok"], 40, "{scenario}: {summary}");
        assert_eq!(summary["failed"], 0, "{scenario}: {summary}");
        assert_eq!(summary["stopped_by"], "requests", "{scenario}");
        let expected_identities = if scenario.starts_with("map") { 40 * 50 } else { 0 };
        assert_eq!(summary["identities"], expected_identities, "{scenario}");
        assert!(summary["latency_ms"]["p99"].as_f64().is_some(), "{scenario}: {summary}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duration_bound_stops_an_unbounded_count() {
    let op = operator().await;
    let started = Instant::now();
    let (code, summary) = load(
        &op,
        &["--scenario", "key-sharing", "--requests", "10000000", "--duration", "1"],
    )
    .await;
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["stopped_by"], "duration");
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_fail_the_run_with_their_status() {
    let op = operator().await;
    let wrong_secret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let (code, summary) = load(
        &op,
        &["--scenario", "generate", "--requests", "5", "--secret", wrong_secret],
    )
    .await;
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["ok"], 0);
    let failures = summary["failures"].as_object().cloned().unwrap_or_default();
    assert_eq!(failures.len(), 1, "{summary}");
    assert!(
        failures.keys().all(|k| k.starts_with("HTTP 400 client_error")),
        "{summary}"
    );
}

/// Reads from `stream` until `marker` has arrived (at most 10 s); the bytes read.
async fn read_until(stream: &mut tokio::net::TcpStream, marker: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains(marker) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&chunk[..n]),
            other => panic!("no {marker:?} from the operator: {other:?}; read {seen:?}"),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_allow_shedding_a_503_is_shed_not_failed() {
    use tokio::io::AsyncWriteExt;
    let op = operator_with(|c| {
        c.api.max_concurrent_requests = 1;
        c.api.max_queued_requests = 0;
    })
    .await;
    // Hold the only processing turn: a request whose handler waits for a body not yet sent
    // (the operator's `100 Continue` says the handler is reading it).
    let mut held = tokio::net::TcpStream::connect(op.address).await.expect("connect");
    held.write_all(
        b"POST /v2/token/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .expect("send a head");
    read_until(&mut held, "100 Continue").await;

    let (code, summary) = load(&op, &["--scenario", "generate", "--requests", "20", "--allow-shedding"]).await;
    assert_eq!(code, 1, "nothing succeeded: {summary}");
    assert_eq!(
        (
            summary["shed"].as_u64(),
            summary["ok"].as_u64(),
            summary["failed"].as_u64()
        ),
        (Some(20), Some(0), Some(0)),
        "{summary}"
    );
    assert!(summary["shed_latency_ms"]["p99"].as_f64().is_some(), "{summary}");

    let (code, summary) = load(&op, &["--scenario", "generate", "--requests", "5"]).await;
    assert_eq!(code, 1, "{summary}");
    assert_eq!(
        summary["failures"]["HTTP 503"], 5,
        "without the flag a 503 is a failure: {summary}"
    );

    // The held request gets its body and its answer (401: it has no key): the turn is free again.
    held.write_all(b"xxxx").await.expect("send the body");
    read_until(&mut held, "HTTP/1.1 401").await;
    let (code, summary) = load(&op, &["--scenario", "generate", "--requests", "20", "--allow-shedding"]).await;
    assert_eq!(code, 0, "{summary}");
    assert_eq!(
        summary["ok"].as_u64().unwrap_or(0) + summary["shed"].as_u64().unwrap_or(0),
        20,
        "{summary}"
    );
    assert_eq!(summary["failed"], 0, "{summary}");
}
