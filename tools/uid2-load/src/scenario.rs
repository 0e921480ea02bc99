//! What each scenario sends and how its answer is judged.
//!
//! Requests are sealed exactly as an SDK seals them (`uid2_protocol::envelope::client`), and every
//! answer is checked the way an SDK would reject it: HTTP 200, opens with the client secret (or,
//! for refresh, the identity's `refresh_response_key`), echoes the request nonce, JSON with
//! `status: success`, and for the identity maps one result per identifier sent. Anything else is a
//! failure with a short label (no tokens, keys or identifiers in it), never a panic: the server
//! under test is allowed to be wrong.

use bytes::Bytes;
use serde::de::IgnoredAny;
use serde::Deserialize;
use uid2_protocol::crypto::{gcm_open, sha256, SecretKey, GCM_IV_LEN};
use uid2_protocol::entropy::{Entropy, OsEntropy};
use uid2_protocol::envelope::client::{open_response, seal_request};
use uid2_protocol::envelope::NONCE_LEN;

pub const OCTET_STREAM: &str = "application/octet-stream";
const TEXT: &str = "text/plain";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Generate,
    Refresh,
    MapV2,
    MapV3,
    KeySharing,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Generate,
        Scenario::Refresh,
        Scenario::MapV2,
        Scenario::MapV3,
        Scenario::KeySharing,
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Generate => "generate",
            Scenario::Refresh => "refresh",
            Scenario::MapV2 => "map-v2",
            Scenario::MapV3 => "map-v3",
            Scenario::KeySharing => "key-sharing",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Scenario::Generate => "/v2/token/generate",
            Scenario::Refresh => "/v2/token/refresh",
            Scenario::MapV2 => "/v2/identity/map",
            Scenario::MapV3 => "/v3/identity/map",
            Scenario::KeySharing => "/v2/key/sharing",
        }
    }

    pub fn is_map(self) -> bool {
        matches!(self, Scenario::MapV2 | Scenario::MapV3)
    }
}

/// The identity a refreshing connection holds: the 388-character refresh envelope and the key its
/// answer is sealed with. Never printed.
pub struct Held {
    token: String,
    response_key: SecretKey,
}

/// A request ready to send, and what its answer must satisfy.
pub struct Outgoing {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: Bytes,
    pub expect: Expect,
}

pub enum Expect {
    /// A v2 envelope answer echoing `nonce`; for the maps, `items` results.
    Envelope { nonce: [u8; NONCE_LEN], items: usize },
    /// A bare GCM blob under the identity's response key.
    Refreshed { key: SecretKey },
}

/// What came back over HTTP.
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// A successful answer: how many identities it mapped, and the new identity a generate or refresh
/// handed out.
pub struct Verdict {
    pub identities: u64,
    pub held: Option<Held>,
}

#[derive(Deserialize)]
struct Answer<B> {
    status: String,
    body: Option<B>,
}

#[derive(Deserialize)]
struct IdentityBody {
    refresh_token: String,
    refresh_response_key: String,
}

