//! Logging setup. Filter from `RUST_LOG` (default `info`).
//!
//! What is logged is decided at the call sites, which never log request bodies, identifiers,
//! tokens, keys or secrets: request logs carry method, route, status, latency and site only.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second initialisation (tests) is harmless; ignore it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
