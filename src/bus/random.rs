//! Random bytes for event ids (UUID v4) and trace ids, from the operating system's generator,
//! fetched 4 KiB at a time per thread: one system call per 256 ids instead of one per id (the
//! publish and consume paths make one or two per event).

use std::cell::RefCell;

const POOL: usize = 4096;

thread_local! {
    static BYTES: RefCell<([u8; POOL], usize)> = const { RefCell::new(([0; POOL], POOL)) };
}

/// Fills `out` with random bytes.
pub(crate) fn fill(out: &mut [u8]) {
    BYTES.with(|cell| {
        let (pool, used) = &mut *cell.borrow_mut();
        let mut written = 0;
        while written < out.len() {
            if *used == POOL {
                // The operating system's generator; failing it is failing the machine.
                getrandom::getrandom(pool).expect("the operating system's random generator");
                *used = 0;
            }
            let n = (out.len() - written).min(POOL - *used);
            out[written..written + n].copy_from_slice(&pool[*used..*used + n]);
            // Bytes handed out are not kept.
            pool[*used..*used + n].fill(0);
            *used += n;
            written += n;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_different_bytes_across_refills() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let mut id = [0u8; 16];
            fill(&mut id);
            assert!(seen.insert(id), "a repeated id");
        }
        let mut big = vec![0u8; 10_000];
        fill(&mut big);
        assert!(big.iter().filter(|b| **b == 0).count() < 200);
    }
}
