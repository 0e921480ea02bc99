//! A raw HTTP/1.1 client on one TCP connection, for the tests that must control exactly what the
//! server has received and when: half a request head, a body sent in pieces, a request known to
//! be in its handler. (An HTTP client library sends whole requests and retries.)
//!
//! "In its handler" is observable without timing: a request sent with `Expect: 100-continue`
//! gets `100 Continue` only when the handler starts reading the body, which happens after
//! admission control let it in. Every read has a deadline, so a server that stays silent fails
//! the test instead of hanging it.

#![allow(dead_code)] // Each test binary uses a different part.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::Reply;

/// One connection and what it has read but not yet consumed.
pub struct RawConnection {
    stream: TcpStream,
    buffer: Vec<u8>,
    label: String,
}

/// How a connection ended when the test waited for it to end.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// The server closed (EOF) or reset it.
    Yes,
    /// Still open at the deadline.
    No,
}

impl RawConnection {
    pub async fn connect(address: SocketAddr, label: &str) -> Self {
        let stream = match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => panic!("{label}: cannot connect to {address}: {error}"),
            Err(_) => panic!("{label}: connecting to {address} took over 10 s"),
        };
        let _ = stream.set_nodelay(true);
        Self {
            stream,
            buffer: Vec::new(),
            label: label.to_owned(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        if let Err(error) = self.stream.write_all(bytes).await {
            panic!("{}: sending failed: {error}", self.label);
        }
    }

    /// Sends, reporting a failure instead of failing the test (the server may have closed).
    pub async fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads more bytes into the buffer; `Ok(0)` at EOF; `Err` on reset or after `deadline`.
    async fn fill(&mut self, deadline: Instant) -> Result<usize, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Ok(Err(error)) => Err(format!("{}: read failed: {error}", self.label)),
            Err(_) => Err(format!("{}: nothing within the deadline", self.label)),
        }
    }

    /// The next response (an interim `1xx` included) within `limit`; the test fails otherwise.
    pub async fn response(&mut self, limit: Duration) -> Reply {
        match self.try_response(limit).await {
            Ok(reply) => reply,
            Err(problem) => panic!("{problem}"),
        }
    }

    /// The next response within `limit`, or why there was none.
    pub async fn try_response(&mut self, limit: Duration) -> Result<Reply, String> {
        let deadline = Instant::now() + limit;
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at;
            }
            if self.fill(deadline).await? == 0 {
                return Err(format!("{}: closed before a response head", self.label));
            }
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("{}: bad status line {status_line:?}", self.label))?;
        let mut headers = HeaderMap::new();
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.trim().as_bytes()),
                    HeaderValue::from_str(value.trim()),
                ) {
                    headers.append(name, value);
                }
            }
        }
        self.buffer.drain(..head_end + 4);
        let length = if (100..200).contains(&status) {
            0
        } else {
            headers
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| format!("{}: HTTP {status} without Content-Length", self.label))?
        };
        while self.buffer.len() < length {
            if self.fill(deadline).await? == 0 {
                return Err(format!("{}: closed inside a response body", self.label));
            }
        }
        let body: Vec<u8> = self.buffer.drain(..length).collect();
        Ok(Reply {
            route: self.label.clone(),
            status,
            headers,
            body,
        })
    }

    /// Waits up to `limit` for the server to close the connection; bytes that arrive meanwhile
    /// are kept (a response before the close is allowed).
    pub async fn closed_within(&mut self, limit: Duration) -> Closed {
        let deadline = Instant::now() + limit;
        loop {
            if Instant::now() >= deadline {
                return Closed::No;
            }
            match self.fill(deadline).await {
                Ok(0) => return Closed::Yes,
                Ok(_) => {}
                Err(problem) if problem.ends_with("nothing within the deadline") => return Closed::No,
                Err(_) => return Closed::Yes,
            }
        }
    }

    /// What arrived and was not consumed as a response.
    pub fn unread(&self) -> &[u8] {
        &self.buffer
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A request head: `method path HTTP/1.1`, `Host`, the given headers, and `Content-Length` when
/// a body length is given.
pub fn head(method: &str, path: &str, headers: &[(&str, &str)], content_length: Option<usize>) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(length) = content_length {
        text.push_str(&format!("Content-Length: {length}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}
