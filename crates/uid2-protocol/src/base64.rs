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

/// From this many bytes on, the SIMD codec does the work (envelope bodies, hundreds of kilobytes
/// for an identity map); below it its setup costs more than it saves.
const BULK: usize = 256;

const STANDARD_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard alphabet with padding (`java.util.Base64.getEncoder()`).
pub fn encode(bytes: &[u8]) -> String {
    if bytes.len() >= BULK {
        return base64_simd::STANDARD.encode_to_string(bytes);
    }
    ::base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Standard base64 with padding of `bytes` into `out`, which must hold `4 * ceil(len / 3)`
/// bytes; returns the length written. A plain loop: for the 32- and 33-byte hashes of every
/// identity, a general-purpose engine's setup costs more than the encoding.
fn encode_short(bytes: &[u8], out: &mut [u8]) -> usize {
    let needed = bytes.len().div_ceil(3) * 4;
    let Some(out) = out.get_mut(..needed) else {
        return 0;
    };
    let letter = |n: u32, shift: u32| STANDARD_ALPHABET[((n >> shift) & 63) as usize];
    let chunks = bytes.chunks_exact(3);
    let tail = chunks.remainder();
    let mut quads = out.chunks_exact_mut(4);
    for (chunk, quad) in chunks.zip(&mut quads) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        quad.copy_from_slice(&[letter(n, 18), letter(n, 12), letter(n, 6), letter(n, 0)]);
    }
    if let Some(quad) = quads.next() {
        match *tail {
            [a] => {
                let n = u32::from(a) << 16;
                quad.copy_from_slice(&[letter(n, 18), letter(n, 12), b'=', b'=']);
            }
            [a, b] => {
                let n = (u32::from(a) << 16) | (u32::from(b) << 8);
                quad.copy_from_slice(&[letter(n, 18), letter(n, 12), letter(n, 6), b'=']);
            }
            _ => {}
        }
    }
    needed
}

/// [`encode`] appended to `out` (no intermediate `String`: the identity map writes thousands).
pub fn encode_to(bytes: &[u8], out: &mut Vec<u8>) {
    if bytes.len() >= BULK {
        base64_simd::STANDARD.encode_append(bytes, out);
        return;
    }
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    let written = encode_short(bytes, &mut out[start..]);
    out.truncate(start + written);
}

/// [`encode`] of at most 33 bytes into a stack buffer (44 characters at most): the text the
/// first-level hash and raw UID v2 hash, without allocating.
pub fn encode_small(bytes: &[u8]) -> SmallText {
    let mut text = SmallText { buf: [0; 44], len: 0 };
    if bytes.len() <= 33 {
        text.len = encode_short(bytes, &mut text.buf);
    }
    text
}

/// Base64 text of up to 44 characters on the stack; see [`encode_small`].
pub struct SmallText {
    buf: [u8; 44],
    len: usize,
}

impl SmallText {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// [`decode`] of at most 33 bytes (44 characters) into a stack buffer; `None` if invalid or longer.
pub fn decode_small(text: &[u8]) -> Option<([u8; 33], usize)> {
    check_padding(text).ok()?;
    let mut out = [0u8; 33];
    if ::base64::decoded_len_estimate(text.len()) > out.len() {
        return None;
    }
    let len = STD_LENIENT.decode_slice(text, &mut out).ok()?;
    Some((out, len))
}

/// Standard alphabet, padding optional, trailing bits ignored (`java.util.Base64.getDecoder()`).
pub fn decode(text: impl AsRef<[u8]>) -> Result<Vec<u8>, InvalidBase64> {
    let text = text.as_ref();
    check_padding(text)?;
    // The SIMD codec is strict (padding required, canonical trailing bits). What it accepts, Java
    // decodes identically; anything else goes to the lenient engine, which decides.
    if text.len() >= BULK {
        if let Ok(bytes) = base64_simd::STANDARD.decode_to_vec(text) {
            return Ok(bytes);
        }
    }
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
    fn small_and_appending_forms_match_the_allocating_ones() {
        for len in 0..=33 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = encode(&bytes);
            assert_eq!(encode_small(&bytes).as_bytes(), text.as_bytes(), "{len}");
            let mut out = b"prefix".to_vec();
            encode_to(&bytes, &mut out);
            assert_eq!(&out[6..], text.as_bytes());
            let (decoded, n) = decode_small(text.as_bytes()).expect("decodes");
            assert_eq!(&decoded[..n], &bytes[..]);
        }
        assert!(
            encode_small(&[0u8; 34]).as_bytes().is_empty(),
            "too long for the stack form"
        );
        // Around and above the bulk threshold, every form agrees with the reference engine.
        for len in [0, 1, 2, 3, 255, 256, 257, 1000, 100_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 131 + 7) as u8).collect();
            let reference = ::base64::engine::general_purpose::STANDARD.encode(&bytes);
            assert_eq!(encode(&bytes), reference, "{len}");
            let mut out = Vec::new();
            encode_to(&bytes, &mut out);
            assert_eq!(out, reference.as_bytes(), "{len}");
            assert_eq!(decode(&reference).expect("decodes"), bytes, "{len}");
            // Without padding, and with non-zero trailing bits, the lenient path still decides.
            let unpadded = reference.trim_end_matches('=');
            assert_eq!(decode(unpadded).expect("decodes unpadded"), bytes, "{len}");
        }
        let long_with_trailing_bits = "A".repeat(400) + "YR==";
        assert_eq!(decode(&long_with_trailing_bits).map(|b| b.len()), Ok(301));
        assert!(decode("A".repeat(400) + "Y!==").is_err());
        assert!(decode("A".repeat(399) + "\n").is_err(), "no whitespace, as Java");
        assert!(decode_small(&[b'A'; 48]).is_none());
        assert!(decode_small(b"YQ=").is_none(), "a short pad, as Java");
        assert!(decode_small(b"!!!!").is_none());
        // Lenient trailing bits, like `decode`.
        assert_eq!(
            decode_small(b"YR==").map(|(b, n)| b[..n].to_vec()),
            decode(b"YR==").ok()
        );
    }

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
