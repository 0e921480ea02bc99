//! What each scenario sends and how its answer is judged.
//!
//! Requests are sealed exactly as an SDK seals them (`uid2_protocol::envelope::client`), and every
//! answer is checked the way an SDK would reject it: HTTP 200, opens with the client secret (or,
//! for refresh, the identity's `refresh_response_key`), echoes the request nonce, JSON with
//! `status: success`, and for the identity maps one result per identifier sent. Anything else is a
//! failure with a short label (no tokens, keys or identifiers in it), never a panic: the server
//! under test is allowed to be wrong.
//!
//! The identity maps send fresh random email hashes in every request, so across a run the operator
//! looks up salt buckets and opt-out entries all over its tables, as it does for real traffic;
//! reused inputs would keep the rows they touch in the CPU's caches and flatter the figure. The
//! `floor` scenario sends the bytes of a generate request to `uid2-load floor-server`, which does
//! no work, so the two runs differ only in the server.

use bytes::Bytes;
use rand::RngCore;
use serde::de::IgnoredAny;
use serde::Deserialize;
use uid2_protocol::crypto::{gcm_open, SecretKey, GCM_IV_LEN};
use uid2_protocol::envelope::client::{open_response, seal_request};
use uid2_protocol::envelope::NONCE_LEN;

use crate::floor;

pub const OCTET_STREAM: &str = "application/octet-stream";
const TEXT: &str = "text/plain";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Generate,
    Refresh,
    MapV2,
    MapV3,
    KeySharing,
    /// A generate request's bytes to `uid2-load floor-server`.
    Floor,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Generate,
        Scenario::Refresh,
        Scenario::MapV2,
        Scenario::MapV3,
        Scenario::KeySharing,
        Scenario::Floor,
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
            Scenario::Floor => "floor",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Scenario::Generate => "/v2/token/generate",
            Scenario::Refresh => "/v2/token/refresh",
            Scenario::MapV2 => "/v2/identity/map",
            Scenario::MapV3 => "/v3/identity/map",
            Scenario::KeySharing => "/v2/key/sharing",
            // The floor server answers any path; this one keeps the request line a generate's.
            Scenario::Floor => "/v2/token/generate",
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
    /// The floor server's fixed body: exactly this many bytes.
    Fixed { len: usize },
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

