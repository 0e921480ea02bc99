//! The `sgx_quote` binary on the real Azure example quote, on broken quotes, and without an SGX
//! device (this machine has none, which is the case it must explain).

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sgx_quote(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sgx_quote"))
        .args(args)
        .output()
        .expect("runs sgx_quote")
}

fn golden() -> String {
    repo()
        .join("testdata/sgx/azure-example-quote.bin")
        .display()
        .to_string()
}

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("sgx-quote-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).expect("write a scratch quote");
    path
}

#[test]
fn prints_the_identity_of_a_saved_quote() {
    let output = sgx_quote(&["--file", &golden()]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).expect("UTF-8"),
        "MRENCLAVE: D971961F724B71DFC5F1553AC4EFB68AD160E849602CDD851CB840423E592A73\n\
         MRSIGNER: 856823123027010ED0CE1F7D515B6BE1D7505E5828FBA19785676030D8FFFC28\n\
         PRODUCT ID: 4639\n\
         SEC VERSION: 1\n\
         DEBUGGABLE: false\n\
         QUOTE SIZE: 4580\n"
    );
}

#[test]
fn prints_json_for_machines() {
    let output = sgx_quote(&["--file", &golden(), "--json"]);
    assert!(output.status.success());
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(
        value["mrenclave"],
        "d971961f724b71dfc5f1553ac4efb68ad160e849602cdd851cb840423e592a73"
    );
    assert_eq!(value["product_id"], 4639);
    assert_eq!(value["svn"], 1);
    assert_eq!(value["debuggable"], false);
    assert_eq!(value["quote_size"], 4580);
    assert!(value["report_data"]
        .as_str()
        .expect("hex")
        .starts_with("23298bf6b7f29525"));
}

#[test]
fn malformed_quotes_are_clear_errors_with_a_non_zero_exit() {
    let quote = std::fs::read(golden()).expect("golden");
    let mut wrong_version = quote.clone();
    wrong_version[0] = 9;
    for (name, bytes, expected) in [
        ("empty", Vec::new(), "truncated"),
        ("header-only", quote[..100].to_vec(), "truncated"),
        ("cut-signature", quote[..2000].to_vec(), "signature data"),
        ("version", wrong_version, "version 9"),
    ] {
        let path = scratch(name, &bytes);
        let output = sgx_quote(&["--file", &path.display().to_string()]);
        let _ = std::fs::remove_file(&path);
        assert_eq!(output.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("sgx_quote: not a usable SGX quote"),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}");
        assert!(output.stdout.is_empty(), "{name}: nothing printed as if valid");
    }
    let output = sgx_quote(&["--file", "/nonexistent/quote.bin"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read /nonexistent/quote.bin"));
}

#[test]
fn without_an_sgx_device_it_says_so() {
    let output = sgx_quote(&["--device", "/nonexistent/dev/sgx"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no SGX device at /nonexistent/dev/sgx"), "{stderr}");
    assert!(stderr.contains("inside the Occlum enclave"), "{stderr}");
}

#[test]
fn bad_usage_exits_64_with_the_usage() {
    let output = sgx_quote(&["--frobnicate"]);
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: sgx_quote"));
}
