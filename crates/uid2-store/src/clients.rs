//! The clients store (`client_keys`): API keys of publishers, advertisers, DSPs and data
//! providers, and how a bearer token is matched to one.
//!
//! Core never stores a plaintext key. A record holds `key_salt` (random bytes, base64) and
//! `key_hash = base64(SHA-512(salt ‖ UTF-8(key)))`; a presented key matches the record whose hash
//! it reproduces. The sample files also carry a plaintext `key`, which is ignored.
//!
//! Invariants: every record has a decodable `key_hash` and `key_salt`, a 32-byte `secret` (the
//! v2 envelope key) and a `roles` array; no two records share a `key_hash`. Secrets never print.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use uid2_protocol::crypto::{ct_eq, sha256, sha512, SecretKey};

use crate::error::{FieldIssue, StoreError};
use crate::record::{check_unique, parse_records, Record};
use crate::role::Role;

const STORE: &str = "clients";

/// The reference caches up to this many key lookups per store (Caffeine, 100k entries).
pub const LOOKUP_CACHE_CAPACITY: usize = 100_000;

/// One API key of a participant.
#[derive(Clone)]
pub struct ClientKey {
    /// SHA-512 of `key_salt ‖ key`, decoded from base64.
    pub key_hash: Vec<u8>,
    /// Decoded from base64.
    pub key_salt: Vec<u8>,
    /// AES-256 key of the v2 request/response envelope.
    pub secret: SecretKey,
    pub name: String,
    /// Also the `api_contact` metrics label.
    pub contact: String,
    /// Epoch seconds.
    pub created: i64,
    pub roles: BTreeSet<Role>,
    pub site_id: i32,
    /// A disabled key still authenticates; authorization rejects it.
    pub disabled: bool,
    /// Non-zero for keys bound to a service (checked against service links).
    pub service_id: i32,
    /// The non-secret prefix of the key, e.g. `UID2-C-L-999-fCXrM`.
    pub key_id: String,
}

impl ClientKey {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether `api_key` is this client's key, compared in constant time.
    pub fn matches(&self, api_key: &str) -> bool {
        let digest = sha512(&[&self.key_salt, api_key.as_bytes()]);
        ct_eq(&digest, &self.key_hash)
    }
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("key_id", &self.key_id)
            .field("name", &self.name)
            .field("contact", &self.contact)
            .field("site_id", &self.site_id)
            .field("roles", &self.roles)
            .field("disabled", &self.disabled)
            .field("service_id", &self.service_id)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// All client keys, with the per-key lookup cache.
pub struct ClientStore {
    clients: Vec<ClientKey>,
    /// Indexes into `clients`, per site, in file order.
    by_site: HashMap<i32, Vec<usize>>,
    /// SHA-256 of a presented key → the matching client, or `None` for a miss. Raw keys are
    /// never kept. The cache lives and dies with this immutable store, which gives the
    /// reference's "drop cached misses on refresh" for free.
    cache: RwLock<HashMap<[u8; 32], Option<usize>>>,
    cache_capacity: usize,
}

impl std::fmt::Debug for ClientStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStore")
            .field("clients", &self.clients)
            .finish_non_exhaustive()
    }
}

/// Which clients a presented key may belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyScope {
    /// The key names its site; only that site's clients are tried.
    Site(i32),
    /// A legacy free-form key; every client is tried.
    AllClients,
    /// The key names a site id beyond 32 bits. The reference throws while parsing it; no client
    /// can match.
    NoClient,
}

impl ClientStore {
    /// Parses a `clients.json` data file.
    pub fn parse(bytes: &[u8]) -> Result<Self, StoreError> {
        let clients = parse_records(STORE, bytes, parse_client)?;
        Self::from_clients(clients)
    }

    /// Builds a store from already parsed keys; two keys with the same `key_hash` are an error.
    pub fn from_clients(clients: Vec<ClientKey>) -> Result<Self, StoreError> {
        check_unique(STORE, "key_hash", clients.iter().map(|c| c.key_hash.as_slice()))?;
        let mut by_site: HashMap<i32, Vec<usize>> = HashMap::new();
        for (index, client) in clients.iter().enumerate() {
            by_site.entry(client.site_id).or_default().push(index);
        }
        Ok(Self {
            clients,
            by_site,
            cache: RwLock::new(HashMap::new()),
            cache_capacity: LOOKUP_CACHE_CAPACITY,
        })
    }

