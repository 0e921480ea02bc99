//! The command line of `uid2-load`, parsed into [`Options`] (apart from `main.rs` so it can be
//! tested).
//!
//! Invariants the rest of the tool relies on: the target is a loopback address reached over plain
//! HTTP (a load tool must not be pointable at someone else's operator by a typo), and every run
//! is bounded in both request count and wall time, with hard ceilings on both.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

use crate::scenario::Scenario;

pub const USAGE: &str = "\
usage: uid2-load [--scenario generate|refresh|map-v2|map-v3|key-sharing|floor]
                 [--url http://127.0.0.1:8080] [--connections 8] [--threads 1]
                 [--requests 100000] [--duration 30] [--rate N] [--batch 5000] [--timeout 30]
                 [--binary] [--json] [--allow-shedding] [--api-key KEY --secret SECRET]
       uid2-load floor-server [--listen 127.0.0.1:0] [--lifetime 900]

Drives a UID2 operator over loopback HTTP/1.1 keep-alive with v2-enveloped requests and
checks every answer (HTTP 200, opens with the client secret, echoes the nonce, status success).
Stops at --requests or --duration seconds, whichever comes first.

  --scenario     generate     /v2/token/generate, a distinct email per request
                 refresh      /v2/token/refresh, each connection refreshing its own identity
                 map-v2       /v2/identity/map, --batch email hashes per request
                 map-v3       /v3/identity/map, --batch email hashes per request (default)
                 key-sharing  /v2/key/sharing
                 floor        the same POST as generate, to a floor-server: HTTP 200 and
                              exactly 400 bytes expected
  --url          loopback only (127.0.0.0/8, ::1, localhost); plain http
  --connections  concurrent keep-alive connections, each with one request in flight (max 1024)
  --threads      client runtime threads (max 64)
  --requests     at most this many measured requests (max 10000000)
  --duration     at most this many seconds of sending (max 600)
  --rate         at most this many requests per second over all connections (max 1000000),
                 sent on a fixed schedule (the client spins its core to send on time); latency
                 counts from when a request was due if it went out late
  --timeout      seconds one request may take before it counts as failed (max 120)
  --binary       application/octet-stream envelopes instead of base64 text
  --json         print the summary as one JSON object
  --allow-shedding  count `503 Service Unavailable` answers as shed (with their own latency
                 figures), not as failures: for driving an operator past its admission limits
  --api-key, --secret  default: the local-mode site-999 test client (all roles)

floor-server answers every request on any path (body read and discarded) with a fixed 400-byte
body over HTTP/1.1 keep-alive, on one thread: the floor for HTTP on this machine, to compare the
operator with. It prints `listening on ADDR` and exits after --lifetime seconds (max 86400).
  --listen       loopback only; port 0 picks a free port

exit status: 0 every request succeeded (or, with --allow-shedding, was shed) and at least one
succeeded; 1 any request failed or none succeeded; 64 bad usage";

/// The local-mode test client of site 999 (MAPPER, GENERATOR, ID_READER, SHARER): public test
/// keys from `testdata/local-store`, useless against a real operator.
pub const DEFAULT_API_KEY: &str = "UID2-C-L-999-fCXrMM.fsR3mDqAXELtWWMS+xG1s7RdgRTMqdOH2qaAo=";
pub const DEFAULT_SECRET: &str = "DzBzbjTJcYL0swDtFs2krRNu+g1Eokm2tBU4dEuD0Wk=";

pub const MAX_REQUESTS: u64 = 10_000_000;
pub const MAX_DURATION: Duration = Duration::from_secs(600);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);
pub const MAX_CONNECTIONS: usize = 1024;
pub const MAX_THREADS: usize = 64;
pub const MAX_RATE: u64 = 1_000_000;
pub const MAX_LIFETIME: Duration = Duration::from_secs(86_400);
/// Well above the reference's 5,000-item recommendation; the operator's 1 MiB body limit refuses
/// far smaller batches anyway, which is a server answer worth seeing rather than a usage error.
pub const MAX_BATCH: usize = 100_000;

