//! What the fuzz targets share: the fixed test keys the known-answer vectors were made with, and
//! the operator's real router over its bundled local store, driven in process.
//!
//! Nothing here decides whether an input is valid: the targets hand the crates' parsers the raw
//! fuzz bytes (or seal them first, so that the layers behind a MAC are reached too) and assert
//! what must hold whatever the input.

pub mod keys;
pub mod operator;

use libfuzzer_sys::arbitrary::Unstructured;

/// Splits a fuzz input into a mode byte and the rest; an empty input is mode 0 with no data.
pub fn mode(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((mode, rest)) => (*mode, rest),
        None => (0, &[]),
    }
}

/// Reads a fixed-size array, zero-filled when the input runs out.
pub fn array<const N: usize>(u: &mut Unstructured<'_>) -> [u8; N] {
    let mut out = [0u8; N];
    let _ = u.fill_buffer(&mut out);
    out
}

/// Reads a value, its default when the input runs out.
pub fn value<'a, T: libfuzzer_sys::arbitrary::Arbitrary<'a> + Default>(u: &mut Unstructured<'a>) -> T {
    u.arbitrary().unwrap_or_default()
}
