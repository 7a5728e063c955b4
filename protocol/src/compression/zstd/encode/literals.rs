//! The literals section of a compressed block: the bytes no match covers, stored raw, as one
//! repeated byte, or Huffman-coded (one stream, or four for longer sections).

use super::bits::BitWriter;
use super::fse;

/// The longest Huffman code the format allows.
const MAX_CODE_BITS: u32 = 11;
/// Below this many literals a Huffman table costs more than it saves.
const MIN_HUFFMAN: usize = 64;

const RAW: u8 = 0;
const RLE: u8 = 1;
const COMPRESSED: u8 = 2;

/// Appends the literals section for `lits` to `out`.
pub(super) fn write(lits: &[u8], out: &mut Vec<u8>) {
    if lits.len() >= MIN_HUFFMAN && write_huffman(lits, out) {
        return;
    }
    if !lits.is_empty() && lits.iter().all(|&b| b == lits[0]) {
        write_plain_header(RLE, lits.len(), out);
        out.push(lits[0]);
        return;
    }
    write_plain_header(RAW, lits.len(), out);
    out.extend_from_slice(lits);
}

/// The header of a raw or RLE section: 1, 2 or 3 bytes by size.
fn write_plain_header(kind: u8, size: usize, out: &mut Vec<u8>) {
    let size = size as u32;
    let kind = u32::from(kind);
    if size < 32 {
        out.push((kind | size << 3) as u8);
    } else if size < 4096 {
        out.extend_from_slice(&(kind | 1 << 2 | size << 4).to_le_bytes()[..2]);
    } else {
        out.extend_from_slice(&(kind | 3 << 2 | size << 4).to_le_bytes()[..3]);
    }
}

/// Writes a Huffman-coded section; false (and nothing written) when it would not be smaller.
fn write_huffman(lits: &[u8], out: &mut Vec<u8>) -> bool {
    let mut hist = [0u32; 256];
    for &b in lits {
        hist[b as usize] += 1;
    }
    if hist.iter().filter(|&&c| c > 0).count() < 2 {
        return false;
    }
    let lengths = code_lengths(&hist, MAX_CODE_BITS);
    let max_len = u32::from(*lengths.iter().max().unwrap_or(&0));
    let bits: u64 = hist
        .iter()
        .zip(&lengths)
        .map(|(&c, &l)| u64::from(c) * u64::from(l))
        .sum();
    let estimate = (bits / 8) as usize + 16;
    if estimate + estimate / 16 >= lits.len() {
        return false;
    }
    let weights: Vec<u8> = lengths
        .iter()
        .map(|&l| {
            if l == 0 {
                0
            } else {
                (max_len + 1 - u32::from(l)) as u8
            }
        })
        .collect();
    let Some(description) = describe_weights(&weights) else {
        return false;
    };

    let mut codes = [0u32; 256];
    let mut next = 0u32;
    for weight in 1..=max_len as u8 {
        for s in 0..256 {
            if weights[s] == weight {
                codes[s] = next >> (weight - 1);
                next += 1 << (weight - 1);
            }
        }
    }
    debug_assert_eq!(next, 1 << max_len);
    // Code and length packed for the encoding loop.
    let mut table = [0u64; 256];
    for s in 0..256 {
        table[s] = u64::from(codes[s]) << 8 | u64::from(lengths[s]);
    }

    let single = lits.len() <= 1023 && estimate <= 1000;
    let mut streams: Vec<Vec<u8>> = Vec::with_capacity(4);
    if single {
        streams.push(encode_stream(lits, &table));
    } else {
        let segment = lits.len().div_ceil(4);
        for part in lits.chunks(segment) {
            streams.push(encode_stream(part, &table));
        }
        if streams.len() != 4 || streams[..3].iter().any(|s| s.len() > usize::from(u16::MAX)) {
            return false;
        }
    }
    let jump = if single { 0 } else { 6 };
    let compressed = description.len() + jump + streams.iter().map(Vec::len).sum::<usize>();
    if compressed >= lits.len() {
        return false;
    }
    let regenerated = lits.len();
    let (format, field_bits, header_len) = if single {
        (0u64, 10, 3)
    } else if regenerated.max(compressed) < 1 << 10 {
        (1, 10, 3)
    } else if regenerated.max(compressed) < 1 << 14 {
        (2, 14, 4)
    } else if regenerated.max(compressed) < 1 << 18 {
        (3, 18, 5)
    } else {
        return false;
    };
    if single && compressed >= 1 << 10 {
        return false;
    }
    let header = u64::from(COMPRESSED)
        | format << 2
        | (regenerated as u64) << 4
        | (compressed as u64) << (4 + field_bits);
    out.extend_from_slice(&header.to_le_bytes()[..header_len]);
    out.extend_from_slice(&description);
    if !single {
        for s in &streams[..3] {
            out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        }
    }
    for s in &streams {
        out.extend_from_slice(s);
    }
    true
}

