//! Finite State Entropy (tANS) encoding: normalising symbol counts to a table, describing the
//! table in the format's compact form, and encoding symbols with it.
//!
//! A table of `1 << log` states spreads every symbol over as many states as its normalised count
//! (a count of -1 means "less than one": one state, placed at the top of the table). The encoder
//! walks the symbols in reverse; each step writes the low bits of its current state and moves to a
//! state that decodes to the symbol. The spreading and state numbering here must be exactly the
//! decoder's, since the decoder rebuilds the table from the description alone.

use super::bits::BitWriter;

/// How a symbol maps onto the encoding table.
#[derive(Clone, Copy, Default)]
struct Transform {
    /// `(most bits out << 16) - smallest state that writes that many`: adding a state and
    /// shifting by 16 gives the number of bits that state writes.
    delta_bits: u32,
    /// Where the symbol's states start in `states`, offset by its count.
    delta_state: i32,
}

/// An encoding table built from normalised counts.
pub(super) struct Table {
    log: u32,
    /// The next state for each (symbol, sub-range) pair, sorted by symbol.
    states: Vec<u16>,
    transforms: Vec<Transform>,
}

impl Table {
    /// Builds the table for `norm` (counts summing to `1 << log`, -1 for a low-probability
    /// symbol). `norm` must hold at least two symbols with a non-zero count.
    pub(super) fn new(norm: &[i16], log: u32) -> Table {
        let size = 1usize << log;
        let mask = size - 1;
        let mut symbol_at = vec![0u8; size];
        let mut high = size - 1;
        let mut cumul = vec![0u32; norm.len() + 1];
        for (s, &n) in norm.iter().enumerate() {
            if n == -1 {
                cumul[s + 1] = cumul[s] + 1;
                symbol_at[high] = s as u8;
                high -= 1;
            } else {
                cumul[s + 1] = cumul[s] + n.max(0) as u32;
            }
        }
        let step = (size >> 1) + (size >> 3) + 3;
        let mut pos = 0usize;
        for (s, &n) in norm.iter().enumerate() {
            for _ in 0..n.max(0) {
                symbol_at[pos] = s as u8;
                pos = (pos + step) & mask;
                while pos > high {
                    pos = (pos + step) & mask;
                }
            }
        }
        debug_assert_eq!(pos, 0, "counts do not fill the table");

        let mut states = vec![0u16; size];
        let mut next = cumul.clone();
        for (u, &s) in symbol_at.iter().enumerate() {
            let slot = &mut next[s as usize];
            states[*slot as usize] = (size + u) as u16;
            *slot += 1;
        }

        let mut transforms = vec![Transform::default(); norm.len()];
        let mut total: i32 = 0;
        for (s, &n) in norm.iter().enumerate() {
            transforms[s] = match n {
                0 => Transform {
                    delta_bits: ((log + 1) << 16).wrapping_sub(size as u32),
                    delta_state: 0,
                },
                -1 | 1 => {
                    let t = Transform {
                        delta_bits: (log << 16) - size as u32,
                        delta_state: total - 1,
                    };
                    total += 1;
                    t
                }
                n => {
                    let n = n as u32;
                    let max_bits_out = log - (n - 1).ilog2();
                    let min_state_plus = n << max_bits_out;
                    let t = Transform {
                        delta_bits: (max_bits_out << 16).wrapping_sub(min_state_plus),
                        delta_state: total - n as i32,
                    };
                    total += n as i32;
                    t
                }
            };
        }
        Table {
            log,
            states,
            transforms,
        }
    }

    /// The table of a block whose symbols are all `symbol`: one state, no bits written.
    pub(super) fn rle(symbol: u8) -> Table {
        let mut transforms = vec![Transform::default(); usize::from(symbol) + 1];
        transforms[usize::from(symbol)] = Transform {
            delta_bits: 0,
            delta_state: 0,
        };
        Table {
            log: 0,
            states: vec![1, 1],
            transforms,
        }
    }

    /// How many symbols the table was built for.
    pub(super) fn symbols(&self) -> usize {
        self.transforms.len()
    }

    /// A state that decodes to `symbol`, chosen (as the reference encoder does) so that the
    /// decoder reads at least one bit when it leaves it: the stream's end is found that way.
    #[inline]
    pub(super) fn start(&self, symbol: u8) -> u32 {
        let t = self.transforms[symbol as usize];
        let bits = (t.delta_bits + (1 << 15)) >> 16;
        let value = (bits << 16).wrapping_sub(t.delta_bits);
        self.states[((value >> bits) as i32 + t.delta_state) as usize] as u32
    }

    /// Writes the bits that lead from `state` back to a state decoding `symbol` (at most the
    /// table's log; pushed, not flushed).
    #[inline(always)]
    pub(super) fn encode(&self, w: &mut BitWriter, state: &mut u32, symbol: u8) {
        let t = self.transforms[symbol as usize];
        let bits = state.wrapping_add(t.delta_bits) >> 16;
        w.push(*state as u64, bits);
        *state = self.states[((*state >> bits) as i32 + t.delta_state) as usize] as u32;
    }

