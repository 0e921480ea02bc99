//! `generate-store`: a full-size synthetic store in the reference layout, for benchmarks.
//!
//! Clients, sites, keysets, keyset keys, keypairs, services, links, cloud keys and the runtime
//! config are copied from a source store (default `testdata/local-store`), so the fixture
//! clients keep working. Generated: one salt snapshot of `buckets` lines mixing salt-only,
//! key-only (raw UID v4 key material: 32-character keys and salts) and mixed buckets, and one
//! opt-out partition of `optouts` random 72-byte entries between sentinels, in ascending
//! identity-hash order as partitions are (entry i's hash starts inside the i-th of `optouts`
//! equal slices of the 64-bit prefix space, so the order comes for free). Both files are
//! streamed through a buffer: 10 M opt-outs (720 MB) never sit in memory. The same seed gives
//! the same salts and opt-outs for a given build; the wall clock only sets their timestamps.
//! Also written: `operators/operators.json` and `operators/enclaves.json`, the local-core
//! fixtures, so `--store OUT` works without `--operators`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{json, Value};
use uid2_store::optout::{OptOutEntry, OptOutFileKind, OptOutFileName};

use crate::files::StoreTree;

/// Single-file stores copied from the source store: folder and data key.
const COPIED: [(&str, &str); 8] = [
    ("clients", "client_keys"),
    ("sites", "sites"),
    ("keysets", "keysets"),
    ("keyset_keys", "keyset_keys"),
    ("client_side_keypairs", "client_side_keypairs"),
    ("services", "services"),
    ("service_links", "service_links"),
    ("cloud_encryption_keys", "cloud_encryption_keys"),
];

/// Largest bucket count: keeps bucket ids and v4 key ids (3 bytes in a raw UID) in range.
pub const MAX_BUCKETS: u32 = 4 * 1_048_576;
const FIRST_BUCKET_ID: i64 = 1_000_000;
const FIRST_KEY_ID: i64 = 2_000_000;
const DAY_MS: i64 = 86_400_000;
/// 9999-12-31T23:59:59Z in ms: the salt snapshot never expires.
const NEVER_MS: i64 = 253_402_300_799_000;
const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

const OPERATORS_FIXTURE: &str = include_str!("../../../testdata/local-core/operators.json");
const ENCLAVES_FIXTURE: &str = include_str!("../../../testdata/local-core/enclaves.json");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    pub out: PathBuf,
    /// Store whose clients, keysets, keys… are copied.
    pub from: PathBuf,
    pub buckets: u32,
    pub optouts: u64,
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub salt_file: PathBuf,
    pub partition_file: PathBuf,
    pub buckets: u32,
    pub optouts: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("source store: {0}")]
    Source(String),
    #[error("buckets must be 1..={MAX_BUCKETS}")]
    Buckets,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> GenerateError {
    let what = what.into();
    move |source| GenerateError::Io { what, source }
}

fn read_json(path: &Path) -> Result<Value, GenerateError> {
    let bytes = std::fs::read(path).map_err(io(path.display().to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| GenerateError::Source(format!("{}: {e}", path.display())))
}

fn write_json(path: &Path, value: &Value) -> Result<(), GenerateError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent.display().to_string()))?;
    }
    let text = serde_json::to_string_pretty(value).map_err(|e| GenerateError::Source(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(io(path.display().to_string()))
}

/// Copies one single-file store, rewriting its location to `<dir>/<file name>`.
fn copy_store(source: &StoreTree, out: &Path, dir: &str, data_key: &str) -> Result<(), GenerateError> {
    let mut metadata = read_json(&source.path(&format!("{dir}/metadata.json")))?;
    let pointer = metadata.get_mut(data_key).and_then(Value::as_object_mut);
    if let Some(pointer) = pointer {
        if let Some(location) = pointer.get("location").and_then(Value::as_str) {
            let file = source
                .resolve_location(location)
                .map_err(|e| GenerateError::Source(format!("{dir}: {e}")))?;
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| GenerateError::Source(format!("{dir}: odd file name")))?
                .to_owned();
            let target = out.join(dir).join(&name);
            std::fs::create_dir_all(out.join(dir)).map_err(io(dir))?;
            std::fs::copy(&file, &target).map_err(io(target.display().to_string()))?;
            pointer.insert("location".into(), Value::String(format!("{dir}/{name}")));
        }
    }
    write_json(&out.join(dir).join("metadata.json"), &metadata)
}

fn random_text(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(KEY_ALPHABET[rng.gen_range(0..KEY_ALPHABET.len())]))
        .collect()
}

fn random_salt(rng: &mut StdRng) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    uid2_protocol::base64::encode(&bytes)
}

