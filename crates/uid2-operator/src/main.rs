//! `uid2-operator`: the UID2 Operator. With no arguments it serves local mode on
//! 127.0.0.1:8080 (API) and :9080 (`/metrics`) from the bundled test store.

use std::process::ExitCode;

use uid2_operator::cli::{self, Command};

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("{message}\n\n{}", cli::USAGE);
            return ExitCode::from(cli::EX_USAGE);
        }
    };
    match command {
        Command::Help => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("uid2-operator {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::CheckConfig { config } => cli::check_config(config.as_deref()),
        Command::Serve { config } => cli::serve(config.as_deref()),
    }
}
