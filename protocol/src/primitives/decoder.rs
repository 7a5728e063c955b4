//! Reading Kafka primitives from a `Bytes` buffer, every length checked before it is trusted.

use bytes::{Buf, Bytes};

use super::{varint, Uuid};
use crate::error::{ProtocolError, Result};

/// The most array elements reserved up front. A count is only a claim until its elements have been
/// decoded: beyond this, the vector grows as elements actually arrive, so memory follows the input.
const PREALLOCATE_MAX: usize = 256;

/// A cursor over received bytes that reads Kafka's primitive types.
///
/// Byte and string fields are sliced out of the underlying buffer without copying. Every read checks
/// the bytes left first and fails with [`ProtocolError::Truncated`] naming the field (`what`) otherwise.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    buf: Bytes,
}

impl Decoder {
    /// Decodes from `buf`.
    pub fn new(buf: Bytes) -> Self {
        Decoder { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes not read yet (without consuming them).
    pub fn peek_rest(&self) -> &Bytes {
        &self.buf
    }

    /// Consumes and returns everything not read yet.
    pub fn take_rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Fails unless every byte was read.
    pub fn finish(&self, what: &'static str) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::TrailingBytes {
                what,
                remaining: self.buf.len(),
            })
        }
    }

    #[inline]
    fn need(&self, n: usize, what: &'static str) -> Result<()> {
        if self.buf.len() < n {
            Err(ProtocolError::truncated(what, n, self.buf.len()))
        } else {
            Ok(())
        }
    }

    /// Reads an `INT8`.
    #[inline]
    pub fn i8(&mut self, what: &'static str) -> Result<i8> {
        self.need(1, what)?;
        Ok(self.buf.get_i8())
    }

    /// Reads a `BOOLEAN` (any non-zero byte is true, as Kafka's Java reader does).
    #[inline]
    pub fn bool(&mut self, what: &'static str) -> Result<bool> {
        Ok(self.i8(what)? != 0)
    }

    /// Reads an `INT16`.
    #[inline]
    pub fn i16(&mut self, what: &'static str) -> Result<i16> {
        self.need(2, what)?;
        Ok(self.buf.get_i16())
    }

    /// Reads a `UINT16`.
    #[inline]
    pub fn u16(&mut self, what: &'static str) -> Result<u16> {
        self.need(2, what)?;
        Ok(self.buf.get_u16())
    }

    /// Reads an `INT32`.
    #[inline]
    pub fn i32(&mut self, what: &'static str) -> Result<i32> {
        self.need(4, what)?;
        Ok(self.buf.get_i32())
    }

    /// Reads a `UINT32`.
    #[inline]
    pub fn u32(&mut self, what: &'static str) -> Result<u32> {
        self.need(4, what)?;
        Ok(self.buf.get_u32())
    }

    /// Reads an `INT64`.
    #[inline]
    pub fn i64(&mut self, what: &'static str) -> Result<i64> {
        self.need(8, what)?;
        Ok(self.buf.get_i64())
    }

    /// Reads a `FLOAT64`.
    #[inline]
    pub fn f64(&mut self, what: &'static str) -> Result<f64> {
        self.need(8, what)?;
        Ok(self.buf.get_f64())
    }

    /// Reads a `UUID`.
    #[inline]
    pub fn uuid(&mut self, what: &'static str) -> Result<Uuid> {
        self.need(16, what)?;
        let mut b = [0u8; 16];
        self.buf.copy_to_slice(&mut b);
        Ok(Uuid(b))
    }

    /// Reads an `UNSIGNED_VARINT` (at most 5 bytes).
    #[inline]
    pub fn uvarint(&mut self, what: &'static str) -> Result<u32> {
        let (value, used) = varint::read_u32(&self.buf, what)?;
        self.buf.advance(used);
        Ok(value)
    }

    /// Reads a zigzag `VARINT`.
    #[inline]
    pub fn varint(&mut self, what: &'static str) -> Result<i32> {
        let (value, used) = varint::read_i32(&self.buf, what)?;
        self.buf.advance(used);
        Ok(value)
    }

    /// Reads a zigzag `VARLONG`.
    #[inline]
    pub fn varlong(&mut self, what: &'static str) -> Result<i64> {
        let (value, used) = varint::read_i64(&self.buf, what)?;
        self.buf.advance(used);
        Ok(value)
    }

    /// Takes `n` raw bytes without copying.
    #[inline]
    pub fn raw(&mut self, n: usize, what: &'static str) -> Result<Bytes> {
        self.need(n, what)?;
        Ok(self.buf.split_to(n))
    }

    /// Reads the length prefix of a string or bytes field: `None` means null.
    ///
    /// Non-flexible fields carry an `INT16` (strings) or `INT32` (bytes) length, `-1` for null; flexible
    /// (compact) fields carry an unsigned varint of length + 1, `0` for null.
    fn length(&mut self, flexible: bool, wide: bool, what: &'static str) -> Result<Option<usize>> {
        let len: i64 = if flexible {
            i64::from(self.uvarint(what)?) - 1
        } else if wide {
            i64::from(self.i32(what)?)
        } else {
            i64::from(self.i16(what)?)
        };
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(ProtocolError::InvalidLength { what, length: len });
        }
        let len = len as usize;
        self.need(len, what)?;
        Ok(Some(len))
    }

    /// Reads a nullable string: `NULLABLE_STRING`, or `COMPACT_NULLABLE_STRING` when `flexible`.
    pub fn nullable_string(
        &mut self,
        flexible: bool,
        what: &'static str,
    ) -> Result<Option<String>> {
        match self.length(flexible, false, what)? {
            None => Ok(None),
            Some(len) => {
                let raw = self.buf.split_to(len);
                match std::str::from_utf8(&raw) {
                    Ok(s) => Ok(Some(s.to_owned())),
                    Err(_) => Err(ProtocolError::InvalidUtf8 { what }),
                }
            }
        }
    }

    /// Reads a non-null string: `STRING`, or `COMPACT_STRING` when `flexible`.
    pub fn string(&mut self, flexible: bool, what: &'static str) -> Result<String> {
        self.nullable_string(flexible, what)?
            .ok_or(ProtocolError::UnexpectedNull { what })
    }

    /// Reads nullable bytes: `NULLABLE_BYTES`, or `COMPACT_NULLABLE_BYTES` when `flexible`. Zero-copy.
    pub fn nullable_bytes(&mut self, flexible: bool, what: &'static str) -> Result<Option<Bytes>> {
        Ok(self
            .length(flexible, true, what)?
            .map(|len| self.buf.split_to(len)))
    }

    /// Reads non-null bytes: `BYTES`, or `COMPACT_BYTES` when `flexible`. Zero-copy.
    pub fn bytes(&mut self, flexible: bool, what: &'static str) -> Result<Bytes> {
        self.nullable_bytes(flexible, what)?
            .ok_or(ProtocolError::UnexpectedNull { what })
    }

    /// Reads an array's element count: `None` means a null array.
    ///
    /// The count is checked against the bytes left (every element takes at least one byte), so a
    /// hostile count can never make the caller allocate more than the input justifies.
    pub fn nullable_array_len(
        &mut self,
        flexible: bool,
        what: &'static str,
    ) -> Result<Option<usize>> {
        let len: i64 = if flexible {
            i64::from(self.uvarint(what)?) - 1
        } else {
            i64::from(self.i32(what)?)
        };
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as u64 > self.buf.len() as u64 {
            return Err(ProtocolError::InvalidLength { what, length: len });
        }
        Ok(Some(len as usize))
    }

    /// Reads a non-null array's element count.
    pub fn array_len(&mut self, flexible: bool, what: &'static str) -> Result<usize> {
        self.nullable_array_len(flexible, what)?
            .ok_or(ProtocolError::UnexpectedNull { what })
    }

    /// Reads a non-null array whose elements are decoded by `item`.
    pub fn array<T>(
        &mut self,
        flexible: bool,
        what: &'static str,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let n = self.array_len(flexible, what)?;
        let mut out = Vec::with_capacity(n.min(PREALLOCATE_MAX));
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// Reads a nullable array whose elements are decoded by `item`.
    pub fn nullable_array<T>(
        &mut self,
        flexible: bool,
        what: &'static str,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Option<Vec<T>>> {
        match self.nullable_array_len(flexible, what)? {
            None => Ok(None),
            Some(n) => {
                let mut out = Vec::with_capacity(n.min(PREALLOCATE_MAX));
                for _ in 0..n {
                    out.push(item(self)?);
                }
                Ok(Some(out))
            }
        }
    }
}
