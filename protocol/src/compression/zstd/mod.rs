//! zstd: our own encoder, ruzstd's decoder.
//!
//! The encoder is written for record batches: one frame per batch, the whole batch as a single
//! segment (its size in the header, no window descriptor) up to 8 MiB, a greedy single-hash
//! match finder, Huffman-coded literals and FSE-coded sequences with tables fitted to each block.
//! It trades some ratio for speed, as the reference library's fastest levels do; any zstd decoder
//! reads its frames. Decoding uses ruzstd, bounded by the caller's limit.

mod bits;
mod fse;
mod literals;
mod matcher;
mod sequences;

use bytes::{BufMut, Bytes, BytesMut};
use ruzstd::decoding::StreamingDecoder;

use super::{codec_error, read_bounded};
use crate::error::Result;
use matcher::Matcher;
use sequences::Sequence;

const MAGIC: u32 = 0xFD2F_B528;
/// The most a block may hold.
const BLOCK: usize = 128 * 1024;
/// Inputs up to this size are one segment; larger ones declare a window of this size.
const WINDOW_LOG: u32 = 23;

const BLOCK_RAW: u32 = 0;
const BLOCK_COMPRESSED: u32 = 2;

/// Compresses `input` into one zstd frame appended to `out`.
pub fn compress(input: &[u8], out: &mut BytesMut) -> Result<()> {
    let len = input.len();
    out.reserve(len / 2 + 32);
    out.put_u32_le(MAGIC);
    let single_segment = len <= 1 << WINDOW_LOG;
    let window = if single_segment { len } else { 1 << WINDOW_LOG };
    // Frame header descriptor: content size field width, single segment flag.
    let (size_flag, size_bytes) = match len {
        0..=255 if single_segment => (0u8, 1),
        256..=65_791 => (1, 2),
        _ if len <= u32::MAX as usize => (2, 4),
        _ => (3, 8),
    };
    out.put_u8(size_flag << 6 | u8::from(single_segment) << 5);
    if !single_segment {
        // Window descriptor: exponent (log - 10), no mantissa.
        out.put_u8(((WINDOW_LOG - 10) << 3) as u8);
    }
    let content = if size_flag == 1 {
        len as u64 - 256
    } else {
        len as u64
    };
    out.put_slice(&content.to_le_bytes()[..size_bytes]);

    if len == 0 {
        put_block_header(out, true, BLOCK_RAW, 0);
        return Ok(());
    }
    let mut matcher = Matcher::new(len, window);
    let mut lits = Vec::with_capacity(len.min(BLOCK));
    let mut seqs = Vec::with_capacity(len.min(BLOCK) / 16);
    let mut body = Vec::with_capacity(len.min(BLOCK));
    let mut start = 0;
    while start < len {
        let end = (start + BLOCK).min(len);
        let last = end == len;
        lits.clear();
        seqs.clear();
        body.clear();
        let recent = matcher.recent;
        matcher.block(input, start, end, &mut lits, &mut seqs);
        encode_block(&lits, &seqs, &mut body);
        if body.len() < end - start {
            put_block_header(out, last, BLOCK_COMPRESSED, body.len());
            out.put_slice(&body);
        } else {
            // Not smaller: store it, and forget the offsets the decoder will never see.
            matcher.recent = recent;
            put_block_header(out, last, BLOCK_RAW, end - start);
            out.put_slice(&input[start..end]);
        }
        start = end;
    }
    Ok(())
}

fn encode_block(lits: &[u8], seqs: &[Sequence], body: &mut Vec<u8>) {
    literals::write(lits, body);
    sequences::write(seqs, body);
}

fn put_block_header(out: &mut BytesMut, last: bool, kind: u32, size: usize) {
    let header = u32::from(last) | kind << 1 | (size as u32) << 3;
    out.put_slice(&header.to_le_bytes()[..3]);
}

/// Decompresses one or more frames, failing past `limit` bytes.
pub fn decompress(mut input: &[u8], limit: usize) -> Result<Bytes> {
    let dec = StreamingDecoder::new(&mut input).map_err(|e| codec_error("zstd", e))?;
    read_bounded(dec, "zstd", limit, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(input: &[u8]) -> usize {
        let mut out = BytesMut::new();
        compress(input, &mut out).unwrap();
        let back = decompress(&out, input.len()).unwrap();
        assert_eq!(back.len(), input.len());
        assert!(
            back[..] == input[..],
            "round trip of {} bytes differs",
            input.len()
        );
        out.len()
    }

    /// Words from a small vocabulary with numbers between: text like event payloads.
    fn text(len: usize, mut seed: u64) -> Vec<u8> {
        const WORDS: [&str; 12] = [
            "order",
            "created",
            "user",
            "payment",
            "shipped",
            "event",
            "status",
            "amount",
            "eur",
            "item",
            "warehouse",
            "lisbon",
        ];
        let mut v = Vec::with_capacity(len + 16);
        while v.len() < len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if seed % 3 == 0 {
                v.extend_from_slice(format!("{} ", seed % 100_000).as_bytes());
            } else {
                v.extend_from_slice(WORDS[(seed % 12) as usize].as_bytes());
                v.push(b' ');
            }
        }
        v.truncate(len);
        v
    }

    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn sizes_around_every_boundary_round_trip() {
        for len in [
            0, 1, 2, 8, 9, 10, 31, 32, 63, 64, 65, 255, 256, 257, 1023, 1024, 4095, 4096,
        ] {
            round_trip(&text(len, 7));
            round_trip(&noise(len, 7));
            round_trip(&vec![b'x'; len]);
        }
        for len in [65_791, 65_792, 131_071, 131_072, 131_073, 300_000] {
            round_trip(&text(len, 11));
            round_trip(&noise(len, 11));
        }
    }

    #[test]
    fn text_compresses_and_noise_is_stored() {
        let input = text(16 * 1024, 3);
        let size = round_trip(&input);
        assert!(size < input.len() / 2, "{size} of {}", input.len());
        let input = noise(16 * 1024, 3);
        let size = round_trip(&input);
        assert!(size <= input.len() + 16, "{size}");
    }

    #[test]
    fn all_byte_values_in_literals_use_compressed_weights() {
        // Every byte value, skewed so that Huffman pays off: more than 128 weights to describe.
        let mut input = Vec::new();
        let mut seed = 5u64;
        for i in 0..40_000usize {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let b = if seed % 4 == 0 {
                (seed >> 32) as u8
            } else {
                (i % 7) as u8 + b'a'
            };
            input.push(b);
        }
        let size = round_trip(&input);
        assert!(size < input.len() * 3 / 4, "{size}");
    }

    #[test]
    fn inputs_beyond_one_segment_declare_a_window_and_round_trip() {
        let mut input = text(9 << 20, 13);
        // A repeat further back than the window must not be matched.
        let head = input[..4096].to_vec();
        input.extend_from_slice(&head);
        round_trip(&input);
    }

    #[test]
    fn long_runs_and_repeats_round_trip() {
        let mut input = vec![0u8; 200_000];
        input.extend(text(50_000, 1));
        input.extend(vec![7u8; 70_000]);
        input.extend(text(50_000, 1));
        round_trip(&input);
    }
}
