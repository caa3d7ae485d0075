//! Bounds-checked big-endian reading (`Reader`) and appending (`put_*`) helpers.
//!
//! Every decoder reads through [`Reader`], whose getters return `Err(Truncated)` instead of
//! panicking, so no decoder indexes untrusted input directly.

use crate::error::{Error, Result};

/// A cursor over untrusted bytes; every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`; `what` names the structure in truncation errors.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// True when everything has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unread bytes (not consumed).
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(Error::Truncated(self.what));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    /// Takes everything left.
    pub fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Reads a u8.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a big-endian u16.
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian u32.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian u64.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Peeks a big-endian u16 without consuming it.
    pub fn peek_u16(&self) -> Result<u16> {
        self.clone().u16()
    }

    /// Peeks a big-endian u32 without consuming it.
    pub fn peek_u32(&self) -> Result<u32> {
        self.clone().u32()
    }
}

/// Appends a u8.
#[inline]
pub fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

/// Appends a big-endian u16.
#[inline]
pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a big-endian u32.
#[inline]
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a big-endian u64.
#[inline]
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends `n` zero bytes.
#[inline]
pub fn put_zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}

/// Pads with zeros so that the bytes written since `start` are a multiple of 8.
#[inline]
pub fn pad_to_8(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    put_zeros(out, (8 - len % 8) % 8);
}

/// Rounds `n` up to a multiple of 8.
#[inline]
pub fn round8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Writes big-endian `v` at `at` (a placeholder written earlier, e.g. a length).
#[inline]
pub fn patch_u16(out: &mut [u8], at: usize, v: u16) {
    if let Some(s) = out.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// The 16-bit length field of a part of a message: a message is at most 64 KiB (checked
/// where it is framed), so a part of one fits; should it not, the field says the most it
/// can rather than a wrapped-around small length.
#[inline]
pub fn field_len(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Converts a length to u16, failing when it does not fit (encoders of huge values).
pub fn len16(n: usize, what: &'static str) -> Result<u16> {
    u16::try_from(n).map_err(|_| Error::BadLength(what))
}
