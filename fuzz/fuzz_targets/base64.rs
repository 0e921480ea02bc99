//! `uid2_protocol::base64`, which every other parser decodes through.
//!
//! The whole input is used twice: as text, every decoder must agree with an independent
//! decoder written from `java.util.Base64`'s rules (what the reference accepts: optional but
//! complete padding, nothing after it, non-zero trailing bits ignored, no whitespace), and the
//! short and long (SIMD) paths must agree; as bytes, every encoder must agree with the `base64`
//! crate's canonical output and decode back to the same bytes.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use uid2_protocol::base64::{decode, decode_small, decode_url, encode, encode_small, encode_to, encode_url};

fuzz_target!(|data: &[u8]| {
    // As text.
    let java = java_decode(data, Alphabet::Standard);
    assert_eq!(decode(data).ok(), java, "decode agrees with Java");
    assert_eq!(
        decode_url(data).ok(),
        java_decode(data, Alphabet::UrlSafe),
        "decode_url agrees with Java"
    );
    match decode_small(data) {
        Some((bytes, len)) => assert_eq!(Some(&bytes[..len]), java.as_deref(), "decode_small agrees"),
        None => assert!(
            java.is_none() || data.len() > 44,
            "decode_small refuses only what is invalid or long"
        ),
    }

    // As bytes.
    let text = encode(data);
    assert_eq!(text, base64::engine::general_purpose::STANDARD.encode(data));
    assert_eq!(decode(&text).ok().as_deref(), Some(data), "encode round-trips");
    let mut appended = b"x".to_vec();
    encode_to(data, &mut appended);
    assert_eq!(&appended[1..], text.as_bytes());
    if data.len() <= 33 {
        assert_eq!(encode_small(data).as_bytes(), text.as_bytes());
    }
    let url = encode_url(data);
    assert_eq!(url, base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data));
    assert_eq!(decode_url(&url).ok().as_deref(), Some(data), "encode_url round-trips");
});

#[derive(Clone, Copy)]
enum Alphabet {
    Standard,
    UrlSafe,
}

fn sextet(c: u8, alphabet: Alphabet) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' if matches!(alphabet, Alphabet::Standard) => 62,
        b'/' if matches!(alphabet, Alphabet::Standard) => 63,
        b'-' if matches!(alphabet, Alphabet::UrlSafe) => 62,
        b'_' if matches!(alphabet, Alphabet::UrlSafe) => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// `java.util.Base64.Decoder.decode` (basic or URL, not MIME), written from its rules: four
/// characters make three bytes; a final unit of two or three characters makes one or two bytes
/// (its leftover bits ignored); a single leftover character is an error; `=` may only complete
/// the final unit (`xx==` or `xxx=`) and nothing may follow it.
fn java_decode(text: &[u8], alphabet: Alphabet) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let mut unit = [0u32; 4];
    let mut filled = 0usize;
    let mut i = 0usize;
    while i < text.len() {
        let c = text[i];
        i += 1;
        if c == b'=' {
            match filled {
                2 => {
                    if text.get(i) != Some(&b'=') {
                        return None;
                    }
                    i += 1;
                }
                3 => {}
                _ => return None,
            }
            if i != text.len() {
                return None;
            }
            break;
        }
        unit[filled] = sextet(c, alphabet)?;
        filled += 1;
        if filled == 4 {
            let n = (unit[0] << 18) | (unit[1] << 12) | (unit[2] << 6) | unit[3];
            out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
            filled = 0;
        }
    }
    match filled {
        0 => {}
        1 => return None,
        2 => out.push(((unit[0] << 2) | (unit[1] >> 4)) as u8),
        _ => {
            let n = (unit[0] << 18) | (unit[1] << 12) | (unit[2] << 6);
            out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8]);
        }
    }
    Some(out)
}
