//! Admission control: at most `max_concurrent` API requests are processed at once and at most
//! `max_queued` more wait for a turn; any request beyond that is answered 503 at once.
//!
//! Why: an operator past saturation that accepts everything only grows its queues, so every
//! answer comes late and memory grows with the backlog. Shedding the excess keeps the latency of
//! what is admitted and the memory of the process bounded, and tells clients (and a load
//! balancer) to go elsewhere or retry later. A request holds its turn while its body is read and
//! processed, so the bodies in memory are bounded by `max_concurrent` × the 1 MiB body limit;
//! a waiting request holds only what the server has buffered of its head.
//!
//! A batch request (a body over [`YIELD_ABOVE_BYTES`]: identity maps, opt-out status) that gets
//! a turn at once yields to the runtime before it is processed. Without that, a handler that
//! needs no I/O once its body is in runs to completion in the same poll that parsed its head, so
//! admission would only ever see one request per worker thread, and every other request waiting
//! for the CPU would sit unseen, unbounded and never shed in the runtime's run queue. Yielding
//! lets the other ready connections parse their heads and reach admission before the batch is
//! computed, so the requests waiting for the CPU are in admission's queue, where they are
//! counted, bounded and shed. The yield costs a few microseconds (one more poll of the
//! connection), which is noise beside a batch but measurable beside a token request (tens of
//! microseconds): a token request does not yield, and a flood of them waits in the run queue,
//! bounded by the connection cap (4096 × ~30 µs ≈ 120 ms per core), until batches fill the turns.
//!
//! A shed request's body is read and discarded (up to the 1 MiB limit) before the 503: a
//! server that answers and closes with the body unread makes the client's kernel reset the
//! connection, and the client may lose the answer with it. Discarding costs a copy, not the
//! request's processing.
//!
//! Invariants: waiting requests are admitted in arrival order (tokio's semaphore is fair and a
//! new request cannot take a turn ahead of one that waits); the counts of processing and waiting
//! requests are exported as gauges and every shed request is counted. `/ops/healthcheck` is not
//! behind this layer (see `router`): a saturated operator is still alive and says so.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::request::MAX_BODY_BYTES;

/// A request body larger than this (a batch of identities, roughly 50 or more) yields before it
/// is processed; see the module docs.
pub(crate) const YIELD_ABOVE_BYTES: u64 = 4096;

/// Whether a request is a batch worth a yield: its declared body is over [`YIELD_ABOVE_BYTES`],
/// or it is chunked and so of unknown size.
fn is_batch(headers: &HeaderMap) -> bool {
    match headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(length) => length > YIELD_ABOVE_BYTES,
        None => headers.contains_key(header::TRANSFER_ENCODING),
    }
}

/// The limits of one router, shared by all its connections.
pub(crate) struct Admission {
    turns: Semaphore,
    waiting: AtomicUsize,
    max_queued: usize,
    metrics: Arc<Metrics>,
}

impl Admission {
    pub fn new(max_concurrent: usize, max_queued: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            // At least one turn: a router that can never serve would only ever shed.
            turns: Semaphore::new(max_concurrent.clamp(1, Semaphore::MAX_PERMITS)),
            waiting: AtomicUsize::new(0),
            max_queued,
            metrics,
        }
    }
}

/// Decrements the waiting count however the wait ends (admitted, or the client went away).
struct Waiting<'a>(&'a Admission);

impl<'a> Waiting<'a> {
    /// A place in the queue, if there is one.
    fn enter(admission: &'a Admission) -> Option<Self> {
        admission
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < admission.max_queued).then_some(n + 1)
            })
            .ok()?;
        admission.metrics.request_waiting(1);
        Some(Self(admission))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.request_waiting(-1);
    }
}

/// A request being processed: holds its turn and the processing gauge until it ends, however
/// it ends (answered, or dropped because the client went away).
struct Processing<'a> {
    admission: &'a Admission,
    _turn: SemaphorePermit<'a>,
}

impl<'a> Processing<'a> {
    fn start(admission: &'a Admission, turn: SemaphorePermit<'a>) -> Self {
        admission.metrics.request_processing(1);
        Self { admission, _turn: turn }
    }
}

impl Drop for Processing<'_> {
    fn drop(&mut self) {
        self.admission.metrics.request_processing(-1);
    }
}

/// Runs the request if it gets a turn now or after waiting in the queue; else 503.
pub(crate) async fn admit(State(admission): State<Arc<Admission>>, request: Request, next: Next) -> Response {
    let turn = match admission.turns.try_acquire() {
        Ok(turn) => {
            // Let the other ready connections reach admission first (see the module docs).
            if is_batch(request.headers()) {
                tokio::task::yield_now().await;
            }
            turn
        }
        Err(_) => {
            let Some(place) = Waiting::enter(&admission) else {
                admission.metrics.request_shed();
                discard(request.into_body()).await;
                return ApiError::overloaded().into_response();
            };
            let turn = admission.turns.acquire().await;
            drop(place);
            match turn {
                Ok(turn) => turn,
                // The semaphore is never closed; answer as if shed rather than panic.
                Err(_) => return ApiError::overloaded().into_response(),
            }
        }
    };
    let _processing = Processing::start(&admission, turn);
    next.run(request).await
}

/// Reads a body to its end without keeping it, stopping past the body limit (a larger body will
/// not be read by anyone, and the connection closes after the answer).
async fn discard(mut body: Body) {
    let mut read = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        read += frame.data_ref().map_or(0, |data| data.len());
        if read > MAX_BODY_BYTES {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_bounded_and_frees_its_places() {
        let admission = Admission::new(1, 2, Arc::new(Metrics::default()));
        let first = Waiting::enter(&admission).expect("a place");
        let second = Waiting::enter(&admission).expect("a place");
        assert!(Waiting::enter(&admission).is_none(), "the queue holds two");
        drop(first);
        let third = Waiting::enter(&admission).expect("a freed place");
        drop((second, third));
        assert_eq!(admission.waiting.load(Ordering::Acquire), 0);
    }

    #[test]
    fn only_batches_yield() {
        let headers = |pairs: &[(header::HeaderName, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(name.clone(), axum::http::HeaderValue::from_static(value));
            }
            map
        };
        assert!(!is_batch(&headers(&[])), "no body");
        assert!(
            !is_batch(&headers(&[(header::CONTENT_LENGTH, "300")])),
            "a token request"
        );
        assert!(!is_batch(&headers(&[(header::CONTENT_LENGTH, "4096")])));
        assert!(is_batch(&headers(&[(header::CONTENT_LENGTH, "4097")])));
        assert!(
            is_batch(&headers(&[(header::TRANSFER_ENCODING, "chunked")])),
            "unknown size"
        );
    }

    #[test]
    fn no_queue_means_no_waiting() {
        let admission = Admission::new(4, 0, Arc::new(Metrics::default()));
        assert!(Waiting::enter(&admission).is_none());
    }
}
