//! Logging setup. Filter from `RUST_LOG` (default `info`).
//!
//! What is logged is decided at the call sites, which never log request bodies, identifiers,
//! tokens, keys or secrets: request logs carry method, route, status, latency and site only.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second initialisation (tests) is harmless; ignore it.
    // Colour codes only for a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .try_init();
}