#[derive(Deserialize)]
struct MapV3Body {
    email_hash: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct MapV2Body {
    mapped: Vec<IgnoredAny>,
    #[serde(default)]
    unmapped: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct KeysBody {
    #[serde(rename = "keys")]
    _keys: Vec<IgnoredAny>,
}

/// Base64 SHA-256 email hashes, made once, from which each map request takes a window; the pool is
/// larger than a batch so consecutive requests ask for different identities.
pub struct HashPool {
    hashes: Vec<String>,
}

impl HashPool {
    pub fn new(batch: usize) -> Self {
        let len = batch.saturating_mul(8).max(65_536);
        let hashes = (0..len)
            .map(|i| uid2_protocol::base64::encode(&sha256(&[format!("load-{i}@example.com").as_bytes()])))
            .collect();
        Self { hashes }
    }

    /// `{"email_hash":[…]}` with `batch` hashes starting where request `seq` begins.
    fn request_json(&self, seq: u64, batch: usize) -> Vec<u8> {
        let len = self.hashes.len().max(1) as u64;
        let start = usize::try_from((seq % len) * batch as u64 % len).unwrap_or(0);
        let window = self
            .hashes
            .get(start..)
            .unwrap_or_default()
            .iter()
            .chain(self.hashes.iter().cycle())
            .take(batch);
        let mut json = String::with_capacity(16 + batch * 47);
        json.push_str(r#"{"email_hash":["#);
        for (i, hash) in window.enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push('"');
            json.push_str(hash);
            json.push('"');
        }
        json.push_str("]}");
        json.into_bytes()
    }
}

/// Everything a scenario needs to build requests; shared by all connections.
pub struct Plan {
    pub scenario: Scenario,
    pub batch: usize,
    pub binary: bool,
    secret: SecretKey,
    pool: Option<HashPool>,
}

impl Plan {
    pub fn new(scenario: Scenario, batch: usize, binary: bool, secret: SecretKey) -> Self {
        Self {
            scenario,
            batch,
            binary,
            secret,
            pool: scenario.is_map().then(|| HashPool::new(batch)),
        }
    }

    fn content_type(&self) -> &'static str {
        if self.binary {
            OCTET_STREAM
        } else {
            TEXT
        }
    }

    /// A v2 envelope around `json`, sealed now with a fresh nonce and IV.
    fn sealed(&self, path: &'static str, json: &[u8], items: usize) -> Outgoing {
        let mut nonce = [0u8; NONCE_LEN];
        let mut iv = [0u8; GCM_IV_LEN];
        OsEntropy.fill(&mut nonce);
        OsEntropy.fill(&mut iv);
        let sealed = seal_request(&self.secret, now_ms(), &nonce, json, &iv);
        let body = if self.binary {
            Bytes::from(sealed)
        } else {
            Bytes::from(uid2_protocol::base64::encode(&sealed))
        };
        Outgoing {
            path,
            content_type: self.content_type(),
            body,
            expect: Expect::Envelope { nonce, items },
        }
    }

    /// The generate that gives connection `index` an identity to refresh.
    pub fn identity_request(&self, index: usize) -> Outgoing {
        let json = serde_json::json!({ "email": format!("load-refresh-{index}@example.com") });
        self.sealed(Scenario::Generate.path(), json.to_string().as_bytes(), 0)
    }

    /// Request number `seq` of the run; `held` is the connection's identity (refresh only).
    pub fn request(&self, seq: u64, held: Option<&Held>) -> Result<Outgoing, String> {
        let path = self.scenario.path();
        match self.scenario {
            Scenario::Generate => {
                let json = serde_json::json!({ "email": format!("load-{seq}@example.com") });
                Ok(self.sealed(path, json.to_string().as_bytes(), 0))
            }
            Scenario::MapV2 | Scenario::MapV3 => {
                let json = self.pool.as_ref().map(|p| p.request_json(seq, self.batch));
                Ok(self.sealed(path, &json.unwrap_or_default(), self.batch))
            }
            // The key endpoints take an envelope with nothing after the nonce, as the SDKs send.
            Scenario::KeySharing => Ok(self.sealed(path, b"", 0)),
            Scenario::Refresh => {
                let held = held.ok_or("refresh without an identity")?;
                Ok(Outgoing {
                    path,
                    content_type: self.content_type(),
                    body: Bytes::from(held.token.clone()),
                    expect: Expect::Refreshed {
                        key: held.response_key.clone(),
                    },
                })
            }
        }
    }

    /// Judges an answer; `Err` is the failure's label.
    pub fn judge(&self, expect: &Expect, reply: &Reply) -> Result<Verdict, String> {
        if reply.status != 200 {
            return Err(http_error_label(reply.status, &reply.body));
        }
        let raw = if reply.content_type.as_deref() == Some(OCTET_STREAM) {
            reply.body.to_vec()
        } else {
            uid2_protocol::base64::decode(&reply.body).map_err(|_| "200 body is not base64".to_owned())?
        };
        match expect {
            Expect::Refreshed { key } => {
                let json = gcm_open(key, &raw, &[]).map_err(|_| "undecryptable".to_owned())?;
                identity_answer(&json).map(|held| Verdict {
                    identities: 0,
                    held: Some(held),
                })
            }
            Expect::Envelope { nonce, items } => {
                let opened = open_response(&self.secret, &raw).map_err(|_| "undecryptable".to_owned())?;
                if &opened.nonce != nonce {
                    return Err("nonce not echoed".to_owned());
                }
                self.judge_json(&opened.json, *items)
            }
        }
    }

    fn judge_json(&self, json: &[u8], items: usize) -> Result<Verdict, String> {
        let counted = |n: usize| -> Result<Verdict, String> {
            if n == items {
                Ok(Verdict {
                    identities: n as u64,
                    held: None,
                })
            } else {
                Err("wrong number of map results".to_owned())
            }
        };
        match self.scenario {
            Scenario::Generate | Scenario::Refresh => identity_answer(json).map(|held| Verdict {
                identities: 0,
                held: Some(held),
            }),
            Scenario::MapV3 => counted(success_body::<MapV3Body>(json)?.email_hash.len()),
            Scenario::MapV2 => {
                let body = success_body::<MapV2Body>(json)?;
                counted(body.mapped.len() + body.unmapped.len())
            }
            // The keys are parsed only to prove the body is the sharing answer.
            Scenario::KeySharing => success_body::<KeysBody>(json).map(|_| Verdict {
                identities: 0,
                held: None,
            }),
        }
    }
}

/// The body of a `status: success` answer; other statuses (`optout`, …) are labelled failures.
fn success_body<B: serde::de::DeserializeOwned>(json: &[u8]) -> Result<B, String> {
    let answer: Answer<B> = serde_json::from_slice(json).map_err(|_| "answer is not the expected JSON".to_owned())?;
    if answer.status != "success" {
        return Err(format!("status {}", short(&answer.status)));
    }
    answer.body.ok_or_else(|| "success without a body".to_owned())
}

fn identity_answer(json: &[u8]) -> Result<Held, String> {
    let body: IdentityBody = success_body(json)?;
    let response_key = SecretKey::from_base64(&body.refresh_response_key).ok_or("refresh_response_key is not a key")?;
    Ok(Held {
        token: body.refresh_token,
        response_key,
    })
}

/// `HTTP 400 client_error: <message>` from the operator's JSON error body, or just the code. The
/// operator's messages are fixed texts, so the label set stays small.
pub fn http_error_label(status: u16, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        status: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            status: Some(s),
            message: Some(m),
        }) => format!("HTTP {status} {}: {}", short(&s), short(&m)),
        Ok(ErrorBody { status: Some(s), .. }) => format!("HTTP {status} {}", short(&s)),
        _ => format!("HTTP {status}"),
    }
}

