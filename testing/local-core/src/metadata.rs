//! Core's metadata endpoints and the data-file routes they point at.
//!
//! Each refresh endpoint returns `<store>/<dir>/metadata.json` as stored, except that every
//! `location` (of a `{ "location" }` object or of the objects of an array, as in salts) becomes
//! an absolute URL this service serves: `<public>/files/<path>`, or with `Encrypted: true`
//! `<public>/files-encrypted/<site>/<path>`, whose answer is the same file wrapped in the cloud
//! key envelope of that site's active key. The caller must be an attested operator (role
//! OPERATOR and a valid `Attestation-Token`, always, even for `trusted` keys: stricter than
//! Core, so tests see re-attestation); private operators get 403 from the public-only stores, as
//! from Core. The file routes take no credentials, like pre-signed URLs.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::cloud_keys::{self, CloudKey};
use crate::error::CoreError;
use crate::operators::{OperatorRecord, OperatorType};
use crate::server::{attested_operator, is_encrypted, AppState, Shared};

/// One single-file (or salts) store behind a refresh endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreRoute {
    pub route: &'static str,
    /// Folder of the store under the store root.
    pub dir: &'static str,
    /// Core answers 403 to private operators.
    pub public_only: bool,
}

pub const STORES: [StoreRoute; 8] = [
    StoreRoute {
        route: "/clients/refresh",
        dir: "clients",
        public_only: false,
    },
    StoreRoute {
        route: "/sites/refresh",
        dir: "sites",
        public_only: true,
    },
    StoreRoute {
        route: "/key/keyset/refresh",
        dir: "keysets",
        public_only: false,
    },
    StoreRoute {
        route: "/key/keyset-keys/refresh",
        dir: "keyset_keys",
        public_only: false,
    },
    StoreRoute {
        route: "/client_side_keypairs/refresh",
        dir: "client_side_keypairs",
        public_only: true,
    },
    StoreRoute {
        route: "/salt/refresh",
        dir: "salts",
        public_only: false,
    },
    StoreRoute {
        route: "/services/refresh",
        dir: "services",
        public_only: true,
    },
    StoreRoute {
        route: "/service_links/refresh",
        dir: "service_links",
        public_only: true,
    },
];

fn read_metadata(state: &AppState, dir: &str) -> Result<Value, CoreError> {
    let path = state.tree.path(&format!("{dir}/metadata.json"));
    let bytes =
        std::fs::read(&path).map_err(|e| CoreError::Store(format!("{dir}/metadata.json unreadable: {}", e.kind())))?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| CoreError::Store(format!("{dir}/metadata.json is not JSON (line {})", e.line())))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(CoreError::Store(format!("{dir}/metadata.json is not an object")))
    }
}

/// Replaces each `location` one level down (objects, and objects inside arrays).
fn rewrite_locations(
    metadata: &mut Value,
    rewrite: &dyn Fn(&str) -> Result<String, CoreError>,
) -> Result<(), CoreError> {
    let Some(map) = metadata.as_object_mut() else {
        return Ok(());
    };
    for value in map.values_mut() {
        let holders: Vec<&mut Value> = match value {
            Value::Array(items) => items.iter_mut().collect(),
            other => vec![other],
        };
        for holder in holders {
            if let Some(location) = holder.get_mut("location") {
                if let Some(text) = location.as_str() {
                    *location = Value::String(rewrite(text)?);
                }
            }
        }
    }
    Ok(())
}

fn site_key(state: &AppState, site_id: i32) -> Result<CloudKey, CoreError> {
    let keys = cloud_keys::load(&state.tree)?;
    cloud_keys::active_for_site(&keys, site_id, state.now_s())
        .cloned()
        .ok_or_else(|| CoreError::Store(format!("no active cloud encryption key for site {site_id}")))
}

