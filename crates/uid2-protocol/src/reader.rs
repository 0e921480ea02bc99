//! A checked big-endian reader over untrusted bytes.
//!
//! Every length taken from the wire is bounds-checked here; callers never index slices with
//! peer-controlled offsets. A short read is an error, never a panic.

/// Not enough bytes for the field being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("input is truncated")]
pub struct Truncated;

#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        if n > self.rest.len() {
            return Err(Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Truncated> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| Truncated)
    }

    pub fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(self.array::<1>()?[0])
    }

    pub fn i32(&mut self) -> Result<i32, Truncated> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, Truncated> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Everything not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    pub fn remaining(&self) -> usize {
        self.rest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_and_stops_at_the_end() {
        let mut r = Reader::new(&[0, 0, 0, 7, 1, 2]);
        assert_eq!(r.i32(), Ok(7));
        assert_eq!(r.i32(), Err(Truncated));
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.rest(), &[2]);
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.i64(), Err(Truncated));
    }
}