    /// All keys, in file order.
    pub fn clients(&self) -> &[ClientKey] {
        &self.clients
    }

    /// The client whose key `api_key` is, if any (disabled clients included).
    pub fn authenticate(&self, api_key: &str) -> Option<&ClientKey> {
        let cache_key = sha256(&[api_key.as_bytes()]);
        // A poisoned lock only means another thread panicked mid-insert; the map is still
        // usable, and skipping the cache is always correct.
        if let Ok(cache) = self.cache.read() {
            if let Some(hit) = cache.get(&cache_key) {
                return hit.and_then(|index| self.clients.get(index));
            }
        }
        let found = self.find(api_key);
        if let Ok(mut cache) = self.cache.write() {
            // Full means full: the reference evicts, but a bounded map that stops growing keeps
            // the memory bound and still serves every key correctly.
            if cache.len() < self.cache_capacity {
                cache.insert(cache_key, found);
            }
        }
        found.and_then(|index| self.clients.get(index))
    }

    fn find(&self, api_key: &str) -> Option<usize> {
        let all: Vec<usize>;
        let candidates: &[usize] = match key_scope(api_key) {
            KeyScope::Site(site_id) => self.by_site.get(&site_id).map_or(&[], Vec::as_slice),
            KeyScope::AllClients => {
                all = (0..self.clients.len()).collect();
                &all
            }
            KeyScope::NoClient => &[],
        };
        candidates
            .iter()
            .copied()
            .find(|&index| self.clients.get(index).is_some_and(|client| client.matches(api_key)))
    }

    #[cfg(test)]
    fn cached_lookups(&self) -> usize {
        self.cache.read().map_or(0, |cache| cache.len())
    }
}

