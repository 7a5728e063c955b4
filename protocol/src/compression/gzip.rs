//! gzip (RFC 1952) around raw deflate, written and read directly with flate2's deflate state
//! machines: the output goes straight into the buffer the batch is sent from or decoded out of,
//! with no intermediate buffer, and a single-member input is inflated into one allocation of the
//! size its trailer states.
//!
//! Reading accepts everything producers write: any header fields (extra, name, comment, header
//! CRC) and several members in a row. Each member's CRC-32 and length are checked.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Crc, Decompress, FlushCompress, FlushDecompress, Status};

use super::codec_error;
use crate::error::{ProtocolError, Result};

const ID: [u8; 2] = [0x1f, 0x8b];
const METHOD_DEFLATE: u8 = 8;
const FLAG_HCRC: u8 = 0x02;
const FLAG_EXTRA: u8 = 0x04;
const FLAG_NAME: u8 = 0x08;
const FLAG_COMMENT: u8 = 0x10;
const FLAGS_RESERVED: u8 = 0xe0;
/// Header written: no flags, no modification time, no extra flags, OS "unknown".
const HEADER: [u8; 10] = [0x1f, 0x8b, METHOD_DEFLATE, 0, 0, 0, 0, 0, 0, 0xff];
/// Deflate cannot expand data by more than about 1032 times; a length claim beyond that is a lie.
const MAX_RATIO: usize = 1032;

fn error(message: &str) -> ProtocolError {
    codec_error("gzip", message)
}

/// The levels deflate has: 1 (fastest) to 9 (smallest).
pub const LEVELS: std::ops::RangeInclusive<u32> = 1..=9;

/// Compresses `input` at zlib's default level (6, the Java client's default too) into one gzip
/// member, appended to `out`.
pub fn compress(input: &[u8], out: &mut BytesMut) -> Result<()> {
    compress_at(input, out, None)
}

/// Compresses `input` at `level` (one of [`LEVELS`]; `None`: the default) into one gzip member,
/// appended to `out`. Deflate writes into `out`'s own allocation (taken over as a `Vec` and given
/// back), so the compressed bytes are never copied.
pub fn compress_at(input: &[u8], out: &mut BytesMut, level: Option<u32>) -> Result<()> {
    let level = match level {
        Some(l) if LEVELS.contains(&l) => flate2::Compression::new(l),
        Some(l) => return Err(error(&format!("level {l} is not one of 1 to 9"))),
        None => flate2::Compression::default(),
    };
    let mut buf: Vec<u8> = std::mem::take(out).into();
    buf.reserve(HEADER.len() + input.len() / 2 + 64);
    buf.extend_from_slice(&HEADER);
    let mut deflate = take_deflate(level);
    loop {
        let consumed = deflate.total_in() as usize;
        let status = deflate
            .compress_vec(&input[consumed..], &mut buf, FlushCompress::Finish)
            .map_err(|e| codec_error("gzip", e))?;
        if status == Status::StreamEnd {
            break;
        }
        buf.reserve(buf.capacity().max(4096));
    }
    give_back_deflate(level, deflate);
    let mut crc = Crc::new();
    crc.update(input);
    buf.extend_from_slice(&crc.sum().to_le_bytes());
    buf.extend_from_slice(&(input.len() as u32).to_le_bytes());
    *out = BytesMut::from(Bytes::from(buf));
    Ok(())
}

thread_local! {
    /// The deflate state this thread compressed with last, and its level. A new one allocates
    /// and clears some 300 KB (window, hash chains, buffers), as long as deflating a small batch
    /// takes; a reset one is used again. Kept only while the thread lives; an error drops it.
    static DEFLATE: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
}

/// A deflate state at `level`: this thread's kept one, reset, or a new one.
fn take_deflate(level: flate2::Compression) -> Compress {
    let kept = DEFLATE.with(|cell| cell.borrow_mut().take());
    match kept {
        Some((kept_level, mut deflate)) if kept_level == level.level() => {
            deflate.reset();
            deflate
        }
        _ => Compress::new(level, false),
    }
}

/// Keeps `deflate` for this thread's next batch.
fn give_back_deflate(level: flate2::Compression, deflate: Compress) {
    DEFLATE.with(|cell| *cell.borrow_mut() = Some((level.level(), deflate)));
}

/// Decompresses every member of `input`, failing once the output would exceed `limit` bytes.
pub fn decompress(input: &[u8], limit: usize) -> Result<Bytes> {
    // The trailer of the last member states its length: reserve that (within what the input can
    // justify and the limit allows) so a single-member batch is inflated without regrowing.
    let claimed = input
        .last_chunk::<4>()
        .map_or(0, |t| u32::from_le_bytes(*t) as usize);
    let justified = input.len().saturating_mul(MAX_RATIO);
    let mut out = Vec::with_capacity(claimed.min(justified).min(limit));
    let mut rest = input;
    loop {
        rest = inflate_member(rest, &mut out, limit)?;
        if rest.is_empty() {
            return Ok(Bytes::from(out));
        }
    }
}

