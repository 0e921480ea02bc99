//! Logging setup. Filter from `RUST_LOG` (default `info`).
//!
//! What is logged is decided at the call sites, which never log request bodies, identifiers,
//! tokens, keys or secrets: request logs carry method, route, status, latency and site only.
//!
//! Whatever `RUST_LOG` asks for, the HTTP and TLS libraries log at most `debug`: their `trace`
//! output is wire level and can carry what the call sites never log. rustls prints whole
//! handshake messages (session tickets included); reqwest, when a client has
//! `connection_verbose`, prints every byte read and written (the operator key in
//! `Authorization`, attestation tokens, envelope bodies); h2 prints frames. None of that is
//! needed to run the operator, and `debug` still says which connections open and close.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Crates whose `trace` output is wire level (their `log` records arrive with the same
/// targets through the `log` bridge).
const WIRE_LEVEL: [&str; 7] = ["rustls", "reqwest", "hyper", "hyper_util", "h2", "h3", "tower_http"];

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // A second initialisation (tests) is harmless; ignore it.
    let _ = tracing_subscriber::registry()
        .with(layer(filter, ansi, std::io::stdout))
        .try_init();
}

/// The formatting layer with `filter` and the wire-level cap.
fn layer<W>(filter: EnvFilter, ansi: bool, writer: W) -> impl Layer<Registry>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let cap = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(WIRE_LEVEL.map(|target| (target, LevelFilter::DEBUG)));
    tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(writer)
        .with_filter(filter)
        .with_filter(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Self;

        fn make_writer(&'w self) -> Self {
            self.clone()
        }
    }

    #[test]
    fn at_trace_the_wire_level_crates_stop_at_debug() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(layer(EnvFilter::new("trace"), false, captured.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "reqwest::connect::verbose", "wire-bytes-reqwest");
            tracing::trace!(target: "rustls::client::hs", "wire-handshake-rustls");
            tracing::trace!(target: "hyper_util::client::legacy::pool", "wire-pool-hyper-util");
            tracing::trace!(target: "h2::codec", "wire-frame-h2");
            tracing::debug!(target: "reqwest::connect", "kept-connection-debug");
            tracing::trace!(target: "uid2_sync::stores", "kept-operator-trace");
        });
        let text = String::from_utf8(captured.0.lock().expect("log").clone()).expect("UTF-8");
        for wire in [
            "wire-bytes-reqwest",
            "wire-handshake-rustls",
            "wire-pool-hyper-util",
            "wire-frame-h2",
        ] {
            assert!(!text.contains(wire), "{wire} was logged at RUST_LOG=trace:\n{text}");
        }
        assert!(text.contains("kept-connection-debug"), "{text}");
        assert!(text.contains("kept-operator-trace"), "{text}");
    }

    #[test]
    fn rust_log_still_narrows_everything() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(layer(EnvFilter::new("warn"), false, captured.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "uid2_sync::stores", "not-at-warn");
            tracing::debug!(target: "reqwest::connect", "not-at-warn-either");
            tracing::warn!(target: "uid2_sync::stores", "shown-at-warn");
        });
        let text = String::from_utf8(captured.0.lock().expect("log").clone()).expect("UTF-8");
        assert!(!text.contains("not-at-warn"), "{text}");
        assert!(text.contains("shown-at-warn"), "{text}");
    }
}
