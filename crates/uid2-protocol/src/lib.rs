//! The UID2 wire protocol, with no I/O.
//!
//! Everything a UID2 operator computes from its inputs lives here: identity normalization and
//! hashing, raw UIDs (v2, v3, v4), advertising and refresh token codecs, the 388-character
//! refresh envelope, the v2 request/response envelope and the client-side (CSTG) envelope.
//!
//! Invariants kept by every module:
//! - no function panics on any input; lengths read from the wire go through [`reader::Reader`];
//! - time and randomness come in through [`clock::Clock`] and [`entropy::Entropy`], so every
//!   output can be pinned by the known-answer vectors in the tests;
//! - key material lives in [`crypto::SecretKey`], which zeroizes on drop and never prints;
//! - errors carry no input bytes, identifiers, tokens or keys.
//!
//! The byte layouts follow the Java reference operator; where its documentation disagrees with
//! its code, the code is followed.

pub mod base64;
pub mod clock;
pub mod crypto;
pub mod cstg;
pub mod entropy;
pub mod envelope;
pub mod identity;
pub mod reader;
pub mod token;
