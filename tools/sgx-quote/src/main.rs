//! `sgx_quote`: see the library documentation.

use std::process::ExitCode;

use uid2_sgx_quote::{parse, run, Command, EX_USAGE, USAGE};

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Print(options)) => {
            let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
            ExitCode::from(run(&options, None, &mut out, &mut err))
        }
        Err(message) => {
            eprintln!("sgx_quote: {message}\n\n{USAGE}");
            ExitCode::from(EX_USAGE)
        }
    }
}
