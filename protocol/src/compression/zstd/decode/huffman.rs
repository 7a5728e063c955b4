//! Huffman-coded literals: the tree description (weights, stored directly or FSE-coded), the
//! decoding table built from it, and the streams (one, or four with a jump table).

use super::bits::BackBits;
use super::fse;

/// The longest code the format allows.
const MAX_BITS: u32 = 11;

/// A decoding table: indexed by the next `bits` bits of a stream, each entry gives the symbol and
/// the length of its code.
pub(super) struct Table {
    bits: u32,
    /// `symbol | length << 8`.
    entries: Vec<u16>,
}

/// Reads a tree description from the start of `data`; returns the table and the bytes it took.
pub(super) fn read_table(data: &[u8]) -> Result<(Table, usize), &'static str> {
    let header = *data
        .first()
        .ok_or("a literals section without its Huffman tree")?;
    let mut weights: Vec<u8> = Vec::with_capacity(256);
    let used = if header >= 128 {
        let count = usize::from(header - 127);
        let bytes = count.div_ceil(2);
        let packed = data.get(1..1 + bytes).ok_or("a Huffman tree cut short")?;
        for i in 0..count {
            let byte = packed[i / 2];
            weights.push(if i % 2 == 0 { byte >> 4 } else { byte & 15 });
        }
        1 + bytes
    } else {
        let size = usize::from(header);
        let body = data.get(1..1 + size).ok_or("a Huffman tree cut short")?;
        fse_weights(body, &mut weights)?;
        1 + size
    };
    Ok((build(&mut weights)?, used))
}

/// Decodes FSE-coded weights: two interleaved states over one stream, until it runs out.
fn fse_weights(body: &[u8], weights: &mut Vec<u8>) -> Result<(), &'static str> {
    let (norm, log, used) = fse::read_description(body, 15, 6)?;
    let table = fse::build(&norm, log)?;
    let mut bits = BackBits::new(&body[used..])?;
    let mask = (1usize << log) - 1;
    let mut states = [bits.read(log) as usize, bits.read(log) as usize];
    let mut turn = 0;
    loop {
        let entry = table[states[turn] & mask];
        weights.push(entry.symbol);
        states[turn] = usize::from(entry.base) + bits.read(u32::from(entry.bits)) as usize;
        if bits.left() < 0 {
            // The last update ran past the start: the other state holds the final weight.
            weights.push(table[states[1 - turn] & mask].symbol);
            break;
        }
        if weights.len() > 255 {
            return Err("a Huffman tree with too many weights");
        }
        turn = 1 - turn;
    }
    if weights.len() > 255 {
        return Err("a Huffman tree with too many weights");
    }
    Ok(())
}

/// Completes `weights` with the implied last one and builds the table.
fn build(weights: &mut Vec<u8>) -> Result<Table, &'static str> {
    let mut total: u32 = 0;
    for &w in weights.iter() {
        if u32::from(w) > MAX_BITS {
            return Err("a Huffman weight above the limit");
        }
        if w > 0 {
            total += 1 << (w - 1);
        }
    }
    if total == 0 {
        return Err("a Huffman tree without symbols");
    }
    let bits = total.ilog2() + 1;
    if bits > MAX_BITS {
        return Err("a Huffman tree with codes too long");
    }
    let rest = (1u32 << bits) - total;
    if !rest.is_power_of_two() {
        return Err("a Huffman tree that is not complete");
    }
    weights.push((rest.ilog2() + 1) as u8);
    if weights.len() > 256 {
        return Err("a Huffman tree with too many weights");
    }
    // Codes of each weight start where the lighter weights' end: weight 1 (the longest codes)
    // at 0, in symbol order within a weight.
    let mut counts = [0u32; MAX_BITS as usize + 2];
    for &w in weights.iter() {
        counts[usize::from(w)] += 1;
    }
    let mut start = [0u32; MAX_BITS as usize + 2];
    let mut at = 0u32;
    for w in 1..=bits as usize {
        start[w] = at;
        at += counts[w] << (w - 1);
    }
    let mut entries = vec![0u16; 1 << bits];
    for (symbol, &w) in weights.iter().enumerate() {
        if w == 0 {
            continue;
        }
        let w = usize::from(w);
        let len = 1usize << (w - 1);
        let first = start[w] as usize;
        let code_bits = bits + 1 - w as u32;
        entries[first..first + len].fill(symbol as u16 | (code_bits as u16) << 8);
        start[w] += len as u32;
    }
    Ok(Table { bits, entries })
}

impl Table {
    /// Decodes one symbol, checking the stream's bounds.
    #[inline(always)]
    fn decode_one(&self, bits: &mut BackBits<'_>) -> u8 {
        let entry = self.entries[bits.peek(self.bits) as usize & (self.entries.len() - 1)];
        bits.consume(u32::from(entry >> 8));
        entry as u8
    }

