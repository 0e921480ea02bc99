//! EUID's TCF consent rule for token generation.
//!
//! Only with `identity_scope: euid` and only when the payload *contains* `tcf_consent_string`: the
//! string must decode as an IAB TCF v2 consent string (else 400 "User consent is invalid"), and the
//! purposes granted to the configured vendor — purpose consents if the vendor has consent, plus
//! purpose legitimate-interest transparency if the vendor has legitimate interest — must include
//! purposes 1, 2, 3, 4, 7 and 10 (else 200 `insufficient_user_consent`).

use lib_tcstring::TcModelV2;
use serde_json::{Map, Value};
use uid2_protocol::identity::IdentityScope;

use crate::input::get_string;

/// Storage (1), basic ads (2), ads profile (3), personalised ads (4), measurement (7),
/// product improvement (10).
const REQUIRED_PURPOSES: [u8; 6] = [1, 2, 3, 4, 7, 10];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Consent {
    Sufficient,
    Insufficient,
    Invalid,
}

pub(crate) fn check(scope: IdentityScope, vendor_id: u16, payload: Option<&Map<String, Value>>) -> Consent {
    let Some(payload) = payload else {
        return Consent::Sufficient;
    };
    if scope != IdentityScope::Euid || !payload.contains_key("tcf_consent_string") {
        return Consent::Sufficient;
    }
    let Some(text) = get_string(payload, "tcf_consent_string").filter(|s| !s.is_empty()) else {
        return Consent::Invalid;
    };
    // The decoder is a third-party parser of untrusted input: contain any panic as "invalid".
    let decoded = std::panic::catch_unwind(|| TcModelV2::try_from(text.as_str()).ok())
        .ok()
        .flatten();
    let Some(model) = decoded else {
        return Consent::Invalid;
    };
    let mut granted = Vec::new();
    if model.vendors_consent.contains(&vendor_id) {
        granted.extend_from_slice(&model.purposes_consent);
    }
    if model.vendors_li_consent.contains(&vendor_id) {
        granted.extend_from_slice(&model.purposes_li_transparency);
    }
    if REQUIRED_PURPOSES.iter().all(|p| granted.contains(p)) {
        Consent::Sufficient
    } else {
        Consent::Insufficient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(tcf: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("tcf_consent_string".into(), Value::String(tcf.into()));
        m
    }

    #[test]
    fn uid2_ignores_consent() {
        assert_eq!(
            check(IdentityScope::Uid2, 21, Some(&payload("garbage"))),
            Consent::Sufficient
        );
    }

    #[test]
    fn euid_rejects_empty_and_garbage() {
        assert_eq!(check(IdentityScope::Euid, 21, Some(&payload(""))), Consent::Invalid);
        assert_eq!(
            check(IdentityScope::Euid, 21, Some(&payload("not a tc string"))),
            Consent::Invalid
        );
        let mut null = Map::new();
        null.insert("tcf_consent_string".into(), Value::Null);
        assert_eq!(check(IdentityScope::Euid, 21, Some(&null)), Consent::Invalid);
        assert_eq!(check(IdentityScope::Euid, 21, None), Consent::Sufficient);
        assert_eq!(check(IdentityScope::Euid, 21, Some(&Map::new())), Consent::Sufficient);
    }

    /// Strings from the reference's `EUIDOperatorVerticleTest`: its default string grants vendor 21
    /// every required purpose; the second lacks purpose 1.
    #[test]
    fn euid_reference_test_strings() {
        let sufficient = "CPehNtWPehNtWABAMBFRACBoALAAAEJAAIYgAKwAQAKgArABAAqAAA";
        let missing_purpose_1 = "CPehXK9PehXK9ABAMBFRACBoADAAAEJAAIYgAKwAQAKgArABAAqAAA";
        assert_eq!(
            check(IdentityScope::Euid, 21, Some(&payload(sufficient))),
            Consent::Sufficient
        );
        assert_eq!(
            check(IdentityScope::Euid, 21, Some(&payload(missing_purpose_1))),
            Consent::Insufficient
        );
        assert_eq!(
            check(IdentityScope::Euid, 21, Some(&payload("invalid_consent_string"))),
            Consent::Invalid
        );
        // Another vendor has no consent in the same string.
        assert_eq!(
            check(IdentityScope::Euid, 22, Some(&payload(sufficient))),
            Consent::Insufficient
        );
    }
}
