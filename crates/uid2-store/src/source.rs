//! Where store files come from when they are not downloaded: a directory, or a table compiled
//! into the binary.
//!
//! This is the only module of the crate that touches the file system. Paths are relative to a
//! store root (`clients/metadata.json`); metadata `location` values go through
//! [`resolve_location`] first, which maps the reference's classpath paths
//! (`/com.uid2.core/test/clients/clients.json`) onto that root.
//!
//! Configuration is trusted, so [`DirSource`] follows `..` and absolute paths as given;
//! [`EmbeddedSource`] only ever looks names up in its table.

use std::path::{Path, PathBuf};

use crate::error::{Problem, StoreError};

/// A reader of store files by path.
pub trait StoreSource {
    /// The bytes of the file at `path`, relative to the store root (or absolute, for sources that
    /// support it). Errors name the path but are attributed to the store `"source"`; loaders
    /// re-attribute them with [`StoreError::for_store`].
    fn read(&self, path: &str) -> Result<Vec<u8>, StoreError>;
}

/// The classpath prefix of the reference's bundled store; its locations resolve against the root.
pub const CLASSPATH_PREFIX: &str = "/com.uid2.core/test/";

/// Maps a metadata `location` onto a path for a [`StoreSource`]: the reference's classpath prefix
/// is stripped so the rest is relative to the store root; any other path is returned as is.
pub fn resolve_location(location: &str) -> &str {
    location.strip_prefix(CLASSPATH_PREFIX).unwrap_or(location)
}

fn not_found(path: &str) -> StoreError {
    StoreError::new("source", Problem::NotFound { path: path.to_owned() })
}

/// Store files in a directory. Relative paths resolve against the directory, absolute paths are
/// read as they are.
#[derive(Debug, Clone)]
pub struct DirSource(pub PathBuf);

impl DirSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self(root.into())
    }
}

impl StoreSource for DirSource {
    fn read(&self, path: &str) -> Result<Vec<u8>, StoreError> {
        let relative = Path::new(path);
        let full = if relative.is_absolute() {
            relative.to_path_buf()
        } else {
            self.0.join(relative)
        };
        std::fs::read(&full).map_err(|e| {
            let shown = full.display().to_string();
            if e.kind() == std::io::ErrorKind::NotFound {
                not_found(&shown)
            } else {
                StoreError::new(
                    "source",
                    Problem::Unreadable {
                        path: shown,
                        kind: e.kind(),
                    },
                )
            }
        })
    }
}

/// Store files compiled into the binary, keyed by their path relative to the store root.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedSource(pub &'static [(&'static str, &'static [u8])]);

impl EmbeddedSource {
    /// `a//b`, `./a/b` and `a/./b` all name `a/b`; `..` is kept, so it never matches a table entry
    /// that was not written with it.
    fn normalize(path: &str) -> String {
        let absolute = path.starts_with('/');
        let parts: Vec<&str> = path
            .split('/')
            .filter(|part| !part.is_empty() && *part != ".")
            .collect();
        let joined = parts.join("/");
        if absolute {
            format!("/{joined}")
        } else {
            joined
        }
    }
}

impl StoreSource for EmbeddedSource {
    fn read(&self, path: &str) -> Result<Vec<u8>, StoreError> {
        let wanted = Self::normalize(path);
        self.0
            .iter()
            .find(|(name, _)| Self::normalize(name) == wanted)
            .map(|(_, bytes)| bytes.to_vec())
            .ok_or_else(|| not_found(&wanted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classpath_locations_resolve_against_the_root() {
        assert_eq!(
            resolve_location("/com.uid2.core/test/clients/clients.json"),
            "clients/clients.json"
        );
        assert_eq!(resolve_location("clients/clients.json"), "clients/clients.json");
        assert_eq!(resolve_location("/srv/store/clients.json"), "/srv/store/clients.json");
        // Only the exact prefix is special.
        assert_eq!(
            resolve_location("/com.uid2.core/prod/clients.json"),
            "/com.uid2.core/prod/clients.json"
        );
    }

    #[test]
    fn embedded_lookup_normalizes_separators_only() {
        static TABLE: &[(&str, &[u8])] = &[("clients/metadata.json", b"meta"), ("/abs/file", b"abs")];
        let source = EmbeddedSource(TABLE);
        assert_eq!(source.read("clients/metadata.json").ok(), Some(b"meta".to_vec()));
        assert_eq!(source.read("./clients//metadata.json").ok(), Some(b"meta".to_vec()));
        assert_eq!(source.read("/abs/file").ok(), Some(b"abs".to_vec()));
        assert!(source.read("/clients/metadata.json").is_err());
        assert!(source.read("x/../clients/metadata.json").is_err());
        let err = source.read("missing.json").err();
        assert!(matches!(
            err,
            Some(StoreError { problem: Problem::NotFound { ref path }, .. }) if path == "missing.json"
        ));
    }

    #[test]
    fn dir_source_reads_relative_absolute_and_dotdot_paths() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/reference-store");
        let source = DirSource::new(&root);
        let relative = source.read("clients/metadata.json").expect("relative path");
        assert!(relative.starts_with(b"{"));
        let absolute = root.join("sites/metadata.json");
        let absolute = source
            .read(absolute.to_str().expect("utf-8 path"))
            .expect("absolute path");
        assert!(absolute.starts_with(b"{"));
        assert!(source.read("clients/../sites/metadata.json").is_ok());
        let missing = source.read("clients/nope.json").expect_err("missing file");
        assert!(matches!(missing.problem, Problem::NotFound { .. }));
        let directory = source.read("clients").expect_err("a directory is not a file");
        assert!(matches!(directory.problem, Problem::Unreadable { .. }));
    }
}
