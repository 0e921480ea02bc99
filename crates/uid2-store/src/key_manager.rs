//! Which key to use and who may see which key: the reference's `KeyManager` and
//! `KeysetSnapshot` rules, over one keysets store and one keyset keys store.
//!
//! - Master key: the active key of keyset −1. Refresh key: the active key of keyset −2.
//! - Publisher (site) key: the active key of the site's one enabled default keyset, else of site
//!   2's (the fallback publisher). More than one enabled default keyset for a site is an error
//!   at use time, as in the reference; the file itself still loads.
//! - Visibility for `/v2/key/latest`, `/key/sharing`, `/key/bidstream` (api.md §9.1): never the
//!   refresh keyset; always the master keyset; otherwise an enabled keyset that the caller owns,
//!   lists, or — for ID_READER callers — that has no list at all. No time filter.
//! - `site_data` (api.md §9.2) from the owners of the visible keys.

use uid2_protocol::crypto::SecretKey;
use uid2_protocol::token::KeyRing;

use crate::keyset_keys::{KeysetKey, KeysetKeyStore};
use crate::keysets::{Keyset, KeysetStore, FALLBACK_PUBLISHER_SITE_ID, MASTER_KEYSET_ID, REFRESH_KEYSET_ID};
use crate::sites::SiteStore;

/// A site with more than one enabled default keyset; the reference throws on it (HTTP 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("site {site_id} has more than one enabled default keyset")]
pub struct MultipleDefaultKeysets {
    pub site_id: i32,
}

/// Where a publisher key came from (the reference's `site_keyset_status` metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteKeyChoice {
    /// The caller site's own default keyset.
    SiteKeyset,
    /// Site 2's default keyset, because the caller's had no active key (or did not exist).
    FallbackKeyset,
}

/// A read-only view joining keysets and their keys.
#[derive(Debug, Clone, Copy)]
pub struct KeyManager<'a> {
    keysets: &'a KeysetStore,
    keys: &'a KeysetKeyStore,
}

impl<'a> KeyManager<'a> {
    pub fn new(keysets: &'a KeysetStore, keys: &'a KeysetKeyStore) -> Self {
        Self { keysets, keys }
    }

    /// Lookup by id, with no time check (token decryption).
    pub fn key(&self, id: i32) -> Option<&'a KeysetKey> {
        self.keys.key(id)
    }

    /// The keyset a key belongs to (token validation goes key → keyset → owner site).
    pub fn keyset_of_key(&self, key_id: i32) -> Option<&'a Keyset> {
        self.keys.key(key_id).and_then(|key| self.keysets.keyset(key.keyset_id))
    }

    pub fn keyset(&self, keyset_id: i32) -> Option<&'a Keyset> {
        self.keysets.keyset(keyset_id)
    }

    /// See [`KeysetKeyStore::active_key`].
    pub fn active_key(&self, keyset_id: i32, now_ms: i64) -> Option<&'a KeysetKey> {
        self.keys.active_key(keyset_id, now_ms)
    }

    pub fn master_key(&self, now_ms: i64) -> Option<&'a KeysetKey> {
        self.active_key(MASTER_KEYSET_ID, now_ms)
    }

    pub fn refresh_key(&self, now_ms: i64) -> Option<&'a KeysetKey> {
        self.active_key(REFRESH_KEYSET_ID, now_ms)
    }

    /// The site's enabled default keyset, if it has exactly one.
    pub fn default_keyset(&self, site_id: i32) -> Result<Option<&'a Keyset>, MultipleDefaultKeysets> {
        let mut found = self
            .keysets
            .keysets()
            .filter(|k| k.enabled && k.default && k.site_id == site_id);
        let first = found.next();
        if found.next().is_some() {
            return Err(MultipleDefaultKeysets { site_id });
        }
        Ok(first)
    }

    /// The active key of the site's default keyset.
    fn default_key(&self, site_id: i32, now_ms: i64) -> Result<Option<&'a KeysetKey>, MultipleDefaultKeysets> {
        Ok(self
            .default_keyset(site_id)?
            .and_then(|keyset| self.active_key(keyset.keyset_id, now_ms)))
    }

    /// The key that encrypts the site layer of a token generated for `site_id`, falling back to
    /// the publisher keyset of site 2. `Ok(None)` is the reference's `NoActiveKeyException`.
    pub fn site_key(
        &self,
        site_id: i32,
        now_ms: i64,
    ) -> Result<Option<(&'a KeysetKey, SiteKeyChoice)>, MultipleDefaultKeysets> {
        if let Some(key) = self.default_key(site_id, now_ms)? {
            return Ok(Some((key, SiteKeyChoice::SiteKeyset)));
        }
        Ok(self
            .default_key(FALLBACK_PUBLISHER_SITE_ID, now_ms)?
            .map(|key| (key, SiteKeyChoice::FallbackKeyset)))
    }

    /// The keys a caller may download, sorted by key id. `allow_all_null_acl` is the reference's
    /// ALLOW_ALL mode, granted to callers with the ID_READER role.
    pub fn visible_keys(&self, caller_site_id: i32, allow_all_null_acl: bool) -> Vec<&'a KeysetKey> {
        // `keys()` is sorted by id already.
        self.keys
            .keys()
            .iter()
            .filter(|key| key.keyset_id != REFRESH_KEYSET_ID)
            .filter(|key| {
                let Some(keyset) = self.keysets.keyset(key.keyset_id) else {
                    return false;
                };
                if key.keyset_id == MASTER_KEYSET_ID {
                    return true;
                }
                keyset.enabled
                    && (keyset.site_id == caller_site_id
                        || (allow_all_null_acl && keyset.allowed_sites.is_none())
                        || keyset.lists_site(caller_site_id))
            })
            .collect()
    }

    /// `site_data` of the key endpoints: for each distinct owner site of `keys` (ascending) that
    /// the site store knows and that has domain names (or, with `include_app_names`, app names),
    /// the deduplicated union of its names, sorted as Java sorts strings (by UTF-16 code unit).
    pub fn site_data(
        &self,
        keys: &[&KeysetKey],
        sites: &SiteStore,
        include_app_names: bool,
    ) -> Vec<(i32, Vec<String>)> {
        let mut owners: Vec<i32> = keys
            .iter()
            .filter_map(|key| self.keysets.keyset(key.keyset_id))
            .map(|keyset| keyset.site_id)
            .collect();
        owners.sort_unstable();
        owners.dedup();
        owners
            .into_iter()
            .filter_map(|site_id| sites.site(site_id))
            .filter(|site| !site.domain_names.is_empty() || (include_app_names && !site.app_names.is_empty()))
            .map(|site| {
                let mut names: Vec<String> = site.domain_names.clone();
                if include_app_names {
                    names.extend(site.app_names.iter().cloned());
                }
                names.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
                names.dedup();
                (site.id, names)
            })
            .collect()
    }
}

