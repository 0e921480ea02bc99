//! The OptOut side: the file listing the operator syncs from, and the replicate call that
//! logout makes.
//!
//! Files live where the OptOut bucket keeps them, under the store root:
//! `optout/delta/<yyyy-MM-dd>/optout-delta-…dat` and `optout/partition/optout-partition-…dat`.
//! `GET /optout/refresh` (attested operator) lists every file whose name parses, oldest first,
//! as `{"type","from","to","location"}` with `to = from + 300` (the delta rotation interval) and
//! `version`/`generated` = the newest file time. `POST /optout/replicate` (role OPTOUT, no
//! attestation) writes one new delta file at once — start sentinel, the entry, end sentinel, all
//! stamped now — where the real service would batch for ~5 minutes. Files are written under a
//! temporary name and renamed, so a concurrent listing never sees half a file.

use std::path::{Path, PathBuf};

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};
use uid2_store::optout::{OptOutEntry, OptOutFileKind, OptOutFileName};

use crate::error::CoreError;
use crate::server::{attested_operator, operator, AppState, Shared};

/// `optout_delta_rotate_interval` of the reference, in seconds.
pub const DELTA_ROTATE_SECONDS: i64 = 300;
/// Replica id this service writes as.
pub const REPLICA: u16 = 0;
/// Most files one listing reads, so a runaway directory cannot stall a request.
const MAX_LISTED: usize = 100_000;

/// Instance-id markers whose logouts the real OptOut service does not queue.
const UNQUEUED_INSTANCES: [&str; 2] = ["reference-operator", "candidate-operator"];

fn optout_root(state: &AppState) -> PathBuf {
    state.tree.path("optout")
}

/// Regular files directly in `dir` (none if it does not exist).
fn files_in(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten().take(MAX_LISTED) {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            out.push(entry.path());
        }
    }
}

/// Every opt-out file of the store with its parsed name.
pub fn list_files(store_optout: &Path) -> Vec<(PathBuf, OptOutFileName)> {
    let mut paths = Vec::new();
    files_in(&store_optout.join("partition"), &mut paths);
    let delta = store_optout.join("delta");
    files_in(&delta, &mut paths);
    if let Ok(days) = std::fs::read_dir(&delta) {
        for day in days.flatten().take(MAX_LISTED) {
            if day.file_type().is_ok_and(|t| t.is_dir()) {
                files_in(&day.path(), &mut paths);
            }
        }
    }
    let mut named: Vec<(PathBuf, OptOutFileName)> = paths
        .into_iter()
        .take(MAX_LISTED)
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let parsed = OptOutFileName::parse(name).ok()?;
            Some((path, parsed))
        })
        .collect();
    named.sort_by(|a, b| (a.1.timestamp, &a.0).cmp(&(b.1.timestamp, &b.0)));
    named
}

pub async fn refresh(State(state): State<Shared>, headers: HeaderMap) -> Result<Json<Value>, CoreError> {
    attested_operator(&state, &headers)?;
    let files = list_files(&optout_root(&state));
    let mut logs = Vec::with_capacity(files.len());
    for (path, name) in &files {
        // Skips files that vanished since the listing or are links out of the served tree.
        let url_path = relative_url(&state, path)
            .and_then(|relative| state.tree.resolve_url_path(&relative))
            .and_then(|canonical| state.tree.url_path(&canonical));
        let Some(url_path) = url_path else {
            continue;
        };
        logs.push(json!({
            "type": match name.kind { OptOutFileKind::Delta => "delta", OptOutFileKind::Partition => "partition" },
            "from": name.timestamp,
            "to": name.timestamp.saturating_add(DELTA_ROTATE_SECONDS),
            "location": format!("{}/files/{url_path}", state.public_url),
        }));
    }
    let version = files.iter().map(|(_, n)| n.timestamp).max().unwrap_or(0);
    Ok(Json(json!({
        "version": version,
        "generated": version,
        "optout_logs": logs,
    })))
}

/// The store-relative path of a listed file, as a URL path.
fn relative_url(state: &AppState, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(state.tree.store()).ok()?;
    let parts: Option<Vec<&str>> = relative.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// Reads one query parameter. Base64 never contains a space, so a `+` that arrived unescaped
/// (and was decoded as a space) is put back.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(value).map(|v| v.replace(' ', "+")))?
    })
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Parses and checks the replicate parameters into an entry stamped `now_s`.
pub fn replicate_entry(query: &str, now_s: i64) -> Result<OptOutEntry, CoreError> {
    let identity_hash = query_param(query, "identity_hash")
        .and_then(|v| uid2_protocol::base64::decode(v).ok())
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or(CoreError::BadRequest("identity_hash must be base64 of 32 bytes"))?;
    if identity_hash.iter().all(|b| *b == 0) || identity_hash.iter().all(|b| *b == 0xFF) {
        return Err(CoreError::BadRequest("identity_hash is a reserved value"));
    }
    let advertising_id = query_param(query, "advertising_id")
        .and_then(|v| uid2_protocol::base64::decode(v).ok())
        .filter(|v| v.len() == 32 || v.len() == 33)
        .ok_or(CoreError::BadRequest("advertising_id must be base64 of 32 or 33 bytes"))?;
    Ok(OptOutEntry {
        identity_hash,
        advertising_id,
        timestamp: now_s,
    })
}

