//! The key under which the index stores an advertising id (raw UID), and the strict decoding of
//! the base64 text `/v2/optout/status` looks up.
//!
//! The reference keys its map by the standard, padded base64 of the id (32 or 33 bytes, as the
//! entry reconstructs it) and looks the caller's string up verbatim. Holding ten million such
//! strings costs well over a gigabyte, so this index stores the id bytes and decodes the query
//! instead. Decoding is strict to keep "verbatim" exact: only the canonical text of a 32- or
//! 33-byte id decodes (44 characters, standard alphabet, one `=` for 32 bytes and none for 33,
//! zero trailing bits). Anything else — URL-safe letters, missing padding, other lengths — could
//! never equal a stored key's text, so it finds nothing, as in the reference.
//!
//! Key layout (33 bytes): the 32 stored id bytes, then a tag: the first byte of a 33-byte id
//! (always ≤ `0x3F`, since the entry rebuilds it from 6 metadata bits) or [`NO_FIRST_BYTE`] for
//! a 32-byte id. The random-looking bytes come first so the table's radix directory spreads
//! evenly; the tag keeps a 32-byte id and a 33-byte id with the same tail apart.

use crate::optout::entry::EntryView;

pub(super) type IdKey = [u8; 33];

/// The tag of a 32-byte id: no 33-byte id has a first byte above `0x3F`.
const NO_FIRST_BYTE: u8 = 0x40;

/// Length of the canonical text of a 32- or 33-byte id (both are 44 characters).
const TEXT_LEN: usize = 44;

pub(super) fn key_of_entry(entry: &EntryView<'_>) -> IdKey {
    let mut key = [0u8; 33];
    let (tail, tag) = key.split_at_mut(32);
    tail.copy_from_slice(entry.id_tail);
    if let Some(t) = tag.first_mut() {
        *t = entry.id_first.unwrap_or(NO_FIRST_BYTE);
    }
    key
}

/// The key of the id whose canonical base64 is `text`; `None` when no stored id has that text.
pub(super) fn key_of_text(text: &str) -> Option<IdKey> {
    let text: &[u8; TEXT_LEN] = text.as_bytes().try_into().ok()?;
    let (digits, len) = match text.split_last() {
        Some((b'=', digits)) => (digits, 32),
        _ => (&text[..], 33),
    };
    let mut bytes = [0u8; 33];
    let mut written = 0usize;
    let mut acc: u32 = 0;
    let mut pending_bits = 0u32;
    for c in digits {
        acc = (acc << 6) | u32::from(sextet(*c)?);
        pending_bits += 6;
        if pending_bits >= 8 {
            pending_bits -= 8;
            *bytes.get_mut(written)? = (acc >> pending_bits) as u8;
            written += 1;
            acc &= (1 << pending_bits) - 1;
        }
    }
    // Non-zero leftover bits would make the text non-canonical (Java's encoder never writes it).
    if acc != 0 || written != len {
        return None;
    }
    let mut key = [0u8; 33];
    if len == 32 {
        let (tail, tag) = key.split_at_mut(32);
        tail.copy_from_slice(bytes.get(..32)?);
        *tag.first_mut()? = NO_FIRST_BYTE;
    } else {
        let (first, tail) = bytes.split_first()?;
        if *first > 0x3F {
            return None;
        }
        let (key_tail, tag) = key.split_at_mut(32);
        key_tail.copy_from_slice(tail);
        *tag.first_mut()? = *first;
    }
    Some(key)
}

/// The value of one standard-alphabet character; `=` and everything else is `None`.
fn sextet(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optout::OptOutEntry;

    fn key_of(entry: &OptOutEntry) -> IdKey {
        let bytes = entry.to_bytes();
        key_of_entry(&EntryView::new(&bytes).expect("72 bytes"))
    }

    fn entry_with_id(id: Vec<u8>) -> OptOutEntry {
        OptOutEntry {
            identity_hash: [1; 32],
            advertising_id: id,
            timestamp: 1,
        }
    }

    #[test]
    fn the_reference_text_of_every_id_decodes_to_its_key() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..2000usize {
            let len = if i % 2 == 0 { 32 } else { 33 };
            let mut id: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            if len == 33 {
                // As stored: the first byte keeps only its low 6 bits.
                id[0] &= 0x3F;
            }
            let text = uid2_protocol::base64::encode(&id);
            assert_eq!(text.len(), TEXT_LEN);
            assert_eq!(key_of_text(&text), Some(key_of(&entry_with_id(id))), "{text}");
        }
    }

    #[test]
    fn only_the_canonical_text_matches() {
        let id32 = [0xFBu8; 32];
        let text32 = uid2_protocol::base64::encode(&id32);
        assert!(text32.ends_with('='));
        assert!(key_of_text(&text32).is_some());
        // Java would decode these too, but they are not the text the reference stored.
        assert_eq!(key_of_text(text32.trim_end_matches('=')), None);
        assert_eq!(key_of_text(&text32.replace('+', "-").replace('/', "_")), None);
        let mut trailing_bits = text32.clone().into_bytes();
        trailing_bits[42] = b'/'; // sets the two bits below the last byte
        assert_eq!(key_of_text(std::str::from_utf8(&trailing_bits).expect("ascii")), None);
        for junk in [
            "",
            "=",
            "A",
            &"A".repeat(43),
            &"A".repeat(45),
            &format!("{}==", "A".repeat(42)),
            &"é".repeat(22),
        ] {
            assert_eq!(key_of_text(junk), None, "{junk}");
        }
        // A 33-byte id whose first byte has bit 6 or 7 set cannot be stored, so it never matches.
        let mut id33 = [7u8; 33];
        id33[0] = 0x40;
        assert_eq!(key_of_text(&uid2_protocol::base64::encode(&id33)), None);
        id33[0] = 0x3F;
        assert!(key_of_text(&uid2_protocol::base64::encode(&id33)).is_some());
    }

    #[test]
    fn a_32_byte_id_and_a_33_byte_id_with_the_same_tail_differ() {
        let tail = [9u8; 32];
        let mut long = vec![0u8];
        long.extend(tail);
        let short_key = key_of(&entry_with_id(tail.to_vec()));
        let long_key = key_of(&entry_with_id(long.clone()));
        assert_ne!(short_key, long_key);
        assert_eq!(key_of_text(&uid2_protocol::base64::encode(&tail)), Some(short_key));
        assert_eq!(key_of_text(&uid2_protocol::base64::encode(&long)), Some(long_key));
    }
}
