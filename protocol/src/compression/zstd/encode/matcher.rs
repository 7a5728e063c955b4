//! The match finder: a single hash table of recent positions (the reference's "fast" strategy),
//! greedy, with a check of the most recent offset first. It splits a block into literals and
//! sequences.

use super::sequences::Sequence;

/// Bytes hashed per position.
const HASH_BYTES: u32 = 5;
const MIN_MATCH: usize = 4;

pub(super) struct Matcher {
    table: Vec<u32>,
    shift: u32,
    /// The three most recent offsets, as the decoder tracks them (it starts from 1, 4, 8).
    pub(super) recent: [u32; 3],
    /// The longest offset the frame's window allows.
    window: usize,
}

#[inline(always)]
fn read_u32(src: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(src[at..at + 4].try_into().expect("four bytes"))
}

#[inline(always)]
fn read_u64(src: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(src[at..at + 8].try_into().expect("eight bytes"))
}

/// How many bytes from `a` equal those from `b` (`a` < `b`), not reading at or past `end`.
#[inline(always)]
fn common_length(src: &[u8], a: usize, b: usize, end: usize) -> usize {
    let mut n = 0;
    while b + n + 8 <= end {
        let x = read_u64(src, a + n) ^ read_u64(src, b + n);
        if x != 0 {
            return n + (x.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while b + n < end && src[a + n] == src[b + n] {
        n += 1;
    }
    n
}

impl Matcher {
    /// A matcher for an input of `len` bytes whose frame window is `window` bytes.
    pub(super) fn new(len: usize, window: usize) -> Matcher {
        let log = (len.max(1 << 10) as u64)
            .next_power_of_two()
            .ilog2()
            .clamp(10, 16);
        Matcher {
            table: vec![0; 1 << log],
            shift: 64 - log,
            recent: [1, 4, 8],
            window,
        }
    }

    #[inline(always)]
    fn slot(&self, word: u64) -> usize {
        ((word << (64 - 8 * HASH_BYTES)).wrapping_mul(0x9E37_79B1_85EB_CA87) >> self.shift) as usize
    }

    /// Splits `src[start..end]` into `lits` and `seqs`; earlier bytes of `src` may be matched.
    pub(super) fn block(
        &mut self,
        src: &[u8],
        start: usize,
        end: usize,
        lits: &mut Vec<u8>,
        seqs: &mut Vec<Sequence>,
    ) {
        let mut anchor = start;
        let mut ip = start.max(1);
        // Hashing reads eight bytes at `ip + 1`.
        let limit = end.saturating_sub(9);
        while ip < limit {
            let word = read_u64(src, ip);
            let slot = self.slot(word);
            let candidate = self.table[slot] as usize;
            self.table[slot] = ip as u32;

            // The most recent offset, one byte ahead (literals before it are never empty).
            let rep = self.recent[0] as usize;
            let next = ip + 1;
            if rep <= next && read_u32(src, next - rep) == (word >> 8) as u32 {
                let length =
                    MIN_MATCH + common_length(src, next - rep + MIN_MATCH, next + MIN_MATCH, end);
                lits.extend_from_slice(&src[anchor..next]);
                seqs.push(Sequence {
                    literals: (next - anchor) as u32,
                    length: length as u32,
                    offset_value: 1,
                });
                ip = next + length;
                anchor = ip;
                self.remember(src, ip, limit);
                continue;
            }

            if candidate < ip
                && ip - candidate <= self.window
                && read_u32(src, candidate) == word as u32
            {
                let (mut at, mut from) = (ip, candidate);
                let mut length =
                    MIN_MATCH + common_length(src, from + MIN_MATCH, at + MIN_MATCH, end);
                while at > anchor && from > 0 && src[at - 1] == src[from - 1] {
                    at -= 1;
                    from -= 1;
                    length += 1;
                }
                let offset = (at - from) as u32;
                lits.extend_from_slice(&src[anchor..at]);
                seqs.push(Sequence {
                    literals: (at - anchor) as u32,
                    length: length as u32,
                    offset_value: offset + 3,
                });
                self.recent = [offset, self.recent[0], self.recent[1]];
                ip = at + length;
                anchor = ip;
                self.remember(src, ip, limit);
                continue;
            }
            // No match: step further the longer nothing has matched.
            ip += 1 + ((ip - anchor) >> 6);
        }
        lits.extend_from_slice(&src[anchor..end]);
    }

    /// After a match, records the positions just before its end, so that the next one can
    /// start from the bytes it covered.
    #[inline(always)]
    fn remember(&mut self, src: &[u8], ip: usize, limit: usize) {
        for at in [ip.wrapping_sub(2), ip.wrapping_sub(1)] {
            if at < limit {
                let slot = self.slot(read_u64(src, at));
                self.table[slot] = at as u32;
            }
        }
    }
}
