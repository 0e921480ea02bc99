//! The public test keys of the known-answer vectors (`../shared/reference/tokens.md` §8), so the
//! seed corpora hold real tokens, wrappers and envelopes that decrypt, and the fuzzer starts from
//! inputs that reach the layers behind the MAC.

use uid2_protocol::crypto::SecretKey;
use uid2_protocol::token::KeyRing;

/// `(key id, base64 secret)`: the operator test keys of §8.11 (101 master, 102 refresh, 103,
/// 104 site), the SDK keys of §8.8 (164 master, 165 site) and the historic keys of §8.9 (3
/// master, 2 site, 4 refresh).
const TOKEN_KEYS: [(i32, &str); 9] = [
    (101, "vPdQIoN1nTwXIQoH4/GcHOAct7ymyrGUKXNQhgmq+E8="),
    (102, "RgyxkP4yP1gYhCINq7O9PxM6jX+etPqSQluZxjB1aG8="),
    (103, "c2yMYeezHfDvZ6haknCFaj0t+eAEJp/C/uh+fUAm1fo="),
    (104, "bVZZOwCuO0fUf2P6CrwaY23erMErVQiMkGgpy2OMSxc="),
    (164, "iyXxrRJcJOilqBcSJsN7XKCIuShbraXdqBCppCaLCJs="),
    (165, "IPsHwoSa+lbKdGgdg8CL1zCkC0HibqcObDP+fUEYF4U="),
    (3, "2m4mNGTExXEq7IoIB6ZpKRB2NmdGP2grhsuHsKiziKQ="),
    (2, "RgyxkP4yP1gYhCINq7O9PxM6jX+etPqSQluZxjB1aG8="),
    (4, "c2yMYeezHfDvZ6haknCFaj0t+eAEJp/C/uh+fUAm1fo="),
];

/// The SDK test client secret of §8.8, which sealed the v2 request envelopes of §8.10.
pub const CLIENT_SECRET: &str = "ioG3wKxAokmp+rERx6A4kM/13qhyolUXIu14WN16Spo=";
/// The timestamp of the §8.10 envelopes: with "now" here, they open.
pub const ENVELOPE_NOW_MS: i64 = 1_667_885_597_644;

/// The CSTG server key pair of §8.12 and the client's fixed scalar.
pub const CSTG_SERVER_PRIVATE: &str =
    "UID2-Y-L-MEECAQAwEwYHKoZIzj0CAQYIKoZIzj0DAQcEJzAlAgEBBCBop1Dw/IwDcstgicr/3tDoyR3OIpgAWgw8mD6oTO+1ug==";
pub const CSTG_SERVER_PUBLIC: &str = "UID2-X-L-MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsziOqRXZ7II0uJusaMxxCxlxgj8el/MUYLFMtWfB71Q3G1juyrAnzyqruNiPPnIuTETfFOridglP9UQNlwzNQg==";
pub const CSTG_CLIENT_SCALAR: [u8; 32] = [
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99,
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0x00, 0x11, 0x22,
];

/// A key ring of the vector keys; lookups by any other id fail, as for an unknown key.
pub struct TestKeys {
    keys: Vec<(i32, SecretKey)>,
}

impl TestKeys {
    pub fn new() -> Self {
        let keys = TOKEN_KEYS
            .iter()
            .filter_map(|(id, b64)| SecretKey::from_base64(b64).map(|key| (*id, key)))
            .collect::<Vec<_>>();
        assert_eq!(keys.len(), TOKEN_KEYS.len(), "every test key is 32 bytes of base64");
        Self { keys }
    }

    /// The ids of the ring, for targets that pick a key from the input.
    pub fn ids(&self) -> Vec<i32> {
        self.keys.iter().map(|(id, _)| *id).collect()
    }

    /// A key of the ring chosen by a byte of the input.
    pub fn pick(&self, selector: u8) -> (i32, &SecretKey) {
        let (id, key) = &self.keys[usize::from(selector) % self.keys.len()];
        (*id, key)
    }
}

impl Default for TestKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyRing for TestKeys {
    fn secret(&self, key_id: i32) -> Option<&SecretKey> {
        self.keys.iter().find(|(id, _)| *id == key_id).map(|(_, key)| key)
    }
}

/// The client secret of the envelope vectors.
pub fn client_secret() -> SecretKey {
    SecretKey::from_base64(CLIENT_SECRET).expect("the vector client secret is 32 bytes of base64")
}
