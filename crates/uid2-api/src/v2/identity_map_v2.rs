//! `POST /v2/identity/map` (MAPPER): one kind of identifier per request, each mapped to its raw
//! UID and salt bucket, or listed as unmapped (`optout` or `invalid identifier`).
//!
//! Exactly one of `email`, `email_hash`, `phone`, `phone_hash` may be a non-empty array; all
//! present-but-empty gives an empty `mapped`. A field that is not an array is
//! 400 "<field> must be an array". `identifier` echoes the input as sent. `unmapped` is omitted
//! when empty. No item limit beyond the 1 MiB body.

use axum::extract::{Request, State};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use uid2_protocol::base64;
use uid2_protocol::identity::Dii;
use uid2_store::Role;

use crate::error::ApiError;
use crate::input::missing_input_message;
use crate::mapping::{map_dii, MapOutcome};
use crate::request::{enveloped, Enveloped, Reply};
use crate::service_link;
use crate::state::AppState;

#[derive(Serialize)]
struct MappedItem {
    identifier: Value,
    advertising_id: String,
    bucket_id: String,
}

#[derive(Serialize)]
struct UnmappedItem {
    identifier: Value,
    reason: &'static str,
}

#[derive(Serialize)]
struct MapResponse {
    mapped: Vec<MappedItem>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unmapped: Vec<UnmappedItem>,
}

const FIELDS: [&str; 4] = ["email", "email_hash", "phone", "phone_hash"];

pub(crate) async fn handle(State(app): State<AppState>, request: Request) -> Response {
    enveloped(app, &[Role::Mapper], request, |app, req| async move { map(&app, &req) }).await
}

fn map(app: &AppState, req: &Enveloped) -> Result<Reply, ApiError> {
    let config = app.config();
    let missing = || ApiError::client_error(missing_input_message(config.phone_support));
    let payload = req.payload.as_ref().ok_or_else(missing)?;

    let mut arrays: Vec<(&str, Option<&Vec<Value>>)> = Vec::with_capacity(4);
    for field in FIELDS {
        if field.starts_with("phone") && !config.phone_support {
            continue;
        }
        let value = match payload.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(items),
            Some(_) => return Err(ApiError::client_error(format!("{field} must be an array"))),
        };
        arrays.push((field, value));
    }
    if arrays.iter().all(|(_, v)| v.is_none()) {
        return Err(missing());
    }
    let mut non_empty = arrays.iter().filter(|(_, v)| v.is_some_and(|a| !a.is_empty()));
    let (field, items): (&str, &[Value]) = match (non_empty.next(), non_empty.next()) {
        (Some((field, Some(items))), None) => (field, items),
        (None, _) => ("email", &[]),
        _ => return Err(missing()),
    };

    service_link::validate(config, &req.serving, &req.caller, req.payload.as_ref())?;

    let mut response = MapResponse {
        mapped: Vec::with_capacity(items.len()),
        unmapped: Vec::new(),
    };
    let (mut invalid, mut optout) = (0u64, 0u64);
    for item in items {
        // Read as text like the reference's `getString` (a number becomes its digits), and echo
        // that text; only JSON null stays null.
        let text = match item {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        let identifier = text.clone().map_or(Value::Null, Value::String);
        let dii = text.as_deref().map(|t| match field {
            "email" => Dii::Email(t),
            "email_hash" => Dii::EmailHash(t),
            "phone" => Dii::Phone(t),
            _ => Dii::PhoneHash(t),
        });
        match map_dii(app, &req.serving, dii, req.now_ms)? {
            MapOutcome::Mapped(m) => response.mapped.push(MappedItem {
                identifier,
                advertising_id: base64::encode(&m.raw_uid),
                bucket_id: m.bucket_id,
            }),
            MapOutcome::OptOut => {
                optout += 1;
                response.unmapped.push(UnmappedItem {
                    identifier,
                    reason: "optout",
                });
            }
            MapOutcome::Invalid => {
                invalid += 1;
                response.unmapped.push(UnmappedItem {
                    identifier,
                    reason: "invalid identifier",
                });
            }
        }
    }
    app.metrics().identity_map(
        &req.caller.contact,
        "/v2/identity/map",
        &[(field, items.len())],
        invalid,
        optout,
    );
    Reply::success(&response)
}