/// Where to send: a loopback socket address and the `Host` header that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub host_header: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub scenario: Scenario,
    pub target: Target,
    pub connections: usize,
    pub threads: usize,
    pub requests: u64,
    pub duration: Duration,
    /// Requests per second over all connections; `None` = as fast as the answers come.
    pub rate: Option<u64>,
    pub timeout: Duration,
    pub batch: usize,
    pub binary: bool,
    pub json: bool,
    /// A 503 answer is counted as shed, not failed.
    pub allow_shedding: bool,
    pub api_key: String,
    pub secret: String,
}

/// `floor-server`: where to listen and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloorOptions {
    pub listen: SocketAddr,
    pub lifetime: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Box<Options>),
    Floor(FloorOptions),
    Help,
}

/// Accepts only `http://<loopback>[:port][/]`. `localhost` is taken to mean 127.0.0.1 without
/// asking a resolver, because a hosts file can point it anywhere.
pub fn loopback_target(text: &str) -> Result<Target, String> {
    let url = Url::parse(text).map_err(|e| format!("--url: {e}"))?;
    if url.scheme() != "http" {
        return Err("--url: only plain http:// is supported".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err("--url: no credentials, query or fragment".to_owned());
    }
    if url.path() != "/" {
        return Err("--url: give the base URL only; the scenario chooses the path".to_owned());
    }
    let ip = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(Host::Domain(name)) if name.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => return Err("--url: the host must be a loopback address".to_owned()),
    };
    if !ip.is_loopback() {
        return Err("--url: the host must be a loopback address".to_owned());
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let host = url.host_str().unwrap_or("127.0.0.1");
    Ok(Target {
        addr: SocketAddr::new(ip, port),
        host_header: format!("{host}:{port}"),
    })
}

/// A whole number in `min..=max`, or a message naming the flag.
fn bounded<T>(flag: &str, value: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    match value.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        Ok(_) => Err(format!("{flag}: must be between {min} and {max}")),
        Err(_) => Err(format!("{flag}: not a whole number")),
    }
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options {
        scenario: Scenario::MapV3,
        target: loopback_target("http://127.0.0.1:8080")?,
        connections: 8,
        threads: 1,
        requests: 100_000,
        duration: Duration::from_secs(30),
        rate: None,
        timeout: Duration::from_secs(30),
        batch: 5000,
        binary: false,
        json: false,
        allow_shedding: false,
        api_key: DEFAULT_API_KEY.to_owned(),
        secret: DEFAULT_SECRET.to_owned(),
    };
    let mut args = args.into_iter().peekable();
    if args.peek().map(String::as_str) == Some("floor-server") {
        args.next();
        return parse_floor(args);
    }
    while let Some((flag, value)) = next_flag(&mut args, &["--json", "--binary", "--allow-shedding"])? {
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--json" => options.json = true,
            "--binary" => options.binary = true,
            "--allow-shedding" => options.allow_shedding = true,
            _ => set(&mut options, &flag, &value.unwrap_or_default())?,
        }
    }
    Ok(Command::Run(Box::new(options)))
}

/// The next `--flag value`, `--flag=value` or bare switch (one of `switches`, or help) from `args`.
fn next_flag(
    args: &mut impl Iterator<Item = String>,
    switches: &[&str],
) -> Result<Option<(String, Option<String>)>, String> {
    let Some(arg) = args.next() else {
        return Ok(None);
    };
    let (flag, inline) = match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
        _ => (arg, None),
    };
    if flag == "--help" || flag == "-h" || switches.contains(&flag.as_str()) {
        return Ok(Some((flag, None)));
    }
    if !flag.starts_with("--") {
        return Err(format!("unexpected argument: {flag}"));
    }
    let value = match inline {
        Some(value) => value,
        None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
    };
    Ok(Some((flag, Some(value))))
}

