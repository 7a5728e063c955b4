//! How much a topic's batches shrink when compressed, learnt from the batches compressed so far,
//! so that `batch.size` bounds what a batch weighs on the wire rather than its records before
//! compression — as the Java client does (its compression ratio estimator). With gzip, a 16 KiB
//! batch of JSON events then carries four to six times the records, and a request as many more.
//!
//! The estimate starts at 1 (no gain, the uncompressed size), falls halfway towards each better
//! ratio observed, and rises at once to a worse one: a batch that compresses less than expected
//! may exceed `batch.size` by a little, never by much, and the uncompressed size stays below
//! `max.request.size` whatever the estimate, so a batch is never too large to send.

/// Compressed bytes per uncompressed byte for one topic's batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CompressionRatio(f64);

/// Room left for a batch compressing a little worse than estimated.
const MARGIN: f64 = 1.05;

/// The best ratio believed: data never observed to shrink more than this is not packed tighter.
const LEAST: f64 = 0.02;

impl Default for CompressionRatio {
    fn default() -> Self {
        CompressionRatio(1.0)
    }
}

impl CompressionRatio {
    /// A batch of `uncompressed` bytes was compressed to `compressed`.
    pub fn observe(&mut self, uncompressed: usize, compressed: usize) {
        if uncompressed == 0 {
            return;
        }
        let observed = (compressed as f64 / uncompressed as f64).clamp(LEAST, 1.0);
        self.0 = if observed >= self.0 {
            observed
        } else {
            (self.0 + observed) / 2.0
        };
    }

    /// The bytes a batch of `uncompressed` bytes is expected to weigh once compressed (its own
    /// size while nothing was seen to shrink).
    pub fn compressed(self, uncompressed: usize) -> usize {
        let expected = (uncompressed as f64 * self.0 * MARGIN).ceil() as usize;
        expected.min(uncompressed)
    }

    /// The uncompressed bytes expected to compress to `compressed` (what a new batch reserves).
    pub fn uncompressed(self, compressed: usize) -> usize {
        let expected = (compressed as f64 / (self.0 * MARGIN)) as usize;
        expected.max(compressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_starts_at_no_gain_falls_halfway_and_rises_at_once() {
        let mut r = CompressionRatio::default();
        assert_eq!(r.compressed(1000), 1000, "unknown: the uncompressed size");
        assert_eq!(r.uncompressed(1000), 1000);
        r.observe(1000, 200);
        assert_eq!(r.0, 0.6);
        r.observe(1000, 200);
        assert_eq!(r.0, 0.4);
        for _ in 0..20 {
            r.observe(1000, 200);
        }
        assert!((r.0 - 0.2).abs() < 1e-4, "converges on the ratio seen");
        assert_eq!(r.compressed(16_000), 3_361);
        r.observe(1000, 900);
        assert_eq!(r.0, 0.9, "worse data counts at once");
        r.observe(1000, 5000);
        assert_eq!(
            r.0, 1.0,
            "never above 1: an expanding codec is counted as none"
        );
        r.observe(0, 10);
        assert_eq!(r.0, 1.0, "an empty batch says nothing");
    }

    #[test]
    fn data_that_seems_to_vanish_is_not_packed_without_bound() {
        let mut r = CompressionRatio::default();
        for _ in 0..50 {
            r.observe(1_000_000, 1);
        }
        assert!((r.0 - LEAST).abs() < 1e-9, "{}", r.0);
        assert!((780_000..=780_200).contains(&r.uncompressed(16_384)));
    }
}
