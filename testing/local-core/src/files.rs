//! The store on disk: where metadata `location`s point, which URL serves each data file, and the
//! confinement that keeps the file routes inside the tree they were given.
//!
//! A location is resolved like the operator's own local mode: the reference's classpath prefix
//! `/com.uid2.core/test/` and relative paths resolve against the store root; `..` is allowed (the
//! test stores point at `../reference-store/…`). Every resolved path is canonicalised (so
//! symlinks are followed) and must lie inside the *served tree*: the store directory's parent.
//!
//! URLs: a file inside the store is `/files/<path relative to the store>`; a file elsewhere in
//! the served tree is `/files/_parent/<path relative to the parent>` (a `..` segment cannot be
//! used, HTTP clients normalise it away). The top-level name `_parent` is therefore reserved.
//! The file routes take no credentials, like the pre-signed URLs Core hands out.

use std::path::{Component, Path, PathBuf};

use crate::error::CoreError;

/// The URL segment that stands for the store's parent directory.
pub const PARENT_SEGMENT: &str = "_parent";

/// The canonical store root and served tree.
#[derive(Debug, Clone)]
pub struct StoreTree {
    store: PathBuf,
    served: PathBuf,
}

impl StoreTree {
    /// Canonicalises `store_dir` (it must be a directory).
    pub fn new(store_dir: &Path) -> std::io::Result<Self> {
        let store = std::fs::canonicalize(store_dir)?;
        if !store.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "the store is not a directory",
            ));
        }
        let served = store.parent().map(Path::to_path_buf).unwrap_or_else(|| store.clone());
        Ok(Self { store, served })
    }

    pub fn store(&self) -> &Path {
        &self.store
    }

    /// A file under the store root given by a relative path of plain segments.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.store.join(relative)
    }

    /// Resolves a metadata `location` to an existing file inside the served tree.
    pub fn resolve_location(&self, location: &str) -> Result<PathBuf, CoreError> {
        let location = uid2_store::source::resolve_location(location);
        let path = Path::new(location);
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.store.join(path)
        };
        self.confine(&joined)
            .ok_or_else(|| CoreError::Store(format!("location {location} is missing or outside the served tree")))
    }

    /// The URL path (without `/files/`) that serves `file`, an already confined path.
    pub fn url_path(&self, file: &Path) -> Option<String> {
        let (prefix, relative) = match file.strip_prefix(&self.store) {
            Ok(relative) => (None, relative),
            Err(_) => (Some(PARENT_SEGMENT), file.strip_prefix(&self.served).ok()?),
        };
        let mut segments: Vec<String> = prefix.map(str::to_owned).into_iter().collect();
        for component in relative.components() {
            match component {
                Component::Normal(name) => segments.push(encode_segment(name.to_str()?)),
                _ => return None,
            }
        }
        Some(segments.join("/"))
    }

    /// The file a (percent-decoded) URL path names, if it is an existing file in the served tree.
    pub fn resolve_url_path(&self, url_path: &str) -> Option<PathBuf> {
        let mut segments = url_path.split('/').peekable();
        let base = if segments.peek() == Some(&PARENT_SEGMENT) {
            segments.next();
            &self.served
        } else {
            &self.store
        };
        let mut path = base.clone();
        for segment in segments {
            if segment.is_empty()
                || segment == "."
                || segment == ".."
                || segment.contains(['\\', '\0'])
                || Path::new(segment).components().count() != 1
            {
                return None;
            }
            path.push(segment);
        }
        self.confine(&path)
    }

    /// `path` canonicalised, if it is a regular file inside the served tree.
    fn confine(&self, path: &Path) -> Option<PathBuf> {
        let canonical = std::fs::canonicalize(path).ok()?;
        (canonical.starts_with(&self.served) && canonical.is_file()).then_some(canonical)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> StoreTree {
        StoreTree::new(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/local-store")).expect("store")
    }

    #[test]
    fn locations_resolve_inside_and_beside_the_store() {
        let tree = tree();
        let keysets = tree.resolve_location("keysets/keysets.json").expect("relative");
        assert_eq!(tree.url_path(&keysets).as_deref(), Some("keysets/keysets.json"));
        let clients = tree
            .resolve_location("../reference-store/clients/clients.json")
            .expect("dot-dot");
        assert_eq!(
            tree.url_path(&clients).as_deref(),
            Some("_parent/reference-store/clients/clients.json")
        );
        assert_eq!(tree.resolve_url_path("keysets/keysets.json"), Some(keysets.clone()));
        assert_eq!(
            tree.resolve_url_path("_parent/reference-store/clients/clients.json"),
            Some(clients)
        );
        // The classpath prefix maps onto the store root.
        assert_eq!(
            tree.resolve_location("/com.uid2.core/test/keysets/keysets.json").ok(),
            Some(keysets)
        );
    }

    #[test]
    fn nothing_outside_the_tree_or_odd_is_served() {
        let tree = tree();
        for location in [
            "../../Cargo.toml",
            "/etc/passwd",
            "keysets/missing.json",
            "keysets",
            "../../testdata/local-store/keysets/keysets.json/..",
        ] {
            assert!(tree.resolve_location(location).is_err(), "{location}");
        }
        for url in [
            "../reference-store/clients/clients.json",
            "_parent/../Cargo.toml",
            "_parent/reference-store/../../Cargo.toml",
            "keysets//keysets.json",
            "keysets/./keysets.json",
            "/etc/passwd",
            "",
            "_parent",
            "keysets",
            "keysets\\keysets.json",
        ] {
            assert!(tree.resolve_url_path(url).is_none(), "{url}");
        }
        assert_eq!(encode_segment("a b%/é"), "a%20b%25%2F%C3%A9");
    }
}
