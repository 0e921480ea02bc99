//! Secret text of a salt bucket (a salt, or a v4 key or key salt), held inline.
//!
//! A million buckets each hold up to six such strings. As separate heap allocations, mapping one
//! identity chased a pointer per string to somewhere else in memory: two or three cache misses on
//! top of the bucket's own. Production salts are 44 characters and v4 keys and key salts 32, so
//! they fit inline and the bucket is read from one place; longer text (allowed, never seen) goes
//! to the heap. Either way the bytes are zeroized on drop and never printed.

use zeroize::{Zeroize, Zeroizing};

/// Longest text kept inline.
const INLINE: usize = 46;

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Zeroizing<String>),
}

/// See the module documentation.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(Repr);

impl SecretText {
    pub fn new(text: &str) -> Self {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= INLINE => {
                let mut bytes = [0u8; INLINE];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                Self(Repr::Inline { len, bytes })
            }
            _ => Self(Repr::Heap(Zeroizing::new(text.to_owned()))),
        }
    }

    /// The text's bytes, as the raw UID hashes use them.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(text) => text.as_bytes(),
        }
    }

    /// The text. Inline bytes were copied from a `&str`, so they are valid UTF-8.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Repr::Heap(text) => text.as_str(),
        }
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for SecretText {
    fn default() -> Self {
        Self::new("")
    }
}

impl Drop for SecretText {
    fn drop(&mut self) {
        if let Repr::Inline { bytes, .. } = &mut self.0 {
            bytes.zeroize();
        }
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_inline_long_text_on_the_heap_both_read_back() {
        let salt = "HF6Qz42HBbVHINxhh191dB09BCuTWyBkNtrNicO4ZCw=";
        let inline = SecretText::new(salt);
        assert!(matches!(inline.0, Repr::Inline { .. }));
        assert_eq!(inline.as_str(), salt);
        assert_eq!(inline.as_bytes(), salt.as_bytes());
        let long = "x".repeat(100);
        let heap = SecretText::new(&long);
        assert!(matches!(heap.0, Repr::Heap(_)));
        assert_eq!(heap.as_str(), long);
        let unicode = SecretText::new("sél€");
        assert_eq!(unicode.as_str(), "sél€");
        assert!(SecretText::default().is_empty());
        assert_eq!(format!("{inline:?}"), "SecretText(..)");
        assert_eq!(SecretText::new(salt), inline.clone());
        assert!(std::mem::size_of::<Option<SecretText>>() <= 48);
    }
}
