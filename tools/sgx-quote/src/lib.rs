//! `sgx_quote`: what an SGX quote says about the enclave that made it.
//!
//! Inside the Occlum enclave it asks `/dev/sgx` for a fresh quote and prints the enclave's
//! identity — the values Core's allowlist and checks need: MRENCLAVE (allowlisted), MRSIGNER,
//! product id (770) and security version (2), and whether the enclave is debuggable (must not
//! be). Every binary of one Occlum image reports the same MRENCLAVE, so this is how a build
//! publishes the value to allowlist. `--file` reads a saved quote instead, anywhere.
//!
//! Malformed input is an error message and a non-zero exit status, never a panic.

use std::io::Write;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use uid2_attest::quote::Quote;
use uid2_attest::sgx::{AzureSgxProvider, OcclumDevice, QuoteDevice, DEFAULT_DEVICE_PATH};

pub const USAGE: &str = "\
usage: sgx_quote [--file QUOTE | --device PATH] [--save FILE] [--json]

  (no option)    generate a fresh quote with the enclave's /dev/sgx (inside Occlum) and
                 print MRENCLAVE, MRSIGNER, PRODUCT ID, SEC VERSION, DEBUGGABLE, QUOTE SIZE
  --file QUOTE   parse a saved raw quote instead (works anywhere)
  --device PATH  the SGX device (default /dev/sgx)
  --save FILE    also write the fresh quote's raw bytes to FILE
  --json         print one JSON object instead of text

exit status: 0 printed, 1 no quote (no device, unreadable or malformed quote), 64 bad usage";

/// Exit status of a bad command line (`EX_USAGE`).
pub const EX_USAGE: u8 = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub file: Option<PathBuf>,
    pub device: PathBuf,
    pub save: Option<PathBuf>,
    pub json: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Print(Options),
    Help,
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options {
        file: None,
        device: PathBuf::from(DEFAULT_DEVICE_PATH),
        save: None,
        json: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--json" => options.json = true,
            "--file" => options.file = Some(PathBuf::from(value("--file")?)),
            "--device" => options.device = PathBuf::from(value("--device")?),
            "--save" => options.save = Some(PathBuf::from(value("--save")?)),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    if options.file.is_some() && options.save.is_some() {
        return Err("--save applies to a fresh quote, not to --file".to_owned());
    }
    Ok(Command::Print(options))
}

/// The report data of a diagnostic quote: a fixed, recognisable value (no key is bound).
pub fn diagnostic_report_data() -> [u8; 64] {
    let mut data = [0u8; 64];
    data[..32].copy_from_slice(&Sha256::digest(b"uid2-operator sgx_quote diagnostic"));
    data
}

/// The quote bytes `options` ask for: read from `--file`, or made by `device`.
pub fn obtain(options: &Options, device: Option<Box<dyn QuoteDevice>>) -> Result<Vec<u8>, String> {
    if let Some(path) = &options.file {
        return std::fs::read(path).map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()));
    }
    let device = match device {
        Some(device) => device,
        None => Box::new(OcclumDevice::open(&options.device).map_err(|e| e.to_string())?),
    };
    let quote = AzureSgxProvider::new(device)
        .quote(&diagnostic_report_data())
        .map_err(|e| format!("no quote: {e}"))?;
    if let Some(path) = &options.save {
        std::fs::write(path, &quote).map_err(|e| format!("cannot write {}: {}", path.display(), e.kind()))?;
    }
    Ok(quote)
}

/// The text or JSON report of `bytes`.
pub fn describe(bytes: &[u8], json: bool) -> Result<String, String> {
    let quote = Quote::parse(bytes).map_err(|e| format!("not a usable SGX quote: {e}"))?;
    let body = &quote.body;
    Ok(if json {
        serde_json::json!({
            "mrenclave": hex::encode(body.mr_enclave),
            "mrsigner": hex::encode(body.mr_signer),
            "product_id": body.isv_prod_id,
            "svn": body.isv_svn,
            "debuggable": body.is_debuggable(),
            "quote_size": quote.len,
            "report_data": hex::encode(body.report_data),
        })
        .to_string()
            + "\n"
    } else {
        format!(
            "MRENCLAVE: {}\nMRSIGNER: {}\nPRODUCT ID: {}\nSEC VERSION: {}\nDEBUGGABLE: {}\nQUOTE SIZE: {}\n",
            hex::encode_upper(body.mr_enclave),
            hex::encode_upper(body.mr_signer),
            body.isv_prod_id,
            body.isv_svn,
            body.is_debuggable(),
            quote.len
        )
    })
}

/// Runs one command; returns the exit status.
pub fn run(options: &Options, device: Option<Box<dyn QuoteDevice>>, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let described = obtain(options, device).and_then(|bytes| describe(&bytes, options.json));
    match described {
        Ok(text) => match out.write_all(text.as_bytes()) {
            Ok(()) => 0,
            Err(_) => 1,
        },
        Err(message) => {
            let _ = writeln!(err, "sgx_quote: {message}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uid2_attest::quote::EnclaveIdentity;
    use uid2_attest::sgx::SimulatedDevice;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn command_lines() {
        let Ok(Command::Print(options)) = parse(args(&[])) else {
            panic!("no arguments print a fresh quote");
        };
        assert_eq!(options.device, PathBuf::from("/dev/sgx"));
        assert_eq!(options.file, None);
        assert_eq!(parse(args(&["--help"])), Ok(Command::Help));
        assert!(parse(args(&["--file"])).is_err());
        assert!(parse(args(&["--bogus"])).is_err());
        assert!(parse(args(&["--file", "q", "--save", "s"])).is_err());
        let Ok(Command::Print(options)) = parse(args(&["--file", "q.bin", "--json"])) else {
            panic!("--file --json");
        };
        assert_eq!(options.file, Some(PathBuf::from("q.bin")));
        assert!(options.json);
    }

    #[test]
    fn a_fresh_quote_from_a_device_is_described_and_saved() {
        let identity = EnclaveIdentity {
            mr_enclave: [0xAB; 32],
            mr_signer: [0x01; 32],
            isv_prod_id: 770,
            isv_svn: 2,
            debuggable: false,
        };
        let saved = std::env::temp_dir().join(format!("sgx-quote-test-{}.bin", std::process::id()));
        let options = Options {
            file: None,
            device: PathBuf::from("/unused"),
            save: Some(saved.clone()),
            json: false,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = run(
            &options,
            Some(Box::new(SimulatedDevice::new(identity))),
            &mut out,
            &mut err,
        );
        assert_eq!(status, 0, "{}", String::from_utf8_lossy(&err));
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.starts_with(&format!("MRENCLAVE: {}\n", "AB".repeat(32))), "{text}");
        assert!(
            text.contains("PRODUCT ID: 770\nSEC VERSION: 2\nDEBUGGABLE: false\n"),
            "{text}"
        );
        let quote = Quote::parse(&std::fs::read(&saved).expect("saved")).expect("parses");
        assert_eq!(quote.body.report_data, diagnostic_report_data());
        let _ = std::fs::remove_file(saved);
    }
}
