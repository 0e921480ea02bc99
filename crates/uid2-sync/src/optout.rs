//! The opt-out side: following the OptOut service's files into the index, and forwarding
//! logouts to it.
//!
//! Sync: every `cloud_refresh_interval` the OptOut metadata (`/optout/refresh`, through the
//! attested client) lists the delta and partition files; new ones are fetched with a bare GET and
//! indexed. Each downloaded file must be whole — its `Content-Length`, a multiple of 72 bytes,
//! and framed by the start and end sentinels every OptOut file carries ([`FramingCheck`]; the
//! reference does not check the framing) — or the pass fails and nothing of it is indexed or
//! cached. A failure keeps the current index (the reference fails open too: it simply gets no new
//! data). The cache directory is checked writable at startup; a full or unwritable disk later is
//! an ERROR naming the directory and the OS error, and the next pass tries again. Logout: `POST optout_api_uri?identity_hash=…&advertising_id=…` with the operator key;
//! OptOut writes the opt-out into its next delta, which reaches the index on a later sync.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use uid2_store::optout::{select_files, FramingCheck, OptOutFileKind, OptOutFileName, OptOutFilePolicy, OptOutIndex};

use crate::attestation::Audience;
use crate::client::CoreClient;
use crate::error::SyncError;

/// Creates the opt-out cache directory if needed and proves it writable with a probe file, so
/// an unusable directory is reported once, clearly, naming the directory and the OS error —
/// at startup, and again by any later pass that finds it gone.
pub(crate) fn prepare_cache_dir(dir: &std::path::Path) -> Result<(), SyncError> {
    std::fs::create_dir_all(dir).map_err(|e| SyncError::optout_cache(dir, "creating it", &e))?;
    let probe = dir.join(".uid2-operator-write-probe");
    let written = std::fs::write(&probe, b"probe").and_then(|()| std::fs::remove_file(&probe));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&probe);
        SyncError::optout_cache(dir, "writing a file", &e)
    })
}

/// What a logout sends upstream.
pub struct Logout {
    /// Standard base64 of the first-level hash.
    pub identity_hash: String,
    /// Standard base64 of the current raw UID.
    pub advertising_id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub client_ip: Option<String>,
    pub trace_id: Option<String>,
}

impl std::fmt::Debug for Logout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Logout(..)")
    }
}

#[derive(Serialize)]
struct LogoutBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ip: Option<&'a str>,
}

/// Forwards logouts to OptOut's replicate call.
#[derive(Clone)]
pub struct Replicator {
    client: CoreClient,
    uri: Arc<str>,
}

impl Replicator {
    pub(crate) fn new(client: CoreClient, uri: String) -> Self {
        Self {
            client,
            uri: uri.into(),
        }
    }

    /// Sends one logout; `Ok` when OptOut answered 200.
    pub async fn replicate(&self, logout: &Logout) -> Result<(), SyncError> {
        let mut headers = self.client.attester().replicate_headers();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(trace) = logout.trace_id.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
            headers.insert("uid-trace-id", trace);
        }
        let body = serde_json::to_vec(&LogoutBody {
            email: logout.email.as_deref(),
            phone: logout.phone.as_deref(),
            client_ip: logout.client_ip.as_deref(),
        })
        .map_err(|_| SyncError::Malformed("logout body"))?;
        let response = self
            .client
            .http()
            .post(self.uri.as_ref())
            .query(&[
                ("identity_hash", logout.identity_hash.as_str()),
                ("advertising_id", logout.advertising_id.as_str()),
            ])
            .headers(headers)
            .body(body)
            .timeout(self.client.request_timeout())
            .send()
            .await
            .map_err(|e| SyncError::transport(&e))?;
        match response.status().as_u16() {
            200 => Ok(()),
            status => Err(SyncError::Status {
                what: "optout replicate",
                status,
            }),
        }
    }
}

/// Follows the OptOut service's files into the index.
///
/// Files are kept in a local cache directory (the reference's `optout_data_dir`) rather than in
/// memory: a full partition is hundreds of megabytes, and the index only needs the bytes again
/// when it rebuilds its base.
pub(crate) struct OptOutSync {
    client: CoreClient,
    config: crate::SyncConfig,
    observer: Arc<dyn crate::Observer>,
    metrics: Arc<crate::SyncMetrics>,
    policy: OptOutFilePolicy,
}

