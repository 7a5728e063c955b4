//! Exponential backoff with jitter, as a plain value: the caller asks for the next delay and sleeps
//! it; nothing here reads a clock.

use std::time::Duration;

/// Exponential backoff: `base * 2^n`, capped at `max`, each delay scaled by a random factor in
/// `[1 - jitter, 1 + jitter]` so that many clients do not retry in lockstep (librdkafka and the Java
/// client use 20%).
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    jitter: f64,
    failures: u32,
    rng: u64,
}

impl Backoff {
    /// A backoff from `base` up to `max` with ±20% jitter.
    pub fn new(base: Duration, max: Duration) -> Self {
        // Seed from the address of a stack value and the time: enough to spread clients apart.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (&base as *const Duration as u64).rotate_left(17);
        Self::with_seed(base, max, 0.2, seed)
    }

    /// A backoff with a chosen jitter fraction and random seed (for deterministic tests).
    pub fn with_seed(base: Duration, max: Duration, jitter: f64, seed: u64) -> Self {
        Backoff {
            base,
            max: max.max(base),
            jitter: jitter.clamp(0.0, 1.0),
            failures: 0,
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.failures.min(31);
        self.failures = self.failures.saturating_add(1);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max);
        // xorshift64*: a small, fast generator; this needs spread, not secrecy.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        let factor = 1.0 - self.jitter + 2.0 * self.jitter * r;
        raw.mul_f64(factor).min(self.max)
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets past failures after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let mut b = Backoff::with_seed(Duration::from_millis(100), Duration::from_secs(1), 0.0, 7);
        let delays: Vec<_> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let mut b = Backoff::with_seed(
                Duration::from_millis(1000),
                Duration::from_secs(10),
                0.2,
                seed,
            );
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(800) && d <= Duration::from_millis(1200),
                "{d:?}"
            );
            seen.insert(d.as_millis());
        }
        assert!(
            seen.len() > 50,
            "jitter barely varies: {} distinct delays",
            seen.len()
        );
    }
}