/// Inflates the member at the start of `input` onto `out`, returning the input after it.
fn inflate_member<'a>(input: &'a [u8], out: &mut Vec<u8>, limit: usize) -> Result<&'a [u8]> {
    let body = skip_header(input)?;
    let start = out.len();
    let mut inflate = Decompress::new(false);
    // Never let more than `limit + 1` bytes exist, so a bomb stops where the limit says.
    let most = limit.saturating_add(1);
    loop {
        if out.len() == out.capacity() {
            let room = out.len().max(16 * 1024).min(most - out.len());
            out.reserve_exact(room);
        }
        let consumed = inflate.total_in() as usize;
        let written = out.len();
        let status = inflate
            .decompress_vec(&body[consumed..], out, FlushDecompress::None)
            .map_err(|e| codec_error("gzip", e))?;
        if out.len() > limit {
            return Err(ProtocolError::DecompressedTooLarge {
                codec: "gzip",
                limit,
            });
        }
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError => {
                let stalled = inflate.total_in() as usize == consumed && out.len() == written;
                if stalled && out.len() < out.capacity() {
                    return Err(error("truncated deflate stream"));
                }
            }
        }
    }
    let end = inflate.total_in() as usize;
    let Some((trailer, rest)) = body[end..].split_first_chunk::<8>() else {
        return Err(error("truncated member trailer"));
    };
    let mut crc = Crc::new();
    crc.update(&out[start..]);
    let expected_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if crc.sum() != expected_crc {
        return Err(error("CRC-32 of the decompressed data does not match"));
    }
    let expected_len = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    if (out.len() - start) as u32 != expected_len {
        return Err(error(
            "decompressed length does not match the member trailer",
        ));
    }
    Ok(rest)
}