fn parse_client(record: &Record<'_>) -> Result<ClientKey, StoreError> {
    let roles = record
        .array("roles")?
        .iter()
        .map(|role| {
            role.as_str().map(Role::parse_lenient).ok_or_else(|| {
                record.fail(
                    "roles",
                    FieldIssue::WrongType {
                        expected: "an array of strings",
                    },
                )
            })
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(ClientKey {
        key_hash: record.base64("key_hash")?,
        key_salt: record.base64("key_salt")?,
        secret: record.secret_key("secret")?,
        name: record.opt_str("name")?.unwrap_or_default().to_owned(),
        contact: record.opt_str("contact")?.unwrap_or_default().to_owned(),
        created: record.opt_i64("created")?.unwrap_or(0),
        roles,
        site_id: record.opt_i32("site_id")?.unwrap_or(0),
        disabled: record.opt_bool("disabled")?.unwrap_or(false),
        service_id: record.opt_i32("service_id")?.unwrap_or(0),
        key_id: record.opt_str("key_id")?.unwrap_or_default().to_owned(),
    })
}

/// The reference narrows the lookup with `(?:UID2|EUID)-[CO]-[LTIP]-([0-9]+)-.{6}\..{38}` and
/// `Matcher.find()`: the pattern may match anywhere in the key, not only the whole key, and the
/// first (leftmost) match wins. `.` is any character except Java's line terminators. Matched
/// by hand to keep the regex engine out of the crate.
fn key_scope(api_key: &str) -> KeyScope {
    let chars: Vec<char> = api_key.chars().collect();
    (0..chars.len())
        .find_map(|start| chars.get(start..).and_then(site_digits_at))
        .map_or(KeyScope::AllClients, |digits| {
            let digits: String = digits.iter().collect();
            digits.parse().map_or(KeyScope::NoClient, KeyScope::Site)
        })
}

/// The site digits if the pattern matches at the start of `text`.
fn site_digits_at(text: &[char]) -> Option<&[char]> {
    fn literal<'a>(text: &'a [char], word: &str) -> Option<&'a [char]> {
        let mut rest = text;
        for expected in word.chars() {
            let (&first, tail) = rest.split_first()?;
            if first != expected {
                return None;
            }
            rest = tail;
        }
        Some(rest)
    }
    fn one_of<'a>(text: &'a [char], allowed: &str) -> Option<&'a [char]> {
        let (&first, tail) = text.split_first()?;
        allowed.contains(first).then_some(tail)
    }
    fn any_chars(text: &[char], count: usize) -> Option<&[char]> {
        let taken = text.get(..count)?;
        let is_line_terminator = |c: &char| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
        if taken.iter().any(is_line_terminator) {
            return None;
        }
        text.get(count..)
    }

    let rest = literal(text, "UID2").or_else(|| literal(text, "EUID"))?;
    let rest = literal(rest, "-")?;
    let rest = one_of(rest, "CO")?;
    let rest = literal(rest, "-")?;
    let rest = one_of(rest, "LTIP")?;
    let rest = literal(rest, "-")?;
    let digit_count = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digit_count == 0 {
        return None;
    }
    let (digits, rest) = rest.split_at(digit_count);
    let rest = literal(rest, "-")?;
    let rest = any_chars(rest, 6)?;
    let rest = literal(rest, ".")?;
    any_chars(rest, 38)?;
    Some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plaintext keys of the reference's sample clients (`clients.json` `key` fields, also
    /// sdk.md §3.1), with the site and name each must authenticate as.
    const SAMPLE_KEYS: [(&str, i32, &str); 8] = [
        (
            "UID2-C-L-999-fCXrMM.fsR3mDqAXELtWWMS+xG1s7RdgRTMqdOH2qaAo=",
            999,
            "Special",
        ),
        (
            "LOCALbGlvbnVuZGVybGluZXdpbmRzY2FyZWRzb2Z0ZGVzZXI=",
            999,
            "Special (Old)",
        ),
        ("UID2-C-L-123-t32pCM.5NCX1E94UgOd2f8zhsKmxzCoyhXohHYSSWR8U=", 123, "DSP"),
        (
            "UID2-C-L-124-H8VwqX.l2G4TCuUWYAqdqkeG/UqtFoPEoXirKn4kHWxc=",
            124,
            "Publisher",
        ),
        (
            "UID2-C-L-125-E5w9L8.T5og45yFqQeoj4ubh9IVqXcaSVwk7A5XyG958=",
            125,
            "Data Provider",
        ),
        (
            "UID2-C-L-126-GMP9tD.jn2o3vmXzn7vmKRlTT6BEUrPUaPJuQmDBdq38=",
            126,
            "Advertiser",
        ),
        (
            "UID2-C-L-127-aHVydH.JlZnVzZWRmYXN0ZW5lbXliYWdpZGVudGl0eWU=",
            127,
            "OptOut",
        ),
        (
            "UID2-C-L-126-Tv40pS./TtagASU9S0tIqDyBSh283pla4mDyHBZvw+OQ=",
            126,
            "AWS Venice",
        ),
    ];

    fn sample_store() -> ClientStore {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/reference-store/clients/clients.json"
        ))
        .expect("sample clients");
        ClientStore::parse(&bytes).expect("sample clients parse")
    }

    /// A client whose key is `key`, hashed the way Core does.
    fn client(key: &str, site_id: i32, salt: u8) -> ClientKey {
        let key_salt = vec![salt; 32];
        ClientKey {
            key_hash: sha512(&[&key_salt, key.as_bytes()]).to_vec(),
            key_salt,
            secret: SecretKey::from_bytes([salt; 32]),
            name: format!("client {salt}"),
            contact: String::new(),
            created: 0,
            roles: BTreeSet::from([Role::Mapper]),
            site_id,
            disabled: false,
            service_id: 0,
            key_id: String::new(),
        }
    }

    #[test]
    fn every_sample_key_authenticates_as_its_client() {
        let store = sample_store();
        assert_eq!(store.clients().len(), 8);
        for (key, site_id, name) in SAMPLE_KEYS {
            let found = store
                .authenticate(key)
                .unwrap_or_else(|| panic!("{name} authenticates"));
            assert_eq!((found.site_id, found.name.as_str()), (site_id, name));
            // The cached path gives the same answer.
            let again = store.authenticate(key).map(|c| c.name.as_str());
            assert_eq!(again, Some(name));
        }
    }

    #[test]
    fn wrong_keys_do_not_authenticate() {
        let store = sample_store();
        for (key, _, _) in SAMPLE_KEYS {
            let mut altered: Vec<char> = key.chars().collect();
            let last = altered.len() - 2;
            altered[last] = if altered[last] == 'A' { 'B' } else { 'A' };
            let altered: String = altered.into_iter().collect();
            assert!(store.authenticate(&altered).is_none(), "{altered}");
            assert!(store.authenticate(&format!("{key} ")).is_none());
        }
        assert!(store.authenticate("").is_none());
        assert!(store.authenticate("UID2-C-L-999-fCXrMM").is_none());
    }

    #[test]
    fn sample_records_parse_with_defaults_and_unknown_roles() {
        let store = sample_store();
        let special = &store.clients()[0];
        assert_eq!(
            special.roles,
            BTreeSet::from([
                Role::Mapper,
                Role::Generator,
                Role::IdReader,
                Role::Sharer,
                Role::Optout,
                Role::Unknown
            ])
        );
        assert_eq!(special.key_id, "UID2-C-L-999-fCXrM");
        assert_eq!(special.created, 1609459200);
        assert_eq!(special.service_id, 0);
        assert_eq!(
            special.secret.to_base64(),
            "DzBzbjTJcYL0swDtFs2krRNu+g1Eokm2tBU4dEuD0Wk="
        );
        let venice = &store.clients()[7];
        assert_eq!((venice.service_id, venice.created), (2, 1698695162));
    }

    #[test]
    fn key_pattern_narrows_to_the_named_site() {
        // The key names site 6 but belongs to a site-5 client: the reference only tries site 6.
        let narrowed = "UID2-C-L-6-abcdef.0123456789012345678901234567890123456789";
        let legacy = "legacy-free-form-key";
        let store =
            ClientStore::from_clients(vec![client(narrowed, 5, 1), client(legacy, 5, 2)]).expect("distinct hashes");
        assert!(store.authenticate(narrowed).is_none());
        assert_eq!(store.authenticate(legacy).map(|c| c.name.as_str()), Some("client 2"));

        let right_site = ClientStore::from_clients(vec![client(narrowed, 6, 1)]).expect("one");
        assert!(right_site.authenticate(narrowed).is_some());
    }

    #[test]
    fn key_pattern_is_searched_not_anchored() {
        // Java `find()`: leading and trailing text around the pattern do not stop the match.
        let key = "xxEUID-O-P-42-ab.def.0123456789012345678901234567890123456789-tail";
        assert_eq!(key_scope(key), KeyScope::Site(42));
        let store = ClientStore::from_clients(vec![client(key, 7, 1)]).expect("one");
        assert!(
            store.authenticate(key).is_none(),
            "narrowed to site 42, client is site 7"
        );
        let store = ClientStore::from_clients(vec![client(key, 42, 1)]).expect("one");
        assert!(store.authenticate(key).is_some());
    }

    #[test]
    fn key_scope_follows_the_reference_pattern() {
        let tail38 = "0123456789012345678901234567890123456789";
        let tail38 = &tail38[..38];
        let cases = [
            (format!("UID2-C-L-999-fCXrMM.{tail38}"), KeyScope::Site(999)),
            (format!("EUID-O-T-0007-ABCDEF.{tail38}"), KeyScope::Site(7)),
            (format!("UID2-C-I-1-ÄÖÜäöü.{tail38}"), KeyScope::Site(1)),
            // Too short after the dot, wrong letters, missing digits, line terminators in `.`.
            (format!("UID2-C-L-999-fCXrMM.{}", &tail38[..37]), KeyScope::AllClients),
            (format!("UID2-X-L-999-fCXrMM.{tail38}"), KeyScope::AllClients),
            (format!("UID2-C-Q-999-fCXrMM.{tail38}"), KeyScope::AllClients),
            (format!("UID2-C-L--fCXrMM.{tail38}"), KeyScope::AllClients),
            (format!("uid2-C-L-999-fCXrMM.{tail38}"), KeyScope::AllClients),
            (format!("UID2-C-L-999-fCX\nMM.{tail38}"), KeyScope::AllClients),
            (format!("UID2-C-L-999-fCXrMM_{tail38}"), KeyScope::AllClients),
            // `.{6}` may itself contain dots and dashes.
            (format!("UID2-C-L-5-a.b-c..{tail38}"), KeyScope::Site(5)),
            // A site id beyond i32 cannot name any client.
            (format!("UID2-C-L-99999999999-fCXrMM.{tail38}"), KeyScope::NoClient),
        ];
        for (key, expected) in cases {
            assert_eq!(key_scope(&key), expected, "{key:?}");
        }
    }

    #[test]
    fn lookups_are_cached_by_digest_up_to_capacity() {
        let mut store = sample_store();
        store.cache_capacity = 2;
        let (key, _, _) = SAMPLE_KEYS[2];
        assert!(store.authenticate(key).is_some());
        assert!(store.authenticate("not a key").is_none());
        assert_eq!(store.cached_lookups(), 2);
        assert!(store.authenticate("another miss").is_none());
        assert_eq!(store.cached_lookups(), 2, "full cache stops growing");
        // Uncached lookups still answer correctly.
        let (other, _, name) = SAMPLE_KEYS[3];
        assert_eq!(store.authenticate(other).map(|c| c.name.as_str()), Some(name));
        let raw_keys_kept = store
            .cache
            .read()
            .map(|cache| cache.keys().any(|k| k.as_slice() == key.as_bytes()))
            .unwrap_or(true);
        assert!(!raw_keys_kept);
    }

    #[test]
    fn malformed_records_are_rejected_with_field_names() {
        let valid = r#"{"key_hash":"AAAA","key_salt":"AAAA","secret":"DzBzbjTJcYL0swDtFs2krRNu+g1Eokm2tBU4dEuD0Wk=","roles":["MAPPER"]}"#;
        assert!(ClientStore::parse(format!("[{valid}]").as_bytes()).is_ok());
        let cases: [(&str, &str, FieldIssue); 6] = [
            (
                r#"{"key_salt":"AAAA","secret":"DzBzbjTJcYL0swDtFs2krRNu+g1Eokm2tBU4dEuD0Wk=","roles":[]}"#,
                "key_hash",
                FieldIssue::Missing,
            ),
            (
                r#"{"key_hash":"AAAA","key_salt":"AAAA","secret":"DzBzbjTJcYL0swDtFs2krRNu+g1Eokm2tBU4dEuD0Wk="}"#,
                "roles",
                FieldIssue::Missing,
            ),
            (
                r#"{"key_hash":"AAAA","key_salt":"A*AA","secret":"DzBzbjTJcYL0swDtFs2krRNu+g1Eokm2tBU4dEuD0Wk=","roles":[]}"#,
                "key_salt",
                FieldIssue::InvalidBase64,
            ),
            (
                r#"{"key_hash":"AAAA","key_salt":"AAAA","secret":"c2hvcnQ=","roles":[]}"#,
                "secret",
                FieldIssue::WrongLength { expected: 32, found: 5 },
            ),
            (
                r#"{"key_hash":"AAAA","key_salt":"AAAA","secret":"DzBzbjTJcYL0swDtFs2krRNu+g1Eokm2tBU4dEuD0Wk=","roles":[1]}"#,
                "roles",
                FieldIssue::WrongType {
                    expected: "an array of strings",
                },
            ),
            (
                r#"{"key_hash":"AAAA","key_salt":"AAAA","secret":"DzBzbjTJcYL0swDtFs2krRNu+g1Eokm2tBU4dEuD0Wk=","roles":[],"site_id":"5"}"#,
                "site_id",
                FieldIssue::WrongType { expected: "an integer" },
            ),
        ];
        for (record, field, issue) in cases {
            let err = ClientStore::parse(format!("[{valid},{record}]").as_bytes()).expect_err(record);
            assert_eq!(err.store, "clients");
            assert_eq!(
                err.problem,
                crate::Problem::Field { index: 1, field, issue },
                "{record}"
            );
        }
        let dup = ClientStore::parse(format!("[{valid},{valid}]").as_bytes()).expect_err("dup");
        assert_eq!(
            dup.problem,
            crate::Problem::Duplicate {
                field: "key_hash",
                first: 0,
                second: 1
            }
        );
        assert!(ClientStore::parse(b"[1]").is_err());
        assert!(ClientStore::parse(b"{}").is_err());
    }

    #[test]
    fn nothing_secret_is_printed() {
        let store = sample_store();
        let shown = format!("{store:?}");
        for client in store.clients() {
            let hash = uid2_protocol::base64::encode(&client.key_hash);
            let salt = uid2_protocol::base64::encode(&client.key_salt);
            assert!(!shown.contains(&hash) && !shown.contains(&salt));
            assert!(!shown.contains(&client.secret.to_base64()));
        }
        assert!(shown.contains("UID2-C-L-999-fCXrM"));
    }
}
