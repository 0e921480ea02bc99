//! The `uid2-load` binary against a real operator (local mode, the bundled store) bound on port 0
//! in this process: every scenario completes with only correct answers, the bounds hold, and a
//! wrong secret makes the exit status say so.

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
    let loaded = match uid2_operator::config::load(None, &|_| None) {
        Ok(loaded) => loaded,
        Err(problems) => panic!("the default configuration does not load: {problems:?}"),
    };
    let mut config = loaded.config;
    config.http_port = 0;
    config.metrics_port = 0;
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
