//! Runs a scenario: `--connections` HTTP/1.1 keep-alive connections, each with one request in
//! flight, until the request budget or the deadline runs out.
//!
//! Two phases. Setup connects every connection (and, for refresh, gives each one an identity with
//! a generate) before the clock starts, so connection set-up is not measured. Then every
//! connection claims request numbers from one shared [`Budget`] until it says stop; a request
//! started before the deadline may finish after it, but no later than `--timeout`, so the whole
//! run ends by duration + timeout. A connection that fails is dropped and opened again for its
//! next request, which is how a keep-alive SDK client behaves; so is one the server closed after
//! its last answer (not a failure: the request had its answer). With `--rate` the budget also
//! says when each request is due ([`Pace`]); requests due after the deadline are not sent. With
//! `--allow-shedding` a 503 answer is tallied as shed rather than failed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{handshake, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::cli::{Options, Target};
use crate::pace::{self, Pace};
use crate::scenario::{Held, Outgoing, Plan, Reply, Scenario};
use crate::stats::{Summary, Tally};

/// The largest answer read: a 5,000-item map answer is ~0.5 MB; anything near this is a broken
/// server, not a result.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// The run's shared stop rule: a request number below `limit`, claimed (and, when paced, due)
/// before `deadline`.
struct Budget {
    claimed: AtomicU64,
    limit: u64,
    deadline: Instant,
    pace: Option<Pace>,
}

/// A request the budget allows: its number, and when paced, when it is due.
#[derive(Debug, PartialEq, Eq)]
struct Claim {
    seq: u64,
    due: Option<Instant>,
}

impl Budget {
    fn new(limit: u64, start: Instant, duration: Duration, rate: Option<u64>) -> Self {
        Self {
            claimed: AtomicU64::new(0),
            limit,
            deadline: start + duration,
            pace: rate.map(|rate| Pace::new(start, rate)),
        }
    }

    fn claim(&self) -> Option<Claim> {
        if Instant::now() >= self.deadline {
            return None;
        }
        let seq = self.claimed.fetch_add(1, Ordering::Relaxed);
        if seq >= self.limit {
            return None;
        }
        let due = self.pace.map(|pace| pace.due(seq));
        match due {
            Some(due) if due >= self.deadline => None,
            _ => Some(Claim { seq, due }),
        }
    }
}

/// What every connection shares.
struct Shared {
    plan: Plan,
    target: Target,
    bearer: HeaderValue,
    host: HeaderValue,
    timeout: Duration,
    allow_shedding: bool,
}

/// One keep-alive connection; `None` after a failure until the next request reopens it.
struct Connection {
    sender: Option<SendRequest<Full<Bytes>>>,
    held: Option<Held>,
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    // Small requests and answers would otherwise wait out the peer's delayed ACK (~40 ms).
    stream.set_nodelay(true).map_err(|e| format!("connect: {}", e.kind()))?;
    let (sender, connection) = handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    // Drives the socket; it ends when the sender is dropped or the server closes.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

impl Connection {
    /// Sends one request and reads the whole answer. Any transport error drops the connection.
    async fn exchange(&mut self, shared: &Shared, out: &Outgoing) -> Result<Reply, String> {
        let result = self.try_exchange(shared, out).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn try_exchange(&mut self, shared: &Shared, out: &Outgoing) -> Result<Reply, String> {
        // A connection the server closed after its last answer is reopened, as a pooled client
        // would (an operator closes one after a 503 whose body it did not read, for example).
        if self.sender.as_ref().is_some_and(SendRequest::is_closed) {
            self.sender = None;
        }
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => self.sender.insert(connect(shared.target.addr).await?),
        };
        sender.ready().await.map_err(|e| format!("transport: {e}"))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(out.path)
            .header(HOST, shared.host.clone())
            .header(AUTHORIZATION, shared.bearer.clone())
            .header(CONTENT_TYPE, out.content_type)
            .body(Full::new(out.body.clone()))
            .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok(Reply {
            status: parts.status.as_u16(),
            content_type: parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body,
        })
    }

