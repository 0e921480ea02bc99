//! Local mode's opt-outs: the files under `<local_store_dir>/optout/`, indexed once at startup.
//!
//! A store directory in the reference layout (as `uid2-local-core generate-store` writes it, or a
//! copy of what OptOut serves) keeps its opt-out files as `optout/delta/…` and
//! `optout/partition/…`. Every file whose name is an opt-out file name is indexed, wherever it
//! sits under `optout/`; local mode has no clock-driven sync, so nothing is selected out by age
//! (the reference's local mock serves whatever files it has too). Other files are skipped. A
//! file that cannot be read, or whose length is not whole entries, stops the startup with the
//! file named: serving without some of the opt-outs would be wrong, not degraded.

use std::path::{Path, PathBuf};

use uid2_store::optout::{OptOutFileName, OptOutIndex};

/// Why the opt-outs could not be loaded; names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum LocalOptOutError {
    #[error("cannot read {path}: {kind}")]
    Read { path: PathBuf, kind: std::io::ErrorKind },
    #[error("opt-out file {path}: {error}")]
    File {
        path: PathBuf,
        error: uid2_store::StoreError,
    },
}

/// The index of every opt-out file under `<store>/optout`, or `None` when there is no such
/// directory.
pub fn load(store: &Path, advertising_ids: bool) -> Result<Option<OptOutIndex>, LocalOptOutError> {
    let root = store.join("optout");
    if !root.is_dir() {
        return Ok(None);
    }
    let mut files = Vec::new();
    collect(&root, &mut files, 0)?;
    files.sort();
    let mut builder = OptOutIndex::builder().advertising_ids(advertising_ids);
    for path in &files {
        let Ok(name) = OptOutFileName::parse(&path.to_string_lossy()) else {
            tracing::debug!(path = %path.display(), "not an opt-out file name; skipped");
            continue;
        };
        let read_error = |e: std::io::Error| LocalOptOutError::Read {
            path: path.clone(),
            kind: e.kind(),
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let len = file.metadata().map_err(read_error)?.len();
        builder
            .add_reader(name, std::io::BufReader::with_capacity(1 << 20, file), len)
            .map_err(|error| LocalOptOutError::File {
                path: path.clone(),
                error,
            })?;
    }
    Ok(Some(builder.build()))
}

/// Files under `dir`, at most four levels down (`optout/delta/<date>/<file>` is the deepest the
/// layout goes).
fn collect(dir: &Path, files: &mut Vec<PathBuf>, depth: u32) -> Result<(), LocalOptOutError> {
    let read_error = |e: std::io::Error| LocalOptOutError::Read {
        path: dir.to_path_buf(),
        kind: e.kind(),
    };
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let path = entry.path();
        let kind = entry.file_type().map_err(read_error)?;
        if kind.is_dir() && depth < 4 {
            collect(&path, files, depth + 1)?;
        } else if kind.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hash_byte: u8, timestamp: u64) -> Vec<u8> {
        let mut bytes = vec![hash_byte; 32];
        bytes.extend_from_slice(&[hash_byte ^ 0x5A; 32]);
        bytes.extend_from_slice(&timestamp.to_le_bytes());
        bytes
    }

    #[test]
    fn indexes_every_opt_out_file_under_optout_and_skips_others() {
        let dir = std::env::temp_dir().join(format!("uid2-local-optout-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let partition = dir.join("optout/partition");
        let delta = dir.join("optout/delta/2026-11-28");
        std::fs::create_dir_all(&partition).expect("mkdir");
        std::fs::create_dir_all(&delta).expect("mkdir");
        std::fs::write(
            partition.join("optout-partition-000_2026-11-28T00.00.00Z_00000001.dat"),
            entry(0x11, 1_700_000_000),
        )
        .expect("write");
        std::fs::write(
            delta.join("optout-delta-000_2026-11-28T01.00.00Z_00000002.dat"),
            [entry(0x22, 1_700_000_100), entry(0x11, 1_700_000_200)].concat(),
        )
        .expect("write");
        std::fs::write(dir.join("optout/README.txt"), b"not an opt-out file").expect("write");

        let index = load(&dir, true).expect("loads").expect("an index");
        assert_eq!(index.files().len(), 2);
        assert_eq!(
            index.opted_out_since(&[0x11; 32]),
            Some(1_700_000_200),
            "the latest wins"
        );
        assert_eq!(index.opted_out_since(&[0x22; 32]), Some(1_700_000_100));
        assert_eq!(index.opted_out_since(&[0x33; 32]), None);

        std::fs::write(
            partition.join("optout-partition-001_2026-11-28T02.00.00Z_00000003.dat"),
            &entry(0x44, 1)[..71],
        )
        .expect("write");
        let error = load(&dir, true).expect_err("a cut file stops the load");
        assert!(error.to_string().contains("optout-partition-001"), "{error}");
        assert!(load(&dir.join("nowhere"), true).expect("no directory").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
