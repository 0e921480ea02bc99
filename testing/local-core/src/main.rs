//! The `uid2-local-core` binary: parse the command line, then serve until Ctrl-C or SIGTERM, or
//! generate a store. Everything else lives in the library.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use uid2_local_core::cli::{self, Command, ServeOptions};
use uid2_local_core::LocalCore;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(problem) => {
            eprintln!("uid2-local-core: {problem}\n\n{}", cli::USAGE);
            return ExitCode::from(64);
        }
    };
    match command {
        Command::Help => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Generate(options) => {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            match uid2_local_core::generate::generate_store(&options, now_ms) {
                Ok(summary) => {
                    println!(
                        "wrote {} ({} buckets) and {} ({} opt-outs)",
                        summary.salt_file.display(),
                        summary.buckets,
                        summary.partition_file.display(),
                        summary.optouts
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("uid2-local-core: generate-store failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(options) => serve(options),
    }
}

fn serve(options: ServeOptions) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("uid2-local-core: no async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let mut builder = LocalCore::builder(&options.store)
            .listen(options.listen)
            .token_lifetime(Duration::from_secs(options.token_lifetime_seconds))
            .jitter(options.jitter);
        if let Some(url) = options.public_url {
            builder = builder.public_url(url);
        }
        if let Some(path) = options.operators {
            builder = builder.operators_file(path);
        }
        if let Some(path) = options.enclaves {
            builder = builder.enclaves_file(path);
        }
        if let Some(url) = options.maa_url {
            builder = builder.maa_url(url);
        }
        if let Some(path) = options.maa_signing_key {
            match std::fs::read_to_string(&path) {
                Ok(pem) => builder = builder.maa_signing_key(pem),
                Err(e) => {
                    eprintln!("uid2-local-core: cannot read {}: {}", path.display(), e.kind());
                    return ExitCode::FAILURE;
                }
            }
        }
        builder = builder.token_secrets(
            options
                .enc_key
                .as_deref()
                .unwrap_or(uid2_local_core::token::DEFAULT_ENC_KEY),
            options
                .enc_salt
                .as_deref()
                .unwrap_or(uid2_local_core::token::DEFAULT_ENC_SALT),
        );
        let running = match builder.start().await {
            Ok(running) => running,
            Err(e) => {
                eprintln!("uid2-local-core: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "uid2-local-core serving {} at {}",
            options.store.display(),
            running.base_url()
        );
        stop_signal().await;
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Ctrl-C, or SIGTERM where there is one (containers and `kill` send it).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
