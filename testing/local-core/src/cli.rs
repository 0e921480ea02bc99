//! Command line of the `uid2-local-core` binary, parsed into a [`Command`] (kept out of `main.rs`
//! so it can be tested).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::generate::{default_source_store, GenerateOptions};

pub const USAGE: &str = "\
usage: uid2-local-core [serve] --store DIR [--listen 127.0.0.1:8088] [--public-url URL]
                       [--token-lifetime-seconds N] [--no-jitter]
                       [--operators FILE] [--enclaves FILE]
                       [--att-token-enc-key TEXT] [--att-token-enc-salt TEXT]
                       [--maa-url URL] [--maa-signing-key FILE]
       uid2-local-core generate-store --out DIR [--buckets 1048576] [--optouts 10000000]
                       [--seed N] [--from DIR]

serve            a local UID2 Core + OptOut over a store directory in the reference layout
                 (files are re-read on every request). Loopback addresses only.
  --operators    default <store>/operators/operators.json
  --enclaves     default <store>/operators/enclaves.json (missing = empty allowlist)
  --no-jitter    tokens expire exactly after the lifetime (default: +300..600 s)
  --maa-url      the MAA-compatible service the azure-sgx verifier calls
                 (default: the built-in simulator at <public url>/maa)
  --maa-signing-key  PKCS#8 PEM RSA key the simulator signs with (default: bundled test key)
generate-store   write a full-size synthetic store (benchmarks); clients, keysets and keys
                 are copied from --from (default: the repository's testdata/local-store)

environment: RUST_LOG (log filter, default info)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    pub store: PathBuf,
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    pub token_lifetime_seconds: u64,
    pub jitter: bool,
    pub operators: Option<PathBuf>,
    pub enclaves: Option<PathBuf>,
    pub enc_key: Option<String>,
    pub enc_salt: Option<String>,
    pub maa_url: Option<String>,
    pub maa_signing_key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Serve(ServeOptions),
    Generate(GenerateOptions),
    Help,
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{flag}: not a number"))
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter().peekable();
    let generate = match args.peek().map(String::as_str) {
        Some("generate-store") => {
            args.next();
            true
        }
        Some("serve") => {
            args.next();
            false
        }
        _ => false,
    };
    let mut values: Vec<(String, Option<String>)> = Vec::new();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg, None),
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--no-jitter" => values.push((flag, None)),
            f if f.starts_with("--") => {
                let value = match inline {
                    Some(value) => value,
                    None => args.next().ok_or_else(|| format!("{f} needs a value"))?,
                };
                values.push((flag, Some(value)));
            }
            other => return Err(format!("unexpected argument: {other}")),
        }
    }
    let take = |name: &str| {
        values
            .iter()
            .rev()
            .find(|(f, _)| f == name)
            .and_then(|(_, v)| v.clone())
    };
    let known: &[&str] = if generate {
        &["--out", "--buckets", "--optouts", "--seed", "--from"]
    } else {
        &[
            "--store",
            "--listen",
            "--public-url",
            "--token-lifetime-seconds",
            "--no-jitter",
            "--operators",
            "--enclaves",
            "--att-token-enc-key",
            "--att-token-enc-salt",
            "--maa-url",
            "--maa-signing-key",
        ]
    };
    if let Some((unknown, _)) = values.iter().find(|(f, _)| !known.contains(&f.as_str())) {
        return Err(format!("unknown option: {unknown}"));
    }
    if generate {
        return Ok(Command::Generate(GenerateOptions {
            out: take("--out")
                .map(PathBuf::from)
                .ok_or("generate-store needs --out DIR")?,
            from: take("--from").map(PathBuf::from).unwrap_or_else(default_source_store),
            buckets: take("--buckets")
                .map(|v| number("--buckets", &v))
                .transpose()?
                .unwrap_or(1_048_576),
            optouts: take("--optouts")
                .map(|v| number("--optouts", &v))
                .transpose()?
                .unwrap_or(10_000_000),
            seed: take("--seed").map(|v| number("--seed", &v)).transpose()?.unwrap_or(1),
        }));
    }
    let listen: SocketAddr = take("--listen")
        .unwrap_or_else(|| "127.0.0.1:8088".to_owned())
        .parse()
        .map_err(|_| "--listen: not an address like 127.0.0.1:8088".to_owned())?;
    if !listen.ip().is_loopback() {
        return Err("--listen: loopback addresses only".to_owned());
    }
    Ok(Command::Serve(ServeOptions {
        store: take("--store").map(PathBuf::from).ok_or("--store DIR is required")?,
        listen,
        public_url: take("--public-url"),
        token_lifetime_seconds: take("--token-lifetime-seconds")
            .map(|v| number("--token-lifetime-seconds", &v))
            .transpose()?
            .unwrap_or(7200),
        jitter: !values.iter().any(|(f, _)| f == "--no-jitter"),
        operators: take("--operators").map(PathBuf::from),
        enclaves: take("--enclaves").map(PathBuf::from),
        enc_key: take("--att-token-enc-key"),
        enc_salt: take("--att-token-enc-salt"),
        maa_url: take("--maa-url"),
        maa_signing_key: take("--maa-signing-key").map(PathBuf::from),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn serve_options() {
        let Ok(Command::Serve(options)) = parse(args(
            "--store s --listen 127.0.0.1:0 --token-lifetime-seconds=30 --no-jitter --operators o.json",
        )) else {
            panic!("serve parses");
        };
        assert_eq!(options.store, PathBuf::from("s"));
        assert_eq!(options.listen.port(), 0);
        assert_eq!(options.token_lifetime_seconds, 30);
        assert!(!options.jitter);
        assert_eq!(options.operators, Some(PathBuf::from("o.json")));
        assert_eq!(options.maa_url, None);
        let Ok(Command::Serve(options)) = parse(args(
            "--store s --maa-url http://127.0.0.1:9/maa --maa-signing-key k.pem",
        )) else {
            panic!("serve parses");
        };
        assert_eq!(options.maa_url.as_deref(), Some("http://127.0.0.1:9/maa"));
        assert_eq!(options.maa_signing_key, Some(PathBuf::from("k.pem")));
        assert_eq!(options.enclaves, None);
        let Ok(Command::Serve(defaults)) = parse(args("serve --store s")) else {
            panic!("defaults");
        };
        assert_eq!(defaults.listen, "127.0.0.1:8088".parse::<SocketAddr>().expect("addr"));
        assert!(defaults.jitter);
        assert_eq!(defaults.token_lifetime_seconds, 7200);
    }

    #[test]
    fn generate_options() {
        let Ok(Command::Generate(options)) = parse(args("generate-store --out d --buckets 10 --optouts 5 --seed 3"))
        else {
            panic!("generate parses");
        };
        assert_eq!((options.buckets, options.optouts, options.seed), (10, 5, 3));
        assert_eq!(options.out, PathBuf::from("d"));
    }

    #[test]
    fn mistakes_are_reported() {
        for bad in [
            "",
            "--store",
            "--store s --listen 0.0.0.0:8088",
            "--store s --listen nowhere",
            "--store s --bogus 1",
            "--store s --token-lifetime-seconds x",
            "generate-store",
            "generate-store --out d --store s",
            "stray",
        ] {
            assert!(parse(args(bad)).is_err(), "{bad}");
        }
        assert_eq!(parse(args("--help")), Ok(Command::Help));
    }
}
