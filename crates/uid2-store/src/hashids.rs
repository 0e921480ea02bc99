//! Hashids (v1 algorithm), as the Java `org.hashids:hashids:1.0.3` library computes it, for the
//! public bucket ids of salt buckets: `bucket_id = id_prefix + encode(id)` with salt `id_secret`
//! and a minimum length of 9.
//!
//! Only what that use needs is here: the default alphabet and one non-negative number per hash.
//! With the default alphabet the library's "too few separators" adjustment never applies
//! (48 letters over 14 separators is below its 3.5 ratio), so it is left out. The salt is walked
//! as UTF-16 code units, like Java's `String.charAt`, so non-ASCII salts shuffle identically.
//! Like the library, a negative number encodes to the empty string.

use zeroize::Zeroize;

const DEFAULT_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ1234567890";
const DEFAULT_SEPARATORS: &[u8] = b"cfhistuCFHISTU";
/// One guard per this many alphabet letters, rounded up.
const GUARD_DIVISOR: usize = 12;

/// An encoder for one salt and minimum length.
#[derive(Clone)]
pub struct Hashids {
    salt: Vec<u16>,
    min_length: usize,
    alphabet: Vec<u8>,
    guards: Vec<u8>,
}

impl std::fmt::Debug for Hashids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The salt is the bucket-id secret; the shuffled alphabet is derived from it.
        f.debug_struct("Hashids")
            .field("min_length", &self.min_length)
            .finish_non_exhaustive()
    }
}

impl Drop for Hashids {
    /// The salt is `id_secret`, and the shuffled alphabet and guards are derived from it.
    fn drop(&mut self) {
        self.salt.zeroize();
        self.alphabet.zeroize();
        self.guards.zeroize();
    }
}

/// The library's "consistent shuffle": a salt-keyed Fisher–Yates walk from the end.
fn shuffle(letters: &mut [u8], key: &[u16]) {
    if key.is_empty() {
        return;
    }
    let mut v = 0usize;
    let mut p = 0usize;
    for i in (1..letters.len()).rev() {
        v %= key.len();
        let code = key.get(v).map_or(0, |&c| usize::from(c));
        p += code;
        let j = (code + v + p) % i;
        letters.swap(i, j);
        v += 1;
    }
}

/// Longest alphabet this encoder keeps (the default one has 48 letters after the separators).
const MAX_ALPHABET: usize = 64;
/// Longest hash it writes; a larger minimum length is clamped to this. Bucket ids use 9.
pub const MAX_MIN_LENGTH: usize = 64;

impl Hashids {
    pub fn new(salt: &str, min_length: usize) -> Self {
        let salt: Vec<u16> = salt.encode_utf16().collect();
        let mut alphabet: Vec<u8> = DEFAULT_ALPHABET
            .iter()
            .copied()
            .filter(|c| !DEFAULT_SEPARATORS.contains(c))
            .collect();
        shuffle(&mut alphabet, &salt);
        let guard_count = alphabet.len().div_ceil(GUARD_DIVISOR);
        let guards = alphabet.drain(..guard_count).collect();
        // The separators are shuffled too, but only multi-number hashes use them.
        Self {
            salt,
            min_length: min_length.min(MAX_MIN_LENGTH),
            alphabet,
            guards,
        }
    }

    /// The hash of one number; empty for negative numbers, as in the library.
    pub fn encode(&self, number: i64) -> String {
        let mut out = Vec::with_capacity(self.min_length.max(12));
        self.encode_to(number, &mut out);
        // Every byte comes from the ASCII alphabet.
        out.into_iter().map(char::from).collect()
    }

