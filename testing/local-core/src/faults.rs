//! Fault injection: rules that make chosen paths misbehave, so tests can watch the operator cope.
//!
//! A rule matches requests whose path starts with `path_prefix` and does any combination of:
//! wait `delay_ms` first; answer `status` instead of the real handler (on `/attest`, 401 and 403
//! carry Core's refusal bodies); or replace the real answer's body with `garbage` bytes of the
//! same length or a `truncated` first half. With `times: n` it applies to the next n matching
//! requests and then disappears; without, until cleared. Every matching rule applies (delays
//! add up; the first status and the first body fault win). The control paths under `/_test/`
//! are never affected.
//!
//! JSON form (for `POST /_test/faults`, one rule or `{"rules":[…]}`):
//! `{"path_prefix":"/salt/refresh","status":500,"times":2}`,
//! `{"path_prefix":"/files/","body":"truncated"}`, `{"path_prefix":"/attest","status":403}`,
//! `{"path_prefix":"/","delay_ms":1500}`.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest delay a rule may ask for, so a typo cannot hang a test run.
pub const MAX_DELAY: Duration = Duration::from_secs(600);
/// Most rules held at once.
pub const MAX_RULES: usize = 256;

/// How a rule spoils a real answer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFault {
    /// Bytes that are neither JSON nor a valid file, of the real body's length (at least 16).
    Garbage,
    /// The first half of the real body.
    Truncated,
    /// In a JSON answer `{"token": JWT}` (the MAA simulator's), one byte of the JWT's signature
    /// changed: a token that parses and whose signature does not verify. Other bodies pass
    /// unchanged.
    BadSignature,
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    #[serde(default = "root")]
    pub path_prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<BodyFault>,
    /// Remaining matching requests; `None` = until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

fn root() -> String {
    "/".to_owned()
}

impl FaultRule {
    fn empty(path_prefix: &str) -> Self {
        Self {
            path_prefix: path_prefix.to_owned(),
            status: None,
            delay_ms: None,
            body: None,
            times: None,
        }
    }

    /// Answer `status` on paths starting with `path_prefix`.
    pub fn status(path_prefix: &str, status: u16) -> Self {
        Self {
            status: Some(status),
            ..Self::empty(path_prefix)
        }
    }

    /// Wait `delay` before handling.
    pub fn delay(path_prefix: &str, delay: Duration) -> Self {
        Self {
            delay_ms: Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
            ..Self::empty(path_prefix)
        }
    }

    /// Replace the body with garbage of the same length.
    pub fn garbage(path_prefix: &str) -> Self {
        Self {
            body: Some(BodyFault::Garbage),
            ..Self::empty(path_prefix)
        }
    }

    /// Cut the body in half.
    pub fn truncated(path_prefix: &str) -> Self {
        Self {
            body: Some(BodyFault::Truncated),
            ..Self::empty(path_prefix)
        }
    }

    /// Refuse `/attest` with 401 (`unauthorized`) or 403 (`attestation failure`); other codes
    /// are used as given.
    pub fn refuse_attestation(status: u16) -> Self {
        Self::status("/attest", status)
    }

    /// Apply to the next `n` matching requests only.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Also wait `delay` (combine with a status or body fault).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay_ms = Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Checks a rule that came over HTTP.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !self.path_prefix.starts_with('/') {
            return Err("path_prefix must start with /");
        }
        if self.status.is_some_and(|s| !(100..=599).contains(&s)) {
            return Err("status must be 100..=599");
        }
        if self.delay_ms.is_some_and(|d| u128::from(d) > MAX_DELAY.as_millis()) {
            return Err("delay_ms must be at most 600000");
        }
        if self.status.is_none() && self.delay_ms.is_none() && self.body.is_none() {
            return Err("a rule needs status, delay_ms or body");
        }
        Ok(())
    }
}

/// What the matching rules do to one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effect {
    pub delay: Duration,
    pub status: Option<u16>,
    pub body: Option<BodyFault>,
}

/// The active rules, shared by the service and its controller.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

