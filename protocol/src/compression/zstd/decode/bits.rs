//! Reading a bit stream backwards, as zstd writes its Huffman and FSE streams: the writer ends
//! the stream with a 1 bit above its last value, and the reader starts just below that mark and
//! reads towards the stream's first byte.
//!
//! Reading past the start yields zero bits and leaves [`BackBits::left`] negative, so that the
//! callers can check how a stream ended (zstd's own decoders end some loops that way) without a
//! branch per read.

/// A backward bit reader over one stream.
pub(super) struct BackBits<'a> {
    data: &'a [u8],
    /// Bits not read yet; negative once reading went past the start.
    left: isize,
    /// 64 bits of `data`, from bit `base` up.
    container: u64,
    base: isize,
}

impl<'a> BackBits<'a> {
    /// A reader over `data`, starting below the end mark in its last byte.
    pub(super) fn new(data: &'a [u8]) -> Result<Self, &'static str> {
        let last = *data.last().ok_or("an empty bit stream")?;
        if last == 0 {
            return Err("a bit stream without its end mark");
        }
        let left = (data.len() as isize - 1) * 8 + (7 - last.leading_zeros() as isize);
        let mut bits = BackBits {
            data,
            left,
            container: 0,
            base: 0,
        };
        bits.refill();
        Ok(bits)
    }

    /// Bits not read yet (negative: read past the start).
    #[inline(always)]
    pub(super) fn left(&self) -> isize {
        self.left
    }

    /// Loads the 8 bytes that end with the byte holding bit `left`, so that 56 to 63 bits below
    /// `left` are in the container (all of them near the start), never 64: a shift by the
    /// container's width would overflow.
    #[inline(always)]
    pub(super) fn refill(&mut self) {
        let top = (self.left.max(0) / 8 + 1) as usize;
        let start = top.saturating_sub(8);
        self.container = match self.data.get(start..).and_then(<[u8]>::first_chunk::<8>) {
            Some(chunk) => u64::from_le_bytes(*chunk),
            None => {
                let mut buf = [0u8; 8];
                let end = self.data.len().min(start + 8);
                buf[..end - start].copy_from_slice(&self.data[start..end]);
                u64::from_le_bytes(buf)
            }
        };
        self.base = start as isize * 8;
    }

    /// The next `n` bits (at most 56), most significant first.
    #[inline(always)]
    pub(super) fn read(&mut self, n: u32) -> u64 {
        let value = self.peek(n);
        self.left -= n as isize;
        value
    }

    /// The next `n` bits (at most 56) without consuming them; zeros stand in for bits past the
    /// start.
    #[inline(always)]
    pub(super) fn peek(&mut self, n: u32) -> u64 {
        let low = self.left - n as isize;
        if low < self.base {
            if low < 0 {
                return self.peek_past_start(n);
            }
            self.refill();
        }
        (self.container >> (low - self.base)) & ((1u64 << n) - 1)
    }

    /// The next `n` bits without checking that they are loaded: the caller has
    /// [`refill`](Self::refill)ed and read at most 56 bits since. Past the start it gives zeros
    /// (the stream is corrupt then, and `left` says so).
    #[inline(always)]
    pub(super) fn read_fast(&mut self, n: u32) -> u64 {
        self.left -= n as isize;
        let shift = self.left - self.base;
        if shift < 0 {
            return 0;
        }
        (self.container >> shift) & ((1u64 << n) - 1)
    }

    /// The next `n` bits without consuming them, under [`read_fast`](Self::read_fast)'s rule,
    /// and with at least `n` bits left.
    #[inline(always)]
    pub(super) fn peek_fast(&self, n: u32) -> u64 {
        let shift = self.left - n as isize - self.base;
        if shift < 0 {
            return 0;
        }
        (self.container >> shift) & ((1u64 << n) - 1)
    }

    /// Consumes `n` bits after a [`peek`](Self::peek).
    #[inline(always)]
    pub(super) fn consume(&mut self, n: u32) {
        self.left -= n as isize;
    }

    #[cold]
    fn peek_past_start(&mut self, n: u32) -> u64 {
        if self.left <= 0 {
            return 0;
        }
        if self.base != 0 {
            self.refill();
        }
        let have = self.left as u32;
        (self.container & ((1u64 << have) - 1)) << (n - have)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_from_the_end_mark_down_and_pads_past_the_start_with_zeros() {
        // Bits, first byte low to last byte high: 0b1_0110 in the last byte is the mark and 0110.
        let data = [0b1010_0101u8, 0xFF, 0b0001_0110];
        let mut bits = BackBits::new(&data).unwrap();
        assert_eq!(bits.left(), 20);
        assert_eq!(bits.read(4), 0b0110);
        assert_eq!(bits.read(8), 0xFF);
        assert_eq!(bits.peek(3), 0b101);
        assert_eq!(bits.read(5), 0b10100);
        assert_eq!(bits.read(0), 0);
        assert_eq!(bits.read(5), 0b10100, "three real bits, then two zeros");
        assert_eq!(bits.left(), -2);
        assert_eq!(bits.read(7), 0);
    }

    #[test]
    fn long_streams_refill_as_they_go() {
        // 100 bytes counting up, then a mark byte: read back 8 bits at a time, in reverse.
        let mut data: Vec<u8> = (0..100u8).collect();
        data.push(1);
        let mut bits = BackBits::new(&data).unwrap();
        for expected in (0..100u8).rev() {
            assert_eq!(bits.read(8), u64::from(expected));
        }
        assert_eq!(bits.left(), 0);
        let mut bits = BackBits::new(&data).unwrap();
        let mut wide = Vec::new();
        while bits.left() >= 40 {
            wide.push(bits.read(40));
        }
        assert_eq!(wide[0] >> 32, 99);
        assert_eq!(wide[0] & 0xFF, 95);
    }

    #[test]
    fn streams_without_an_end_mark_are_refused() {
        assert!(BackBits::new(&[]).is_err());
        assert!(BackBits::new(&[7, 0]).is_err());
    }
}
