//! Service links: a client that acts for a service (`service_id` ≠ 0) may map identities only
//! through links of that service.
//!
//! As in the reference: when the operator does not load links (`validate_service_links` off) such
//! a client is refused; when the payload names a `link_id`, the link must exist, be enabled and
//! carry the MAPPER role; a payload without `link_id` passes.

use axum::http::StatusCode;
use serde_json::{Map, Value};
use uid2_store::Role;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::get_string;
use crate::state::{ApiConfig, Serving};

pub(crate) fn validate(
    config: &ApiConfig,
    serving: &Serving,
    caller: &Caller,
    payload: Option<&Map<String, Value>>,
) -> Result<(), ApiError> {
    if caller.service_id == 0 {
        return Ok(());
    }
    let refused = || ApiError::json(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid link_id");
    if !config.validate_service_links {
        return Err(refused());
    }
    let Some(payload) = payload.filter(|p| p.contains_key("link_id")) else {
        return Ok(());
    };
    let link_id = get_string(payload, "link_id").unwrap_or_default();
    match serving.store.service_links.link(caller.service_id, &link_id) {
        Some(link) if !link.disabled && link.roles.contains(&Role::Mapper) => Ok(()),
        _ => Err(refused()),
    }
}
