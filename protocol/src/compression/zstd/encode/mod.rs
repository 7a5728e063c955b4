//! The encoder, written for record batches: one frame per batch, the whole batch as a single
//! segment (its size in the header, no window descriptor) up to 8 MiB, a greedy single-hash
//! match finder, Huffman-coded literals and FSE-coded sequences with tables fitted to each block.
//! It trades some ratio for speed, as the reference library's fastest levels do; any zstd decoder
//! reads its frames.

mod bits;
mod fse;
mod literals;
mod matcher;
mod sequences;

use bytes::{BufMut, BytesMut};

use super::{BLOCK, BLOCK_COMPRESSED, BLOCK_RAW, MAGIC};
use crate::error::Result;
use matcher::Matcher;
use sequences::Sequence;

/// Inputs up to this size are one segment; larger ones declare a window of this size.
const WINDOW_LOG: u32 = 23;

/// Compresses `input` into one zstd frame appended to `out`.
pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<()> {
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
