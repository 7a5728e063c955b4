//! The decoder: frames one after another (skippable frames skipped), raw, RLE and compressed
//! blocks, the optional content checksum checked. The whole output is one buffer, so a match
//! copies from the output itself: no window buffer, no copy out of one. Dictionaries are not
//! supported (Kafka does not use them). Every bound is checked on the way: hostile input is an
//! error, never a panic, and nothing is written past the caller's limit.

mod bits;
mod fse;
mod huffman;
mod literals;
mod sequences;

use bytes::Bytes;

use super::super::xxhash;
use super::{BLOCK, BLOCK_COMPRESSED, BLOCK_RAW, BLOCK_RLE, MAGIC};
use literals::Literals;
use sequences::{FrameState, Output, SLACK};

/// Why decoding stopped.
#[derive(Debug)]
pub(super) enum Fail {
    /// The input is not valid zstd.
    Corrupt(&'static str),
    /// The output would exceed the caller's limit.
    TooLarge,
}

impl From<&'static str> for Fail {
    fn from(why: &'static str) -> Self {
        Fail::Corrupt(why)
    }
}

/// Decodes every frame of `input`, failing past `limit` bytes of output.
pub(super) fn decompress(mut input: &[u8], limit: usize) -> Result<Bytes, Fail> {
    let mut out = Vec::new();
    if input.is_empty() {
        return Err(Fail::Corrupt("no frame"));
    }
    while !input.is_empty() {
        let used = frame(input, &mut out, limit)?;
        input = &input[used..];
    }
    Ok(Bytes::from(out))
}

/// Decodes the frame at the start of `input` onto `out`; returns the bytes it took.
fn frame(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<usize, Fail> {
    let magic = u32_at(input, 0).ok_or("a frame cut short")?;
    if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
        // A skippable frame: its size follows the magic number.
        let size = u32_at(input, 4).ok_or("a skippable frame cut short")? as usize;
        let end = 8usize.checked_add(size).filter(|&e| e <= input.len());
        return end.ok_or(Fail::Corrupt("a skippable frame cut short"));
    }
    if magic != MAGIC {
        return Err(Fail::Corrupt("not a zstd frame (wrong magic number)"));
    }
    let descriptor = *input.get(4).ok_or("a frame header cut short")?;
    let size_flag = descriptor >> 6;
    let single_segment = descriptor & 0x20 != 0;
    let checksum = descriptor & 0x04 != 0;
    if descriptor & 0x08 != 0 {
        return Err(Fail::Corrupt("a frame header with its reserved bit set"));
    }
    let dict_bytes = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let mut at = 5 + usize::from(!single_segment);
    let dict = input
        .get(at..at + dict_bytes)
        .ok_or("a frame header cut short")?;
    if dict.iter().any(|&b| b != 0) {
        return Err(Fail::Corrupt("a frame that needs a dictionary"));
    }
    at += dict_bytes;
    let size_bytes = match size_flag {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let field = input
        .get(at..at + size_bytes)
        .ok_or("a frame header cut short")?;
    at += size_bytes;
    let mut size_le = [0u8; 8];
    size_le[..size_bytes].copy_from_slice(field);
    let content_size = (size_bytes > 0)
        .then(|| u64::from_le_bytes(size_le) + if size_bytes == 2 { 256 } else { 0 });

    let frame_start = out.len();
    // Where the frame's output must end: its declared size, else the caller's limit.
    let (bound, limited) = match content_size {
        Some(size) if size > (limit - frame_start) as u64 => return Err(Fail::TooLarge),
        Some(size) => (frame_start + size as usize, false),
        None => (limit, true),
    };
    if content_size.is_some() {
        out.reserve(bound - frame_start + SLACK);
    }
    let mut state = FrameState::new();
    let mut tree = None;
    let mut lits = Vec::new();
    loop {
        let header = input.get(at..at + 3).ok_or("a block header cut short")?;
        let header = u32::from(header[0]) | u32::from(header[1]) << 8 | u32::from(header[2]) << 16;
        at += 3;
        let last = header & 1 != 0;
        let kind = (header >> 1) & 3;
        let size = (header >> 3) as usize;
        if size > BLOCK {
            return Err(Fail::Corrupt("a block larger than the format allows"));
        }
        let room = bound - out.len();
        let over = if limited {
            Fail::TooLarge
        } else {
            Fail::Corrupt("a frame longer than its declared size")
        };
        match kind {
            BLOCK_RAW => {
                let data = input.get(at..at + size).ok_or("a raw block cut short")?;
                if size > room {
                    return Err(over);
                }
                out.extend_from_slice(data);
                at += size;
            }
            BLOCK_RLE => {
                let byte = *input.get(at).ok_or("an RLE block cut short")?;
                if size > room {
                    return Err(over);
                }
                out.resize(out.len() + size, byte);
                at += 1;
            }
            BLOCK_COMPRESSED => {
                let block = input
                    .get(at..at + size)
                    .ok_or("a compressed block cut short")?;
                let output = Output {
                    out,
                    frame_start,
                    end: bound,
                    limited,
                };
                compressed_block(block, &mut state, &mut tree, &mut lits, output)?;
                at += size;
            }
            _ => return Err(Fail::Corrupt("a block of the reserved type")),
        }
        if last {
            break;
        }
    }
    let produced = (out.len() - frame_start) as u64;
    if content_size.is_some_and(|size| size != produced) {
        return Err(Fail::Corrupt(
            "a frame whose content differs from its declared size",
        ));
    }
    if checksum {
        let expected = u32_at(input, at).ok_or("a frame's checksum cut short")?;
        if xxhash::xxh64(&out[frame_start..]) as u32 != expected {
            return Err(Fail::Corrupt(
                "a frame whose content checksum does not match",
            ));
        }
        at += 4;
    }
    Ok(at)
}

/// Decodes a compressed block onto `output`.
fn compressed_block(
    block: &[u8],
    state: &mut FrameState,
    tree: &mut Option<huffman::Table>,
    lits: &mut Vec<u8>,
    output: Output<'_>,
) -> Result<(), Fail> {
    let (where_, used) = literals::read(block, tree, lits)?;
    let literals: &[u8] = match where_ {
        Literals::InBlock { start, len } => &block[start..start + len],
        Literals::Decoded { len } => &lits[..len],
    };
    sequences::execute(&block[used..], literals, state, output)
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skippable_frames_are_skipped_and_garbage_refused() {
        let mut input = vec![0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 9, 9, 9];
        // An empty frame: single segment, content size 0, one empty raw block marked last.
        input.extend_from_slice(&[0x28, 0xB5, 0x2F, 0xFD, 0x20, 0x00, 0x01, 0x00, 0x00]);
        assert_eq!(decompress(&input, 10).unwrap().len(), 0);
        assert!(matches!(decompress(b"hello", 10), Err(Fail::Corrupt(_))));
        assert!(matches!(decompress(&[], 10), Err(Fail::Corrupt(_))));
        // Cut anywhere: an error.
        for cut in (0..input.len() - 1).filter(|&cut| cut != 11) {
            assert!(decompress(&input[..cut], 10).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_declared_size_above_the_limit_is_refused_before_anything_is_allocated() {
        // Content size 2^40, one RLE block.
        let mut input = vec![0x28, 0xB5, 0x2F, 0xFD, 0xE0];
        input.extend_from_slice(&(1u64 << 40).to_le_bytes());
        input.extend_from_slice(&[0x03, 0x00, 0x01, b'x']);
        assert!(matches!(decompress(&input, 1 << 20), Err(Fail::TooLarge)));
    }
}