/// At most 100 characters of a server-supplied text.
fn short(text: &str) -> String {
    text.chars().take(100).collect()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uid2_protocol::crypto::gcm_seal;
    use uid2_protocol::envelope::{open_request, seal_response};

    fn secret() -> SecretKey {
        SecretKey::from_bytes([7u8; 32])
    }

    fn plan(scenario: Scenario, batch: usize, binary: bool) -> Plan {
        Plan::new(scenario, batch, binary, secret())
    }

    /// Plays the operator: opens the request and seals `json` as its answer.
    fn answer(plan: &Plan, out: &Outgoing, json: &str) -> Reply {
        let opened = open_request(&out.body, plan.binary, &secret(), now_ms()).expect("request opens");
        let sealed = seal_response(&secret(), now_ms(), &opened.nonce, json.as_bytes(), &OsEntropy);
        let (content_type, body) = if plan.binary {
            (OCTET_STREAM, Bytes::from(sealed))
        } else {
            (TEXT, Bytes::from(uid2_protocol::base64::encode(&sealed)))
        };
        Reply {
            status: 200,
            content_type: Some(content_type.to_owned()),
            body,
        }
    }

    fn payload(plan: &Plan, out: &Outgoing) -> serde_json::Value {
        let opened = open_request(&out.body, plan.binary, &secret(), now_ms()).expect("request opens");
        serde_json::Value::Object(opened.payload.unwrap_or_default())
    }

    const IDENTITY: &str = r#"{"status":"success","body":{"advertising_token":"A4x","refresh_token":"R","refresh_response_key":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="}}"#;

    #[test]
    fn generate_sends_distinct_emails_and_accepts_an_identity() {
        for binary in [false, true] {
            let plan = plan(Scenario::Generate, 1, binary);
            let a = plan.request(1, None).expect("request");
            let b = plan.request(2, None).expect("request");
            assert_eq!(a.path, "/v2/token/generate");
            assert_ne!(payload(&plan, &a)["email"], payload(&plan, &b)["email"]);
            let verdict = plan.judge(&a.expect, &answer(&plan, &a, IDENTITY)).expect("success");
            assert!(verdict.held.is_some());
            assert_eq!(verdict.identities, 0);
        }
    }

    #[test]
    fn map_requests_carry_the_batch_and_count_the_results() {
        let plan = plan(Scenario::MapV3, 3, false);
        let out = plan.request(0, None).expect("request");
        let hashes = payload(&plan, &out)["email_hash"].as_array().map(Vec::len);
        assert_eq!(hashes, Some(3));
        let ok = r#"{"status":"success","body":{"email":[],"email_hash":[{"u":"a","p":null,"r":1},{"e":"optout"},{"u":"b","p":null,"r":1}],"phone":[],"phone_hash":[]}}"#;
        assert_eq!(
            plan.judge(&out.expect, &answer(&plan, &out, ok)).map(|v| v.identities),
            Ok(3)
        );
        let short = r#"{"status":"success","body":{"email_hash":[{"u":"a","p":null,"r":1}]}}"#;
        assert!(plan.judge(&out.expect, &answer(&plan, &out, short)).is_err());

        let plan = plan_v2();
        let out = plan.request(5, None).expect("request");
        let ok = r#"{"status":"success","body":{"mapped":[{"identifier":"x"}],"unmapped":[{"identifier":"y","reason":"optout"}]}}"#;
        assert_eq!(
            plan.judge(&out.expect, &answer(&plan, &out, ok)).map(|v| v.identities),
            Ok(2)
        );
        let no_unmapped = r#"{"status":"success","body":{"mapped":[{"identifier":"x"},{"identifier":"y"}]}}"#;
        assert_eq!(
            plan.judge(&out.expect, &answer(&plan, &out, no_unmapped))
                .map(|v| v.identities),
            Ok(2)
        );
    }

    fn plan_v2() -> Plan {
        plan(Scenario::MapV2, 2, true)
    }

    #[test]
    fn consecutive_map_requests_ask_for_different_identities() {
        let plan = plan(Scenario::MapV3, 5000, false);
        let a = payload(&plan, &plan.request(0, None).expect("request"));
        let b = payload(&plan, &plan.request(1, None).expect("request"));
        assert_ne!(a["email_hash"][0], b["email_hash"][0]);
        assert_eq!(b["email_hash"].as_array().map(Vec::len), Some(5000));
    }

    #[test]
    fn key_sharing_sends_an_empty_payload() {
        let plan = plan(Scenario::KeySharing, 1, false);
        let out = plan.request(0, None).expect("request");
        let opened = open_request(&out.body, false, &secret(), now_ms()).expect("opens");
        assert!(opened.payload.is_none());
        let ok = r#"{"status":"success","body":{"caller_site_id":999,"keys":[{"id":1},{"id":2}]}}"#;
        assert_eq!(
            plan.judge(&out.expect, &answer(&plan, &out, ok)).map(|v| v.identities),
            Ok(0)
        );
    }

    #[test]
    fn refresh_sends_the_held_token_and_opens_with_its_key() {
        let plan = plan(Scenario::Refresh, 1, false);
        assert!(plan.request(0, None).is_err(), "refresh needs an identity");
        let key = SecretKey::from_bytes([9u8; 32]);
        let held = Held {
            token: "T".repeat(388),
            response_key: key.clone(),
        };
        let out = plan.request(0, Some(&held)).expect("request");
        assert_eq!(out.body, Bytes::from("T".repeat(388)));
        let sealed = gcm_seal(&key, IDENTITY.as_bytes(), &[], &OsEntropy);
        let reply = Reply {
            status: 200,
            content_type: Some(TEXT.to_owned()),
            body: Bytes::from(uid2_protocol::base64::encode(&sealed)),
        };
        let verdict = plan.judge(&out.expect, &reply).expect("refreshed");
        assert_eq!(verdict.held.map(|h| h.token), Some("R".to_owned()));
        // Sealed under another key: undecryptable, not a panic.
        let wrong = gcm_seal(&secret(), IDENTITY.as_bytes(), &[], &OsEntropy);
        let reply = Reply {
            body: Bytes::from(uid2_protocol::base64::encode(&wrong)),
            ..reply
        };
        assert_eq!(plan.judge(&out.expect, &reply).err().as_deref(), Some("undecryptable"));
    }

    #[test]
    fn bad_answers_are_labelled_failures() {
        let plan = plan(Scenario::Generate, 1, false);
        let out = plan.request(0, None).expect("request");
        let judge = |reply: Reply| plan.judge(&out.expect, &reply).err().unwrap_or_default();
        let reply = |status: u16, body: &str| Reply {
            status,
            content_type: None,
            body: Bytes::from(body.to_owned()),
        };
        assert_eq!(
            judge(reply(400, r#"{"message":"Invalid body","status":"client_error"}"#)),
            "HTTP 400 client_error: Invalid body"
        );
        assert_eq!(
            judge(reply(401, r#"{"status":"unauthorized"}"#)),
            "HTTP 401 unauthorized"
        );
        assert_eq!(judge(reply(503, "not json")), "HTTP 503");
        assert_eq!(judge(reply(200, "%%%")), "200 body is not base64");
        assert_eq!(judge(reply(200, "AAAA")), "undecryptable");
        let optout = answer(&plan, &out, r#"{"status":"optout"}"#);
        assert_eq!(judge(optout), "status optout");
        assert_eq!(judge(answer(&plan, &out, "[1,2]")), "answer is not the expected JSON");
        // A valid answer to another request (another nonce) is refused.
        let other = plan.request(1, None).expect("request");
        assert_eq!(judge(answer(&plan, &other, IDENTITY)), "nonce not echoed");
    }
}
