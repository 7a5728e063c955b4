//! Variable-length integers: unsigned LEB128 (`UNSIGNED_VARINT`) and zigzag (`VARINT`, `VARLONG`).
//!
//! The readers work on plain slices and return the value with the number of bytes used, so both the
//! [`Decoder`](super::Decoder) and the record-batch hot loop can share them.

use bytes::BufMut;

use crate::error::{ProtocolError, Result};

/// Reads an unsigned varint of at most 5 bytes (32 bits).
#[inline]
pub fn read_u32(buf: &[u8], what: &'static str) -> Result<(u32, usize)> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let Some(&b) = buf.get(i) else {
            return Err(ProtocolError::truncated(what, i + 1, buf.len()));
        };
        if i == 4 && b > 0x0f {
            return Err(ProtocolError::VarintOverflow { what });
        }
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(ProtocolError::VarintOverflow { what })
}

/// Reads an unsigned varint of at most 10 bytes (64 bits).
#[inline]
pub fn read_u64(buf: &[u8], what: &'static str) -> Result<(u64, usize)> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some(&b) = buf.get(i) else {
            return Err(ProtocolError::truncated(what, i + 1, buf.len()));
        };
        if i == 9 && b > 0x01 {
            return Err(ProtocolError::VarintOverflow { what });
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(ProtocolError::VarintOverflow { what })
}

/// Reads a zigzag-encoded 32-bit varint.
#[inline(always)]
pub fn read_i32(buf: &[u8], what: &'static str) -> Result<(i32, usize)> {
    // One- and two-byte values are by far the most common lengths and deltas in record batches.
    let (raw, used) = match buf {
        [b0, ..] if b0 & 0x80 == 0 => (u32::from(*b0), 1),
        [b0, b1, ..] if b1 & 0x80 == 0 => (u32::from(b0 & 0x7f) | (u32::from(*b1) << 7), 2),
        _ => read_u32(buf, what)?,
    };
    Ok((((raw >> 1) as i32) ^ -((raw & 1) as i32), used))
}

/// Reads a zigzag-encoded 64-bit varlong.
#[inline(always)]
pub fn read_i64(buf: &[u8], what: &'static str) -> Result<(i64, usize)> {
    let (raw, used) = match buf {
        [b0, ..] if b0 & 0x80 == 0 => (u64::from(*b0), 1),
        [b0, b1, ..] if b1 & 0x80 == 0 => (u64::from(b0 & 0x7f) | (u64::from(*b1) << 7), 2),
        _ => read_u64(buf, what)?,
    };
    Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), used))
}

/// Writes an unsigned varint.
#[inline]
pub fn put_u32(buf: &mut impl BufMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Writes an unsigned 64-bit varint.
#[inline]
pub fn put_u64(buf: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Writes a zigzag-encoded 32-bit varint.
#[inline]
pub fn put_i32(buf: &mut impl BufMut, value: i32) {
    put_u32(buf, ((value << 1) ^ (value >> 31)) as u32);
}

/// Writes a zigzag-encoded 64-bit varlong.
#[inline]
pub fn put_i64(buf: &mut impl BufMut, value: i64) {
    put_u64(buf, ((value << 1) ^ (value >> 63)) as u64);
}

/// The number of bytes [`put_u32`] writes for `value`.
#[inline]
pub fn len_u32(value: u32) -> usize {
    VARINT_LEN[(value | 1).leading_zeros() as usize + 32] as usize
}

/// Bytes of a varint, indexed by the leading zeros of its (64-bit) value.
const VARINT_LEN: [u8; 65] = {
    let mut t = [0u8; 65];
    let mut lz = 0;
    while lz <= 64 {
        let bits = if lz == 64 { 1 } else { 64 - lz };
        t[lz] = bits.div_ceil(7) as u8;
        lz += 1;
    }
    t
};

/// The number of bytes [`put_i32`] writes for `value`.
#[inline]
pub fn len_i32(value: i32) -> usize {
    len_u32(((value << 1) ^ (value >> 31)) as u32)
}

/// The number of bytes [`put_i64`] writes for `value`.
#[inline]
pub fn len_i64(value: i64) -> usize {
    let v = ((value << 1) ^ (value >> 63)) as u64;
    VARINT_LEN[(v | 1).leading_zeros() as usize] as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_matches_the_protocol_guide() {
        // 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, 2147483647 -> 4294967294, -2147483648 -> 4294967295
        for (v, zz) in [
            (0i32, 0u32),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (i32::MAX, u32::MAX - 1),
            (i32::MIN, u32::MAX),
        ] {
            let mut a = Vec::new();
            put_i32(&mut a, v);
            let mut b = Vec::new();
            put_u32(&mut b, zz);
            assert_eq!(a, b, "value {v}");
            assert_eq!(read_i32(&a, "t").unwrap(), (v, a.len()));
            assert_eq!(len_i32(v), a.len());
        }
    }

    #[test]
    fn round_trips_extremes() {
        for v in [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 1 << 40] {
            let mut a = Vec::new();
            put_i64(&mut a, v);
            assert_eq!(read_i64(&a, "t").unwrap(), (v, a.len()));
            assert_eq!(len_i64(v), a.len());
        }
        for v in [0u32, 127, 128, 16383, 16384, u32::MAX] {
            let mut a = Vec::new();
            put_u32(&mut a, v);
            assert_eq!(read_u32(&a, "t").unwrap(), (v, a.len()));
            assert_eq!(len_u32(v), a.len());
        }
    }

    #[test]
    fn rejects_overlong_and_truncated() {
        assert!(matches!(
            read_u32(&[0xff, 0xff, 0xff, 0xff, 0x7f], "t"),
            Err(ProtocolError::VarintOverflow { .. })
        ));
        assert!(matches!(
            read_u32(&[0x80, 0x80], "t"),
            Err(ProtocolError::Truncated { .. })
        ));
        assert!(matches!(
            read_u64(&[0xff; 11], "t"),
            Err(ProtocolError::VarintOverflow { .. })
        ));
    }
}