impl Faults {
    /// Adds a rule after the existing ones. Invalid rules and rules beyond [`MAX_RULES`] are
    /// refused.
    pub fn add(&self, rule: FaultRule) -> Result<(), &'static str> {
        rule.validate()?;
        let mut rules = self.rules.lock().map_err(|_| "fault rules unavailable")?;
        if rules.len() >= MAX_RULES {
            return Err("too many fault rules");
        }
        rules.push(rule);
        Ok(())
    }

    pub fn clear(&self) {
        if let Ok(mut rules) = self.rules.lock() {
            rules.clear();
        }
    }

    /// The rules still active.
    pub fn rules(&self) -> Vec<FaultRule> {
        self.rules.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The combined effect on a request for `path`; counts down and drops used-up rules.
    pub fn take(&self, path: &str) -> Effect {
        let mut effect = Effect::default();
        if path.starts_with("/_test/") {
            return effect;
        }
        let Ok(mut rules) = self.rules.lock() else {
            return effect;
        };
        for rule in rules.iter_mut().filter(|r| path.starts_with(&r.path_prefix)) {
            if rule.times == Some(0) {
                continue;
            }
            if let Some(n) = rule.times.as_mut() {
                *n -= 1;
            }
            let delay = Duration::from_millis(rule.delay_ms.unwrap_or(0)).min(MAX_DELAY);
            effect.delay = effect.delay.saturating_add(delay).min(MAX_DELAY);
            effect.status = effect.status.or(rule.status);
            effect.body = effect.body.or(rule.body);
        }
        rules.retain(|r| r.times != Some(0));
        effect
    }
}

/// The spoiled version of a body.
pub fn spoil(body: &[u8], fault: BodyFault) -> Vec<u8> {
    match fault {
        BodyFault::Truncated => body[..body.len() / 2].to_vec(),
        BodyFault::BadSignature => forge_jwt_signature(body).unwrap_or_else(|| body.to_vec()),
        BodyFault::Garbage => {
            // Starts with bytes that are not valid UTF-8, JSON or base64, so no parser mistakes it
            // for data; the rest is a fixed pseudo-random stream.
            let len = body.len().max(16);
            let mut state: u32 = 0x9E37_79B9;
            (0..len)
                .map(|i| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    if i < 2 {
                        0xFF
                    } else {
                        state.to_le_bytes()[0]
                    }
                })
                .collect()
        }
    }
}

fn forge_jwt_signature(body: &[u8]) -> Option<Vec<u8>> {
    use uid2_protocol::base64;
    let mut answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = answer.get("token")?.as_str()?;
    let (signed, signature) = token.rsplit_once('.')?;
    let mut bytes = base64::decode_url(signature).ok()?;
    let last = bytes.last_mut()?;
    *last ^= 0x01;
    answer["token"] = serde_json::Value::String(format!("{signed}.{}", base64::encode_url(&bytes)));
    serde_json::to_vec(&answer).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_count_down_and_combine() {
        let faults = Faults::default();
        faults.add(FaultRule::status("/salt/", 500).times(2)).expect("valid");
        faults
            .add(FaultRule::delay("/", Duration::from_millis(5)))
            .expect("valid");
        faults.add(FaultRule::status("/salt/refresh", 503)).expect("valid");
        let first = faults.take("/salt/refresh");
        assert_eq!(first.status, Some(500));
        assert_eq!(first.delay, Duration::from_millis(5));
        assert_eq!(faults.take("/salt/refresh").status, Some(500));
        assert_eq!(faults.take("/salt/refresh").status, Some(503));
        assert_eq!(faults.take("/clients/refresh").status, None);
        assert_eq!(faults.take("/_test/faults"), Effect::default());
        assert_eq!(faults.rules().len(), 2);
        faults.clear();
        assert_eq!(faults.take("/salt/refresh"), Effect::default());
    }

    #[test]
    fn http_rules_are_validated() {
        let faults = Faults::default();
        assert!(faults.add(FaultRule::status("/x", 42)).is_err());
        assert!(faults.add(FaultRule::status("x", 500)).is_err());
        assert!(faults.add(FaultRule::delay("/", Duration::from_secs(3600))).is_err());
        let parsed: FaultRule = serde_json::from_str(r#"{"body":"garbage","times":1}"#).expect("json");
        assert_eq!(parsed, FaultRule::garbage("/").times(1));
        assert!(serde_json::from_str::<FaultRule>(r#"{"stauts":500}"#).is_err());
        assert!(faults
            .add(serde_json::from_str(r#"{"path_prefix":"/"}"#).expect("json"))
            .is_err());
    }

    #[test]
    fn spoiled_bodies() {
        assert_eq!(spoil(b"abcdef", BodyFault::Truncated), b"abc");
        assert_eq!(spoil(b"", BodyFault::Truncated), b"");
        let garbage = spoil(b"[1,2,3]", BodyFault::Garbage);
        assert_eq!(garbage.len(), 16);
        assert!(serde_json::from_slice::<serde_json::Value>(&garbage).is_err());
        assert_eq!(spoil(&[0; 100], BodyFault::Garbage).len(), 100);
        assert_eq!(
            spoil(br#"{"token":"a.b.AAAA"}"#, BodyFault::BadSignature),
            br#"{"token":"a.b.AAAB"}"#
        );
        assert_eq!(spoil(b"[1]", BodyFault::BadSignature), b"[1]");
    }
}