/// One Huffman stream: the first literal is written last, as the decoder reads it first. Codes
/// are at most 11 bits, so four go between flushes.
fn encode_stream(lits: &[u8], table: &[u64; 256]) -> Vec<u8> {
    let mut w = BitWriter::with_capacity(lits.len());
    let put = |w: &mut BitWriter, b: u8| {
        let entry = table[b as usize];
        w.push(entry >> 8, (entry & 0xFF) as u32);
    };
    let (head, quads) = lits.split_at(lits.len() % 4);
    for quad in quads.rchunks_exact(4) {
        put(&mut w, quad[3]);
        put(&mut w, quad[2]);
        put(&mut w, quad[1]);
        put(&mut w, quad[0]);
        w.flush();
    }
    for &b in head.iter().rev() {
        put(&mut w, b);
    }
    w.flush();
    w.finish_backward()
}

/// The tree description: the weights of every symbol below the last used one (whose weight the
/// decoder deduces), four bits each when they are few, else FSE-compressed. None when neither
/// form can hold them.
fn describe_weights(weights: &[u8]) -> Option<Vec<u8>> {
    let last = weights.iter().rposition(|&w| w != 0)?;
    let described = &weights[..last];
    if described.is_empty() {
        return None;
    }
    if described.len() <= 128 {
        let mut out = Vec::with_capacity(1 + described.len().div_ceil(2));
        out.push(127 + described.len() as u8);
        for pair in described.chunks(2) {
            out.push(pair[0] << 4 | pair.get(1).copied().unwrap_or(0));
        }
        return Some(out);
    }
    compress_weights(described)
}

/// Weights as two interleaved FSE states sharing one table: the first state decodes the weights
/// at even positions, the second those at odd ones. The two last weights are the states the
/// encoder starts from; the decoder stops when leaving one of them would read past the stream.
fn compress_weights(weights: &[u8]) -> Option<Vec<u8>> {
    const LOG: u32 = 6;
    let mut counts = [0u32; MAX_CODE_BITS as usize + 1];
    for &w in weights {
        counts[w as usize] += 1;
    }
    if counts.iter().filter(|&&c| c > 0).count() < 2 {
        return None;
    }
    let used = counts.iter().rposition(|&c| c > 0)? + 1;
    let norm = fse::normalize(&counts[..used], weights.len() as u32, LOG);
    let table = fse::Table::new(&norm, LOG);
    let description = fse::describe(&norm, LOG);

    let n = weights.len();
    let mut w = BitWriter::with_capacity(n);
    let mut states = [0u32; 2];
    states[(n - 1) % 2] = table.start(weights[n - 1]);
    states[(n - 2) % 2] = table.start(weights[n - 2]);
    for i in (0..n - 2).rev() {
        table.encode(&mut w, &mut states[i % 2], weights[i]);
        w.flush();
    }
    table.finish(&mut w, states[1]);
    table.finish(&mut w, states[0]);
    w.flush();
    let stream = w.finish_backward();
    let size = description.len() + stream.len();
    if size >= 128 {
        return None;
    }
    let mut out = Vec::with_capacity(1 + size);
    out.push(size as u8);
    out.extend_from_slice(&description);
    out.extend_from_slice(&stream);
    Some(out)
}