/// Checks a member header and returns what follows it.
fn skip_header(input: &[u8]) -> Result<&[u8]> {
    let Some((fixed, mut rest)) = input.split_first_chunk::<10>() else {
        return Err(error("truncated member header"));
    };
    if fixed[..2] != ID {
        return Err(error("not a gzip member (bad magic bytes)"));
    }
    if fixed[2] != METHOD_DEFLATE {
        return Err(error("unknown compression method in member header"));
    }
    let flags = fixed[3];
    if flags & FLAGS_RESERVED != 0 {
        return Err(error("reserved header flags set"));
    }
    if flags & FLAG_EXTRA != 0 {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(error("truncated extra field"));
        };
        rest = tail
            .get(usize::from(u16::from_le_bytes(*len))..)
            .ok_or_else(|| error("truncated extra field"))?;
    }
    for (flag, what) in [
        (FLAG_NAME, "truncated file name"),
        (FLAG_COMMENT, "truncated comment"),
    ] {
        if flags & flag != 0 {
            let nul = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| error(what))?;
            rest = &rest[nul + 1..];
        }
    }
    if flags & FLAG_HCRC != 0 {
        let header_len = input.len() - rest.len();
        let Some((stored, tail)) = rest.split_first_chunk::<2>() else {
            return Err(error("truncated header CRC"));
        };
        let mut crc = Crc::new();
        crc.update(&input[..header_len]);
        if crc.sum() as u16 != u16::from_le_bytes(*stored) {
            return Err(error("header CRC does not match"));
        }
        rest = tail;
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ (i / 7000) as u8).collect()
    }

    fn ours(data: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        compress(data, &mut out).unwrap();
        out
    }

    #[test]
    fn reads_what_flate2s_gzip_writer_writes_with_every_header_field() {
        let data = sample(70_000);
        let mut enc = flate2::GzBuilder::new()
            .extra(&b"extra bytes"[..])
            .filename("records.bin")
            .comment("from a test")
            .mtime(1_700_000_000)
            .write(Vec::new(), flate2::Compression::best());
        enc.write_all(&data).unwrap();
        let member = enc.finish().unwrap();
        assert_eq!(&decompress(&member, data.len()).unwrap()[..], &data[..]);
    }

    #[test]
    fn what_we_write_is_read_by_flate2s_gzip_reader() {
        let data = sample(50_000);
        let mut back = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&ours(&data)[..]),
            &mut back,
        )
        .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn every_level_is_read_back_and_the_extremes_trade_size() {
        // Text-like input, where the levels differ.
        let data: Vec<u8> = (0..4000)
            .flat_map(|i| {
                format!("{{\"event_id\":\"{i:08}\",\"amount\":{}}}", i * 7 % 1000).into_bytes()
            })
            .collect();
        let mut sizes = Vec::new();
        for level in LEVELS {
            let mut out = BytesMut::new();
            compress_at(&data, &mut out, Some(level)).unwrap();
            assert_eq!(
                &decompress(&out, data.len()).unwrap()[..],
                &data[..],
                "level {level}"
            );
            sizes.push(out.len());
        }
        assert!(
            sizes[8] < sizes[0],
            "level 9 {} vs level 1 {}",
            sizes[8],
            sizes[0]
        );
        let mut default = BytesMut::new();
        compress(&data, &mut default).unwrap();
        assert_eq!(default.len(), sizes[5], "the default is level 6");
        for bad in [0, 10] {
            let e = compress_at(&data, &mut BytesMut::new(), Some(bad)).unwrap_err();
            assert!(e.to_string().contains(&format!("level {bad}")), "{e}");
        }
    }

    #[test]
    fn a_kept_deflate_state_writes_what_a_new_one_writes() {
        // Deflate is deterministic: output made with this thread's kept state (reset after
        // inputs of other sizes and levels) equals output of a state made for it alone.
        let fresh = |data: &[u8], level: u32| {
            let mut d = Compress::new(flate2::Compression::new(level), false);
            let mut v = Vec::with_capacity(data.len() + 1024);
            let status = d.compress_vec(data, &mut v, FlushCompress::Finish).unwrap();
            assert_eq!(status, Status::StreamEnd);
            v
        };
        for (len, level) in [
            (70_000, 6),
            (10, 6),
            (300_000, 6),
            (5_000, 1),
            (5_000, 9),
            (64, 6),
        ] {
            let data = sample(len);
            let mut out = BytesMut::new();
            compress_at(&data, &mut out, Some(level)).unwrap();
            let body = &out[HEADER.len()..out.len() - 8];
            assert_eq!(
                body,
                &fresh(&data, level)[..],
                "{len} bytes at level {level}"
            );
            assert_eq!(&decompress(&out, usize::MAX).unwrap()[..], &data[..]);
        }
    }

    #[test]
    fn compress_appends_after_what_the_buffer_holds() {
        let data = sample(40_000);
        let mut out = BytesMut::from(&b"batch header room"[..]);
        compress(&data, &mut out).unwrap();
        assert_eq!(&out[..17], b"batch header room");
        assert_eq!(&decompress(&out[17..], data.len()).unwrap()[..], &data[..]);
    }

    #[test]
    fn several_members_are_concatenated() {
        let (a, b) = (sample(30_000), sample(5));
        let mut input = ours(&a);
        input.extend_from_slice(&ours(&b));
        input.extend_from_slice(&ours(&[]));
        let back = decompress(&input, a.len() + b.len()).unwrap();
        assert_eq!(&back[..a.len()], &a[..]);
        assert_eq!(&back[a.len()..], &b[..]);
    }

    #[test]
    fn a_lying_length_claim_does_not_matter() {
        // The output is sized from the trailer's length; a wrong claim is caught, a huge one is
        // not believed beyond what the input can justify.
        let data = sample(100_000);
        let good = ours(&data);
        for claim in [0u32, 1, 99_999, u32::MAX] {
            let mut bad = good.clone();
            let n = bad.len();
            bad[n - 4..].copy_from_slice(&claim.to_le_bytes());
            let err = decompress(&bad, usize::MAX).unwrap_err();
            assert!(err.to_string().contains("length does not match"), "{err}");
        }
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let data = sample(20_000);
        let good = ours(&data);
        let mut crc_flipped = good.clone();
        let n = crc_flipped.len();
        crc_flipped[n - 8] ^= 1;
        let err = decompress(&crc_flipped, usize::MAX).unwrap_err();
        assert!(err.to_string().contains("CRC-32"), "{err}");
        for cut in [
            0,
            1,
            9,
            10,
            11,
            good.len() / 2,
            good.len() - 8,
            good.len() - 1,
        ] {
            assert!(
                decompress(&good[..cut], usize::MAX).is_err(),
                "cut at {cut}"
            );
        }
        let mut method = good.clone();
        method[2] = 7;
        assert!(decompress(&method, usize::MAX).is_err());
        let mut reserved = good.clone();
        reserved[3] = 0x20;
        assert!(decompress(&reserved, usize::MAX).is_err());
        let mut hcrc = good.clone();
        hcrc[3] = FLAG_HCRC;
        assert!(decompress(&hcrc, usize::MAX).is_err());
    }

    #[test]
    fn the_limit_holds_exactly() {
        let data = vec![7u8; 300_000];
        let z = ours(&data);
        assert_eq!(decompress(&z, data.len()).unwrap().len(), data.len());
        let err = decompress(&z, data.len() - 1).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::DecompressedTooLarge { codec: "gzip", limit } if limit == data.len() - 1
        ));
    }
}
