//! lz4 in the LZ4 frame format, the framing written here and the blocks by `lz4_flex`.
//!
//! Compressing writes what the Java client writes: independent blocks of up to 64 KiB, no
//! checksums but the header's, an incompressible block stored as it is. Decompressing reads any
//! frame: linked blocks (the previous 64 KiB of output as their dictionary), block and content
//! checksums (checked), the content size (checked), several frames in a row and skippable
//! frames. Blocks decode straight into the output: no copy through a stream reader's buffers.
//! The header's check byte is not checked: Kafka clients before KIP-57 computed it over the
//! wrong bytes, and the batch's CRC covers the frame anyway.

use bytes::{BufMut, Bytes, BytesMut};

use super::codec_error;
use super::xxhash::xxh32;
use crate::error::{ProtocolError, Result};

const MAGIC: u32 = 0x184D_2204;
/// Version 01, independent blocks: no block checksums, no content size or checksum.
const FLG_INDEPENDENT: u8 = 0b0110_0000;
/// Blocks of at most 64 KiB.
const BD_64K: u8 = 4 << 4;
const BLOCK: usize = 64 * 1024;
/// The high bit of a block's size: stored uncompressed.
const STORED: u32 = 1 << 31;
/// Linked blocks may copy from this far back into the output of the blocks before.
const WINDOW: usize = 64 * 1024;