/// Huffman code lengths for `hist`, none longer than `limit`, forming a complete code (the
/// decoder deduces the last weight from the others, which needs the code to be complete).
fn code_lengths(hist: &[u32; 256], limit: u32) -> [u8; 256] {
    let mut lengths = [0u8; 256];
    let mut leaves: Vec<(u32, u8)> = (0..256)
        .filter(|&s| hist[s] > 0)
        .map(|s| (hist[s], s as u8))
        .collect();
    leaves.sort_unstable();
    let m = leaves.len();
    if m < 2 {
        if let Some(&(_, s)) = leaves.first() {
            lengths[s as usize] = 1;
        }
        return lengths;
    }
    // Two-queue Huffman: leaves sorted by weight, internal nodes made in increasing weight.
    let mut weight: Vec<u64> = leaves.iter().map(|&(c, _)| u64::from(c)).collect();
    let mut parent = vec![0usize; 2 * m - 1];
    let (mut leaf, mut node) = (0usize, m);
    for _ in 0..m - 1 {
        let mut pick = |weight: &Vec<u64>| {
            let current = weight.len();
            if leaf < m && (node >= current || weight[leaf] <= weight[node]) {
                leaf += 1;
                leaf - 1
            } else {
                node += 1;
                node - 1
            }
        };
        let a = pick(&weight);
        let b = pick(&weight);
        let id = weight.len();
        weight.push(weight[a] + weight[b]);
        parent[a] = id;
        parent[b] = id;
    }
    let root = 2 * m - 2;
    let mut depth = vec![0u32; 2 * m - 1];
    for i in (0..root).rev() {
        depth[i] = depth[parent[i]] + 1;
    }
    let mut lens: Vec<u32> = depth[..m].to_vec();

    // Limit the length, then make the code complete again: lengthen the rarest codes while the
    // Kraft sum is over, shorten the most frequent longest ones while it is under.
    if lens.iter().any(|&l| l > limit) {
        let cap = 1u64 << limit;
        for l in lens.iter_mut() {
            *l = (*l).min(limit);
        }
        let mut kraft: u64 = lens.iter().map(|&l| 1u64 << (limit - l)).sum();
        'over: while kraft > cap {
            for l in lens.iter_mut() {
                if *l < limit {
                    kraft -= 1 << (limit - *l - 1);
                    *l += 1;
                    if kraft <= cap {
                        break 'over;
                    }
                }
            }
        }
        while kraft < cap {
            for l in lens.iter_mut().rev() {
                let gain = 1u64 << (limit - *l);
                if *l > 1 && kraft + gain <= cap {
                    kraft += gain;
                    *l -= 1;
                }
            }
        }
    }
    for (i, &(_, s)) in leaves.iter().enumerate() {
        lengths[s as usize] = lens[i] as u8;
    }
    lengths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kraft(lengths: &[u8; 256], limit: u32) -> u64 {
        lengths
            .iter()
            .filter(|&&l| l > 0)
            .map(|&l| 1u64 << (limit - u32::from(l)))
            .sum()
    }

    #[test]
    fn code_lengths_are_complete_and_limited() {
        // Fibonacci counts make the deepest unlimited tree.
        let mut hist = [0u32; 256];
        let (mut a, mut b) = (1u32, 1u32);
        for slot in hist.iter_mut().take(30) {
            *slot = a;
            (a, b) = (b, a.saturating_add(b));
        }
        let lengths = code_lengths(&hist, MAX_CODE_BITS);
        assert!(lengths.iter().all(|&l| u32::from(l) <= MAX_CODE_BITS));
        assert_eq!(kraft(&lengths, MAX_CODE_BITS), 1 << MAX_CODE_BITS);
        assert!(
            lengths[29] <= lengths[0],
            "frequent symbols get shorter codes"
        );

        let flat = [7u32; 256];
        let lengths = code_lengths(&flat, MAX_CODE_BITS);
        assert!(lengths.iter().all(|&l| l == 8));
    }

    #[test]
    fn many_symbols_take_fse_coded_weights_and_few_take_direct_ones() {
        // Skewed over every byte value: more than 128 weights to describe.
        let lits: Vec<u8> = (0..10_000u32)
            .map(|i| {
                if i % 5 == 0 {
                    (i * 7) as u8
                } else {
                    b'a' + (i % 3) as u8
                }
            })
            .collect();
        let mut out = Vec::new();
        write(&lits, &mut out);
        assert_eq!(out[0] & 3, COMPRESSED);
        // Four streams, 14-bit sizes: a 4-byte header, then the tree description.
        assert_eq!(out[0] >> 2 & 3, 2);
        assert!(out[4] < 128, "weights FSE-coded, header {}", out[4]);

        let text = b"the quick brown fox jumps over the lazy dog ".repeat(20);
        out.clear();
        write(&text, &mut out);
        assert_eq!(out[0] & 3, COMPRESSED);
        // One stream (under 1 KiB): a 3-byte header; weights up to 'z', four bits each.
        assert_eq!(out[0] >> 2 & 3, 0);
        assert_eq!(out[3], 127 + b'z');
    }

    #[test]
    fn short_or_single_byte_literals_are_stored_plainly() {
        let mut out = Vec::new();
        write(b"abc", &mut out);
        assert_eq!(out, [3 << 3, b'a', b'b', b'c']);
        out.clear();
        write(&[9u8; 5000], &mut out);
        assert_eq!(
            out,
            [
                1 | 3 << 2 | (5000 << 4 & 0xF0) as u8,
                (5000 >> 4) as u8,
                (5000 >> 12) as u8,
                9
            ]
        );
    }
}
