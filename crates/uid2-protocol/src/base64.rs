//! Base64 exactly as the Java reference reads and writes it.
//!
//! Java's `Base64.getDecoder()` accepts input with or without `=` padding and ignores non-zero
//! trailing bits (keyset key 11 of the reference test data depends on that), but rejects any
//! character outside the alphabet, including whitespace. The strict engines of the `base64`
//! crate reject non-canonical trailing bits, so this module configures lenient engines once and
//! every decoder in the project goes through it.
//!
//! Writers always produce canonical output: standard alphabet with padding, except advertising
//! tokens V4 and the JSON fields that use the URL-safe alphabet without padding.

use ::base64::alphabet;
use ::base64::engine::{DecodePaddingMode, Engine, GeneralPurpose, GeneralPurposeConfig};

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_allow_trailing_bits(true)
    .with_decode_padding_mode(DecodePaddingMode::Indifferent);

const STD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
const URL_NO_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false),
);

/// Error of every decoder here; it never carries the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("input is not valid base64")]
pub struct InvalidBase64;

/// Standard alphabet with padding (`java.util.Base64.getEncoder()`).
pub fn encode(bytes: &[u8]) -> String {
    ::base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Standard alphabet, padding optional, trailing bits ignored (`java.util.Base64.getDecoder()`).
pub fn decode(text: impl AsRef<[u8]>) -> Result<Vec<u8>, InvalidBase64> {
    let text = text.as_ref();
    check_padding(text)?;
    STD_LENIENT.decode(text).map_err(|_| InvalidBase64)
}

/// The engine's "indifferent" mode also takes a short pad (`YQ=`); Java does not: padding, when
/// present, must complete the last 4-character unit.
fn check_padding(text: &[u8]) -> Result<(), InvalidBase64> {
    if text.last() == Some(&b'=') && text.len() % 4 != 0 {
        return Err(InvalidBase64);
    }
    Ok(())
}

/// URL-safe alphabet without padding, used by advertising tokens V4.
pub fn encode_url(bytes: &[u8]) -> String {
    URL_NO_PAD.encode(bytes)
}

/// URL-safe alphabet, padding optional (`java.util.Base64.getUrlDecoder()`); `+` and `/` fail.
pub fn decode_url(text: impl AsRef<[u8]>) -> Result<Vec<u8>, InvalidBase64> {
    let text = text.as_ref();
    check_padding(text)?;
    URL_LENIENT.decode(text).map_err(|_| InvalidBase64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_vectors_from_the_reference() {
        let cases = [
            ("ffe088ffee9999", "_-CI_-6ZmQ"),
            ("ffe088ffee999999", "_-CI_-6ZmZk"),
            ("ffe088ffee99", "_-CI_-6Z"),
        ];
        for (hex, text) in cases {
            let bytes = hex::decode(hex).expect("test vector is hex");
            assert_eq!(encode_url(&bytes), text);
            assert_eq!(decode_url(text).expect("vector decodes"), bytes);
        }
    }

    /// `tokens.md` §8.13: the SDKs' 164-byte token in base64url (`Uid2Base64UrlCoderTest`).
    #[test]
    fn url_vector_of_a_whole_token() {
        let hex_token = "0380000000013bc958e9166003bb6ddcd98d27f51afbe788906c4bb8bf0213e0706993c8c5ba60b5d869942b53ffd74e90835428ca1dda75f8a4d5e656fd3d83c46fe0360041577b629e0b1c7f0b805be01774d0c5164f2523d4a4a7fd97ceadc682353c308325891e4af3fd8f58aa713ab73f7dbe6d7e7479f3b5d364c4a6edf472a41af94aeb272789d101209ebd94d19afa151687ccd5bdb3e855bbebbacf0d60c891";
        let text = "A4AAAAABO8lY6RZgA7tt3NmNJ_Ua--eIkGxLuL8CE-BwaZPIxbpgtdhplCtT_9dOkINUKMod2nX4pNXmVv09g8Rv4DYAQVd7Yp4LHH8LgFvgF3TQxRZPJSPUpKf9l86txoI1PDCDJYkeSvP9j1iqcTq3P32-bX50efO102TEpu30cqQa-UrrJyeJ0QEgnr2U0Zr6FRaHzNW9s-hVu-u6zw1gyJE";
        let bytes = hex::decode(hex_token).expect("hex");
        assert_eq!(bytes.len(), 164);
        assert_eq!(encode_url(&bytes), text);
        assert_eq!(decode_url(text).expect("decodes"), bytes);
    }

    #[test]
    fn non_canonical_trailing_bits_decode_like_java() {
        // Keyset key 11 of the reference test data.
        let lenient = decode("YgyxOX4yX1gYhCINq7O9XxM6jX+etXqSXluZxjB1aG1=").expect("lenient");
        assert_eq!(lenient.len(), 32);
        assert_eq!(encode(&lenient), "YgyxOX4yX1gYhCINq7O9XxM6jX+etXqSXluZxjB1aG0=");
    }

    #[test]
    fn padding_is_optional_but_must_be_right_when_present() {
        assert_eq!(decode("YQ==").expect("padded"), b"a");
        assert_eq!(decode("YQ").expect("unpadded"), b"a");
        assert!(decode("YQ=").is_err());
        assert!(decode("Y").is_err());
        assert!(decode("YWJjZA=").is_err());
        assert!(decode("YW=j").is_err());
        assert!(decode_url("YQ=").is_err());
    }

    #[test]
    fn whitespace_and_foreign_alphabets_are_rejected() {
        assert!(decode("YW Jj").is_err());
        assert!(decode("YWJj\n").is_err());
        assert!(decode("_-CI").is_err());
        assert!(decode_url("+/CI").is_err());
    }
}
