//! The bit writers of the format: values are packed low bit first into little-endian bytes.
//! Entropy-coded streams are read back by the decoder from their last byte towards their first,
//! so what is written last is read first, and a closing 1 bit marks where the stream ends.

/// Packs values low bit first; each `add` takes at most 32 bits.
pub(super) struct BitWriter {
    buf: Vec<u8>,
    acc: u64,
    len: u32,
}

impl BitWriter {
    pub(super) fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            buf: Vec::with_capacity(bytes + 8),
            acc: 0,
            len: 0,
        }
    }

    /// Appends the low `bits` bits of `value` (`bits` ≤ 32).
    #[inline(always)]
    pub(super) fn add(&mut self, value: u64, bits: u32) {
        debug_assert!(bits <= 32);
        let mask = (1u64 << bits) - 1;
        self.acc |= (value & mask) << self.len;
        self.len += bits;
        if self.len >= 32 {
            self.buf.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.len -= 32;
        }
    }

    /// Ends a stream read forwards (a table description): pads the last byte with zeros.
    pub(super) fn finish_forward(self) -> Vec<u8> {
        let mut buf = self.buf;
        let tail = self.len.div_ceil(8) as usize;
        buf.extend_from_slice(&self.acc.to_le_bytes()[..tail]);
        buf
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
        let mut w = BitWriter::with_capacity(8);
        w.add(0b101, 3);
        w.add(0xFFFF_FFFF, 32);
        w.add(0, 2);
        let bytes = w.finish_backward();
        // 3 + 32 + 2 + 1 (mark) = 38 bits → 5 bytes; the mark is bit 37.
        assert_eq!(bytes.len(), 5);
        let all = u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], 0, 0, 0]);
        assert_eq!(all & 0b111, 0b101);
        assert_eq!((all >> 3) & 0xFFFF_FFFF, 0xFFFF_FFFF);
        assert_eq!((all >> 35) & 0b11, 0);
        assert_eq!(all >> 37, 1);
    }
}