    /// Writes the final state, which the decoder reads first (pushed, not flushed).
    #[inline]
    pub(super) fn finish(&self, w: &mut BitWriter, state: u32) {
        w.push(state as u64, self.log);
    }
}

/// Scales `counts` (over `total` symbols) to sum to `1 << log`, every present symbol keeping at
/// least one state. Needs at least two present symbols and `1 << log` ≥ twice their number.
pub(super) fn normalize(counts: &[u32], total: u32, log: u32) -> Vec<i16> {
    let scale = 1u64 << log;
    let total = u64::from(total.max(1));
    let mut norm: Vec<i16> = counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0
            } else {
                ((u64::from(c) * scale + total / 2) / total).max(1) as i16
            }
        })
        .collect();
    let sum: i64 = norm.iter().map(|&n| i64::from(n)).sum();
    let mut excess = sum - scale as i64;
    let largest = (0..counts.len()).max_by_key(|&s| counts[s]).unwrap_or(0);
    if excess < 0 {
        norm[largest] += (-excess) as i16;
    }
    while excess > 0 {
        // Take from the symbols with the most states, one at a time: rounding leaves at most
        // one state per symbol too many.
        let s = (0..norm.len()).max_by_key(|&s| norm[s]).unwrap_or(0);
        if norm[s] <= 1 {
            break;
        }
        norm[s] -= 1;
        excess -= 1;
    }
    debug_assert_eq!(
        norm.iter().map(|&n| i64::from(n)).sum::<i64>(),
        scale as i64,
        "normalised counts must fill the table"
    );
    norm
}

/// The smallest accuracy log (within `min..=max`) worth using for `count` symbols of which
/// `distinct` are different.
pub(super) fn table_log(count: usize, distinct: usize, min: u32, max: u32) -> u32 {
    let for_count = (count.max(2) as u32).ilog2();
    let for_distinct = (distinct.max(2) as u32 - 1).ilog2() + 2;
    for_count.max(for_distinct).clamp(min, max)
}

/// Writes the table description of `norm` (the format's "FSE table description"): the accuracy
/// log, then every count in a variable number of bits, zero runs as 2-bit repeat flags.
pub(super) fn describe(norm: &[i16], log: u32) -> Vec<u8> {
    let mut w = BitWriter::with_capacity(norm.len());
    w.add(u64::from(log - 5), 4);
    let mut remaining: i32 = (1 << log) + 1;
    let mut threshold: i32 = 1 << log;
    let mut bits = log + 1;
    let mut symbol = 0usize;
    let mut previous_zero = false;
    while remaining > 1 && symbol < norm.len() {
        if previous_zero {
            let start = symbol;
            while symbol < norm.len() && norm[symbol] == 0 {
                symbol += 1;
            }
            let mut run = symbol - start;
            while run >= 3 {
                w.add(3, 2);
                run -= 3;
            }
            w.add(run as u64, 2);
            if symbol == norm.len() {
                break;
            }
        }
        let count = i32::from(norm[symbol]);
        symbol += 1;
        let max = (2 * threshold - 1) - remaining;
        remaining -= count.abs();
        let mut value = count + 1;
        if value >= threshold {
            value += max;
        }
        w.add(value as u64, if value < max { bits - 1 } else { bits });
        previous_zero = count == 0;
        while remaining < threshold {
            bits -= 1;
            threshold >>= 1;
        }
    }
    debug_assert_eq!(remaining, 1, "counts do not sum to the table size");
    w.finish_forward()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_counts_fill_the_table_and_keep_every_symbol() {
        let counts = [1000, 1, 0, 3, 50, 0, 0, 1];
        for log in 5..=9 {
            let norm = normalize(&counts, counts.iter().sum(), log);
            assert_eq!(norm.iter().map(|&n| i32::from(n)).sum::<i32>(), 1 << log);
            for (c, n) in counts.iter().zip(&norm) {
                assert_eq!(*c == 0, *n == 0);
                assert!(*n >= 0);
            }
        }
    }

    #[test]
    fn every_state_is_reached_and_a_start_is_a_symbols_first_state() {
        let norm = normalize(&[10, 20, 30, 1, 0, 2], 63, 6);
        let table = Table::new(&norm, 6);
        let mut seen: Vec<u16> = table.states.clone();
        seen.sort_unstable();
        assert_eq!(seen, (64u16..128).collect::<Vec<_>>());
        // The decoder reads `log - highbit(count)` bits leaving a symbol's first state (at least
        // one for any count below the table size): the start must be that state.
        let mut first = 0usize;
        for (s, &n) in norm.iter().enumerate() {
            let n = n.max(0) as usize;
            if n > 0 {
                let lowest = *table.states[first..first + n].iter().min().unwrap();
                assert_eq!(table.start(s as u8), u32::from(lowest), "symbol {s}");
            }
            first += n;
        }
    }
}
