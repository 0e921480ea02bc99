//! Overload and slow clients, on an operator in process (local mode, port 0) with tiny limits so
//! every state is reached by construction rather than by load: admission control sheds with 503
//! once the processing and waiting places are taken while `/ops/healthcheck` and `/metrics` still
//! answer, and recovers; a client that stalls in its head, its body or between requests is
//! disconnected; the connection cap holds further connections back until one closes.
//!
//! Requests are held "in the handler" with `Expect: 100-continue` and a body that is not sent
//! yet (see `raw_http`); waiting requests are seen through the `uid2_operator_requests_waiting`
//! gauge. The only timing assertions are generous upper bounds and lower bounds that a correct
//! server cannot miss (a deadline never fires early).

mod harness;
mod raw_http;

use std::time::{Duration, Instant};

use harness::{Envelope, Operator, C999};
use raw_http::{head, Closed, RawConnection};

const GENERATE: &str = "/v2/token/generate";
/// Generous: a loaded CI machine answers in milliseconds.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// The value of the first series `name` (exactly, or with labels) in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// A token generate request for site 999, as bytes on the wire, with its envelope.
fn generate_request(email: &str, expect_continue: bool) -> (Vec<u8>, Vec<u8>, Envelope) {
    let envelope = Envelope::now(&C999, &format!(r#"{{"email":"{email}"}}"#));
    let body = envelope.base64().into_bytes();
    let bearer = C999.bearer();
    let mut headers = vec![("Authorization", bearer.as_str()), ("Content-Type", "text/plain")];
    if expect_continue {
        headers.push(("Expect", "100-continue"));
    }
    (head("POST", GENERATE, &headers, Some(body.len())), body, envelope)
}

/// Asserts a generate answer is a sealed success for this envelope.
#[track_caller]
fn assert_generated(reply: &harness::Reply, envelope: &Envelope) {
    let json = reply.open(&C999.secret(), &envelope.nonce);
    assert_eq!(json["status"], "success", "{json}");
    assert!(
        json["body"]["advertising_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{json}"
    );
}

async fn poll_metric(op: &Operator, name: &str, want: f64) {
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        let text = op.metrics().await;
        if metric(&text, name) == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} did not reach {want}:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_limits_requests_are_shed_while_probes_answer_and_service_recovers() {
    const PROCESSING: usize = 2;
    const WAITING: usize = 2;
    let op = Operator::start_with(|c| {
        c.api.max_concurrent_requests = PROCESSING;
        c.api.max_queued_requests = WAITING;
    })
    .await;

    // Take every processing turn: each request is in its handler, waiting for its body.
    let mut processing = Vec::new();
    for i in 0..PROCESSING {
        let (head, body, envelope) = generate_request(&format!("held{i}@example.com"), true);
        let mut conn = RawConnection::connect(op.address, &format!("processing {i}")).await;
        conn.send(&head).await;
        let interim = conn.response(ANSWER_WITHIN).await;
        assert_eq!(interim.status, 100, "the handler reads the body: {}", interim.text());
        conn.send(&body[..body.len() / 2]).await;
        processing.push((conn, body, envelope));
    }
    // Fill the queue: whole requests that cannot get a turn.
    let mut waiting = Vec::new();
    for i in 0..WAITING {
        let (head, body, envelope) = generate_request(&format!("queued{i}@example.com"), false);
        let mut conn = RawConnection::connect(op.address, &format!("waiting {i}")).await;
        conn.send(&head).await;
        conn.send(&body).await;
        waiting.push((conn, envelope));
    }
    poll_metric(&op, "uid2_operator_requests_waiting", WAITING as f64).await;
    poll_metric(&op, "uid2_operator_requests_processing", PROCESSING as f64).await;

    // One more is shed at once, with the operator's 503 and the usual CORS headers.
    let started = Instant::now();
    let envelope = Envelope::now(&C999, r#"{"email":"shed@example.com"}"#);
    let bearer = C999.bearer();
    let shed = op
        .post(
            GENERATE,
            &[
                ("authorization", bearer.as_str()),
                ("content-type", "text/plain"),
                ("origin", "https://publisher.example"),
            ],
            envelope.base64(),
        )
        .await;
    harness::assert_plain(&shed, 503, "Service Unavailable");
    assert_eq!(
        shed.header("access-control-allow-origin"),
        Some("https://publisher.example")
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shed at once, not after waiting: {:?}",
        started.elapsed()
    );
    // Unknown paths and probes are outside admission control.
    assert_eq!(op.get("/ops/healthcheck").await.status, 200);
    assert_eq!(op.get("/no/such/path").await.status, 404);
    let text = op.metrics().await;
    assert_eq!(metric(&text, "uid2_operator_requests_shed_total"), Some(1.0), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("uid2_http_requests_total{") && l.contains("status=\"503\"")),
        "shed requests are counted like any answer:\n{text}"
    );

    // Load drops: the held bodies arrive, every held and queued request is answered.
    for (conn, body, envelope) in &mut processing {
        conn.send(&body[body.len() / 2..]).await;
        let reply = conn.response(ANSWER_WITHIN).await;
        assert_generated(&reply, envelope);
    }
    for (conn, envelope) in &mut waiting {
        let reply = conn.response(ANSWER_WITHIN).await;
        assert_generated(&reply, envelope);
    }
    poll_metric(&op, "uid2_operator_requests_processing", 0.0).await;
    poll_metric(&op, "uid2_operator_requests_waiting", 0.0).await;

    // And new requests are served again.
    for i in 0..PROCESSING + WAITING + 1 {
        let json = op
            .v2_ok(GENERATE, &C999, &format!(r#"{{"email":"after{i}@example.com"}}"#))
            .await;
        assert_eq!(json["status"], "success");
    }
    let text = op.metrics().await;
    assert_eq!(metric(&text, "uid2_operator_requests_shed_total"), Some(1.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stalling_in_its_head_or_between_requests_is_disconnected() {
    let timeout = Duration::from_millis(600);
    let op = Operator::start_with(|c| {
        c.server.header_read_timeout = timeout;
        c.server.idle_timeout = timeout;
    })
    .await;

    // Half a head, then nothing.
    let started = Instant::now();
    let mut half = RawConnection::connect(op.address, "half a head").await;
    half.send(b"POST /v2/token/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        .await;
    // A connection that never sends a byte.
    let mut silent = RawConnection::connect(op.address, "silent").await;
    assert_eq!(half.closed_within(ANSWER_WITHIN).await, Closed::Yes);
    assert!(started.elapsed() >= timeout, "closed before the deadline");
    assert_eq!(silent.closed_within(ANSWER_WITHIN).await, Closed::Yes);

    // A keep-alive connection idle after an answer.
    let mut idle = RawConnection::connect(op.address, "idle").await;
    idle.send(&head("GET", "/ops/healthcheck", &[], None)).await;
    let reply = idle.response(ANSWER_WITHIN).await;
    assert_eq!((reply.status, reply.text()), (200, "OK".to_owned()));
    let answered = Instant::now();
    assert_eq!(idle.closed_within(ANSWER_WITHIN).await, Closed::Yes);
    assert!(answered.elapsed() >= timeout, "closed before the idle deadline");

    // Meanwhile the operator serves.
    assert_eq!(op.get("/ops/healthcheck").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_stalling_past_its_deadline_gets_408_and_a_closed_connection() {
    let op = Operator::start_with(|c| {
        c.server.body_read_timeout = Duration::from_millis(600);
    })
    .await;
    let (head, body, _) = generate_request("slow-body@example.com", false);
    let mut conn = RawConnection::connect(op.address, "stalled body").await;
    conn.send(&head).await;
    conn.send(&body[..10]).await;
    let reply = conn.response(ANSWER_WITHIN).await;
    harness::assert_plain(&reply, 408, "Request Timeout");
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(conn.closed_within(ANSWER_WITHIN).await, Closed::Yes);

    // The turn it held is free again: a normal request is answered.
    let json = op.v2_ok(GENERATE, &C999, r#"{"email":"after-slow@example.com"}"#).await;
    assert_eq!(json["status"], "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_slowly_within_its_deadline_is_answered() {
    let op = Operator::start_with(|c| {
        c.server.body_read_timeout = Duration::from_secs(8);
    })
    .await;
    let (head, body, envelope) = generate_request("slow-but-in-time@example.com", false);
    let mut conn = RawConnection::connect(op.address, "slow body").await;
    conn.send(&head).await;
    for piece in body.chunks(body.len().div_ceil(4)) {
        conn.send(piece).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = conn.response(ANSWER_WITHIN).await;
    assert_generated(&reply, &envelope);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_new_connections_wait_for_a_free_slot() {
    let op = Operator::start_with(|c| {
        c.server.max_connections = 2;
        c.server.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let mut first = RawConnection::connect(op.address, "first").await;
    let mut second = RawConnection::connect(op.address, "second").await;
    for conn in [&mut first, &mut second] {
        conn.send(&head("GET", "/ops/healthcheck", &[], None)).await;
        assert_eq!(conn.response(ANSWER_WITHIN).await.status, 200);
    }
    // The kernel completes the handshake, but the operator does not take the connection.
    let mut third = RawConnection::connect(op.address, "third").await;
    third.send(&head("GET", "/ops/healthcheck", &[], None)).await;
    assert!(
        third.try_response(Duration::from_millis(500)).await.is_err(),
        "a third connection is served while two are open"
    );
    drop(first);
    let reply = third.response(ANSWER_WITHIN).await;
    assert_eq!(reply.status, 200, "served once a slot is free");
    second.send(&head("GET", "/ops/healthcheck", &[], None)).await;
    assert_eq!(second.response(ANSWER_WITHIN).await.status, 200);
}