/// One salt-file line (11 columns). Bucket kinds cycle: salt only, key only, both.
fn salt_line(rng: &mut StdRng, index: u32, now_ms: i64) -> String {
    let id = FIRST_BUCKET_ID + i64::from(index);
    let last_updated = now_ms - rng.gen_range(DAY_MS..90 * DAY_MS);
    let refresh_from = now_ms + rng.gen_range(DAY_MS..30 * DAY_MS);
    let kind = index % 3;
    let (salt, previous_salt) = if kind == 1 {
        (String::new(), String::new())
    } else {
        let previous = if rng.gen_bool(0.5) {
            random_salt(rng)
        } else {
            String::new()
        };
        (random_salt(rng), previous)
    };
    let key_columns = if kind == 0 {
        ",,,,,".to_owned()
    } else {
        let key_id = FIRST_KEY_ID + 2 * i64::from(index);
        let current = format!("{key_id},{},{}", random_text(rng, 32), random_text(rng, 32));
        let previous = if rng.gen_bool(0.5) {
            format!("{},{},{}", key_id + 1, random_text(rng, 32), random_text(rng, 32))
        } else {
            ",,".to_owned()
        };
        format!("{current},{previous}")
    };
    format!("{id},{last_updated},{salt},{refresh_from},{previous_salt},{key_columns}")
}

fn write_salts(options: &GenerateOptions, source: &StoreTree, now_ms: i64) -> Result<PathBuf, GenerateError> {
    let source_metadata = read_json(&source.path("salts/metadata.json"))?;
    let text = |field: &str| {
        source_metadata
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| GenerateError::Source(format!("salts/metadata.json: no {field}")))
    };
    let effective = now_ms - DAY_MS;
    let name = format!("salts.txt.{effective}");
    let dir = options.out.join("salts");
    std::fs::create_dir_all(&dir).map_err(io("salts"))?;
    let path = dir.join(&name);
    let file = File::create(&path).map_err(io(path.display().to_string()))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut rng = StdRng::seed_from_u64(options.seed);
    for index in 0..options.buckets {
        writeln!(writer, "{}", salt_line(&mut rng, index, now_ms)).map_err(io(name.clone()))?;
    }
    writer.flush().map_err(io(name.clone()))?;
    let metadata = json!({
        "version": now_ms / 1000,
        "generated": now_ms / 1000,
        "first_level": text("first_level")?,
        "id_prefix": text("id_prefix")?,
        "id_secret": text("id_secret")?,
        "salts": [{
            "effective": effective,
            "expires": NEVER_MS,
            "location": format!("salts/{name}"),
            "size": options.buckets,
        }],
    });
    write_json(&dir.join("metadata.json"), &metadata)?;
    Ok(path)
}

/// Entry `index` of `count`: a hash inside the index-th slice of the prefix space.
fn optout_entry(rng: &mut StdRng, index: u64, count: u64, now_s: i64) -> OptOutEntry {
    let slice = u64::MAX / count.max(1);
    let offset = if slice == 0 { 0 } else { rng.gen_range(0..slice) };
    // Never the all-zero sentinel hash: the first slice starts at 1.
    let prefix = index.saturating_mul(slice).saturating_add(offset).max(1);
    let mut identity_hash = [0u8; 32];
    identity_hash[..8].copy_from_slice(&prefix.to_be_bytes());
    rng.fill_bytes(&mut identity_hash[8..]);
    let mut advertising_id = vec![0u8; 32];
    rng.fill_bytes(&mut advertising_id);
    OptOutEntry {
        identity_hash,
        advertising_id,
        timestamp: now_s - rng.gen_range(0..365 * 86_400),
    }
}

fn write_partition(options: &GenerateOptions, now_s: i64) -> Result<PathBuf, GenerateError> {
    let timestamp = now_s - 3600;
    let name = OptOutFileName {
        kind: OptOutFileKind::Partition,
        replica: 0,
        timestamp,
        suffix: format!("{:08x}", options.seed & 0xFFFF_FFFF),
    };
    let dir = options.out.join("optout").join("partition");
    std::fs::create_dir_all(&dir).map_err(io("optout/partition"))?;
    let path = dir.join(name.format());
    let file = File::create(&path).map_err(io(path.display().to_string()))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let what = || path.display().to_string();
    writer
        .write_all(&OptOutEntry::start_sentinel(timestamp).to_bytes())
        .map_err(io(what()))?;
    let mut rng = StdRng::seed_from_u64(options.seed ^ 0x6F70_746F_7574);
    for index in 0..options.optouts {
        let entry = optout_entry(&mut rng, index, options.optouts, now_s);
        writer.write_all(&entry.to_bytes()).map_err(io(what()))?;
    }
    writer
        .write_all(&OptOutEntry::end_sentinel(timestamp).to_bytes())
        .map_err(io(what()))?;
    writer.flush().map_err(io(what()))?;
    Ok(path)
}

