//! The operator's configuration (`uid2_operator::config::load`): the JSON file and the
//! environment variables it reads (`core_api_token`, `optout_api_token`, `port_offset`,
//! `OCCLUM`).
//!
//! The mode byte picks which environment variables are set; the input then holds their values
//! (`\0`-separated, in that order) before the file text. Invariants: loading never panics; a
//! refusal names at least one problem; the ports of a loaded configuration are in range; and
//! the API tokens never appear in the `Debug` output of what was loaded (they are `Secret`s).
#![no_main]

use libfuzzer_sys::fuzz_target;
use uid2_fuzz::mode;

const VARIABLES: [&str; 4] = ["core_api_token", "optout_api_token", "port_offset", "OCCLUM"];

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = mode(data);
    let mut fields = rest.splitn(VARIABLES.len() + 1, |b| *b == 0);
    let mut env: Vec<(&str, String)> = Vec::new();
    for (bit, name) in VARIABLES.iter().enumerate() {
        if mode & (1 << bit) != 0 {
            let value = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
            // Tokens carry a marker, so that finding one in the output cannot be a coincidence.
            let value = if name.ends_with("_api_token") {
                format!("{MARKER}{value}")
            } else {
                value
            };
            env.push((name, value));
        }
    }
    let file: Vec<u8> = fields.flat_map(|f| f.iter().copied().chain([0])).collect();
    let file = String::from_utf8_lossy(file.strip_suffix(&[0]).unwrap_or(&file)).into_owned();
    let file = (mode & 0x80 == 0).then_some(file.as_str());

    let lookup = |name: &str| env.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
    match uid2_operator::config::load(file, &lookup) {
        Ok(loaded) => {
            let config = &loaded.config;
            assert_ne!(config.http_port, 0);
            assert_ne!(config.metrics_port, 0);
            let shown = format!("{loaded:?}");
            // The file's own strings are shown as they are; a token only if it leaks.
            if !file.is_some_and(|f| f.contains(MARKER)) {
                assert!(
                    !shown.contains(MARKER),
                    "an API token appears in the loaded configuration's Debug"
                );
            }
        }
        Err(problems) => assert!(!problems.is_empty(), "a refusal names its problems"),
    }
});

const MARKER: &str = "fuzz-token-marker:";
