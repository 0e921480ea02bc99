//! Randomness as the protocol sees it: IVs, nonces and response keys.
//!
//! Production uses a CSPRNG seeded from the operating system's. Tests replace it with
//! [`ScriptedEntropy`] to pin every IV, which is how the reference's known-answer vectors are
//! reproduced byte for byte.

use std::collections::VecDeque;
use std::sync::Mutex;

use rand::RngCore;

/// A source of random bytes.
pub trait Entropy: Send + Sync + std::fmt::Debug {
    fn fill(&self, out: &mut [u8]);
}

/// The operating system's CSPRNG, through `rand`'s per-thread generator (ChaCha12, seeded from
/// the OS and reseeded from it every 64 KiB of output).
///
/// A token request takes five or six random values (IVs, nonce, response key); a `getrandom`
/// system call for each was the largest single cost of token generation, and inside an SGX
/// enclave every system call is far dearer.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, out: &mut [u8]) {
        rand::thread_rng().fill_bytes(out);
    }
}

/// Hands out queued byte strings in order, one per `fill`; for tests only.
///
/// A `fill` whose length does not match the next queued item, or that finds the queue empty,
/// writes zeros: the test comparing against a vector then fails on the output, which names the
/// problem better than a panic inside the codec would.
#[derive(Debug, Default)]
pub struct ScriptedEntropy {
    queue: Mutex<VecDeque<Vec<u8>>>,
}

impl ScriptedEntropy {
    pub fn new<I, B>(items: I) -> Self
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        Self {
            queue: Mutex::new(items.into_iter().map(|b| b.as_ref().to_vec()).collect()),
        }
    }

    pub fn push(&self, item: impl AsRef<[u8]>) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.push_back(item.as_ref().to_vec());
        }
    }

    pub fn remaining(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }
}

impl Entropy for ScriptedEntropy {
    fn fill(&self, out: &mut [u8]) {
        let next = self.queue.lock().ok().and_then(|mut q| q.pop_front());
        match next {
            Some(bytes) if bytes.len() == out.len() => out.copy_from_slice(&bytes),
            _ => out.fill(0),
        }
    }
}
