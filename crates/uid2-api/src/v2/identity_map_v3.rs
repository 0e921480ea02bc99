//! `POST /v3/identity/map` (MAPPER): any mix of emails, phones and their hashes in one request.
//!
//! The answer always has all four arrays, each aligned by index with the request's:
//! `{"u": raw UID, "p": previous raw UID or null, "r": refresh-from in epoch seconds}`, or
//! `{"e": "optout" | "invalid identifier"}`. Binding is strict, as in the reference: an unknown
//! key (even `link_id`), a non-array value or a null element is 400 "Incorrect request format".
//! Phone arrays are mapped even with phone support off.

use axum::extract::{Request, State};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use uid2_protocol::base64;
use uid2_protocol::identity::Dii;
use uid2_store::Role;

use crate::error::ApiError;
use crate::input::{MIXED_MISSING_EMAIL_ONLY, MIXED_MISSING_WITH_PHONE};
use crate::mapping::{map_dii, MapOutcome};
use crate::request::{enveloped, Enveloped, Reply};
use crate::service_link;
use crate::state::AppState;

#[derive(Serialize)]
#[serde(untagged)]
enum Item {
    Mapped { u: String, p: Option<String>, r: i64 },
    Unmapped { e: &'static str },
}

#[derive(Serialize, Default)]
struct MapResponse {
    email: Vec<Item>,
    email_hash: Vec<Item>,
    phone: Vec<Item>,
    phone_hash: Vec<Item>,
}

const FIELDS: [&str; 4] = ["email", "email_hash", "phone", "phone_hash"];

pub(crate) async fn handle(State(app): State<AppState>, request: Request) -> Response {
    enveloped(app, &[Role::Mapper], request, |app, req| async move { map(&app, &req) }).await
}

/// The four input arrays as strings, or the reference's format error.
fn bind(req: &Enveloped, phone_support: bool) -> Result<[Vec<String>; 4], ApiError> {
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
    let mut out: [Vec<String>; 4] = Default::default();
    for (slot, field) in out.iter_mut().zip(FIELDS) {
        match payload.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    slot.push(match item {
                        Value::String(s) => s.clone(),
                        Value::Number(_) | Value::Bool(_) => item.to_string(),
                        _ => return Err(format_error()),
                    });
                }
            }
            Some(_) => return Err(format_error()),
        }
    }
    Ok(out)
}

fn map(app: &AppState, req: &Enveloped) -> Result<Reply, ApiError> {
    let config = app.config();
    let inputs = bind(req, config.phone_support)?;
    service_link::validate(config, &req.serving, &req.caller, req.payload.as_ref())?;

    let mut response = MapResponse::default();
    let (mut invalid, mut optout) = (0u64, 0u64);
    let outputs = [
        &mut response.email,
        &mut response.email_hash,
        &mut response.phone,
        &mut response.phone_hash,
    ];
    for ((field, values), output) in FIELDS.iter().zip(&inputs).zip(outputs) {
        output.reserve(values.len());
        for value in values {
            let dii = match *field {
                "email" => Dii::Email(value),
                "email_hash" => Dii::EmailHash(value),
                "phone" => Dii::Phone(value),
                _ => Dii::PhoneHash(value),
            };
            output.push(match map_dii(app, &req.serving, Some(dii), req.now_ms)? {
                MapOutcome::Mapped(m) => Item::Mapped {
                    u: base64::encode(&m.raw_uid),
                    p: m.previous_raw_uid.as_deref().map(base64::encode),
                    r: m.refresh_from_ms / 1000,
                },
                MapOutcome::OptOut => {
                    optout += 1;
                    Item::Unmapped { e: "optout" }
                }
                MapOutcome::Invalid => {
                    invalid += 1;
                    Item::Unmapped {
                        e: "invalid identifier",
                    }
                }
            });
        }
    }
    let counts: Vec<(&str, usize)> = FIELDS.iter().zip(&inputs).map(|(f, v)| (*f, v.len())).collect();
    app.metrics()
        .identity_map(&req.caller.contact, "/v3/identity/map", &counts, invalid, optout);
    Reply::success(&response)
}
