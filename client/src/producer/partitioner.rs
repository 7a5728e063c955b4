//! Which partition a record goes to.
//!
//! The default places keyed records the way the Java client does (murmur2 of the key bytes, masked
//! to 31 bits, modulo the number of ALL partitions), so kbus, Java, aiokafka and franz-go producers
//! agree on where a key lives. Keyless records stick to one partition until its batch is sent
//! (KIP-480), which makes fuller batches than spreading them record by record. librdkafka's default
//! placement (`consistent_random`: CRC-32 of the key) is available for topics shared with services
//! on librdkafka's defaults.

/// How keyed records are placed; keyless records always use the sticky placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partitioner {
    /// Java's default: `(murmur2(key) & 0x7fffffff) % partitions` (librdkafka's `murmur2_random`).
    #[default]
    Murmur2,
    /// librdkafka's default: `crc32(key) % partitions` (IEEE CRC-32); empty keys are placed like
    /// keyless records.
    ConsistentRandom,
}

impl Partitioner {
    /// The name used by `partitioner` settings (`murmur2_random`, `consistent_random`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "murmur2_random" | "murmur2" | "default" => Some(Partitioner::Murmur2),
            "consistent_random" | "consistent" => Some(Partitioner::ConsistentRandom),
            _ => None,
        }
    }

    /// The partition of a record with key `key` on a topic with `partitions` partitions, or `None`
    /// when the record has no key to place it by (it then goes to the sticky partition).
    pub fn partition_for_key(self, key: Option<&[u8]>, partitions: i32) -> Option<i32> {
        let key = key?;
        if partitions <= 0 {
            return None;
        }
        match self {
            Partitioner::Murmur2 => Some(murmur2_partition(key, partitions)),
            Partitioner::ConsistentRandom if key.is_empty() => None,
            Partitioner::ConsistentRandom => Some((crc32_ieee(key) % partitions as u32) as i32),
        }
    }
}

/// `(murmur2(key) & 0x7fffffff) % partitions`: the Java client's placement of a keyed record.
pub fn murmur2_partition(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as u32 % partitions as u32) as i32
}

/// murmur2 as the Java client computes it (seed 0x9747b28c), as a signed 32-bit value.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for b in &mut blocks {
        let mut k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        if tail.len() == 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The IEEE CRC-32 (as zlib computes it), table-driven.
pub fn crc32_ieee(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Picks the sticky partition for keyless records: one partition until its batch is sent, then
/// another, chosen at random among the partitions that have a leader when possible.
#[derive(Debug)]
pub(crate) struct StickyPartition {
    current: Option<i32>,
    rng: u64,
}

impl StickyPartition {
    pub(crate) fn new(seed: u64) -> Self {
        StickyPartition {
            current: None,
            rng: seed | 1,
        }
    }

    /// The partition keyless records go to now; `available` lists partitions with a leader
    /// (empty when unknown: then any of `partitions`).
    pub(crate) fn current(&mut self, partitions: i32, available: &[i32]) -> i32 {
        match self.current {
            Some(p) if p < partitions && (available.is_empty() || available.contains(&p)) => p,
            _ => self.next(partitions, available, None),
        }
    }

    /// Moves on after the batch of partition `done` was closed, avoiding `done` when another
    /// partition is available.
    pub(crate) fn batch_closed(&mut self, partitions: i32, available: &[i32], done: i32) {
        if self.current == Some(done) {
            self.next(partitions, available, Some(done));
        }
    }

    fn next(&mut self, partitions: i32, available: &[i32], avoid: Option<i32>) -> i32 {
        // xorshift64: placement only needs to be spread, not unpredictable.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let pick = |n: usize, r: u64| (r % n as u64) as usize;
        let p = if available.len() > 1 || (available.len() == 1 && avoid.is_none()) {
            let mut p = available[pick(available.len(), self.rng)];
            if Some(p) == avoid {
                p = available[(pick(available.len(), self.rng) + 1) % available.len()];
            }
            p
        } else if partitions > 0 {
            let n = partitions as usize;
            let mut p = pick(n, self.rng) as i32;
            if Some(p) == avoid && n > 1 {
                p = (p + 1) % partitions;
            }
            p
        } else {
            0
        };
        self.current = Some(p);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of the Java client's murmur2 (shared/reference/partitioner.md).
    #[test]
    fn murmur2_matches_the_java_client() {
        let vectors: [(&str, i32); 7] = [
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            ("abc", 479470107),
            ("", 275646681),
        ];
        for (key, expected) in vectors {
            assert_eq!(murmur2(key.as_bytes()), expected, "key {key:?}");
        }
    }

    #[test]
    fn keys_are_masked_not_abs() {
        // "foobar" on 12 partitions: masking gives 6; abs() would give 2.
        assert_eq!(murmur2_partition(b"foobar", 12), 6);
        assert_eq!(
            Partitioner::Murmur2.partition_for_key(Some(b"foobar"), 12),
            Some(6)
        );
    }

    #[test]
    fn empty_key_is_hashed_null_key_is_not() {
        let p = Partitioner::Murmur2;
        assert_eq!(
            p.partition_for_key(Some(b""), 7),
            Some((275646681 & 0x7fffffff) % 7)
        );
        assert_eq!(p.partition_for_key(None, 7), None);
        assert_eq!(
            Partitioner::ConsistentRandom.partition_for_key(Some(b""), 7),
            None
        );
    }

    #[test]
    fn crc32_is_the_ieee_checksum() {
        assert_eq!(crc32_ieee(b""), 0);
        assert_eq!(crc32_ieee(b"123456789"), 0xcbf4_3926);
        assert_eq!(
            Partitioner::ConsistentRandom.partition_for_key(Some(b"123456789"), 10),
            Some((0xcbf4_3926u32 % 10) as i32)
        );
    }

    #[test]
    fn sticky_partition_changes_only_when_its_batch_closes() {
        let mut s = StickyPartition::new(42);
        let first = s.current(6, &[0, 1, 2, 3, 4, 5]);
        for _ in 0..10 {
            assert_eq!(s.current(6, &[0, 1, 2, 3, 4, 5]), first);
        }
        s.batch_closed(6, &[0, 1, 2, 3, 4, 5], (first + 1) % 6);
        assert_eq!(s.current(6, &[0, 1, 2, 3, 4, 5]), first);
        s.batch_closed(6, &[0, 1, 2, 3, 4, 5], first);
        assert_ne!(s.current(6, &[0, 1, 2, 3, 4, 5]), first);
    }

    #[test]
    fn sticky_partition_spreads_and_prefers_available_ones() {
        let mut s = StickyPartition::new(7);
        let mut seen = [0u32; 6];
        for _ in 0..600 {
            let p = s.current(6, &[]);
            seen[p as usize] += 1;
            s.batch_closed(6, &[], p);
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        for _ in 0..50 {
            let p = s.current(6, &[2, 4]);
            assert!(p == 2 || p == 4, "{p}");
            s.batch_closed(6, &[2, 4], p);
        }
    }
}
