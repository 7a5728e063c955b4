//! The bit writer of the format: values are packed low bit first into little-endian bytes.
//! Entropy-coded streams are read back by the decoder from their last byte towards their first,
//! so what is written last is read first, and a closing 1 bit marks where the stream ends.
//!
//! `push` only adds to a 64-bit register; `flush` moves its whole bytes out, without a branch
//! on how many there are. Callers push at most 56 bits between flushes.

/// Packs values low bit first.
pub(super) struct BitWriter {
    buf: Vec<u8>,
    acc: u64,
    len: u32,
}

impl BitWriter {
    pub(super) fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            buf: Vec::with_capacity(bytes + 16),
            acc: 0,
            len: 0,
        }
    }

    /// Adds the low `bits` bits of `value` (`bits` ≤ 32) to the register; the caller flushes
    /// before 56 bits have gathered.
    #[inline(always)]
    pub(super) fn push(&mut self, value: u64, bits: u32) {
        debug_assert!(bits <= 32 && self.len + bits <= 64);
        let mask = (1u64 << bits) - 1;
        self.acc |= (value & mask) << self.len;
        self.len += bits;
    }

    /// Moves the register's whole bytes to the output (it stores all eight and keeps those).
    #[inline(always)]
    pub(super) fn flush(&mut self) {
        let bytes = (self.len / 8) as usize;
        let keep = self.buf.len() + bytes;
        self.buf.extend_from_slice(&self.acc.to_le_bytes());
        self.buf.truncate(keep);
        // `len` < 64, so at most 7 bytes go and the shift stays below 64.
        self.acc >>= bytes * 8;
        self.len &= 7;
    }

    /// `push` and `flush`.
    #[inline(always)]
    pub(super) fn add(&mut self, value: u64, bits: u32) {
        self.push(value, bits);
        self.flush();
    }

    /// Ends a stream read forwards (a table description): pads the last byte with zeros.
    pub(super) fn finish_forward(mut self) -> Vec<u8> {
        self.flush();
        let tail = self.len.div_ceil(8) as usize;
        self.buf.extend_from_slice(&self.acc.to_le_bytes()[..tail]);
        self.buf
    }

    /// Ends a stream read backwards: the closing 1 bit, then zero padding to a whole byte.
    pub(super) fn finish_backward(mut self) -> Vec<u8> {
        self.add(1, 1);
        self.finish_forward()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_packed_low_bit_first_and_closed_by_a_one_bit() {
        let mut w = BitWriter::with_capacity(0);
        w.add(0b101, 3);
        w.push(0xFFFF_FFFF, 32);
        w.push(0, 2);
        w.flush();
        let bytes = w.finish_backward();
        // 3 + 32 + 2 + 1 (mark) = 38 bits → 5 bytes; the mark is bit 37.
        assert_eq!(bytes.len(), 5);
        let all = u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], 0, 0, 0]);
        assert_eq!(all & 0b111, 0b101);
        assert_eq!((all >> 3) & 0xFFFF_FFFF, 0xFFFF_FFFF);
        assert_eq!((all >> 35) & 0b11, 0);
        assert_eq!(all >> 37, 1);
    }

    #[test]
    fn the_buffer_grows_past_its_first_capacity() {
        let mut w = BitWriter::with_capacity(1);
        for i in 0..1000u64 {
            w.add(i, 10);
        }
        let bytes = w.finish_forward();
        assert_eq!(bytes.len(), 1250);
        assert_eq!(u16::from_le_bytes([bytes[1248], bytes[1249]]) >> 6, 999);
    }
}
