//! `POST /v3/identity/map` (MAPPER): any mix of emails, phones and their hashes in one request.
//!
//! The answer always has all four arrays, each aligned by index with the request's:
//! `{"u": raw UID, "p": previous raw UID or null, "r": refresh-from in epoch seconds}`, or
//! `{"e": "optout" | "invalid identifier"}`. Binding is strict, as in the reference: an unknown
//! key (even `link_id`), a non-array value or a null element is 400 "Incorrect request format".
//! Phone arrays are mapped even with phone support off.

use std::borrow::Cow;

use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::Value;
use uid2_protocol::identity::{Dii, HashedIdentity};
use uid2_store::Role;

use crate::answer;
use crate::error::ApiError;
use crate::input::{MIXED_MISSING_EMAIL_ONLY, MIXED_MISSING_WITH_PHONE};
use crate::mapping::{map_each, MapOutcome};
use crate::request::{enveloped, Enveloped, Reply};
use crate::service_link;
use crate::state::AppState;

const FIELDS: [&str; 4] = ["email", "email_hash", "phone", "phone_hash"];

pub(crate) async fn handle(State(app): State<AppState>, request: Request) -> Response {
    enveloped(app, &[Role::Mapper], request, |app, req| async move { map(&app, &req) }).await
}

/// The four input arrays as text (a number or boolean item reads as its JSON text), or the
/// reference's format error.
fn bind(req: &Enveloped, phone_support: bool) -> Result<[Vec<Cow<'_, str>>; 4], ApiError> {
    let missing = || {
        ApiError::client_error(if phone_support {
            MIXED_MISSING_WITH_PHONE
        } else {
            MIXED_MISSING_EMAIL_ONLY
        })
    };
    let payload = req.payload.as_ref().filter(|p| !p.is_empty()).ok_or_else(missing)?;
    let format_error = || ApiError::client_error("Incorrect request format");
    if payload.keys().any(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format_error());
    }
    let mut out: [Vec<Cow<'_, str>>; 4] = Default::default();
    for (slot, field) in out.iter_mut().zip(FIELDS) {
        match payload.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                slot.reserve(items.len());
                for item in items {
                    slot.push(match item {
                        Value::String(s) => Cow::Borrowed(s.as_str()),
                        Value::Number(_) | Value::Bool(_) => Cow::Owned(item.to_string()),
                        _ => return Err(format_error()),
                    });
                }
            }
            Some(_) => return Err(format_error()),
        }
    }
    Ok(out)
}

/// Bytes of one mapped item, for sizing the answer buffer.
const ITEM_BYTES: usize = 110;

fn map(app: &AppState, req: &Enveloped) -> Result<Reply, ApiError> {
    let config = app.config();
    let inputs = bind(req, config.phone_support)?;
    service_link::validate(config, &req.serving, &req.caller, req.payload.as_ref())?;

    let total: usize = inputs.iter().map(Vec::len).sum();
    let (mut invalid, mut optout) = (0u64, 0u64);
    let mut failure = None;
    let reply = Reply::success_written(total * ITEM_BYTES, |out| {
        out.push(b'{');
        for (index, (field, values)) in FIELDS.iter().zip(&inputs).enumerate() {
            if index > 0 {
                out.push(b',');
            }
            answer::string(out, field);
            out.extend_from_slice(b":[");
            let mut first = true;
            let dii = |value: &Cow<'_, str>| -> Option<HashedIdentity> {
                let value: &str = value;
                match *field {
                    "email" => Dii::Email(value),
                    "email_hash" => Dii::EmailHash(value),
                    "phone" => Dii::Phone(value),
                    _ => Dii::PhoneHash(value),
                }
                .to_identity()
            };
            map_each(app, &req.serving, values, req.now_ms, dii, |_, outcome| {
                answer::separator(out, &mut first);
                match outcome {
                    Ok(MapOutcome::Mapped(m)) => {
                        out.extend_from_slice(b"{\"u\":");
                        answer::base64(out, &m.raw_uid);
                        out.extend_from_slice(b",\"p\":");
                        match m.previous_raw_uid(&req.serving, config, req.now_ms) {
                            Some(previous) => answer::base64(out, &previous),
                            None => out.extend_from_slice(b"null"),
                        }
                        out.extend_from_slice(b",\"r\":");
                        answer::integer(out, m.entry.mapped_refresh_from_ms(req.now_ms) / 1000);
                        out.push(b'}');
                    }
                    Ok(MapOutcome::OptOut) => {
                        optout += 1;
                        out.extend_from_slice(br#"{"e":"optout"}"#);
                    }
                    Ok(MapOutcome::Invalid) => {
                        invalid += 1;
                        out.extend_from_slice(br#"{"e":"invalid identifier"}"#);
                    }
                    Err(error) => {
                        failure.get_or_insert(error);
                    }
                }
            });
            out.push(b']');
        }
        out.push(b'}');
    });
    if let Some(error) = failure {
        return Err(error);
    }
    let counts: Vec<(&str, usize)> = FIELDS.iter().zip(&inputs).map(|(f, v)| (*f, v.len())).collect();
    app.metrics()
        .identity_map(&req.caller.contact, "/v3/identity/map", &counts, invalid, optout);
    Ok(reply)
}