/// `{"email_hash":[…]}` with `batch` random email hashes (base64 of 32 random bytes, which is
/// what a SHA-256 looks like to the operator). Distinct within and across requests with
/// overwhelming probability, so no input repeats in a run.
fn random_hashes_json(rng: &mut impl RngCore, batch: usize) -> Vec<u8> {
    let mut json = String::with_capacity(16 + batch * 47);
    json.push_str(r#"{"email_hash":["#);
    let mut hash = [0u8; 32];
    for i in 0..batch {
        if i > 0 {
            json.push(',');
        }
        rng.fill_bytes(&mut hash);
        json.push('"');
        json.push_str(&uid2_protocol::base64::encode(&hash));
        json.push('"');
    }
    json.push_str("]}");
    json.into_bytes()
}

/// Everything a scenario needs to build requests; shared by all connections.
pub struct Plan {
    pub scenario: Scenario,
    pub batch: usize,
    pub binary: bool,
    secret: SecretKey,
    /// The floor scenario's request body, sealed once: the floor server never opens it.
    floor_body: Option<Bytes>,
}

impl Plan {
    pub fn new(scenario: Scenario, batch: usize, binary: bool, secret: SecretKey) -> Self {
        let mut plan = Self {
            scenario,
            batch,
            binary,
            secret,
            floor_body: None,
        };
        if scenario == Scenario::Floor {
            plan.floor_body = Some(plan.generate(0).body);
        }
        plan
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
        // The thread's CSPRNG (seeded from the OS) rather than a system call per value: the
        // client's CPU is the measuring instrument's budget.
        let mut nonce = [0u8; NONCE_LEN];
        let mut iv = [0u8; GCM_IV_LEN];
        let mut rng = rand::thread_rng();
        rng.fill_bytes(&mut nonce);
        rng.fill_bytes(&mut iv);
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

    /// A generate for a new email, `load-<seq>@example.com`.
    fn generate(&self, seq: u64) -> Outgoing {
        let json = serde_json::json!({ "email": format!("load-{seq}@example.com") });
        self.sealed(Scenario::Generate.path(), json.to_string().as_bytes(), 0)
    }

    /// Request number `seq` of the run; `held` is the connection's identity (refresh only).
    pub fn request(&self, seq: u64, held: Option<&Held>) -> Result<Outgoing, String> {
        let path = self.scenario.path();
        match self.scenario {
            Scenario::Generate => Ok(self.generate(seq)),
            Scenario::MapV2 | Scenario::MapV3 => {
                let json = random_hashes_json(&mut rand::thread_rng(), self.batch);
                Ok(self.sealed(path, &json, self.batch))
            }
            Scenario::Floor => Ok(Outgoing {
                path,
                content_type: self.content_type(),
                body: self.floor_body.clone().unwrap_or_default(),
                expect: Expect::Fixed { len: floor::BODY_LEN },
            }),
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
        match expect {
            Expect::Fixed { len } if reply.body.len() == *len => Ok(Verdict {
                identities: 0,
                held: None,
            }),
            Expect::Fixed { len } => Err(format!("an answer of {} bytes, not {len}", reply.body.len())),
            Expect::Refreshed { key } => {
                let json = gcm_open(key, &sealed_bytes(reply)?, &[]).map_err(|_| "undecryptable".to_owned())?;
                identity_answer(&json).map(|held| Verdict {
                    identities: 0,
                    held: Some(held),
                })
            }
            Expect::Envelope { nonce, items } => {
                let opened =
                    open_response(&self.secret, &sealed_bytes(reply)?).map_err(|_| "undecryptable".to_owned())?;
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
            Scenario::Floor => Err("a floor answer is not an envelope".to_owned()),
        }
    }
}

/// The sealed bytes of a 200 answer: as sent when octet-stream, else base64-decoded.
fn sealed_bytes(reply: &Reply) -> Result<Vec<u8>, String> {
    if reply.content_type.as_deref() == Some(OCTET_STREAM) {
        Ok(reply.body.to_vec())
    } else {
        uid2_protocol::base64::decode(&reply.body).map_err(|_| "200 body is not base64".to_owned())
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
    use std::collections::HashSet;
    use uid2_protocol::crypto::gcm_seal;
    use uid2_protocol::entropy::OsEntropy;
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
    fn map_inputs_never_repeat_within_or_across_requests() {
        let plan = plan(Scenario::MapV2, 5000, true);
        let mut seen = HashSet::new();
        for seq in 0..4 {
            let json = payload(&plan, &plan.request(seq, None).expect("request"));
            for hash in json["email_hash"].as_array().cloned().unwrap_or_default() {
                let text = hash.as_str().unwrap_or_default().to_owned();
                let bytes = uid2_protocol::base64::decode(text.as_bytes()).expect("base64");
                assert_eq!(bytes.len(), 32, "a SHA-256-sized hash");
                assert!(seen.insert(text), "a repeated input");
            }
        }
        assert_eq!(seen.len(), 4 * 5000);
    }

    #[test]
    fn the_floor_request_is_a_generate_and_its_answer_must_be_400_bytes() {
        for binary in [false, true] {
            let floor = plan(Scenario::Floor, 1, binary);
            let out = floor.request(0, None).expect("request");
            let generate = plan(Scenario::Generate, 1, binary).request(0, None).expect("request");
            assert_eq!((out.path, out.content_type), (generate.path, generate.content_type));
            assert_eq!(out.body.len(), generate.body.len());
            assert_eq!(payload(&floor, &out)["email"], "load-0@example.com");
            let reply = |len: usize, status: u16| Reply {
                status,
                content_type: None,
                body: Bytes::from(vec![b'x'; len]),
            };
            let verdict = floor.judge(&out.expect, &reply(400, 200)).expect("400 bytes");
            assert!(verdict.held.is_none() && verdict.identities == 0);
            assert_eq!(
                floor.judge(&out.expect, &reply(399, 200)).err().as_deref(),
                Some("an answer of 399 bytes, not 400")
            );
            assert_eq!(
                floor.judge(&out.expect, &reply(400, 503)).err().as_deref(),
                Some("HTTP 503")
            );
        }
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