/// Writes a delta file holding `entries` between sentinels stamped `now_s`; returns its path.
pub fn write_delta(store_optout: &Path, entries: &[OptOutEntry], now_s: i64) -> std::io::Result<PathBuf> {
    let mut suffix = [0u8; 4];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut suffix);
    let name = OptOutFileName {
        kind: OptOutFileKind::Delta,
        replica: REPLICA,
        timestamp: now_s,
        suffix: suffix.iter().map(|b| format!("{b:02x}")).collect(),
    };
    let dir = store_optout.join("delta").join(name.day());
    std::fs::create_dir_all(&dir)?;
    let mut bytes = Vec::with_capacity((entries.len() + 2) * OptOutEntry::LEN);
    bytes.extend_from_slice(&OptOutEntry::start_sentinel(now_s).to_bytes());
    for entry in entries {
        bytes.extend_from_slice(&entry.to_bytes());
    }
    bytes.extend_from_slice(&OptOutEntry::end_sentinel(now_s).to_bytes());
    let file_name = name.format();
    let temporary = dir.join(format!(".{file_name}.tmp"));
    std::fs::write(&temporary, &bytes)?;
    let path = dir.join(file_name);
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}

pub async fn replicate(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: axum::body::Bytes,
) -> Result<String, CoreError> {
    operator(&state, &headers, &["OPTOUT"])?;
    let now_s = state.now_s();
    let entry = replicate_entry(query.as_deref().unwrap_or_default(), now_s)?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let parsed: Value = serde_json::from_slice(&body).map_err(|_| CoreError::BadRequest("body is not JSON"))?;
        if !parsed.is_object() {
            return Err(CoreError::BadRequest("body is not a JSON object"));
        }
    }
    let instance = headers
        .get("UID-Instance-Id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if UNQUEUED_INSTANCES.iter().any(|marker| instance.contains(marker)) {
        return Ok(now_s.to_string());
    }
    let root = optout_root(&state);
    tokio::task::spawn_blocking(move || write_delta(&root, &[entry], now_s))
        .await
        .map_err(|_| CoreError::Internal("delta writer stopped"))?
        .map_err(|_| CoreError::Internal("delta file could not be written"))?;
    state.activity.replicated();
    Ok(now_s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        uid2_protocol::base64::encode(bytes)
    }

    #[test]
    fn replicate_parameters_are_checked() {
        let hash = b64(&[7; 32]);
        let ok = format!("identity_hash={}&advertising_id={}", hash, b64(&[9; 33]));
        let entry = replicate_entry(&ok, 1_700_000_000).expect("valid");
        assert_eq!(entry.identity_hash, [7; 32]);
        assert_eq!(entry.advertising_id.len(), 33);
        assert_eq!(entry.timestamp, 1_700_000_000);

        // `+` in base64: escaped, raw, or decoded to a space all work.
        let plus = [0xFB; 32];
        let plus_b64 = b64(&plus);
        assert!(plus_b64.contains('+'));
        for encoded in [
            plus_b64.replace('+', "%2B"),
            plus_b64.clone(),
            plus_b64.replace('+', " "),
        ] {
            let query = format!("identity_hash={encoded}&advertising_id={}", b64(&[1; 32]));
            assert_eq!(replicate_entry(&query, 1).map(|e| e.identity_hash).ok(), Some(plus));
        }

        for bad in [
            String::new(),
            format!("identity_hash={hash}"),
            format!("identity_hash={}&advertising_id={}", b64(&[0; 32]), b64(&[1; 32])),
            format!("identity_hash={}&advertising_id={}", b64(&[0xFF; 32]), b64(&[1; 32])),
            format!("identity_hash={}&advertising_id={}", b64(&[1; 31]), b64(&[1; 32])),
            format!("identity_hash={hash}&advertising_id={}", b64(&[1; 34])),
            format!("identity_hash={hash}&advertising_id=!!!"),
            "identity_hash=%zz&advertising_id=%".to_owned(),
        ] {
            assert!(replicate_entry(&bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn written_deltas_are_listed_and_parse() {
        let dir = std::env::temp_dir().join(format!("uid2-local-core-optout-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let entry = OptOutEntry {
            identity_hash: [3; 32],
            advertising_id: vec![4; 32],
            timestamp: 1_702_039_153,
        };
        let path = write_delta(&dir, std::slice::from_ref(&entry), 1_702_039_153).expect("writes");
        assert!(path
            .to_string_lossy()
            .contains("/delta/2023-12-08/optout-delta-000_2023-12-08T12.39.13Z_"));
        std::fs::create_dir_all(dir.join("partition")).expect("dir");
        std::fs::write(dir.join("partition/not-an-optout-file.dat"), b"").expect("write");
        let listed = list_files(&dir);
        assert_eq!(listed.len(), 1);
        let bytes = std::fs::read(&listed[0].0).expect("read");
        let entries = uid2_store::optout::parse_file("optout", &bytes).expect("parses");
        assert_eq!(entries.len(), 3);
        assert!(entries[0].is_sentinel() && entries[2].is_sentinel());
        assert_eq!(entries[1], entry);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
