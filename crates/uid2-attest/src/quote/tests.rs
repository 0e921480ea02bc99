//! Known-answer tests on a real quote (the Azure attestation REST spec's example, see
//! `testdata/README.md`) and the parser's behaviour on every malformed shape.

use super::*;
use rand::{Rng, SeedableRng};

fn golden() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/sgx/azure-example-quote.bin"
    );
    std::fs::read(path).expect("testdata/sgx/azure-example-quote.bin")
}

fn unhex<const N: usize>(text: &str) -> [u8; N] {
    <[u8; N]>::try_from(hex::decode(text).expect("hex")).expect("length")
}

#[test]
fn real_azure_quote_parses_to_its_known_identity() {
    let bytes = golden();
    let quote = Quote::parse(&bytes).expect("the example quote parses");
    assert_eq!(quote.header.version, 3);
    assert_eq!(quote.header.attestation_key_type, 2);
    assert_eq!(quote.header.qe_svn, 5);
    assert_eq!(quote.header.pce_svn, 10);
    assert_eq!(
        hex::encode(quote.header.qe_vendor_id),
        "939a7233f79c4ca9940a0db3957f0607"
    );
    assert_eq!(quote.body.attribute_flags, 0x5);
    assert_eq!(quote.body.attribute_xfrm, 0x7);
    assert!(!quote.body.is_debuggable());
    assert_eq!(
        quote.body.mr_enclave,
        unhex::<32>("d971961f724b71dfc5f1553ac4efb68ad160e849602cdd851cb840423e592a73")
    );
    assert_eq!(
        quote.body.mr_signer,
        unhex::<32>("856823123027010ed0ce1f7d515b6be1d7505e5828fba19785676030d8fffc28")
    );
    assert_eq!(quote.body.isv_prod_id, 4639);
    assert_eq!(quote.body.isv_svn, 1);
    assert_eq!(quote.signature_len, 4144);
    assert_eq!(quote.len, 4580);
    assert_eq!(quote.len, bytes.len());
}

#[test]
fn real_quote_report_data_is_the_runtime_data_hash_then_zeros() {
    use sha2::{Digest, Sha256};
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/sgx/azure-example-runtime-data.bin"
    );
    let runtime_data = std::fs::read(path).expect("runtime data");
    let quote = Quote::parse(&golden()).expect("parses");
    assert_eq!(quote.body.report_data[..32], Sha256::digest(&runtime_data)[..]);
    assert_eq!(quote.body.report_data[32..], [0u8; 32]);
    assert_eq!(crate::sgx::report_data(&runtime_data), quote.body.report_data);
}

#[test]
fn every_truncation_is_an_error_naming_the_shortfall() {
    let bytes = golden();
    for len in 0..bytes.len() {
        let error = Quote::parse(&bytes[..len]).expect_err("a cut quote is refused");
        match error {
            QuoteError::Truncated { needed, available } => {
                assert_eq!(available, len);
                assert!(len < SIGNATURE_OFFSET && needed == SIGNATURE_OFFSET);
            }
            QuoteError::SignatureLength { declared, available } => {
                assert_eq!(declared, 4144);
                assert_eq!(available, len - SIGNATURE_OFFSET);
            }
            other => panic!("unexpected error {other:?} at length {len}"),
        }
    }
}

#[test]
fn trailing_bytes_after_the_declared_signature_are_tolerated_but_not_counted() {
    let mut bytes = golden();
    bytes.extend_from_slice(&[0u8; 100]);
    assert_eq!(Quote::parse(&bytes).expect("parses").len, 4580);
}

#[test]
fn other_versions_key_types_and_huge_lengths_are_refused() {
    let mut v4 = golden();
    v4[0] = 4;
    assert_eq!(Quote::parse(&v4), Err(QuoteError::Version(4)));
    let mut epid = golden();
    epid[2] = 0;
    assert_eq!(Quote::parse(&epid), Err(QuoteError::KeyType(0)));
    let mut huge = golden();
    huge[SIGNATURE_LEN_OFFSET..SIGNATURE_OFFSET].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        Quote::parse(&huge),
        Err(QuoteError::SignatureLength {
            declared: u32::MAX,
            available: 4144
        })
    );
}

#[test]
fn the_debug_bit_is_read_from_the_attributes() {
    let mut bytes = golden();
    bytes[HEADER_LEN + 48] |= 0x02;
    assert!(Quote::parse(&bytes).expect("parses").body.is_debuggable());
}

#[test]
fn synthetic_quotes_round_trip_their_identity() {
    let identity = EnclaveIdentity {
        mr_enclave: [0xAB; 32],
        mr_signer: [0xCD; 32],
        isv_prod_id: 770,
        isv_svn: 2,
        debuggable: false,
    };
    let report_data = [7u8; 64];
    let quote = Quote::parse(&synthetic(&identity, &report_data)).expect("parses");
    assert_eq!(quote.body.mr_enclave, identity.mr_enclave);
    assert_eq!(quote.body.mr_signer, identity.mr_signer);
    assert_eq!((quote.body.isv_prod_id, quote.body.isv_svn), (770, 2));
    assert!(!quote.body.is_debuggable());
    assert_eq!(quote.body.report_data, report_data);
    let debug = EnclaveIdentity {
        debuggable: true,
        ..identity
    };
    assert!(Quote::parse(&synthetic(&debug, &report_data))
        .expect("parses")
        .body
        .is_debuggable());
}

#[test]
fn debug_output_names_the_identity_in_hex() {
    let quote = Quote::parse(&golden()).expect("parses");
    let text = format!("{:?}", quote.body);
    assert!(text.contains("d971961f724b71df"), "{text}");
    assert!(text.contains("isv_prod_id: 4639"), "{text}");
}

/// Random corruption of a real quote: the parser answers every input with a value or an error.
/// (The cargo-fuzz target in `fuzz/` explores further; this runs in every `cargo test`.)
#[test]
fn mutated_quotes_never_panic_and_parse_consistently() {
    let base = golden();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5167_7175);
    for _ in 0..20_000 {
        let mut bytes = base.clone();
        let cut = rng.gen_range(0..=bytes.len() + 64);
        bytes.resize(cut, 0xEE);
        for _ in 0..rng.gen_range(0..8) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.gen_range(0..bytes.len());
            bytes[at] = rng.gen();
        }
        if let Ok(quote) = Quote::parse(&bytes) {
            assert!(quote.len <= bytes.len());
            assert_eq!(quote.len, SIGNATURE_OFFSET + quote.signature_len as usize);
            assert_eq!(
                quote.body.report_data[..],
                bytes[REPORT_DATA_OFFSET..REPORT_DATA_OFFSET + 64]
            );
        }
    }
}
