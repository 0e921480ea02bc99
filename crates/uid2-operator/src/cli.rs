//! Command line: parse arguments, load configuration, start the runtime. Kept out of `main.rs`
//! so it can be tested.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, ConfigProblem, Loaded};

/// Exit status for a bad command line or configuration (`EX_USAGE`).
pub const EX_USAGE: u8 = 64;

pub const USAGE: &str = "\
usage: uid2-operator [--config FILE] [--check-config]

  --config FILE    JSON configuration (the reference operator's key names; see
                   docs/configuration.md). Without it: local mode on 127.0.0.1:8080.
  --check-config   validate the configuration, report every bad key, and exit
                   (0 = valid, 64 = invalid)
  --version        print the version
  --help           print this help

environment: core_api_token, optout_api_token (operator keys), port_offset (shifts both
ports), RUST_LOG (log filter, default info), UID2_CONFIG (the configuration file; when set,
--config may only name the same file)";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Serve { config: Option<PathBuf> },
    CheckConfig { config: Option<PathBuf> },
    Help,
    Version,
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut config = None;
    let mut check = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => {
                let path = args.next().ok_or("--config needs a file path")?;
                config = Some(PathBuf::from(path));
            }
            "--check-config" => check = true,
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            other => {
                if let Some(path) = other.strip_prefix("--config=") {
                    config = Some(PathBuf::from(path));
                } else {
                    return Err(format!("unknown argument: {other}"));
                }
            }
        }
    }
    Ok(if check {
        Command::CheckConfig { config }
    } else {
        Command::Serve { config }
    })
}

/// The configuration file to read: `UID2_CONFIG` when it is set, else `--config`.
///
/// The enclave package sets `UID2_CONFIG` in the enclave's measured environment, which the host
/// cannot override; refusing a different `--config` keeps the untrusted host's command line from
/// choosing another file, or local mode with its public test keys.
pub fn config_file(argument: Option<&Path>, env_value: Option<&str>) -> Result<Option<PathBuf>, String> {
    match (env_value.filter(|v| !v.is_empty()), argument) {
        (None, argument) => Ok(argument.map(Path::to_path_buf)),
        (Some(fixed), None) => Ok(Some(PathBuf::from(fixed))),
        (Some(fixed), Some(argument)) if argument == Path::new(fixed) => Ok(Some(argument.to_path_buf())),
        (Some(fixed), Some(argument)) => Err(format!(
            "--config {} conflicts with UID2_CONFIG={fixed}; when UID2_CONFIG is set only that file is read",
            argument.display()
        )),
    }
}

fn read_config(argument: Option<&Path>) -> Result<Loaded, Vec<ConfigProblem>> {
    let fixed = std::env::var("UID2_CONFIG").ok();
    let path = config_file(argument, fixed.as_deref()).map_err(|problem| {
        vec![ConfigProblem {
            key: "(file)".into(),
            problem,
        }]
    })?;
    let text = match path {
        None => None,
        Some(p) => Some(std::fs::read_to_string(&p).map_err(|e| {
            vec![ConfigProblem {
                key: "(file)".into(),
                problem: format!("cannot read {}: {}", p.display(), e.kind()),
            }]
        })?),
    };
    config::load(text.as_deref(), &|name| std::env::var(name).ok())
}

fn report(problems: &[ConfigProblem]) {
    eprintln!("invalid configuration:");
    for p in problems {
        eprintln!("  {p}");
    }
}

pub fn check_config(path: Option<&Path>) -> ExitCode {
    match read_config(path) {
        Ok(loaded) => {
            for key in &loaded.unknown_keys {
                println!("warning: unknown key {key} (ignored)");
            }
            println!("configuration OK");
            ExitCode::SUCCESS
        }
        Err(problems) => {
            report(&problems);
            ExitCode::from(EX_USAGE)
        }
    }
}

pub fn serve(path: Option<&Path>) -> ExitCode {
    let loaded = match read_config(path) {
        Ok(loaded) => loaded,
        Err(problems) => {
            report(&problems);
            return ExitCode::from(EX_USAGE);
        }
    };
    crate::logging::init();
    for key in &loaded.unknown_keys {
        tracing::warn!(key = %key, "unknown configuration key ignored");
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = loaded.config.service_instances {
        runtime.worker_threads(n);
    }
    if let Some(n) = loaded.config.max_blocking_threads {
        // Inside an enclave every thread needs a slot (Occlum's max_num_of_threads); tokio's
        // default of 512 blocking threads would exceed it.
        runtime.max_blocking_threads(n);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(rt) => rt,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let app = match crate::App::build(loaded.config).await {
            Ok(app) => app,
            Err(error) => {
                tracing::error!(%error, "startup failed");
                return ExitCode::FAILURE;
            }
        };
        match app.run(crate::shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "operator stopped");
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse(args(&[])), Ok(Command::Serve { config: None }));
        assert_eq!(
            parse(args(&["--config", "a.json"])),
            Ok(Command::Serve {
                config: Some("a.json".into())
            })
        );
        assert_eq!(
            parse(args(&["--config=a.json", "--check-config"])),
            Ok(Command::CheckConfig {
                config: Some("a.json".into())
            })
        );
        assert_eq!(parse(args(&["--help"])), Ok(Command::Help));
        assert!(parse(args(&["--config"])).is_err());
        assert!(parse(args(&["--bogus"])).is_err());
    }

    #[test]
    fn uid2_config_pins_the_file_against_the_command_line() {
        let fixed = Some("/app/conf/config.json");
        assert_eq!(config_file(None, None), Ok(None));
        assert_eq!(config_file(Some(Path::new("a.json")), None), Ok(Some("a.json".into())));
        assert_eq!(config_file(None, fixed), Ok(Some("/app/conf/config.json".into())));
        assert_eq!(
            config_file(Some(Path::new("/app/conf/config.json")), fixed),
            Ok(Some("/app/conf/config.json".into()))
        );
        let error = config_file(Some(Path::new("/tmp/other.json")), fixed).expect_err("conflict");
        assert!(error.contains("conflicts with UID2_CONFIG"), "{error}");
        assert_eq!(config_file(None, Some("")), Ok(None), "an empty variable is unset");
    }
}