pub async fn store_metadata(
    State(state): State<Shared>,
    headers: HeaderMap,
    store: StoreRoute,
) -> Result<Json<Value>, CoreError> {
    let operator = attested_operator(&state, &headers)?;
    if store.public_only && operator.operator_type == OperatorType::Private {
        return Err(CoreError::Forbidden(format!(
            "{} is for public operators only",
            store.dir
        )));
    }
    let mut metadata = read_metadata(&state, store.dir)?;
    let base = if is_encrypted(&headers) {
        // Fail here rather than on every file download when the site has no key.
        site_key(&state, operator.site_id)?;
        format!("{}/files-encrypted/{}/", state.public_url, operator.site_id)
    } else {
        format!("{}/files/", state.public_url)
    };
    let tree = &state.tree;
    rewrite_locations(&mut metadata, &|location| {
        let file = tree.resolve_location(location)?;
        let path = tree
            .url_path(&file)
            .ok_or_else(|| CoreError::Store(format!("{}: location cannot be served", store.dir)))?;
        Ok(format!("{base}{path}"))
    })?;
    Ok(Json(metadata))
}

/// `GET /operator/config`: the runtime config metadata, inline, as stored.
pub async fn runtime_config(State(state): State<Shared>, headers: HeaderMap) -> Result<Json<Value>, CoreError> {
    attested_operator(&state, &headers)?;
    read_metadata(&state, "runtime_config").map(Json)
}

/// `GET /cloud_encryption_keys/retrieve`: the calling operator's site keys, inline.
pub async fn cloud_keys(State(state): State<Shared>, headers: HeaderMap) -> Result<Json<Value>, CoreError> {
    let operator: OperatorRecord = attested_operator(&state, &headers)?;
    let keys: Vec<Value> = cloud_keys::load(&state.tree)?
        .iter()
        .filter(|k| k.site_id == operator.site_id)
        .map(CloudKey::to_json)
        .collect();
    if keys.is_empty() {
        // Core answers 500 when the site has no keys.
        return Err(CoreError::Store(format!(
            "no cloud encryption keys for site {}",
            operator.site_id
        )));
    }
    Ok(Json(json!({ "cloud_encryption_keys": keys })))
}

/// `GET /files/<path>`: a data file, streamed.
pub async fn file(State(state): State<Shared>, Path(path): Path<String>) -> Result<Response, CoreError> {
    let file = state.tree.resolve_url_path(&path).ok_or(CoreError::NotFound)?;
    let handle = tokio::fs::File::open(&file).await.map_err(|_| CoreError::NotFound)?;
    let len = handle
        .metadata()
        .await
        .map_err(|_| CoreError::Internal("file metadata unreadable"))?
        .len();
    let stream = futures_util::stream::unfold(Some(handle), |state| async move {
        let mut handle = state?;
        let mut buffer = vec![0u8; 64 * 1024];
        match handle.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(Bytes::from(buffer)), Some(handle)))
            }
            // End the stream after the error; the client sees a cut body.
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(response)
}

/// `GET /files-encrypted/<site>/<path>`: a data file in the cloud-key envelope of the site's
/// active key.
pub async fn encrypted_file(
    State(state): State<Shared>,
    Path((site, path)): Path<(String, String)>,
) -> Result<Response, CoreError> {
    let site_id: i32 = site.parse().map_err(|_| CoreError::NotFound)?;
    let file = state.tree.resolve_url_path(&path).ok_or(CoreError::NotFound)?;
    let plaintext = tokio::fs::read(&file).await.map_err(|_| CoreError::NotFound)?;
    let key = site_key(&state, site_id)?;
    let envelope = cloud_keys::seal_envelope(&key, &plaintext, state.entropy.as_ref());
    Ok(([(header::CONTENT_TYPE, "application/json")], envelope).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_rewritten_in_objects_and_arrays() {
        let mut metadata = json!({
            "version": 3,
            "clients": {"location": "a"},
            "salts": [{"location": "b", "size": 5}, {"location": "c"}],
            "other": {"x": 1},
            "n": null,
        });
        rewrite_locations(&mut metadata, &|l| Ok(format!("http://h/files/{l}"))).expect("rewrites");
        assert_eq!(metadata["clients"]["location"], "http://h/files/a");
        assert_eq!(metadata["salts"][0]["location"], "http://h/files/b");
        assert_eq!(metadata["salts"][0]["size"], 5);
        assert_eq!(metadata["salts"][1]["location"], "http://h/files/c");
        assert_eq!(metadata["version"], 3);
        let failing = rewrite_locations(&mut metadata, &|_| Err(CoreError::NotFound));
        assert!(failing.is_err());
    }
}
