//! The runtime config: token lifetimes and the identity environment, served inline by Core
//! (`{"version": n, "runtime_config": {…}}`) or, with remote config off, taken from the
//! operator's own config file (see [`RuntimeConfig::from_json`]).
//!
//! Validation is the reference's (`RuntimeConfig.java`): the four lifetimes and the environment
//! are required; `refresh_expires ≥ identity_expires ≥ refresh_identity_after`; a set
//! `max_bidstream_lifetime_seconds` must be ≥ the identity lifetime. Values are 32-bit integers;
//! like Jackson, a numeric string is accepted for a number. Unknown fields are ignored.

use serde_json::{Map, Value};
use uid2_protocol::identity::IdentityEnvironment;

use crate::error::{FieldIssue, Problem, RuntimeConfigIssue, StoreError};
use crate::record::{parse_object, Record};

const STORE: &str = "runtime_config";

/// Token lifetimes and environment, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Advertising token lifetime; the default max bidstream lifetime.
    pub identity_token_expires_after_seconds: i32,
    pub refresh_token_expires_after_seconds: i32,
    /// `refresh_from` = now + this.
    pub refresh_identity_token_after_seconds: i32,
    /// `token_expiry_seconds` of `/v2/key/sharing`; the default max sharing lifetime.
    pub sharing_token_expiry_seconds: i32,
    pub max_bidstream_lifetime_seconds: Option<i32>,
    pub max_sharing_lifetime_seconds: Option<i32>,
    /// Written into raw UIDs v4.
    pub identity_environment: IdentityEnvironment,
}

fn issue(problem: RuntimeConfigIssue) -> StoreError {
    StoreError::new(STORE, Problem::RuntimeConfig(problem))
}

fn integer(map: &Map<String, Value>, field: &'static str) -> Result<Option<i32>, StoreError> {
    let value = match map.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    let parsed = match value {
        Value::Number(n) => n.as_i64().and_then(|v| i32::try_from(v).ok()),
        Value::String(text) => text.parse::<i32>().ok(),
        _ => None,
    };
    parsed
        .map(Some)
        .ok_or_else(|| issue(RuntimeConfigIssue::NotAnInteger(field)))
}

fn required(map: &Map<String, Value>, field: &'static str) -> Result<i32, StoreError> {
    integer(map, field)?.ok_or_else(|| issue(RuntimeConfigIssue::Missing(field)))
}

impl RuntimeConfig {
    /// Reads and validates the runtime config fields of a JSON object (the `runtime_config`
    /// object of the metadata, or the operator config itself).
    pub fn from_json(map: &Map<String, Value>) -> Result<Self, StoreError> {
        let identity = required(map, "identity_token_expires_after_seconds")?;
        let refresh = required(map, "refresh_token_expires_after_seconds")?;
        let refresh_after = required(map, "refresh_identity_token_after_seconds")?;
        if refresh < identity {
            return Err(issue(RuntimeConfigIssue::RefreshShorterThanIdentity));
        }
        if identity < refresh_after {
            return Err(issue(RuntimeConfigIssue::IdentityShorterThanRefreshAfter));
        }
        let max_bidstream = integer(map, "max_bidstream_lifetime_seconds")?;
        if max_bidstream.is_some_and(|max| max < identity) {
            return Err(issue(RuntimeConfigIssue::BidstreamShorterThanIdentity));
        }
        let sharing = required(map, "sharing_token_expiry_seconds")?;
        let max_sharing = integer(map, "max_sharing_lifetime_seconds")?;
        let environment = match map.get("identity_environment") {
            None | Some(Value::Null) => return Err(issue(RuntimeConfigIssue::Missing("identity_environment"))),
            Some(Value::String(name)) => {
                IdentityEnvironment::parse(name).ok_or_else(|| issue(RuntimeConfigIssue::UnknownEnvironment))?
            }
            Some(_) => return Err(issue(RuntimeConfigIssue::UnknownEnvironment)),
        };
        Ok(Self {
            identity_token_expires_after_seconds: identity,
            refresh_token_expires_after_seconds: refresh,
            refresh_identity_token_after_seconds: refresh_after,
            sharing_token_expiry_seconds: sharing,
            max_bidstream_lifetime_seconds: max_bidstream,
            max_sharing_lifetime_seconds: max_sharing,
            identity_environment: environment,
        })
    }

    /// The configured max bidstream lifetime, else the identity token lifetime.
    pub fn effective_max_bidstream_lifetime_seconds(&self) -> i32 {
        self.max_bidstream_lifetime_seconds
            .unwrap_or(self.identity_token_expires_after_seconds)
    }

    /// The configured max sharing lifetime, else the sharing token expiry.
    pub fn effective_max_sharing_lifetime_seconds(&self) -> i32 {
        self.max_sharing_lifetime_seconds
            .unwrap_or(self.sharing_token_expiry_seconds)
    }
}