impl KeyRing for KeyManager<'_> {
    fn secret(&self, key_id: i32) -> Option<&SecretKey> {
        self.keys.secret(key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyset(keyset_id: i32, site_id: i32, allowed: Option<Vec<i32>>, enabled: bool, default: bool) -> Keyset {
        Keyset {
            keyset_id,
            site_id,
            name: String::new(),
            allowed_sites: allowed,
            created: 0,
            enabled,
            default,
        }
    }

    fn key(id: i32, keyset_id: i32, activates: i64) -> KeysetKey {
        KeysetKey {
            id,
            keyset_id,
            secret: SecretKey::from_bytes([1; 32]),
            created: 0,
            activates,
            expires: 1_000,
        }
    }

    #[test]
    fn site_key_falls_back_to_site_2_and_reports_ambiguity() {
        let keysets = KeysetStore::from_keysets(vec![
            keyset(2, 2, None, true, true),
            keyset(10, 10, None, true, true),
            keyset(11, 11, None, true, true),
            keyset(12, 11, None, true, true),
            keyset(13, 13, None, false, true),
            keyset(14, 14, None, true, true),
        ])
        .expect("keysets");
        let keys = KeysetKeyStore::from_keys(vec![
            key(1, 2, 0),
            key(2, 10, 0),
            key(3, 11, 0),
            key(4, 13, 0),
            key(5, 14, 500),
        ])
        .expect("keys");
        let manager = KeyManager::new(&keysets, &keys);
        let chosen = |site| {
            manager
                .site_key(site, 100_000)
                .map(|k| k.map(|(key, how)| (key.id, how)))
        };
        assert_eq!(chosen(10), Ok(Some((2, SiteKeyChoice::SiteKeyset))));
        assert_eq!(chosen(99), Ok(Some((1, SiteKeyChoice::FallbackKeyset))), "no keyset");
        assert_eq!(
            chosen(13),
            Ok(Some((1, SiteKeyChoice::FallbackKeyset))),
            "disabled keyset"
        );
        assert_eq!(
            chosen(14),
            Ok(Some((1, SiteKeyChoice::FallbackKeyset))),
            "not active yet"
        );
        assert_eq!(chosen(11), Err(MultipleDefaultKeysets { site_id: 11 }));
        assert_eq!(manager.default_keyset(11), Err(MultipleDefaultKeysets { site_id: 11 }));
        assert_eq!(manager.default_keyset(10).map(|k| k.map(|k| k.keyset_id)), Ok(Some(10)));
        assert_eq!(manager.default_keyset(13), Ok(None));

        let no_fallback = KeysetStore::from_keysets(vec![keyset(10, 10, None, true, true)]).expect("one");
        let manager = KeyManager::new(&no_fallback, &keys);
        assert_eq!(manager.site_key(99, 100_000), Ok(None));
    }

    #[test]
    fn visibility_follows_the_acl_rules() {
        let keysets = KeysetStore::from_keysets(vec![
            keyset(-1, -1, Some(vec![]), false, true), // master: always visible, even disabled
            keyset(-2, -2, None, true, true),          // refresh: never visible
            keyset(20, 20, None, true, true),          // null ACL
            keyset(21, 21, Some(vec![]), true, true),  // empty ACL
            keyset(22, 22, Some(vec![5]), true, true), // lists 5
            keyset(23, 5, Some(vec![]), false, true),  // own but disabled
            keyset(24, 5, Some(vec![]), true, false),  // own
        ])
        .expect("keysets");
        let keys = KeysetKeyStore::from_keys(vec![
            key(7, 24, 0),
            key(1, -1, 0),
            key(2, -2, 0),
            key(3, 20, 0),
            key(4, 21, 0),
            key(5, 22, 0),
            key(6, 23, 0),
            key(8, 99, 0), // keyset unknown: never visible
        ])
        .expect("keys");
        let manager = KeyManager::new(&keysets, &keys);
        let ids = |site, allow_all| {
            manager
                .visible_keys(site, allow_all)
                .iter()
                .map(|k| k.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(5, false), vec![1, 5, 7]);
        assert_eq!(ids(5, true), vec![1, 3, 5, 7]);
        assert_eq!(ids(6, false), vec![1]);
        assert_eq!(ids(6, true), vec![1, 3]);
        assert_eq!(ids(20, false), vec![1, 3]);
        assert_eq!(manager.keyset_of_key(5).map(|k| k.site_id), Some(22));
        assert!(manager.keyset_of_key(8).is_none());
        assert!(manager.keyset_of_key(9).is_none());
    }
}
