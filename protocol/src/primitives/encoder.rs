//! Writing Kafka primitives into a `BytesMut`.

use bytes::{BufMut, BytesMut};

use super::{varint, Uuid};
use crate::error::{ProtocolError, Result};

/// Kafka primitive writers on a `BytesMut`. Every message encodes straight into one buffer.
///
/// `flexible` selects the compact forms (unsigned-varint lengths plus one) used by flexible versions.
pub trait Encoder {
    /// Writes a `BOOLEAN`.
    fn put_bool(&mut self, v: bool);
    /// Writes a `UUID`.
    fn put_uuid(&mut self, v: &Uuid);
    /// Writes an `UNSIGNED_VARINT`.
    fn put_uvarint(&mut self, v: u32);
    /// Writes a zigzag `VARINT`.
    fn put_varint(&mut self, v: i32);
    /// Writes a zigzag `VARLONG`.
    fn put_varlong(&mut self, v: i64);
    /// Writes a non-null string (`STRING` or `COMPACT_STRING`).
    fn put_string(&mut self, flexible: bool, v: &str, what: &'static str) -> Result<()>;
    /// Writes a nullable string (`NULLABLE_STRING` or `COMPACT_NULLABLE_STRING`).
    fn put_nullable_string(
        &mut self,
        flexible: bool,
        v: Option<&str>,
        what: &'static str,
    ) -> Result<()>;
    /// Writes non-null bytes (`BYTES` or `COMPACT_BYTES`).
    fn put_bytes_field(&mut self, flexible: bool, v: &[u8], what: &'static str) -> Result<()>;
    /// Writes nullable bytes (`NULLABLE_BYTES` or `COMPACT_NULLABLE_BYTES`).
    fn put_nullable_bytes(
        &mut self,
        flexible: bool,
        v: Option<&[u8]>,
        what: &'static str,
    ) -> Result<()>;
    /// Writes an array length (`ARRAY` or `COMPACT_ARRAY`), `None` for a null array.
    fn put_array_len(
        &mut self,
        flexible: bool,
        len: Option<usize>,
        what: &'static str,
    ) -> Result<()>;
    /// Writes a non-null array whose elements are written by `item`.
    fn put_array<T>(
        &mut self,
        flexible: bool,
        items: &[T],
        what: &'static str,
        item: impl FnMut(&mut Self, &T) -> Result<()>,
    ) -> Result<()>;
    /// Writes a nullable array whose elements are written by `item`.
    fn put_nullable_array<T>(
        &mut self,
        flexible: bool,
        items: Option<&[T]>,
        what: &'static str,
        item: impl FnMut(&mut Self, &T) -> Result<()>,
    ) -> Result<()>;
}

fn length_prefix(
    buf: &mut BytesMut,
    flexible: bool,
    wide: bool,
    len: Option<usize>,
    what: &'static str,
) -> Result<()> {
    match (flexible, len) {
        (true, None) => buf.put_u8(0),
        (true, Some(n)) => {
            let n = u32::try_from(n)
                .ok()
                .and_then(|n| n.checked_add(1))
                .filter(|n| *n <= i32::MAX as u32)
                .ok_or(ProtocolError::TooLong { what, length: n })?;
            varint::put_u32(buf, n);
        }
        (false, None) if wide => buf.put_i32(-1),
        (false, None) => buf.put_i16(-1),
        (false, Some(n)) if wide => {
            let n = i32::try_from(n).map_err(|_| ProtocolError::TooLong { what, length: n })?;
            buf.put_i32(n);
        }
        (false, Some(n)) => {
            let n = i16::try_from(n).map_err(|_| ProtocolError::TooLong { what, length: n })?;
            buf.put_i16(n);
        }
    }
    Ok(())
}

impl Encoder for BytesMut {
    #[inline]
    fn put_bool(&mut self, v: bool) {
        self.put_u8(u8::from(v));
    }

    #[inline]
    fn put_uuid(&mut self, v: &Uuid) {
        self.put_slice(&v.0);
    }

    #[inline]
    fn put_uvarint(&mut self, v: u32) {
        varint::put_u32(self, v);
    }

    #[inline]
    fn put_varint(&mut self, v: i32) {
        varint::put_i32(self, v);
    }

    #[inline]
    fn put_varlong(&mut self, v: i64) {
        varint::put_i64(self, v);
    }

    fn put_string(&mut self, flexible: bool, v: &str, what: &'static str) -> Result<()> {
        length_prefix(self, flexible, false, Some(v.len()), what)?;
        self.put_slice(v.as_bytes());
        Ok(())
    }

    fn put_nullable_string(
        &mut self,
        flexible: bool,
        v: Option<&str>,
        what: &'static str,
    ) -> Result<()> {
        length_prefix(self, flexible, false, v.map(str::len), what)?;
        if let Some(v) = v {
            self.put_slice(v.as_bytes());
        }
        Ok(())
    }

    fn put_bytes_field(&mut self, flexible: bool, v: &[u8], what: &'static str) -> Result<()> {
        length_prefix(self, flexible, true, Some(v.len()), what)?;
        self.put_slice(v);
        Ok(())
    }

    fn put_nullable_bytes(
        &mut self,
        flexible: bool,
        v: Option<&[u8]>,
        what: &'static str,
    ) -> Result<()> {
        length_prefix(self, flexible, true, v.map(<[u8]>::len), what)?;
        if let Some(v) = v {
            self.put_slice(v);
        }
        Ok(())
    }

    fn put_array_len(
        &mut self,
        flexible: bool,
        len: Option<usize>,
        what: &'static str,
    ) -> Result<()> {
        length_prefix(self, flexible, true, len, what)
    }

    fn put_array<T>(
        &mut self,
        flexible: bool,
        items: &[T],
        what: &'static str,
        mut item: impl FnMut(&mut Self, &T) -> Result<()>,
    ) -> Result<()> {
        self.put_array_len(flexible, Some(items.len()), what)?;
        for it in items {
            item(self, it)?;
        }
        Ok(())
    }

    fn put_nullable_array<T>(
        &mut self,
        flexible: bool,
        items: Option<&[T]>,
        what: &'static str,
        mut item: impl FnMut(&mut Self, &T) -> Result<()>,
    ) -> Result<()> {
        self.put_array_len(flexible, items.map(<[T]>::len), what)?;
        for it in items.unwrap_or_default() {
            item(self, it)?;
        }
        Ok(())
    }
}
