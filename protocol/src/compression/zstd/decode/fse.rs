//! Finite State Entropy decoding: reading a table's compact description (the normalised count
//! of every symbol) and building the decoding table from it, state by state exactly as the
//! encoder numbered them.

/// One state of a decoding table: the symbol it decodes to, and how to reach the next state
/// (`base` plus the next `bits` bits of the stream).
#[derive(Clone, Copy, Default, Debug)]
pub(super) struct Entry {
    pub(super) symbol: u8,
    pub(super) bits: u8,
    pub(super) base: u16,
}

/// Reads a table description from the start of `data`: the normalised counts of symbols
/// `0..=max_symbol` (-1: "less than one"), the accuracy log, and the bytes it took.
pub(super) fn read_description(
    data: &[u8],
    max_symbol: usize,
    max_log: u32,
) -> Result<(Vec<i16>, u32, usize), &'static str> {
    let bits_at = |pos: usize, n: u32| -> u32 {
        // Little-endian from bit `pos`, zeros past the end (checked once at the end).
        let byte = pos / 8;
        let mut word = [0u8; 4];
        for (i, w) in word.iter_mut().enumerate() {
            *w = data.get(byte + i).copied().unwrap_or(0);
        }
        (u32::from_le_bytes(word) >> (pos % 8)) & ((1u32 << n) - 1)
    };
    let log = bits_at(0, 4) + 5;
    if log > max_log {
        return Err("an FSE table with too high an accuracy log");
    }
    let mut pos = 4usize;
    let mut remaining: i32 = (1 << log) + 1;
    let mut threshold: i32 = 1 << log;
    let mut nb_bits = log + 1;
    let mut norm: Vec<i16> = Vec::with_capacity(max_symbol + 1);
    while remaining > 1 {
        if norm.len() > max_symbol {
            return Err("an FSE table with too many symbols");
        }
        let max = (2 * threshold - 1) - remaining;
        let v = bits_at(pos, nb_bits) as i32;
        let value = if (v & (threshold - 1)) < max {
            pos += nb_bits as usize - 1;
            v & (threshold - 1)
        } else {
            pos += nb_bits as usize;
            let v = v & (2 * threshold - 1);
            if v >= threshold {
                v - max
            } else {
                v
            }
        };
        let count = value - 1;
        remaining -= count.abs();
        norm.push(count as i16);
        if count == 0 {
            loop {
                let repeat = bits_at(pos, 2) as usize;
                pos += 2;
                if norm.len() + repeat > max_symbol + 1 {
                    return Err("an FSE table with too many symbols");
                }
                norm.resize(norm.len() + repeat, 0);
                if repeat != 3 {
                    break;
                }
            }
        }
        while remaining < threshold && threshold > 1 {
            nb_bits -= 1;
            threshold >>= 1;
        }
    }
    let used = pos.div_ceil(8);
    if remaining != 1 || used > data.len() {
        return Err("a corrupt FSE table description");
    }
    Ok((norm, log, used))
}

/// The decoding table for `norm` at accuracy `log`: `1 << log` states.
pub(super) fn build(norm: &[i16], log: u32) -> Result<Vec<Entry>, &'static str> {
    let size = 1usize << log;
    let mask = size - 1;
    let mut table = vec![Entry::default(); size];
    let mut next = vec![0u32; norm.len()];
    let mut high = size as isize - 1;
    for (s, &n) in norm.iter().enumerate() {
        if n == -1 {
            if high < 0 {
                return Err("a corrupt FSE table");
            }
            table[high as usize].symbol = s as u8;
            high -= 1;
            next[s] = 1;
        } else {
            next[s] = n.max(0) as u32;
        }
    }
    let step = (size >> 1) + (size >> 3) + 3;
    let mut pos = 0usize;
    for (s, &n) in norm.iter().enumerate() {
        for _ in 0..n.max(0) {
            table[pos].symbol = s as u8;
            pos = (pos + step) & mask;
            while pos as isize > high {
                pos = (pos + step) & mask;
            }
        }
    }
    if pos != 0 {
        return Err("a corrupt FSE table");
    }
    for entry in table.iter_mut() {
        let slot = &mut next[entry.symbol as usize];
        let state = *slot;
        *slot += 1;
        let bits = log - state.ilog2();
        entry.bits = bits as u8;
        entry.base = ((state << bits) as usize - size) as u16;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_predefined_literal_length_table_reads_back_from_its_description() {
        // Every state of a table decodes to a symbol and moves to a state inside the table.
        let norm = crate::compression::zstd::tables::LL_DEFAULT;
        let table = build(&norm, 6).unwrap();
        for e in &table {
            let top = usize::from(e.base) + (1usize << e.bits) - 1;
            assert!(top < 64, "{e:?}");
        }
        // Symbol 0 has 4 states: they cover the table's 64 states' worth of ranges once.
        let states: usize = table
            .iter()
            .filter(|e| e.symbol == 0)
            .map(|e| 1usize << e.bits)
            .sum();
        assert_eq!(states, 64);
    }

    #[test]
    fn descriptions_that_do_not_add_up_are_refused() {
        // Accuracy log 5 (nibble 0), then only zero-count symbols until the bytes run out.
        assert!(read_description(&[0x00, 0x00, 0x00], 35, 9).is_err());
        // An accuracy log above the limit.
        assert!(read_description(&[0x0F, 0xFF, 0xFF], 35, 9).is_err());
        assert!(read_description(&[], 35, 9).is_err());
    }
}
