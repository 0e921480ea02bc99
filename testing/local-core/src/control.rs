//! The HTTP face of fault injection, on the same loopback listener: `GET /_test/faults` lists
//! the active rules, `POST /_test/faults` adds one rule or `{"rules":[…]}` (all or none), and
//! `DELETE /_test/faults` clears them. See [`crate::faults`] for what a rule does.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::CoreError;
use crate::faults::FaultRule;
use crate::server::Shared;

#[derive(Deserialize)]
#[serde(untagged)]
enum Added {
    Many { rules: Vec<FaultRule> },
    One(FaultRule),
}

pub async fn list(State(state): State<Shared>) -> Json<Value> {
    Json(json!({ "rules": state.faults.rules() }))
}

pub async fn add(State(state): State<Shared>, body: Bytes) -> Result<Json<Value>, CoreError> {
    let added: Added = serde_json::from_slice(&body).map_err(|_| CoreError::BadRequest("not a fault rule"))?;
    let rules = match added {
        Added::Many { rules } => rules,
        Added::One(rule) => vec![rule],
    };
    for rule in &rules {
        rule.validate().map_err(CoreError::BadRequest)?;
    }
    for rule in rules {
        state.faults.add(rule).map_err(CoreError::BadRequest)?;
    }
    Ok(Json(json!({ "rules": state.faults.rules() })))
}

pub async fn clear(State(state): State<Shared>) -> Json<Value> {
    state.faults.clear();
    Json(json!({ "rules": [] }))
}