/// Parses `{"version": n, "runtime_config": {…}}` into its version and config.
pub fn parse_runtime_config_metadata(bytes: &[u8]) -> Result<(i64, RuntimeConfig), StoreError> {
    let map = parse_object(STORE, bytes)?;
    let meta = Record::metadata(STORE, &map);
    let version = meta.i64("version")?;
    let config = match meta.get("runtime_config") {
        Some(Value::Object(config)) => RuntimeConfig::from_json(config)?,
        Some(_) => return Err(meta.fail("runtime_config", FieldIssue::WrongType { expected: "an object" })),
        None => return Err(meta.fail("runtime_config", FieldIssue::Missing)),
    };
    Ok((version, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<RuntimeConfig, StoreError> {
        let value: Value = serde_json::from_str(json).expect("test json");
        match value {
            Value::Object(map) => RuntimeConfig::from_json(&map),
            _ => panic!("test json is an object"),
        }
    }

    const SAMPLE: &str = r#"{"identity_token_expires_after_seconds":3600,"refresh_token_expires_after_seconds":86400,
        "refresh_identity_token_after_seconds":900,"sharing_token_expiry_seconds":2592000,"identity_environment":"test"}"#;

    #[test]
    fn sample_config_and_defaults() {
        let (version, config) =
            parse_runtime_config_metadata(format!(r#"{{"version":1,"runtime_config":{SAMPLE}}}"#).as_bytes())
                .expect("valid");
        assert_eq!(version, 1);
        assert_eq!(config.identity_token_expires_after_seconds, 3600);
        assert_eq!(config.identity_environment, IdentityEnvironment::Test);
        assert_eq!(config.effective_max_bidstream_lifetime_seconds(), 3600);
        assert_eq!(config.effective_max_sharing_lifetime_seconds(), 2592000);
    }

    #[test]
    fn optional_maxima_and_lenient_values() {
        let config = parse(
            r#"{"identity_token_expires_after_seconds":"3600","refresh_token_expires_after_seconds":3600,
                "refresh_identity_token_after_seconds":3600,"sharing_token_expiry_seconds":10,
                "max_bidstream_lifetime_seconds":3600,"max_sharing_lifetime_seconds":5,
                "identity_environment":"PROD","unknown":true}"#,
        )
        .expect("boundaries are inclusive");
        assert_eq!(config.effective_max_bidstream_lifetime_seconds(), 3600);
        assert_eq!(config.effective_max_sharing_lifetime_seconds(), 5);
        assert_eq!(config.identity_environment, IdentityEnvironment::Prod);
    }

    #[test]
    fn validation_follows_the_reference() {
        let with = |field: &str, value: &str| {
            let mut map: Map<String, Value> = serde_json::from_str(SAMPLE).expect("sample");
            if value.is_empty() {
                map.remove(field);
            } else {
                map.insert(field.to_owned(), serde_json::from_str(value).expect("value"));
            }
            RuntimeConfig::from_json(&map).map_err(|e| e.problem)
        };
        let rc = Problem::RuntimeConfig;
        for field in [
            "identity_token_expires_after_seconds",
            "refresh_token_expires_after_seconds",
            "refresh_identity_token_after_seconds",
            "sharing_token_expiry_seconds",
            "identity_environment",
        ] {
            assert_eq!(with(field, ""), Err(rc(RuntimeConfigIssue::Missing(field))), "{field}");
        }
        assert_eq!(
            with("refresh_token_expires_after_seconds", "3599"),
            Err(rc(RuntimeConfigIssue::RefreshShorterThanIdentity))
        );
        assert_eq!(
            with("refresh_identity_token_after_seconds", "3601"),
            Err(rc(RuntimeConfigIssue::IdentityShorterThanRefreshAfter))
        );
        assert_eq!(
            with("max_bidstream_lifetime_seconds", "3599"),
            Err(rc(RuntimeConfigIssue::BidstreamShorterThanIdentity))
        );
        assert_eq!(
            with("identity_environment", "\"staging\""),
            Err(rc(RuntimeConfigIssue::UnknownEnvironment))
        );
        assert_eq!(
            with("identity_environment", "2"),
            Err(rc(RuntimeConfigIssue::UnknownEnvironment))
        );
        assert_eq!(
            with("sharing_token_expiry_seconds", "2147483648"),
            Err(rc(RuntimeConfigIssue::NotAnInteger("sharing_token_expiry_seconds")))
        );
        assert_eq!(
            with("sharing_token_expiry_seconds", "1.5"),
            Err(rc(RuntimeConfigIssue::NotAnInteger("sharing_token_expiry_seconds")))
        );
        let err = parse_runtime_config_metadata(br#"{"version":1}"#).expect_err("no config");
        assert_eq!(
            err.problem,
            Problem::Metadata {
                field: "runtime_config",
                issue: FieldIssue::Missing
            }
        );
    }
}
