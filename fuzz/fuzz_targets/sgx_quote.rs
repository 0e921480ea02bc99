//! SGX quote parsing on arbitrary bytes: never a panic, and whatever parses is self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uid2_attest::quote::{Quote, REPORT_DATA_OFFSET, SIGNATURE_OFFSET};

fuzz_target!(|data: &[u8]| {
    if let Ok(quote) = Quote::parse(data) {
        assert!(quote.len <= data.len());
        assert_eq!(quote.len, SIGNATURE_OFFSET + quote.signature_len as usize);
        assert_eq!(
            quote.body.report_data[..],
            data[REPORT_DATA_OFFSET..REPORT_DATA_OFFSET + 64]
        );
    }
});