thread_local! {
    /// Where blocks decode before their output is appended (see [`frame`]).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Compresses `input` into one frame appended to `out`.
pub fn compress(input: &[u8], out: &mut BytesMut) -> Result<()> {
    out.reserve(7 + input.len() + input.len() / 255 + 16 + 4 * (input.len() / BLOCK + 1));
    out.put_u32_le(MAGIC);
    let descriptor = [FLG_INDEPENDENT, BD_64K];
    out.put_slice(&descriptor);
    out.put_u8((xxh32(&descriptor) >> 8) as u8);
    let mut scratch = vec![0u8; lz4_flex::block::get_maximum_output_size(BLOCK.min(input.len()))];
    for chunk in input.chunks(BLOCK) {
        let size = lz4_flex::block::compress_into(chunk, &mut scratch)
            .map_err(|e| codec_error("lz4", e))?;
        if size < chunk.len() {
            out.put_u32_le(size as u32);
            out.put_slice(&scratch[..size]);
        } else {
            out.put_u32_le(chunk.len() as u32 | STORED);
            out.put_slice(chunk);
        }
    }
    out.put_u32_le(0);
    Ok(())
}

/// Why decoding stopped.
enum Fail {
    Corrupt(String),
    TooLarge,
}

impl From<&str> for Fail {
    fn from(why: &str) -> Self {
        Fail::Corrupt(why.to_owned())
    }
}

/// Decompresses every frame of `input`, failing past `limit` bytes of output.
pub fn decompress(mut input: &[u8], limit: usize) -> Result<Bytes> {
    let mut out = Vec::new();
    let result = if input.is_empty() {
        Err(Fail::from("no frame"))
    } else {
        loop {
            match frame(input, &mut out, limit) {
                Ok(used) => input = &input[used..],
                Err(fail) => break Err(fail),
            }
            if input.is_empty() {
                break Ok(());
            }
        }
    };
    match result {
        Ok(()) => Ok(Bytes::from(out)),
        Err(Fail::Corrupt(why)) => Err(codec_error("lz4", why)),
        Err(Fail::TooLarge) => Err(ProtocolError::DecompressedTooLarge {
            codec: "lz4",
            limit,
        }),
    }
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decodes the frame at the start of `input` onto `out`; returns the bytes it took.
fn frame(input: &[u8], out: &mut Vec<u8>, limit: usize) -> std::result::Result<usize, Fail> {
    let magic = u32_at(input, 0).ok_or("a frame cut short")?;
    if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
        let size = u32_at(input, 4).ok_or("a skippable frame cut short")? as usize;
        return 8usize
            .checked_add(size)
            .filter(|&end| end <= input.len())
            .ok_or(Fail::from("a skippable frame cut short"));
    }
    if magic != MAGIC {
        return Err(Fail::from("not an LZ4 frame (wrong magic number)"));
    }
    let (&flg, &bd) = input
        .get(4)
        .zip(input.get(5))
        .ok_or("a frame header cut short")?;
    if flg >> 6 != 1 {
        return Err(Fail::from("an LZ4 frame of an unknown version"));
    }
    let independent = flg & 0x20 != 0;
    let block_checksums = flg & 0x10 != 0;
    let has_size = flg & 0x08 != 0;
    let content_checksum = flg & 0x04 != 0;
    if flg & 0x01 != 0 {
        return Err(Fail::from("an LZ4 frame that needs a dictionary"));
    }
    let block_max = match (bd >> 4) & 7 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        _ => return Err(Fail::from("an LZ4 frame with an unknown block size")),
    };
    let mut at = 6;
    let frame_start = out.len();
    let mut content_size = None;
    if has_size {
        let field = input.get(at..at + 8).ok_or("a frame header cut short")?;
        let size = u64::from_le_bytes(field.try_into().unwrap_or([0; 8]));
        if size > (limit - frame_start) as u64 {
            return Err(Fail::TooLarge);
        }
        content_size = Some(size as usize);
        out.reserve(size as usize);
        at += 8;
    }
    // The header's check byte.
    at += 1;
    loop {
        let word = u32_at(input, at).ok_or("a block cut short")?;
        at += 4;
        if word == 0 {
            break;
        }
        let size = (word & !STORED) as usize;
        if size > block_max {
            return Err(Fail::from("a block larger than the frame allows"));
        }
        let data = input.get(at..at + size).ok_or("a block cut short")?;
        at += size;
        if block_checksums {
            let expected = u32_at(input, at).ok_or("a block checksum cut short")?;
            if xxh32(data) != expected {
                return Err(Fail::from("a block whose checksum does not match"));
            }
            at += 4;
        }
        let room = limit - out.len();
        if word & STORED != 0 {
            if size > room {
                return Err(Fail::TooLarge);
            }
            out.extend_from_slice(data);
            continue;
        }
        // A byte of a block gives at most 255 bytes of output (a length byte adds 255 to a
        // match): that bounds a short block of a frame with big blocks.
        let pos = out.len();
        let most = size.saturating_mul(256).saturating_add(64).min(block_max);
        let expected = content_size.map_or(most, |total| {
            (frame_start + total).saturating_sub(pos).min(most)
        });
        let window = if independent {
            &[][..]
        } else {
            &out[frame_start.max(pos.saturating_sub(WINDOW))..]
        };
        let written = SCRATCH.with(|scratch| {
            // The block decoder writes into a slice: a buffer of this thread's, zeroed once and
            // kept, then the exact output copied. A fresh zeroed buffer per block cost more
            // (new pages faulted in and cleared) than the copy does.
            let mut scratch = scratch.borrow_mut();
            let want = expected.min(room);
            if scratch.len() < want {
                scratch.resize(want, 0);
            }
            let target = &mut scratch[..want];
            if independent {
                lz4_flex::block::decompress_into(data, target)
            } else {
                lz4_flex::block::decompress_into_with_dict(data, target, window)
            }
        });
        match written {
            Ok(n) => SCRATCH.with(|scratch| out.extend_from_slice(&scratch.borrow()[..n])),
            Err(lz4_flex::block::DecompressError::OutputTooSmall { .. }) if expected > room => {
                return Err(Fail::TooLarge)
            }
            Err(e) => return Err(Fail::Corrupt(format!("a corrupt block: {e}"))),
        }
    }
    let produced = out.len() - frame_start;
    if content_size.is_some_and(|size| size != produced) {
        return Err(Fail::from(
            "a frame whose content differs from its declared size",
        ));
    }
    if content_checksum {
        let expected = u32_at(input, at).ok_or("a frame checksum cut short")?;
        if xxh32(&out[frame_start..]) != expected {
            return Err(Fail::from("a frame whose content checksum does not match"));
        }
        at += 4;
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};
    use std::io::{Read, Write};

    fn text(len: usize) -> Vec<u8> {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            v.extend_from_slice(format!("item {} ", seed % 5000).as_bytes());
        }
        v.truncate(len);
        v
    }

    fn noise(len: usize) -> Vec<u8> {
        let mut seed = 7u64;
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    }

    fn theirs(input: &[u8], info: FrameInfo) -> Vec<u8> {
        let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(input).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn our_frames_read_back_here_and_with_lz4_flex() {
        for input in [
            Vec::new(),
            b"x".to_vec(),
            text(1000),
            text(BLOCK),
            text(BLOCK + 1),
            text(300_000),
            noise(BLOCK + 100),
        ] {
            let mut out = BytesMut::new();
            compress(&input, &mut out).unwrap();
            let back = decompress(&out, input.len()).unwrap();
            assert!(back[..] == input[..], "{} bytes", input.len());
            let mut other = Vec::new();
            FrameDecoder::new(&out[..]).read_to_end(&mut other).unwrap();
            assert!(
                other == input,
                "lz4_flex reads our {} bytes otherwise",
                input.len()
            );
        }
    }

    #[test]
    fn frames_of_every_option_decode() {
        let input = text(600_000);
        for info in [
            FrameInfo::new(),
            FrameInfo::new().block_mode(BlockMode::Linked),
            FrameInfo::new()
                .block_mode(BlockMode::Linked)
                .block_size(BlockSize::Max256KB)
                .content_checksum(true)
                .content_size(Some(input.len() as u64)),
            FrameInfo::new()
                .block_size(BlockSize::Max1MB)
                .block_checksums(true),
        ] {
            let frame = theirs(&input, info);
            let back = decompress(&frame, input.len()).unwrap();
            assert!(back[..] == input[..]);
            assert!(matches!(
                decompress(&frame, input.len() - 1),
                Err(ProtocolError::DecompressedTooLarge { .. })
            ));
        }
    }

    #[test]
    fn frames_in_a_row_and_skippable_frames() {
        let mut input = theirs(b"first ", FrameInfo::new());
        input.extend_from_slice(&[0x5F, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 1, 2]);
        let mut second = BytesMut::new();
        compress(b"second", &mut second).unwrap();
        input.extend_from_slice(&second);
        assert_eq!(&decompress(&input, 100).unwrap()[..], b"first second");
    }

    #[test]
    fn damaged_frames_are_errors() {
        let input = text(100_000);
        let frame = theirs(
            &input,
            FrameInfo::new()
                .content_checksum(true)
                .content_size(Some(input.len() as u64)),
        );
        for cut in [0, 3, 5, 10, 20, frame.len() / 2, frame.len() - 1] {
            assert!(
                decompress(&frame[..cut], input.len()).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad = frame.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decompress(&bad, input.len()).is_err(), "content checksum");
        // A stored block longer than the declared size, then a compressed one: an error.
        let mut frame = vec![0x04, 0x22, 0x4D, 0x18, 0x68, 0x40];
        frame.extend_from_slice(&4u64.to_le_bytes());
        frame.push(0);
        frame.extend_from_slice(&(8 | STORED).to_le_bytes());
        frame.extend_from_slice(b"12345678");
        frame.extend_from_slice(&[2, 0, 0, 0, 0x10, b'x', 0, 0, 0, 0]);
        assert!(decompress(&frame, 100).is_err());
        // A declared size the output does not match.
        let mut bad = frame.clone();
        bad[6] ^= 1;
        assert!(decompress(&bad, input.len() + 10).is_err(), "content size");
        assert!(
            decompress(b"\x04\x22\x4d\x18\x80\x40", 10).is_err(),
            "version"
        );
    }
}
