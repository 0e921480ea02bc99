//! JSON written by hand for the identity map answers.
//!
//! An identity map answer holds up to thousands of items; building a `serde` value per item
//! (a `String` per raw UID, per bucket id, per echoed identifier) cost more than the hashing. These
//! writers append straight to the answer buffer. What they write is checked against `serde_json`
//! in the tests: text fields go through `serde_json`'s escaper, base64 and numbers need none.

/// Appends `text` as a JSON string (escaped as `serde_json` escapes it).
pub(crate) fn string(out: &mut Vec<u8>, text: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// Appends `bytes` as a JSON string of their standard base64.
pub(crate) fn base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    uid2_protocol::base64::encode_to(bytes, out);
    out.push(b'"');
}

/// Appends a JSON integer.
pub(crate) fn integer(out: &mut Vec<u8>, value: i64) {
    let mut digits = [0u8; 20];
    out.extend_from_slice(format_integer(&mut digits, value));
}

/// `value` in decimal, written from the end of `buffer` (20 bytes hold any i64).
fn format_integer(buffer: &mut [u8; 20], value: i64) -> &[u8] {
    let mut rest = value.unsigned_abs();
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        start -= 1;
        buffer[start] = b'-';
    }
    &buffer[start..]
}

/// Appends `,` unless `first`, then clears `first`: the separator of array items.
pub(crate) fn separator(out: &mut Vec<u8>, first: &mut bool) {
    if !std::mem::take(first) {
        out.push(b',');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        for text in [
            "plain",
            "quote\" and \\ slash",
            "tab\tnew\nline",
            "\u{1}\u{1f}",
            "é €",
            "",
        ] {
            let mut out = Vec::new();
            string(&mut out, text);
            assert_eq!(out, serde_json::to_vec(text).expect("serializes"), "{text:?}");
        }
    }

    #[test]
    fn integers_and_base64_match_serde_json() {
        for value in [0, 7, -7, 1_700_000_000, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            integer(&mut out, value);
            assert_eq!(out, serde_json::to_vec(&value).expect("serializes"), "{value}");
        }
        let mut out = Vec::new();
        base64(&mut out, &[0xFB, 0xFF, 0x01]);
        assert_eq!(out, br#""+/8B""#);
        let (mut out, mut first) = (Vec::new(), true);
        for item in [b"a", b"b"] {
            separator(&mut out, &mut first);
            out.extend_from_slice(item);
        }
        assert_eq!(out, b"a,b");
    }
}
