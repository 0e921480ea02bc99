//! `uid2-load`: a bounded load generator for a UID2 operator on loopback.
//!
//! It speaks what the SDKs speak (HTTP/1.1 keep-alive, the v2 request envelope sealed with the
//! client secret) and checks every answer, so its figures are throughput of correct answers and a
//! script can rely on its exit status. It exists to measure the operator (for example its memory
//! under load, `benches/local-load-rss.sh`), not to test other people's servers: the target must be
//! a loopback address, and every run stops at a request count and a duration, both capped.
//! `uid2-load floor-server` is the yardstick: a server that does no work ([`floor`]).

mod cli;
mod driver;
mod floor;
mod pace;
mod scenario;
mod stats;

use std::io::Write;
use std::process::ExitCode;

use cli::{Command, FloorOptions};

fn main() -> ExitCode {
    let options = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Floor(options)) => return floor_server(&options),
        Ok(Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("uid2-load: {problem}\n\n{}", cli::USAGE);
            return ExitCode::from(64);
        }
    };
    // One thread by default: pinned to its own CPU with taskset, the client then never competes
    // with itself, and the server's CPU is what the figures measure.
    let runtime = if options.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("uid2-load: no async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(driver::run(&options)) {
        Ok(summary) => {
            if options.json {
                println!("{}", summary.json());
            } else {
                print!("{}", summary.text());
            }
            if summary.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(problem) => {
            eprintln!("uid2-load: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// Serves the floor on one thread until `--lifetime` runs out (or the process is stopped).
fn floor_server(options: &FloorOptions) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("uid2-load floor-server: no async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(options.listen).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("uid2-load floor-server: cannot listen on {}: {e}", options.listen);
                return ExitCode::FAILURE;
            }
        };
        if let Ok(addr) = listener.local_addr() {
            // A script that asked for port 0 reads the port from this line.
            println!("listening on {addr}");
            let _ = std::io::stdout().flush();
        }
        let _ = tokio::time::timeout(options.lifetime, floor::serve(listener)).await;
        ExitCode::SUCCESS
    })
}