    /// Sends and judges one request, bounded by the request timeout.
    async fn run_one(&mut self, shared: &Shared, out: &Outgoing) -> Result<crate::scenario::Verdict, Failure> {
        match tokio::time::timeout(shared.timeout, self.exchange(shared, out)).await {
            Err(_) => {
                // The answer may still arrive on this connection; it must not be read as the next.
                self.sender = None;
                Err(Failure::Unanswered("timeout".to_owned()))
            }
            Ok(Err(e)) => Err(Failure::Unanswered(e)),
            Ok(Ok(reply)) if shared.allow_shedding && reply.status == 503 => Err(Failure::Shed),
            Ok(Ok(reply)) => shared.plan.judge(&out.expect, &reply).map_err(Failure::Answered),
        }
    }
}

enum Failure {
    /// No HTTP answer: no latency to record.
    Unanswered(String),
    /// An answer that an SDK would reject.
    Answered(String),
    /// A 503 under `--allow-shedding`: the server refused the request to protect itself.
    Shed,
}

/// Connects connection `index` and, for refresh, gets it an identity.
async fn set_up(shared: &Shared, index: usize) -> Result<Connection, String> {
    let mut connection = Connection {
        sender: Some(connect(shared.target.addr).await?),
        held: None,
    };
    if shared.plan.scenario == Scenario::Refresh {
        let out = shared.plan.identity_request(index);
        match connection.run_one(shared, &out).await {
            Ok(verdict) => connection.held = verdict.held,
            Err(Failure::Unanswered(label) | Failure::Answered(label)) => {
                return Err(format!(
                    "the generate that gives a connection its identity failed: {label}"
                ))
            }
            Err(Failure::Shed) => {
                return Err("the generate that gives a connection its identity was shed (503)".to_owned())
            }
        }
    }
    Ok(connection)
}

async fn drive(shared: Arc<Shared>, budget: Arc<Budget>, mut connection: Connection) -> Tally {
    let mut tally = Tally::default();
    while let Some(Claim { seq, due }) = budget.claim() {
        // Early: wait, and count from the moment of sending. Late: send now, and count from when
        // the request was due.
        let late_since = match due {
            Some(due) if due > Instant::now() => {
                pace::wait_until(due).await;
                None
            }
            _ => due,
        };
        let out = match shared.plan.request(seq, connection.held.as_ref()) {
            Ok(out) => out,
            Err(label) => {
                tally.failure(None, label);
                continue;
            }
        };
        let started = late_since.unwrap_or_else(Instant::now);
        let result = connection.run_one(&shared, &out).await;
        let latency = started.elapsed();
        match result {
            Ok(verdict) => {
                tally.success(latency, verdict.identities);
                // A refreshing client always moves on to the identity it was just given.
                if verdict.held.is_some() && shared.plan.scenario == Scenario::Refresh {
                    connection.held = verdict.held;
                }
            }
            Err(Failure::Answered(label)) => tally.failure(Some(latency), label),
            Err(Failure::Unanswered(label)) => tally.failure(None, label),
            Err(Failure::Shed) => tally.shed(latency),
        }
    }
    tally
}

/// Runs the scenario of `options`. `Err` is a set-up failure (nothing measured).
pub async fn run(options: &Options) -> Result<Summary, String> {
    let secret =
        uid2_protocol::crypto::SecretKey::from_base64(&options.secret).ok_or("--secret: not a base64 256-bit key")?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", options.api_key))
        .map_err(|_| "--api-key: not usable in a header")?;
    let host = HeaderValue::from_str(&options.target.host_header).map_err(|_| "--url: bad host")?;
    let shared = Arc::new(Shared {
        plan: Plan::new(options.scenario, options.batch, options.binary, secret),
        target: options.target.clone(),
        bearer,
        host,
        timeout: options.timeout,
        allow_shedding: options.allow_shedding,
    });

    let mut setups = JoinSet::new();
    for index in 0..options.connections {
        let shared = Arc::clone(&shared);
        setups.spawn(async move { set_up(&shared, index).await });
    }
    let mut connections = Vec::with_capacity(options.connections);
    while let Some(joined) = setups.join_next().await {
        connections.push(joined.map_err(|e| format!("set-up task: {e}"))??);
    }

    let started = Instant::now();
    let budget = Arc::new(Budget::new(options.requests, started, options.duration, options.rate));
    let mut drivers = JoinSet::new();
    for connection in connections {
        drivers.spawn(drive(Arc::clone(&shared), Arc::clone(&budget), connection));
    }
    let mut tally = Tally::default();
    while let Some(joined) = drivers.join_next().await {
        match joined {
            Ok(t) => tally.merge(t),
            Err(e) => tally.failure(None, format!("connection task: {e}")),
        }
    }
    let elapsed = started.elapsed();
    let mut summary = Summary::new(
        options.scenario.name(),
        options.connections,
        options.scenario.is_map().then_some(options.batch),
        tally,
        elapsed,
        options.requests,
    );
    summary.rate = options.rate;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_stops_at_the_count() {
        let budget = Budget::new(3, Instant::now(), Duration::from_secs(60), None);
        let claimed: Vec<_> = std::iter::from_fn(|| budget.claim()).map(|c| c.seq).collect();
        assert_eq!(claimed, vec![0, 1, 2]);
        assert_eq!(budget.claim(), None);
    }

    #[test]
    fn the_budget_stops_at_the_deadline() {
        let budget = Budget::new(u64::MAX, Instant::now(), Duration::ZERO, None);
        assert_eq!(budget.claim(), None);
    }

    #[test]
    fn a_paced_budget_dates_each_request_and_stops_before_the_deadline() {
        let start = Instant::now();
        // 10 per second for 60 s: 600 requests are due inside the run, the 601st is not.
        let budget = Budget::new(u64::MAX, start, Duration::from_secs(60), Some(10));
        assert_eq!(
            budget.claim(),
            Some(Claim {
                seq: 0,
                due: Some(start)
            })
        );
        let second = budget.claim().expect("due inside the run");
        assert_eq!(second.due, Some(start + Duration::from_millis(100)));
        budget.claimed.store(599, Ordering::Relaxed);
        assert_eq!(
            budget.claim().and_then(|c| c.due),
            Some(start + Duration::from_millis(59_900))
        );
        assert_eq!(budget.claim(), None);
    }

    /// Runs `options` against an in-process floor server on port 0.
    async fn against_floor(mut options: Options) -> Summary {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(crate::floor::serve(listener));
        options.target = crate::cli::loopback_target(&format!("http://{addr}")).expect("loopback");
        options.scenario = Scenario::Floor;
        run(&options).await.expect("the run starts")
    }

    /// The defaults, with `requests` over `connections` at `rate`.
    fn options(requests: u64, connections: usize, rate: Option<u64>) -> Options {
        match crate::cli::parse(std::iter::empty()) {
            Ok(crate::cli::Command::Run(options)) => Options {
                requests,
                connections,
                rate,
                ..*options
            },
            other => panic!("parse: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_floor_scenario_counts_fixed_answers() {
        let summary = against_floor(options(300, 4, None)).await;
        assert!(summary.passed(), "{}", summary.text());
        assert_eq!((summary.ok, summary.identities, summary.rate), (300, 0, None));
    }

    #[tokio::test]
    async fn a_rate_spreads_the_requests_over_time() {
        // 100 requests at 400 per second: the last one is due 247.5 ms after the start.
        let started = Instant::now();
        let summary = against_floor(options(100, 4, Some(400))).await;
        let took = started.elapsed();
        assert!(summary.passed(), "{}", summary.text());
        assert_eq!(summary.ok, 100);
        assert!(took >= Duration::from_millis(240), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(summary.json()["rate"], 400);
        // An idle loopback server answers far inside the 2.5 ms between requests.
        assert!(summary.p50_us.is_some_and(|us| us < 50_000), "{}", summary.text());
    }

    #[tokio::test]
    async fn a_rate_stops_at_the_duration_with_the_requests_due_inside_it() {
        let summary = against_floor(Options {
            duration: Duration::from_secs(1),
            ..options(1_000_000, 2, Some(50))
        })
        .await;
        assert!(summary.passed(), "{}", summary.text());
        // 50 are due inside the second (the last at 980 ms); a stalled machine may miss a few.
        assert!((40..=50).contains(&summary.ok), "{}", summary.text());
        assert_eq!(summary.stopped_by, crate::stats::StoppedBy::Duration);
    }

    #[tokio::test]
    async fn an_absent_server_fails_the_set_up_not_the_process() {
        // Bind then drop a listener: the port is very likely closed for the moment of the test.
        let addr = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(addr) => addr,
            Err(_) => return,
        };
        let mut options = match crate::cli::parse(["--url".to_owned(), format!("http://{addr}")]) {
            Ok(crate::cli::Command::Run(options)) => *options,
            other => panic!("parse: {other:?}"),
        };
        options.connections = 2;
        let result = run(&options).await;
        assert!(matches!(&result, Err(e) if e.starts_with("connect:")), "{result:?}");
    }
}