/// Writes the whole store; `now_ms` sets salt and opt-out times.
pub fn generate_store(options: &GenerateOptions, now_ms: i64) -> Result<Summary, GenerateError> {
    if options.buckets == 0 || options.buckets > MAX_BUCKETS {
        return Err(GenerateError::Buckets);
    }
    let source = StoreTree::new(&options.from).map_err(io(format!("source store {}", options.from.display())))?;
    std::fs::create_dir_all(&options.out).map_err(io(options.out.display().to_string()))?;
    for (dir, data_key) in COPIED {
        copy_store(&source, &options.out, dir, data_key)?;
    }
    let runtime = read_json(&source.path("runtime_config/metadata.json"))?;
    write_json(&options.out.join("runtime_config/metadata.json"), &runtime)?;
    let salt_file = write_salts(options, &source, now_ms)?;
    let partition_file = write_partition(options, now_ms / 1000)?;
    std::fs::create_dir_all(options.out.join("optout/delta")).map_err(io("optout/delta"))?;
    let operators = options.out.join("operators");
    std::fs::create_dir_all(&operators).map_err(io("operators"))?;
    std::fs::write(operators.join("operators.json"), OPERATORS_FIXTURE).map_err(io("operators.json"))?;
    std::fs::write(operators.join("enclaves.json"), ENCLAVES_FIXTURE).map_err(io("enclaves.json"))?;
    Ok(Summary {
        salt_file,
        partition_file,
        buckets: options.buckets,
        optouts: options.optouts,
    })
}

/// `testdata/local-store` of the source tree this binary was built from.
pub fn default_source_store() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/local-store")
}

#[cfg(test)]
mod tests {
    use super::*;
    use uid2_store::snapshot::StoreSelection;
    use uid2_store::{DirSource, Snapshot};

    #[test]
    fn a_small_generated_store_loads_as_the_operator_loads_it() {
        let out = std::env::temp_dir().join(format!("uid2-local-core-generate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let options = GenerateOptions {
            out: out.clone(),
            from: default_source_store(),
            buckets: 300,
            optouts: 1000,
            seed: 7,
        };
        let now_ms = 1_767_225_600_000;
        let summary = generate_store(&options, now_ms).expect("generates");

        let snapshot = Snapshot::load(&DirSource::new(&out), StoreSelection::all(), now_ms).expect("loads");
        assert!(snapshot.check_ready(now_ms).is_ok());
        let salts = snapshot.salts.store.snapshot_at(now_ms);
        assert_eq!(salts.len(), 300);
        let kinds = salts
            .entries()
            .map(|e| (e.current_salt().is_some(), e.current_key().is_some()))
            .collect::<std::collections::HashSet<_>>();
        assert_eq!(kinds.len(), 3, "salt-only, key-only and mixed buckets");
        assert!(salts
            .entries()
            .filter_map(|e| e.current_key())
            .all(|k| k.key.len() == 32 && k.salt.len() == 32));

        let bytes = std::fs::read(&summary.partition_file).expect("partition");
        assert_eq!(bytes.len(), 1002 * 72);
        let entries = uid2_store::optout::parse_file("optout", &bytes).expect("parses");
        assert!(entries[0].is_sentinel() && entries[1001].is_sentinel());
        assert!(
            entries.windows(2).all(|w| w[0].identity_hash < w[1].identity_hash),
            "sorted"
        );
        assert!(entries[1..1001].iter().all(|e| !e.is_sentinel()));
        let name = OptOutFileName::parse(&summary.partition_file.to_string_lossy()).expect("name");
        assert_eq!(name.kind, OptOutFileKind::Partition);

        // Deterministic from the seed.
        let again = out.join("again");
        let second = generate_store(
            &GenerateOptions {
                out: again.clone(),
                ..options.clone()
            },
            now_ms,
        )
        .expect("generates");
        assert_eq!(std::fs::read(&second.partition_file).ok(), Some(bytes));
        assert_eq!(
            std::fs::read(&second.salt_file).ok(),
            std::fs::read(&summary.salt_file).ok()
        );
        assert!(out.join("operators/operators.json").is_file());
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn bucket_count_is_bounded() {
        let options = GenerateOptions {
            out: std::env::temp_dir().join("uid2-local-core-never-written"),
            from: default_source_store(),
            buckets: 0,
            optouts: 0,
            seed: 0,
        };
        assert!(matches!(generate_store(&options, 0), Err(GenerateError::Buckets)));
    }
}
