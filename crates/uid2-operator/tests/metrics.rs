//! The metrics listener: Prometheus text with the reference's metric names, counting requests by
//! route, status and site, and token outcomes by endpoint.

mod harness;

use harness::{Operator, C124, C999};

/// The value of the first series named `name` whose labels include every `label="value"` pair.
fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with('{'))
        .find(|line| labels.iter().all(|(k, v)| line.contains(&format!("{k}=\"{v}\""))))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn requests_and_token_outcomes_are_counted_with_reference_names() {
    let op = Operator::start().await;
    for _ in 0..3 {
        let (reply, _) = op
            .v2("/v2/token/generate", &C999, r#"{"email":"metrics@example.com"}"#)
            .await;
        assert_eq!(reply.status, 200);
    }
    let (reply, _) = op
        .v2("/v2/token/generate", &C999, r#"{"email":"optout@example.com"}"#)
        .await;
    assert_eq!(reply.status, 200);
    let (reply, _) = op.v2("/v2/identity/map", &C124, r#"{"email":["a@b.com"]}"#).await;
    assert_eq!(reply.status, 401);
    assert_eq!(op.get("/no/such/path").await.status, 404);

    let text = op.metrics().await;
    let generate = [("path", "/v2/token/generate"), ("site_id", "999"), ("status", "200")];
    assert_eq!(
        series(&text, "uid2_http_requests_total", &generate),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        series(
            &text,
            "uid2_http_requests_total",
            &[("path", "/v2/identity/map"), ("status", "401")]
        ),
        Some(1.0)
    );
    assert_eq!(
        series(
            &text,
            "uid2_http_requests_total",
            &[("path", "/unknown"), ("status", "404")]
        ),
        Some(1.0)
    );
    assert_eq!(
        series(
            &text,
            "uid2_token_response_status_count_total",
            &[
                ("token_endpoint", "GenerateV2"),
                ("token_response_status", "Success"),
                ("site_id", "999")
            ]
        ),
        Some(3.0)
    );
    assert_eq!(
        series(
            &text,
            "uid2_token_response_status_count_total",
            &[("token_endpoint", "GenerateV2"), ("token_response_status", "OptOut")]
        ),
        Some(1.0)
    );
    let latency = [("path", "/v2/token/generate"), ("code", "200")];
    assert_eq!(
        series(&text, "vertx_http_server_response_time_seconds_count", &latency),
        Some(4.0)
    );
    assert!(text.contains(r#"application="uid2-operator""#));
    // 404s are not recorded per path in the Vert.x series, as in the reference.
    assert_eq!(
        series(&text, "vertx_http_server_requests_total", &[("code", "404")]),
        None
    );
}

#[tokio::test]
async fn identity_map_batches_and_unmapped_are_measured() {
    let op = Operator::start().await;
    let body = r#"{"email":["a@example.com","not an email","optout@example.com"]}"#;
    assert_eq!(op.v2("/v2/identity/map", &C999, body).await.0.status, 200);
    let text = op.metrics().await;
    let unmapped = |reason| {
        series(
            &text,
            "uid2_operator_identity_map_unmapped_total",
            &[
                ("reason", reason),
                ("path", "/v2/identity/map"),
                ("api_contact", "Special"),
            ],
        )
    };
    assert_eq!(unmapped("invalid"), Some(1.0));
    assert_eq!(unmapped("optout"), Some(1.0));
    assert_eq!(
        series(&text, "uid2_operator_identity_map_inputs_sum", &[("dii_type", "email")]),
        Some(3.0)
    );
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[tokio::test]
async fn local_mode_exports_the_opt_out_entry_count() {
    let bundled = Operator::start().await;
    assert_eq!(series(&bundled.metrics().await, "uid2_optout_entries", &[]), Some(0.0));

    let dir = std::env::temp_dir().join(format!("uid2-metrics-optout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    // The local store's metadata points into ../reference-store for some files.
    copy_tree(&testdata.join("local-store"), &dir.join("local-store"));
    copy_tree(&testdata.join("reference-store"), &dir.join("reference-store"));
    let store = dir.join("local-store");
    let partition = store.join("optout/partition");
    std::fs::create_dir_all(&partition).expect("mkdir");
    // Three 72-byte entries: identity hash, advertising id, little-endian seconds.
    let entries: Vec<u8> = (1u8..=3)
        .flat_map(|n| [[n; 32].as_slice(), &[n ^ 0x5A; 32], &1_700_000_000u64.to_le_bytes()].concat())
        .collect();
    std::fs::write(
        partition.join("optout-partition-000_2026-11-28T00.00.00Z_00000001.dat"),
        entries,
    )
    .expect("write");
    let op = Operator::start_with(|config| config.local_store_dir = Some(store.clone())).await;
    assert_eq!(series(&op.metrics().await, "uid2_optout_entries", &[]), Some(3.0));
    let _ = std::fs::remove_dir_all(&dir);
}