    /// [`Self::encode`] appended to `out`, on the stack otherwise: identity map v2 writes one
    /// per mapped identity.
    pub fn encode_to(&self, number: i64, out: &mut Vec<u8>) {
        let Ok(number) = u64::try_from(number) else {
            return;
        };
        let len = self.alphabet.len();
        if len == 0 || len > MAX_ALPHABET || self.guards.is_empty() {
            return;
        }
        // `len` and the guard count are small constants, so these conversions are lossless.
        let len_u64 = len as u64;
        let number_hash = number % 100;
        let lottery = self.alphabet[(number_hash % len_u64) as usize];

        let mut alphabet = [0u8; MAX_ALPHABET];
        alphabet[..len].copy_from_slice(&self.alphabet);
        let alphabet = &mut alphabet[..len];
        // The shuffle key: the lottery letter, the salt, then the alphabet, cut to `len`.
        let mut key = [0u16; MAX_ALPHABET];
        let key_units = std::iter::once(u16::from(lottery))
            .chain(self.salt.iter().copied())
            .chain(alphabet.iter().map(|&b| u16::from(b)));
        for (slot, unit) in key[..len].iter_mut().zip(key_units) {
            *slot = unit;
        }
        shuffle(alphabet, &key[..len]);

        // Base-`len` digits, most significant first; a u64 needs at most 12 in base 44.
        let mut digits = [0u8; 64];
        let mut start = digits.len();
        let mut rest = number;
        loop {
            start -= 1;
            digits[start] = alphabet[(rest % len_u64) as usize];
            rest /= len_u64;
            if rest == 0 || start == 0 {
                break;
            }
        }

        // The hash grows to `min_length` at most, plus a whole alphabet while padding.
        let mut hash = [0u8; MAX_MIN_LENGTH + 2 * MAX_ALPHABET];
        let mut n = 0;
        for &letter in std::iter::once(&lottery).chain(&digits[start..]) {
            hash[n] = letter;
            n += 1;
        }
        let guard_at = |anchor: u8| {
            let index = (number_hash + u64::from(anchor)) % self.guards.len() as u64;
            self.guards[index as usize]
        };
        // The hash holds the lottery and at least one digit, so after the first guard it has at
        // least three letters; every index below is in range.
        if n < self.min_length {
            hash.copy_within(..n, 1);
            hash[0] = guard_at(hash[1]);
            n += 1;
            if n < self.min_length {
                hash[n] = guard_at(hash[2]);
                n += 1;
            }
        }

        let half = len / 2;
        let mut key = [0u16; MAX_ALPHABET];
        while n < self.min_length {
            for (slot, &letter) in key[..len].iter_mut().zip(alphabet.iter()) {
                *slot = u16::from(letter);
            }
            shuffle(alphabet, &key[..len]);
            // alphabet[half..] ‖ hash ‖ alphabet[..half], then the middle `min_length` letters.
            let right = len - half;
            hash.copy_within(..n, right);
            hash[..right].copy_from_slice(&alphabet[half..]);
            hash[right + n..right + n + half].copy_from_slice(&alphabet[..half]);
            n += len;
            let excess = n.saturating_sub(self.min_length);
            if excess > 0 {
                let cut = excess / 2;
                hash.copy_within(cut..cut + self.min_length, 0);
                n = self.min_length;
            }
        }
        out.extend_from_slice(&hash[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_id_secret_never_prints() {
        let secret = "HF6Qz42HBbVHINxhh191dB09BCuTWyBkNtrNicO4ZCw=";
        let hashids = Hashids::new(secret, 9);
        let alphabet = String::from_utf8(hashids.alphabet.clone()).expect("ASCII");
        for shown in [format!("{hashids:?}"), format!("{hashids:#?}")] {
            assert!(!shown.contains(&secret[..12]), "{shown}");
            assert!(!shown.contains(&alphabet[..12]), "{shown} shows the shuffled alphabet");
        }
    }

    /// Computed with the Java library the reference uses (`org.hashids.Hashids` from
    /// `yomorun/hashids-java` at 039da8c, the 1.0.3 source, run with `java`) and reproduced by the
    /// Python `hashids` 1.3.1 package. The salt and ids are those of the reference's test salt
    /// store (`salts/metadata.json`, `salts.txt.*`).
    #[test]
    fn bucket_ids_of_the_reference_salt_file() {
        let hashids = Hashids::new("HF6Qz42HBbVHINxhh191dB09BCuTWyBkNtrNicO4ZCw=", 9);
        let expected = [
            (1000000, "KaoveQoPR"),
            (1000001, "1aZVGl7aB"),
            (1000002, "v3WM92zaA"),
            (1000003, "l5yy6kr58"),
            (1000004, "e58Mjz13q"),
        ];
        for (id, hash) in expected {
            assert_eq!(hashids.encode(id), hash, "id {id}");
        }
    }

    #[test]
    fn ids_of_the_reference_parser_test_salt() {
        // `SaltFileParserTest` in uid2-shared uses the salt "id secret".
        let hashids = Hashids::new("id secret", 9);
        let expected = [
            (0, "87XWnZWQ1"),
            (1, "lEMWeGxL2"),
            (2, "OD2x65kLn"),
            (5, "w16kvMWvG"),
            (99, "d4z2nwzgo"),
            (100, "7XWnlyxQ1"),
            (1048575, "BWGvd2XzA"),
            (2147483647, "zBJAppY6z"),
            (-1, ""),
        ];
        for (id, hash) in expected {
            assert_eq!(hashids.encode(id), hash, "id {id}");
        }
    }

    #[test]
    fn the_library_readme_vectors() {
        // hashids.org / hashids-java README: "this is my salt".
        assert_eq!(Hashids::new("this is my salt", 8).encode(1), "gB0NV05e");
        assert_eq!(Hashids::new("this is my salt", 0).encode(12345), "NkK9");
        assert_eq!(Hashids::new("this is my salt", 0).encode(1), "NV");
        assert_eq!(Hashids::new("this is my salt", 0).encode(9876543210123), "Y8r7W1kNN");
    }

    #[test]
    fn the_cross_checked_vector_file() {
        let table = include_str!("../../../testdata/hashids_vectors.tsv");
        let mut checked = 0;
        for line in table.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let mut fields = line.split('\t');
            let (Some(salt), Some(id), Some(hash)) = (fields.next(), fields.next(), fields.next()) else {
                panic!("malformed vector line {line:?}");
            };
            let id: i64 = id.parse().expect("numeric id");
            assert_eq!(Hashids::new(salt, 9).encode(id), hash, "salt {salt:?} id {id}");
            checked += 1;
        }
        assert!(checked >= 200, "only {checked} vectors");
    }

    #[test]
    fn non_ascii_salts_walk_utf16_units_like_java() {
        // From the Java library (as above). Python's package walks code points and differs here.
        let hashids = Hashids::new("é漢字🎉", 9);
        let expected = [
            (0, "8wKZ0pZ6O"),
            (1, "7kVLJGZz5"),
            (2, "KwdNP1LO4"),
            (1000000, "KZ00GAkZ6"),
            (2147483647, "L438xxaKN"),
        ];
        for (id, hash) in expected {
            assert_eq!(hashids.encode(id), hash, "id {id}");
        }
    }

    #[test]
    fn any_salt_and_number_encodes_without_panicking() {
        let long = "x".repeat(1000);
        for salt in ["", "é漢字🎉", long.as_str(), "\0\u{ffff}"] {
            for min_length in [0, 1, 9, 60] {
                let hashids = Hashids::new(salt, min_length);
                for id in [0, 1, 43, 44, 99, 100, i64::from(i32::MAX), i64::MAX] {
                    let hash = hashids.encode(id);
                    assert!(hash.len() >= min_length.max(2), "{salt:?} {min_length} {id}");
                    assert!(hash.bytes().all(|b| DEFAULT_ALPHABET.contains(&b)));
                }
            }
        }
    }

    #[test]
    fn debug_hides_the_salt() {
        let shown = format!("{:?}", Hashids::new("top secret", 9));
        assert!(!shown.contains("top secret"));
    }
}
