//! The one error type of the crate.
//!
//! A [`StoreError`] names the store that failed and what is wrong with it, down to the record
//! index and field name. It never carries input content: no values, no secrets, no fragments of
//! the file (parser messages from `serde_json` are reduced to a line and column for that reason,
//! since they quote the offending value). Paths are included; they come from configuration and
//! metadata, not from secret data.

/// A store file that could not be read or did not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{store} store: {problem}")]
pub struct StoreError {
    /// The store's name, as in Core's folder names (`clients`, `keyset_keys`, `salts`, …).
    pub store: &'static str,
    pub problem: Problem,
}

impl StoreError {
    pub fn new(store: &'static str, problem: Problem) -> Self {
        Self { store, problem }
    }

    /// The same problem attributed to another store; a [`crate::source::StoreSource`] does not
    /// know which store it is reading for, the loader does.
    pub fn for_store(self, store: &'static str) -> Self {
        Self { store, ..self }
    }
}

/// What is wrong with a store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("file not found: {path}")]
    NotFound { path: String },
    #[error("cannot read {path}: {kind}")]
    Unreadable { path: String, kind: std::io::ErrorKind },
    #[error("file is not valid UTF-8")]
    NotUtf8,
    #[error("malformed JSON at line {line}, column {column}")]
    MalformedJson { line: usize, column: usize },
    #[error("expected a JSON {expected} at the top level")]
    WrongTopLevel { expected: &'static str },
    #[error("metadata field `{field}` {issue}")]
    Metadata { field: &'static str, issue: FieldIssue },
    #[error("record {index}: field `{field}` {issue}")]
    Field {
        /// 0-based position in the JSON array.
        index: usize,
        field: &'static str,
        issue: FieldIssue,
    },
    #[error("record {index} is not a JSON object")]
    RecordNotAnObject { index: usize },
    #[error("records {first} and {second} have the same `{field}`")]
    Duplicate {
        field: &'static str,
        first: usize,
        second: usize,
    },
    #[error("salt metadata lists no snapshots")]
    NoSaltSnapshots,
    #[error("salt snapshot {snapshot}, line {line}: {issue}")]
    SaltLine {
        /// 0-based position in the metadata `salts` array.
        snapshot: usize,
        /// 1-based line number in the salt file.
        line: usize,
        issue: SaltLineIssue,
    },
    #[error("salt snapshot {snapshot} has {found} lines but its metadata `size` is {expected}")]
    SaltLineCount {
        snapshot: usize,
        expected: usize,
        found: usize,
    },
    #[error("invalid runtime config: {0}")]
    RuntimeConfig(RuntimeConfigIssue),
    #[error("encrypted file: {0}")]
    Encrypted(EncryptedFileIssue),
    #[error("opt-out file length {len} is not a multiple of 72 bytes")]
    OptOutFileLength { len: usize },
    #[error("not an opt-out file name")]
    OptOutFileName,
    /// The first entry is not a start sentinel or the last not an end sentinel: a truncated or
    /// spoiled file (see [`crate::optout::entry::FramingCheck`]).
    #[error("opt-out file is not framed by a start and an end sentinel")]
    OptOutFileFraming,
}

/// What is wrong with one JSON field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldIssue {
    #[error("is missing")]
    Missing,
    #[error("is not {expected}")]
    WrongType { expected: &'static str },
    #[error("is out of range")]
    OutOfRange,
    #[error("is not valid base64")]
    InvalidBase64,
    #[error("decodes to {found} bytes, expected {expected}")]
    WrongLength { expected: usize, found: usize },
    #[error("has an unknown value")]
    UnknownValue,
    #[error("is not a valid P-256 key with a 9-character prefix")]
    InvalidKey,
    #[error("must not be empty")]
    Empty,
}

/// What is wrong with one line of a salt file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaltLineIssue {
    #[error("has {found} columns, expected 11")]
    ColumnCount { found: usize },
    #[error("column {column} is not a valid integer")]
    BadNumber { column: usize },
    #[error("key in column {column} is {found} bytes, expected 16, 24 or 32")]
    KeyLength { column: usize, found: usize },
    #[error("key material starting at column {column} has no salt")]
    KeyWithoutSalt { column: usize },
    #[error("has neither a current salt nor current key material")]
    NoCurrentSecret,
}

/// A runtime config that the reference would refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeConfigIssue {
    #[error("`{0}` is required")]
    Missing(&'static str),
    #[error("`{0}` is not a 32-bit integer")]
    NotAnInteger(&'static str),
    #[error("`identity_environment` is not test, integ or prod")]
    UnknownEnvironment,
    #[error("refresh_token_expires_after_seconds must be >= identity_token_expires_after_seconds")]
    RefreshShorterThanIdentity,
    #[error("identity_token_expires_after_seconds must be >= refresh_identity_token_after_seconds")]
    IdentityShorterThanRefreshAfter,
    #[error("max_bidstream_lifetime_seconds must be >= identity_token_expires_after_seconds")]
    BidstreamShorterThanIdentity,
}

/// Why an encrypted store file could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptedFileIssue {
    #[error("envelope lacks `key_id` or `encrypted_payload`")]
    MalformedEnvelope,
    #[error("no cloud encryption key with id {key_id}")]
    KeyNotFound { key_id: i32 },
    #[error("decryption with cloud key {key_id} failed")]
    DecryptionFailed { key_id: i32 },
}