    /// Decodes one symbol from a stream refilled with room for it.
    #[inline(always)]
    fn decode_fast(&self, bits: &mut BackBits<'_>) -> u8 {
        let entry = self.entries[bits.peek_fast(self.bits) as usize & (self.entries.len() - 1)];
        bits.consume(u32::from(entry >> 8));
        entry as u8
    }

    /// Whether four more symbols of `bits` can be decoded after one refill: codes are at most
    /// 11 bits, and a refill loads at least 56.
    #[inline(always)]
    fn four_fit(&self, bits: &BackBits<'_>) -> bool {
        bits.left() >= 4 * self.bits as isize
    }

    /// Decodes exactly `out.len()` symbols from `stream`, which they must use up exactly.
    pub(super) fn decode_stream(&self, stream: &[u8], out: &mut [u8]) -> Result<(), &'static str> {
        let mut bits = BackBits::new(stream)?;
        let mut chunks = out.chunks_exact_mut(4);
        for chunk in &mut chunks {
            if self.four_fit(&bits) {
                bits.refill();
                for byte in chunk {
                    *byte = self.decode_fast(&mut bits);
                }
            } else {
                for byte in chunk {
                    *byte = self.decode_one(&mut bits);
                }
            }
        }
        for byte in chunks.into_remainder() {
            *byte = self.decode_one(&mut bits);
        }
        finished(&bits)
    }

    /// Decodes `out.len()` symbols from four streams behind a jump table of their sizes, the
    /// streams side by side (four independent chains of work for the processor).
    pub(super) fn decode_four(&self, data: &[u8], out: &mut [u8]) -> Result<(), &'static str> {
        let jump = data
            .get(..6)
            .ok_or("four Huffman streams without their jump table")?;
        let size = |i: usize| usize::from(u16::from_le_bytes([jump[2 * i], jump[2 * i + 1]]));
        let (s1, s2, s3) = (size(0), size(1), size(2));
        let rest = &data[6..];
        if s1 + s2 + s3 > rest.len() {
            return Err("four Huffman streams longer than their section");
        }
        let segment = out.len().div_ceil(4);
        if out.len() < 3 * segment {
            return Err("too few literals for four Huffman streams");
        }
        let (o1, o) = out.split_at_mut(segment);
        let (o2, o) = o.split_at_mut(segment);
        let (o3, o4) = o.split_at_mut(segment);
        let mut outs = [o1, o2, o3, o4];
        let mut streams = [
            BackBits::new(&rest[..s1])?,
            BackBits::new(&rest[s1..s1 + s2])?,
            BackBits::new(&rest[s1 + s2..s1 + s2 + s3])?,
            BackBits::new(&rest[s1 + s2 + s3..])?,
        ];
        // Side by side while every stream has four symbols to go and the bits for them.
        let common = outs[3].len();
        let mut at = 0;
        while at + 4 <= common && streams.iter().all(|b| self.four_fit(b)) {
            for bits in streams.iter_mut() {
                bits.refill();
            }
            for k in at..at + 4 {
                for (bits, out) in streams.iter_mut().zip(outs.iter_mut()) {
                    out[k] = self.decode_fast(bits);
                }
            }
            at += 4;
        }
        for (bits, out) in streams.iter_mut().zip(outs.iter_mut()) {
            for byte in out[at..].iter_mut() {
                *byte = self.decode_one(bits);
            }
            finished(bits)?;
        }
        Ok(())
    }
}

/// A stream must end exactly where its symbols do.
fn finished(bits: &BackBits<'_>) -> Result<(), &'static str> {
    if bits.left() != 0 {
        return Err("a Huffman stream of the wrong length");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_implied_last_weight_completes_the_tree() {
        // Weights 1, 1, 2 (total 4 of 8): the last symbol gets weight 3, a one-bit code.
        let mut w = vec![1, 1, 2];
        let table = build(&mut w).unwrap();
        assert_eq!(w, [1, 1, 2, 3]);
        assert_eq!(table.bits, 3);
        // Codes: symbol 0 = 000, 1 = 001, 2 = 01x, 3 = 1xx.
        let lengths: Vec<u16> = table.entries.iter().map(|e| e >> 8).collect();
        let symbols: Vec<u8> = table.entries.iter().map(|&e| e as u8).collect();
        assert_eq!(symbols, [0, 1, 2, 2, 3, 3, 3, 3]);
        assert_eq!(lengths, [3, 3, 2, 2, 1, 1, 1, 1]);
    }

    #[test]
    fn incomplete_or_oversized_trees_are_refused() {
        assert!(build(&mut vec![0, 0]).is_err());
        assert!(build(&mut vec![12, 1]).is_err());
        // Total 3: the remainder to 4 is 1, fine; total 5 of 8 leaves 3, not a power of two.
        assert!(build(&mut vec![1, 1, 1]).is_ok());
        assert!(build(&mut vec![3, 1]).is_err());
        assert!(read_table(&[]).is_err());
        assert!(read_table(&[200]).is_err());
    }
}
