//! `POST /v2/identity/map` (MAPPER): one kind of identifier per request, each mapped to its raw
//! UID and salt bucket, or listed as unmapped (`optout` or `invalid identifier`).
//!
//! Exactly one of `email`, `email_hash`, `phone`, `phone_hash` may be a non-empty array; all
//! present-but-empty gives an empty `mapped`. A field that is not an array is
//! 400 "<field> must be an array". `identifier` echoes the input as sent. `unmapped` is omitted
//! when empty. No item limit beyond the 1 MiB body.

use std::borrow::Cow;

use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::Value;
use uid2_protocol::identity::{Dii, HashedIdentity};
use uid2_store::Role;

use crate::answer;
use crate::error::ApiError;
use crate::input::missing_input_message;
use crate::mapping::{map_each, MapOutcome};
use crate::request::{enveloped, Enveloped, Reply};
use crate::service_link;
use crate::state::AppState;

const FIELDS: [&str; 4] = ["email", "email_hash", "phone", "phone_hash"];

/// Bytes of one mapped item, for sizing the answer buffer.
const ITEM_BYTES: usize = 130;

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

    let (mut invalid, mut optout) = (0u64, 0u64);
    let mut failure = None;
    // Unmapped items are rare; they are collected apart and appended after `mapped`.
    let mut unmapped: Vec<u8> = Vec::new();
    let salts = &req.serving.store.salts;
    let reply = Reply::success_written(items.len() * ITEM_BYTES, |out| {
        out.extend_from_slice(br#"{"mapped":["#);
        let mut first_mapped = true;
        let mut first_unmapped = true;
        let identity = |item: &Value| -> Option<HashedIdentity> {
            let text = text_of(item)?;
            dii_of(field, &text).to_identity()
        };
        map_each(app, &req.serving, items, req.now_ms, identity, |item, outcome| {
            let text = text_of(item);
            let identifier = |out: &mut Vec<u8>| match text.as_deref() {
                Some(t) => answer::string(out, t),
                None => out.extend_from_slice(b"null"),
            };
            let reason = match outcome {
                Ok(MapOutcome::Mapped(m)) => {
                    answer::separator(out, &mut first_mapped);
                    out.extend_from_slice(br#"{"identifier":"#);
                    identifier(out);
                    out.extend_from_slice(br#","advertising_id":"#);
                    answer::base64(out, &m.raw_uid);
                    out.extend_from_slice(br#","bucket_id":""#);
                    let start = out.len();
                    salts.write_bucket_id(m.entry, out);
                    if out[start..].iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) {
                        // A prefix from the salts metadata that needs escaping: rare, do it right.
                        let id = String::from_utf8_lossy(&out[start..]).into_owned();
                        out.truncate(start - 1);
                        answer::string(out, &id);
                        out.push(b'}');
                    } else {
                        out.extend_from_slice(b"\"}");
                    }
                    return;
                }
                Ok(MapOutcome::OptOut) => {
                    optout += 1;
                    "optout"
                }
                Ok(MapOutcome::Invalid) => {
                    invalid += 1;
                    "invalid identifier"
                }
                Err(error) => {
                    failure.get_or_insert(error);
                    return;
                }
            };
            answer::separator(&mut unmapped, &mut first_unmapped);
            unmapped.extend_from_slice(br#"{"identifier":"#);
            identifier(&mut unmapped);
            unmapped.extend_from_slice(br#","reason":"#);
            answer::string(&mut unmapped, reason);
            unmapped.push(b'}');
        });
        out.push(b']');
        if !unmapped.is_empty() {
            out.extend_from_slice(br#","unmapped":["#);
            out.extend_from_slice(&unmapped);
            out.push(b']');
        }
        out.push(b'}');
    });
    if let Some(error) = failure {
        return Err(error);
    }
    app.metrics().identity_map(
        &req.caller.contact,
        "/v2/identity/map",
        &[(field, items.len())],
        invalid,
        optout,
    );
    Ok(reply)
}

/// An item read as text like the reference's `getString` (a number becomes its digits); only
/// JSON null has none. The answer echoes this text.
fn text_of(item: &Value) -> Option<Cow<'_, str>> {
    match item {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        other => Some(Cow::Owned(other.to_string())),
    }
}

fn dii_of<'a>(field: &str, text: &'a str) -> Dii<'a> {
    match field {
        "email" => Dii::Email(text),
        "email_hash" => Dii::EmailHash(text),
        "phone" => Dii::Phone(text),
        _ => Dii::PhoneHash(text),
    }
}