impl OptOutSync {
    pub fn new(
        client: CoreClient,
        config: crate::SyncConfig,
        observer: Arc<dyn crate::Observer>,
        metrics: Arc<crate::SyncMetrics>,
    ) -> Self {
        let seconds = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let policy = OptOutFilePolicy {
            delta_rotate_interval: seconds(config.optout.delta_rotate_interval),
            partition_interval: seconds(config.optout.partition_interval),
            max_partitions: i64::from(config.optout.max_partitions),
        };
        Self {
            client,
            config,
            observer,
            metrics,
            policy,
        }
    }

    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut index = Arc::new(
            OptOutIndex::builder()
                .advertising_ids(self.config.optout.advertising_ids)
                .build(),
        );
        let mut synced_once = false;
        loop {
            match self.sync_once(&index).await {
                Ok(next) => {
                    self.metrics.optout_sync("success");
                    if let Some(next) = next {
                        index = Arc::new(next);
                        let (deltas, partitions) = count_kinds(&index);
                        self.metrics.optout_index(index.len(), deltas, partitions);
                        tracing::info!(entries = index.len(), deltas, partitions, "opt-out index updated");
                        self.observer.publish_optout(Arc::clone(&index));
                    }
                    if !synced_once {
                        synced_once = true;
                        self.observer.health(HEALTH, None);
                    }
                }
                Err(error) => {
                    self.metrics.optout_sync("failure");
                    if matches!(error, SyncError::OptOutCache { .. }) {
                        // The operator's own disk: no retry will help until someone acts.
                        tracing::error!(%error, "opt-out sync failed; keeping the current index");
                    } else {
                        tracing::warn!(%error, "opt-out sync failed; keeping the current index");
                    }
                    if !synced_once {
                        self.observer.health(HEALTH, Some(format!("not synced yet: {error}")));
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.optout.interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One pass: list, select, fetch, index. `None` when nothing changed.
    async fn sync_once(&self, index: &Arc<OptOutIndex>) -> Result<Option<OptOutIndex>, SyncError> {
        let url = self.metadata_url().await?;
        let metadata = self
            .client
            .get_authenticated(&url, Audience::OptOut, "optout metadata")
            .await?;
        let listed = parse_listing(&metadata)?;
        let names: Vec<OptOutFileName> = listed.iter().map(|(name, _)| name.clone()).collect();
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
        .unwrap_or(i64::MAX);
        let selection = select_files(&self.policy, &names, index.files(), now);
        if selection.is_empty() {
            return Ok(None);
        }
        // The cache directory may have gone since startup (or since the last pass).
        prepare_cache_dir(&self.config.optout.cache_dir)?;
        // New files are indexed while they download: each streams into the cache and, through a
        // bounded channel, into the index builder, so a large partition is read once and the
        // network overlaps the parsing.
        let mut streams: HashMap<OptOutFileName, (ChunkReader, u64)> = HashMap::new();
        let mut downloads = Vec::new();
        for name in &selection.add {
            let Some((_, location)) = listed.iter().find(|(n, _)| n == name) else {
                continue;
            };
            if tokio::fs::try_exists(self.cache_path(name)).await.unwrap_or(false) {
                continue;
            }
            let (reader, len, download) = self.start_download(name, location).await?;
            streams.insert(name.clone(), (reader, len));
            downloads.push(download);
        }
        let cache = self.config.optout.cache_dir.clone();
        let previous = Arc::clone(index);
        let build = tokio::task::spawn_blocking(move || {
            let result: Result<OptOutIndex, SyncError> = previous.apply_from_readers(&selection, |name| {
                if let Some((reader, len)) = streams.remove(name) {
                    return Ok((Box::new(reader) as Box<dyn Read + Send>, len));
                }
                let unreadable = |e: std::io::Error| {
                    tracing::warn!(kind = ?e.kind(), "cached opt-out file unreadable");
                    SyncError::Malformed("cached opt-out file unreadable")
                };
                let file = std::fs::File::open(cache.join(name.format())).map_err(unreadable)?;
                let len = file.metadata().map_err(unreadable)?.len();
                Ok((
                    Box::new(std::io::BufReader::with_capacity(1 << 20, file)) as Box<dyn Read + Send>,
                    len,
                ))
            });
            if result.is_ok() {
                for dropped in &selection.drop {
                    let _ = std::fs::remove_file(cache.join(dropped.format()));
                }
            }
            result
        });
        let applied = build
            .await
            .map_err(|_| SyncError::Malformed("opt-out index build stopped"))
            .and_then(|built| built);
        // Every download must also have reached the cache, checked whole (length and framing):
        // a later rebuild reads it from there, and a later pass takes a cached file as already
        // downloaded, so a spoiled copy is never kept (see `start_download`). Each is awaited,
        // even after a failure, so none is still writing when the next pass starts.
        let mut downloaded = Ok(());
        for download in downloads {
            let result = download
                .await
                .map_err(|_| SyncError::Malformed("opt-out download stopped"))
                .and_then(|done| done);
            if downloaded.is_ok() {
                downloaded = result;
            }
        }
        downloaded.and(applied).map(Some)
    }

    fn cache_path(&self, name: &OptOutFileName) -> std::path::PathBuf {
        self.config.optout.cache_dir.join(name.format())
    }

    /// Starts fetching one file (bare GET): returns a reader of its bytes for the index builder,
    /// its length (`Content-Length`, which pre-signed storage always sends), and the task that
    /// also writes it to the cache under its name once complete.
    async fn start_download(
        &self,
        name: &OptOutFileName,
        location: &str,
    ) -> Result<(ChunkReader, u64, tokio::task::JoinHandle<Result<(), SyncError>>), SyncError> {
        let mut response = self
            .client
            .http()
            .get(location)
            .timeout(std::time::Duration::from_secs(600))
            .send()
            .await
            .map_err(|e| SyncError::transport(&e))?;
        if !response.status().is_success() {
            return Err(SyncError::Status {
                what: "optout file",
                status: response.status().as_u16(),
            });
        }
        let len = response
            .content_length()
            .ok_or(SyncError::Malformed("opt-out file without Content-Length"))?;
        let target = self.cache_path(name);
        let partial = target.with_extension("partial");
        let dir = self.config.optout.cache_dir.clone();
        let file_name = name.format();
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
        let task = tokio::spawn(async move {
            let io = |doing: &str| {
                let what = format!("{doing} {file_name}");
                let dir = dir.clone();
                move |e: std::io::Error| SyncError::optout_cache(&dir, &what, &e)
            };
            let mut file = tokio::fs::File::create(&partial).await.map_err(io("creating"))?;
            let mut framing = FramingCheck::new();
            let mut builder_alive = true;
            let copied: Result<(), SyncError> = async {
                while let Some(chunk) = response.chunk().await.map_err(|e| SyncError::transport(&e))? {
                    file.write_all(&chunk).await.map_err(io("writing"))?;
                    framing.update(&chunk);
                    if builder_alive && tx.send(chunk).await.is_err() {
                        // The builder gave up (it reported why); finish the cache copy anyway.
                        builder_alive = false;
                    }
                }
                // tokio writes in the background: the last write's error surfaces here.
                file.flush().await.map_err(io("writing"))
            }
            .await;
            drop(tx);
            drop(file);
            let checked = copied.and_then(|()| {
                if framing.len() != len {
                    return Err(SyncError::Malformed("opt-out file shorter than its Content-Length"));
                }
                // A file cut short or spoiled on the way is refused whole; the pass that
                // downloaded it then keeps the current index (see `sync_once`).
                Ok(framing.finish("optout")?)
            });
            if let Err(error) = checked {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(error);
            }
            tokio::fs::rename(&partial, &target).await.map_err(io("renaming"))
        });
        Ok((ChunkReader::new(rx), len, task))
    }
}

/// Reads the chunks a download forwards, from a blocking thread.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    current: bytes::Bytes,
}

impl ChunkReader {
    fn new(rx: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Self {
        Self {
            rx,
            current: bytes::Bytes::new(),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

impl OptOutSync {
    /// `optout_metadata_path`, resolved against the `optout_url` Core returned when relative.
    async fn metadata_url(&self) -> Result<String, SyncError> {
        let path = self
            .config
            .optout
            .metadata_path
            .clone()
            .ok_or(SyncError::Malformed("optout_metadata_path is not set"))?;
        if path.starts_with("http://") || path.starts_with("https://") {
            return Ok(path);
        }
        let token = self.client.attester().valid_token().await?;
        let base = token.optout_url.clone().ok_or(SyncError::Malformed(
            "Core returned no optout_url for a relative optout_metadata_path",
        ))?;
        Ok(format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches('/')
        ))
    }
}

const HEALTH: &str = "cloudsync-optout";

fn count_kinds(index: &OptOutIndex) -> (usize, usize) {
    let partitions = index
        .files()
        .iter()
        .filter(|f| f.kind == OptOutFileKind::Partition)
        .count();
    (index.files().len() - partitions, partitions)
}

/// `{"optout_logs":[{"type","location",…}]}` → the files with a recognisable name. Entries whose
/// location is not an opt-out file name are skipped, as the reference's prefix filter does.
fn parse_listing(bytes: &[u8]) -> Result<Vec<(OptOutFileName, String)>, SyncError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| SyncError::Malformed("opt-out metadata is not JSON"))?;
    let logs = value
        .get("optout_logs")
        .and_then(serde_json::Value::as_array)
        .ok_or(SyncError::Malformed("opt-out metadata has no optout_logs"))?;
    Ok(logs
        .iter()
        .filter_map(|log| log.get("location").and_then(serde_json::Value::as_str))
        .filter_map(|location| {
            OptOutFileName::parse(location)
                .ok()
                .map(|name| (name, location.to_owned()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_keeps_recognisable_files() {
        let body = br#"{"version":1,"optout_logs":[
            {"type":"delta","location":"http://h/files/optout/delta/2024-01-01/optout-delta-000_2024-01-01T00.05.00Z_0000abcd.dat?sig=x"},
            {"type":"partition","location":"http://h/files/optout/partition/optout-partition-000_2024-01-01T00.00.00Z_00001234.dat"},
            {"type":"delta","location":"http://h/files/other.txt"},
            {"type":"delta"}
        ]}"#;
        let listed = parse_listing(body).expect("parses");
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].0.kind, OptOutFileKind::Delta);
        assert!(listed[0].1.ends_with("?sig=x"));
        assert!(parse_listing(b"{}").is_err());
        assert!(parse_listing(b"nope").is_err());
    }
}
