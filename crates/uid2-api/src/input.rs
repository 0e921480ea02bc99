//! Reading identities out of request payloads with the reference's leniency.
//!
//! The reference reads single fields with Vert.x `getString`, which turns any non-null JSON value
//! into text (a number `123` becomes `"123"`, an object its JSON), and treats JSON `null` as absent.
//! [`token_input`] follows the same "exactly one of email, email_hash, phone, phone_hash" rule as
//! generate, validate and logout.

use serde_json::{Map, Value};
use uid2_protocol::identity::Dii;

pub(crate) const MISSING_WITH_PHONE: &str =
    "Required Parameter Missing: exactly one of [email, email_hash, phone, phone_hash] must be specified";
pub(crate) const MISSING_EMAIL_ONLY: &str =
    "Required Parameter Missing: exactly one of email or email_hash must be specified";
pub(crate) const MIXED_MISSING_WITH_PHONE: &str =
    "Required Parameter Missing: one or more of [email, email_hash, phone, phone_hash] must be specified";
pub(crate) const MIXED_MISSING_EMAIL_ONLY: &str =
    "Required Parameter Missing: one or more of [email, email_hash] must be specified";

pub(crate) fn missing_input_message(phone_support: bool) -> &'static str {
    if phone_support {
        MISSING_WITH_PHONE
    } else {
        MISSING_EMAIL_ONLY
    }
}

/// A field as text, `None` if absent or JSON `null`.
pub(crate) fn get_string(payload: &Map<String, Value>, key: &str) -> Option<String> {
    match payload.get(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Which DII field a request named, with its text.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum DiiField {
    Email(String),
    EmailHash(String),
    Phone(String),
    PhoneHash(String),
}

impl DiiField {
    pub fn as_dii(&self) -> Dii<'_> {
        match self {
            Self::Email(s) => Dii::Email(s),
            Self::EmailHash(s) => Dii::EmailHash(s),
            Self::Phone(s) => Dii::Phone(s),
            Self::PhoneHash(s) => Dii::PhoneHash(s),
        }
    }
}

/// Exactly one identity field, or `None` (none, several, or no payload at all). Phone fields are
/// not looked at when phone support is off.
pub(crate) fn token_input(payload: Option<&Map<String, Value>>, phone_support: bool) -> Option<DiiField> {
    let payload = payload?;
    let mut found = None;
    let mut take = |field: Option<DiiField>| -> bool {
        match (field, found.is_some()) {
            (Some(_), true) => false,
            (Some(f), false) => {
                found = Some(f);
                true
            }
            (None, _) => true,
        }
    };
    let ok = take(get_string(payload, "email").map(DiiField::Email))
        && take(get_string(payload, "email_hash").map(DiiField::EmailHash))
        && (!phone_support
            || (take(get_string(payload, "phone").map(DiiField::Phone))
                && take(get_string(payload, "phone_hash").map(DiiField::PhoneHash))));
    if ok {
        found
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(json: &str) -> Map<String, Value> {
        match serde_json::from_str(json) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn exactly_one_field() {
        let one = map(r#"{"email":"a@b.com","policy":1}"#);
        assert!(matches!(token_input(Some(&one), true), Some(DiiField::Email(e)) if e == "a@b.com"));
        let two = map(r#"{"email":"a@b.com","phone":"+12345678901"}"#);
        assert!(token_input(Some(&two), true).is_none());
        // With phone support off the phone field is not seen at all.
        assert!(matches!(token_input(Some(&two), false), Some(DiiField::Email(_))));
        let none = map(r#"{"email":null}"#);
        assert!(token_input(Some(&none), true).is_none());
        assert!(token_input(None, true).is_none());
        let number = map(r#"{"email":123}"#);
        assert!(matches!(token_input(Some(&number), true), Some(DiiField::Email(e)) if e == "123"));
    }
}
