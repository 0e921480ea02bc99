//! Opt-out data as the OptOut service publishes it: files of 72-byte entries, named by kind,
//! replica and time, and (in [`index`]) the in-memory index the operator answers from.
//!
//! Two kinds of file carry the same entries: *deltas* (a few minutes of new opt-outs, bracketed
//! by sentinel entries) and *partitions* (a compacted day). Entries never leave the files: an
//! opt-out is permanent.
//!
//! The sync layer's loop, in terms of this module: parse the listed names
//! ([`OptOutFileName::parse`]), ask [`select_files`] what to index and drop, fetch the new
//! files, then [`OptOutIndex::apply`] the selection and publish the new index.

pub mod entry;
pub mod file_name;
pub mod index;
pub mod selection;

pub use entry::{parse_file, FramingCheck, OptOutEntry};
pub use file_name::{OptOutFileKind, OptOutFileName, SYNTHETIC_REPLICA};
pub use index::{OptOutIndex, OptOutIndexBuilder};
pub use selection::{select_files, FileSelection, OptOutFilePolicy};
