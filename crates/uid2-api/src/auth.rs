//! Who is calling: bearer API keys checked against the client store.
//!
//! `Authorization: Bearer <key>`: the header value is trimmed, the `bearer ` prefix matched
//! case-insensitively, and the rest is the key. A client must exist, not be disabled and hold at
//! least one of the route's roles; any failure is the same 401 with no detail, so a caller cannot
//! tell an unknown key from a disabled one.

use axum::http::{header, HeaderMap};
use uid2_protocol::crypto::SecretKey;
use uid2_store::{ClientKey, Role};

use crate::error::ApiError;
use crate::state::Serving;

/// An authenticated client, carried through a request. Holds a copy of its secret so the response
/// can be sealed after the handler ran.
#[derive(Clone)]
pub(crate) struct Caller {
    pub site_id: i32,
    pub contact: String,
    pub service_id: i32,
    pub roles: Vec<Role>,
    pub secret: SecretKey,
}

impl Caller {
    fn from_client(client: &ClientKey) -> Self {
        Self {
            site_id: client.site_id,
            contact: client.contact.clone(),
            service_id: client.service_id,
            roles: client.roles.iter().copied().collect(),
            secret: client.secret.clone(),
        }
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// The key from `Authorization: Bearer <key>`.
pub(crate) fn bearer_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let prefix = value.get(..7)?;
    if prefix.eq_ignore_ascii_case("bearer ") {
        value.get(7..)
    } else {
        None
    }
}

/// Finds the client a key belongs to, disabled or not (optional-auth refresh only needs this).
pub(crate) fn identify(serving: &Serving, headers: &HeaderMap) -> Option<Caller> {
    let key = bearer_key(headers)?;
    serving.store.clients.authenticate(key).map(Caller::from_client)
}

/// Requires an enabled client holding one of `roles`.
pub(crate) fn authorize(serving: &Serving, headers: &HeaderMap, roles: &[Role]) -> Result<Caller, ApiError> {
    let key = bearer_key(headers).ok_or_else(ApiError::unauthorized)?;
    let client = serving
        .store
        .clients
        .authenticate(key)
        .ok_or_else(ApiError::unauthorized)?;
    if client.disabled || !roles.iter().any(|r| client.roles.contains(r)) {
        return Err(ApiError::unauthorized());
    }
    Ok(Caller::from_client(client))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).expect("ascii"));
        h
    }

    #[test]
    fn bearer_prefix_is_case_insensitive_and_value_trimmed() {
        assert_eq!(bearer_key(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_key(&headers("  bEaReR abc  ")), Some("abc"));
        assert_eq!(bearer_key(&headers("Bearer  abc")), Some(" abc"));
        assert_eq!(bearer_key(&headers("Basic abc")), None);
        assert_eq!(bearer_key(&headers("Bearer")), None);
        assert_eq!(bearer_key(&HeaderMap::new()), None);
    }
}
