//! The HTTP/1.1 server under both listeners (API and metrics): accepting, per-connection
//! deadlines, and graceful shutdown.
//!
//! Why not `axum::serve`: it offers no way to bound connections or to give slow clients a
//! deadline, and an operator answers the open internet. Here:
//!
//! - **Connections** are capped (`max_connections`): at the cap the listener stops accepting
//!   until one closes, so new connections wait in the kernel's backlog (and beyond it are
//!   refused by the kernel) instead of costing memory here. Requests are bounded separately, by
//!   admission control in the API router.
//! - **Deadlines** follow each connection through three phases. *Head*: from the first byte of a
//!   request (or from the accept, for a new connection) until its head is parsed, at most
//!   `header_read_timeout`. *Busy*: a request is being answered; the connection has no deadline,
//!   but the request body must arrive within `body_read_timeout` of the handler starting to read
//!   it, else the body fails with [`uid2_api::BodyReadTimeout`] and the API answers 408.
//!   *Idle*: after an answer, until the next request's first byte, at most `idle_timeout`; an
//!   answer is handed to hyper when the handler returns, so a client that does not read its
//!   answer is in this phase too, and the answer's memory is held at most that long.
//!   A connection past its deadline is closed. Hyper's own `header_read_timeout` is not used: it
//!   starts when a connection goes idle, so it cannot give a keep-alive connection longer to
//!   stay idle than a client has to send a head.
//! - **Request heads** are limited to [`MAX_HEAD_BYTES`]; larger ones get hyper's 431.
//! - **Shutdown**: on the signal the listener is closed at once (new connections are refused),
//!   idle connections close, a request in progress finishes and its connection then closes with
//!   `Connection: close`; [`serve`] returns when every connection has ended. The caller bounds
//!   that wait (`DRAIN_GRACE`).
//!
//! Every accepted socket gets `TCP_NODELAY`: without it Nagle's algorithm and the peer's delayed
//! ACK can hold a small answer back ~40 ms.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::response::Response;
use axum::{BoxError, Router};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The largest request head (request line and headers) read. The reference's Vert.x server
/// allows a 4 KiB request line and 8 KiB of headers; this is above their sum, so no request the
/// reference accepts is refused, while a connection cannot make the server buffer ~400 KB of
/// head (hyper's default).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// How long the accept loop pauses after an error that is not about one connection (out of file
/// descriptors, typically), so it does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// `http_max_connections`: open connections at most; beyond, accepting waits.
    pub max_connections: usize,
    /// `http_header_read_timeout_ms`: a request head must arrive within this.
    pub header_read_timeout: Duration,
    /// `http_body_read_timeout_ms`: a request body must arrive within this of being first read.
    pub body_read_timeout: Duration,
    /// `http_idle_timeout_ms`: a keep-alive connection with no request in progress closes after this.
    pub idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` turns true, then drains: returns once every
/// connection has ended.
pub async fn serve(listener: TcpListener, router: Router, limits: ServerLimits, shutdown: watch::Receiver<bool>) {
    let max_connections = limits.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_header_size(MAX_HEAD_BYTES);
    loop {
        // Take a slot before accepting: at the cap, connections wait in the kernel's backlog.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = stopped(shutdown.clone()) => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(shutdown.clone()) => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) if about_one_connection(&error) => continue,
            Err(error) => {
                tracing::warn!(kind = %error.kind(), "accepting a connection failed; pausing");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                    () = stopped(shutdown.clone()) => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            http.clone(),
            router.clone(),
            limits,
            shutdown.clone(),
            slot,
        ));
    }
    // Closing the listener now makes the kernel refuse new connections during the drain.
    drop(listener);
    // Every connection holds a slot until it ends, so having them all back means drained.
    let _ = slots.acquire_many(max_connections as u32).await;
}

fn about_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Why a connection ended, for the debug log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Closed,
    Failed,
    HeadTimeout,
    IdleTimeout,
}

/// Serves one connection until it closes, fails, or misses a deadline.
async fn connection(
    stream: TcpStream,
    http: hyper::server::conn::http1::Builder,
    router: Router,
    limits: ServerLimits,
    shutdown: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new(limits));
    let io = TokioIo::new(Watched {
        stream,
        activity: Arc::clone(&activity),
    });
    let service = Api {
        router,
        activity: Arc::clone(&activity),
        body_read_timeout: limits.body_read_timeout,
    };
    let mut conn = std::pin::pin!(http.serve_connection(io, service));
    let mut stop = std::pin::pin!(stopped(shutdown));
    let mut draining = false;
    let mut armed = activity
        .deadline()
        .map_or_else(|| Instant::now() + limits.header_read_timeout, |(at, _)| at);
    let mut timer = std::pin::pin!(tokio::time::sleep_until(armed));
    // Every change of phase happens inside `conn.poll` (reads, service calls, answers), so
    // reading the deadline after each poll of `conn` never misses one.
    let ended = std::future::poll_fn(|cx| {
        if !draining && stop.as_mut().poll(cx).is_ready() {
            draining = true;
            conn.as_mut().graceful_shutdown();
        }
        if let Poll::Ready(result) = conn.as_mut().poll(cx) {
            return Poll::Ready(if result.is_ok() { Ended::Closed } else { Ended::Failed });
        }
        if let Some((deadline, phase)) = activity.deadline() {
            if deadline != armed {
                armed = deadline;
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(match phase {
                    Phase::Idle(_) => Ended::IdleTimeout,
                    _ => Ended::HeadTimeout,
                });
            }
        }
        Poll::Pending
    })
    .await;
    if ended != Ended::Closed {
        tracing::debug!(ended = ?ended, "connection closed");
    }
}

/// Where a connection is in its life, with the deadline of that phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request head; closed at the deadline.
    Head(Instant),
    /// Requests being answered (one at a time in HTTP/1.1); no connection deadline.
    Busy(usize),
    /// Waiting for the next request; closed at the deadline.
    Idle(Instant),
}

/// One connection's phase, moved by its socket reads and its requests.
struct Activity {
    phase: Mutex<Phase>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
}

impl Activity {
    fn new(limits: ServerLimits) -> Self {
        Self {
            phase: Mutex::new(Phase::Head(Instant::now() + limits.header_read_timeout)),
            header_read_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
        }
    }

    fn with_phase<T>(&self, f: impl FnOnce(&mut Phase) -> T) -> T {
        f(&mut self.phase.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn deadline(&self) -> Option<(Instant, Phase)> {
        self.with_phase(|phase| match *phase {
            Phase::Head(at) | Phase::Idle(at) => Some((at, *phase)),
            Phase::Busy(_) => None,
        })
    }

    /// Bytes came in: on an idle connection, that is the start of the next request's head.
    fn bytes_arrived(&self) {
        self.with_phase(|phase| {
            if let Phase::Idle(_) = phase {
                *phase = Phase::Head(Instant::now() + self.header_read_timeout);
            }
        });
    }

    fn request_started(&self) {
        self.with_phase(|phase| {
            *phase = match *phase {
                Phase::Busy(n) => Phase::Busy(n + 1),
                Phase::Head(_) | Phase::Idle(_) => Phase::Busy(1),
            }
        });
    }

    fn request_finished(&self) {
        self.with_phase(|phase| {
            *phase = match *phase {
                Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
                _ => Phase::Idle(Instant::now() + self.idle_timeout),
            }
        });
    }
}

/// A request in progress on its connection; the connection goes idle when the last one ends
/// (answered, or dropped with the connection).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.request_started();
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// The socket, telling its connection's [`Activity`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The router as hyper calls it: each request marks its connection busy, and its body gets the
/// body-read deadline.
#[derive(Clone)]
struct Api {
    router: Router,
    activity: Arc<Activity>,
    body_read_timeout: Duration,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Api {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::start(&self.activity);
        let limit = self.body_read_timeout;
        let request = request.map(|body| Body::new(Deadline::new(body, limit)));
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(request).await;
            drop(in_flight);
            response
        })
    }
}

/// A request body that fails with [`uid2_api::BodyReadTimeout`] if it is not complete within
/// `limit` of its first read. The clock starts when the handler starts reading (after admission
/// control let the request in), not when the request arrived.
struct Deadline {
    body: Incoming,
    limit: Duration,
    started: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    fn new(body: Incoming, limit: Duration) -> Self {
        Self {
            body,
            limit,
            started: None,
            timer: None,
        }
    }
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let started = *this.started.get_or_insert_with(Instant::now);
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(BoxError::from)));
        }
        // Only a body that is not already buffered needs a timer.
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(started + this.limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(uid2_api::BodyReadTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The soft limit on open files from `/proc/self/limits`, if it can be read (Linux).
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&text)
}

fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ServerLimits {
        ServerLimits {
            max_connections: 4,
            header_read_timeout: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn a_connection_moves_from_head_to_busy_to_idle_and_back() {
        let activity = Arc::new(Activity::new(limits()));
        assert!(matches!(activity.deadline(), Some((_, Phase::Head(_)))));
        let request = InFlight::start(&activity);
        assert_eq!(activity.deadline(), None, "no deadline while a request is answered");
        activity.bytes_arrived();
        assert_eq!(activity.deadline(), None, "body bytes do not start a head");
        drop(request);
        let Some((idle_until, Phase::Idle(_))) = activity.deadline() else {
            panic!("idle after the answer");
        };
        activity.bytes_arrived();
        let Some((head_until, Phase::Head(_))) = activity.deadline() else {
            panic!("the next request's first byte starts a head");
        };
        assert!(head_until < idle_until, "the head deadline is the shorter one here");
        activity.bytes_arrived();
        assert_eq!(
            activity.deadline().map(|(at, _)| at),
            Some(head_until),
            "more head bytes do not extend it"
        );
    }

    #[test]
    fn the_open_files_limit_is_read_from_proc() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_files_limit(text), Some(1024));
        assert_eq!(parse_open_files_limit("Max open files unlimited unlimited files"), None);
        assert_eq!(parse_open_files_limit(""), None);
    }
}
