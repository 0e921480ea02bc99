//! `uid2-load floor-server`: the floor for HTTP on this machine.
//!
//! A hyper 1 HTTP/1.1 server that does no work: it reads and discards each request's body and
//! answers every request, on any path, with the same [`BODY_LEN`]-byte body, keeping the
//! connection alive. Run on one thread (a current-thread runtime) and pinned to the core the
//! operator uses, its req/s is the most any server can do on that core with this client, so the
//! operator's req/s is reported as a share of it (`benches/load.sh`).
//!
//! It listens on loopback only (the command line refuses other addresses) and stops by itself
//! after its lifetime, so a benchmark that dies cannot leave it running for long.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The answer's size: about a `/v2/token/generate` answer's, the figure perf.md §5.3 measured.
pub const BODY_LEN: usize = 400;
static BODY: [u8; BODY_LEN] = [b'x'; BODY_LEN];

/// Reads the request to its end (a server that skipped it would do less than any real one) and
/// answers the fixed body.
async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut body = request.into_body();
    // Frames are dropped as they arrive: nothing is buffered, whatever the size.
    while let Some(Ok(_)) = body.frame().await {}
    let mut response = Response::new(Full::new(Bytes::from_static(&BODY)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// Accepts connections until the process stops; each is served keep-alive on its own task.
pub async fn serve(listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                eprintln!("uid2-load floor-server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // As the operator's listener does: small answers must not wait for a delayed ACK.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::client::conn::http1::handshake;
    use hyper::Method;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn floor() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(serve(listener));
        addr
    }

    #[tokio::test]
    async fn every_request_on_one_connection_gets_exactly_400_bytes() {
        let addr = floor().await;
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, connection) = handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(connection);
        for (path, body) in [
            ("/v2/token/generate", "x".repeat(300)),
            ("/", String::new()),
            ("/any/path", "y".repeat(100_000)),
        ] {
            sender.ready().await.expect("the connection stays open");
            let request = Request::builder()
                .method(Method::POST)
                .uri(path)
                .header("host", "127.0.0.1")
                .body(Full::new(Bytes::from(body)))
                .expect("request");
            let response = sender.send_request(request).await.expect("answered");
            assert_eq!(response.status(), 200);
            assert_eq!(
                response.headers().get("content-length").map(HeaderValue::as_bytes),
                Some(&b"400"[..])
            );
            let bytes = response.into_body().collect().await.expect("body").to_bytes();
            assert_eq!(bytes.len(), BODY_LEN, "{path}");
        }
    }

    #[tokio::test]
    async fn two_pipelined_requests_on_one_socket_are_both_answered_keep_alive() {
        let addr = floor().await;
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = "POST /v2/token/generate HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello";
        stream
            .write_all(format!("{request}{request}").as_bytes())
            .await
            .expect("write");
        // Both answers, and the connection still open: no `connection: close`, no EOF.
        let mut read = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut bodies = 0;
        while bodies < 2 {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
                .await
                .expect("answers within 5 s")
                .expect("read");
            assert!(n > 0, "the server closed the connection");
            read.extend_from_slice(chunk.get(..n).unwrap_or_default());
            let text = String::from_utf8_lossy(&read);
            bodies = text.matches(&"x".repeat(BODY_LEN)).count();
        }
        let text = String::from_utf8_lossy(&read);
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
        assert!(!text.to_ascii_lowercase().contains("connection: close"), "{text}");
    }
}