fn parse_floor(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut options = FloorOptions {
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        lifetime: Duration::from_secs(900),
    };
    while let Some((flag, value)) = next_flag(&mut args, &[])? {
        let value = value.unwrap_or_default();
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--listen" => {
                let addr: SocketAddr = value
                    .parse()
                    .map_err(|_| "--listen: not an IP:port address".to_owned())?;
                if !addr.ip().is_loopback() {
                    return Err("--listen: the address must be a loopback address".to_owned());
                }
                options.listen = addr;
            }
            "--lifetime" => {
                options.lifetime = Duration::from_secs(bounded(&flag, &value, 1, MAX_LIFETIME.as_secs())?);
            }
            _ => return Err(format!("unknown option: {flag}")),
        }
    }
    Ok(Command::Floor(options))
}

fn set(options: &mut Options, flag: &str, value: &str) -> Result<(), String> {
    match flag {
        "--scenario" => {
            options.scenario = Scenario::from_name(value).ok_or_else(|| format!("--scenario: unknown {value:?}"))?;
        }
        "--url" => options.target = loopback_target(value)?,
        "--connections" => options.connections = bounded(flag, value, 1, MAX_CONNECTIONS)?,
        "--threads" => options.threads = bounded(flag, value, 1, MAX_THREADS)?,
        "--requests" => options.requests = bounded(flag, value, 1, MAX_REQUESTS)?,
        "--duration" => options.duration = Duration::from_secs(bounded(flag, value, 1, MAX_DURATION.as_secs())?),
        "--rate" => options.rate = Some(bounded(flag, value, 1, MAX_RATE)?),
        "--timeout" => options.timeout = Duration::from_secs(bounded(flag, value, 1, MAX_TIMEOUT.as_secs())?),
        "--batch" => options.batch = bounded(flag, value, 1, MAX_BATCH)?,
        "--api-key" => options.api_key = value.to_owned(),
        "--secret" => options.secret = value.to_owned(),
        _ => return Err(format!("unknown option: {flag}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(|s| (*s).to_owned()))? {
            Command::Run(options) => Ok(*options),
            Command::Help => Err("help".to_owned()),
            Command::Floor(_) => Err("floor-server".to_owned()),
        }
    }

    fn floor(args: &[&str]) -> Result<FloorOptions, String> {
        let args = std::iter::once("floor-server").chain(args.iter().copied());
        match parse(args.map(str::to_owned))? {
            Command::Floor(options) => Ok(options),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn the_rate_is_optional_and_bounded() {
        assert_eq!(run(&[]).map(|o| o.rate), Ok(None));
        assert_eq!(run(&["--rate", "20000"]).map(|o| o.rate), Ok(Some(20_000)));
        assert_eq!(run(&["--rate=1"]).map(|o| o.rate), Ok(Some(1)));
        assert!(run(&["--rate", "0"]).is_err());
        assert!(run(&["--rate", "1000001"]).is_err());
        assert!(run(&["--rate", "2.5"]).is_err());
    }

    #[test]
    fn the_floor_server_listens_on_loopback_only_for_a_bounded_time() {
        let o = floor(&[]).expect("defaults");
        assert_eq!(o.listen, "127.0.0.1:0".parse().expect("addr"));
        assert_eq!(o.lifetime, Duration::from_secs(900));
        let o = floor(&["--listen", "127.0.0.1:18999", "--lifetime=60"]).expect("parses");
        assert_eq!((o.listen.port(), o.lifetime), (18999, Duration::from_secs(60)));
        assert!(floor(&["--listen", "[::1]:0"]).is_ok());
        for refused in ["0.0.0.0:80", "10.1.2.3:80", "localhost:80", "127.0.0.1"] {
            assert!(floor(&["--listen", refused]).is_err(), "{refused}");
        }
        assert!(floor(&["--lifetime", "0"]).is_err());
        assert!(floor(&["--lifetime", "86401"]).is_err());
        assert!(floor(&["--scenario", "generate"]).is_err());
        assert!(floor(&["stray"]).is_err());
        assert_eq!(
            parse(["floor-server".to_owned(), "--help".to_owned()]),
            Ok(Command::Help)
        );
    }

    #[test]
    fn defaults_are_bounded_and_local() {
        let o = run(&[]).expect("defaults parse");
        assert_eq!(o.scenario, Scenario::MapV3);
        assert_eq!(o.target.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(o.target.host_header, "127.0.0.1:8080");
        assert_eq!(
            (o.requests, o.duration, o.batch),
            (100_000, Duration::from_secs(30), 5000)
        );
        assert_eq!((o.connections, o.threads, o.json, o.binary), (8, 1, false, false));
        assert!(!o.allow_shedding);
        assert_eq!(o.api_key, DEFAULT_API_KEY);
    }

    #[test]
    fn flags_take_separate_or_inline_values() {
        let o = run(&[
            "--scenario",
            "generate",
            "--requests=500",
            "--duration",
            "12",
            "--connections=32",
            "--threads",
            "2",
            "--batch",
            "100",
            "--timeout=5",
            "--url",
            "http://localhost:18080/",
            "--json",
            "--binary",
            "--allow-shedding",
        ])
        .expect("parses");
        assert_eq!(o.scenario, Scenario::Generate);
        assert_eq!((o.requests, o.duration), (500, Duration::from_secs(12)));
        assert_eq!((o.connections, o.threads, o.batch), (32, 2, 100));
        assert_eq!(o.timeout, Duration::from_secs(5));
        assert_eq!(o.target.addr, "127.0.0.1:18080".parse().expect("addr"));
        assert_eq!(o.target.host_header, "localhost:18080");
        assert!(o.json && o.binary && o.allow_shedding);
    }

    #[test]
    fn every_scenario_name_round_trips() {
        for name in ["generate", "refresh", "map-v2", "map-v3", "key-sharing", "floor"] {
            let o = run(&["--scenario", name]).expect("known scenario");
            assert_eq!(o.scenario.name(), name);
        }
        assert!(run(&["--scenario", "map"]).is_err());
    }

    #[test]
    fn bounds_are_enforced() {
        assert!(run(&["--duration", "601"]).is_err());
        assert!(run(&["--duration", "0"]).is_err());
        assert!(run(&["--duration", "600"]).is_ok());
        assert!(run(&["--requests", "0"]).is_err());
        assert!(run(&["--requests", "10000001"]).is_err());
        assert!(run(&["--connections", "1025"]).is_err());
        assert!(run(&["--threads", "0"]).is_err());
        assert!(run(&["--timeout", "121"]).is_err());
        assert!(run(&["--batch", "100001"]).is_err());
        assert!(run(&["--requests", "-3"]).is_err());
        assert!(run(&["--requests", "1e3"]).is_err());
    }

    #[test]
    fn malformed_command_lines_are_refused() {
        assert!(run(&["--requests"]).is_err());
        assert!(run(&["--bogus", "1"]).is_err());
        assert!(run(&["stray"]).is_err());
        assert_eq!(parse(["-h".to_owned()]), Ok(Command::Help));
    }

    #[test]
    fn only_loopback_http_targets_are_accepted() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://127.1.2.3:9",
            "http://[::1]:8080",
            "http://LOCALHOST:8080",
        ] {
            assert!(loopback_target(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            loopback_target("http://[::1]:8080").map(|t| t.host_header),
            Ok("[::1]:8080".to_owned())
        );
        assert_eq!(
            loopback_target("http://127.0.0.1").map(|t| t.addr.port()),
            Ok(80),
            "default port"
        );
        for refused in [
            "http://10.0.0.1:8080",
            "http://0.0.0.0:8080",
            "http://[::]:8080",
            "http://example.com:8080",
            "http://localhost.example.com:8080",
            "http://127.0.0.1.nip.io:8080",
            "https://127.0.0.1:8080",
            "http://user:pw@127.0.0.1:8080",
            "http://127.0.0.1:8080/v2/token/generate",
            "http://127.0.0.1:8080/?x=1",
            "127.0.0.1:8080",
            "",
        ] {
            assert!(loopback_target(refused).is_err(), "{refused}");
        }
    }
}
