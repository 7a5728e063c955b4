//! Record-batch compression codecs, all in pure Rust.
//!
//! gzip is always available (flate2 on its pure-Rust zlib-rs backend). snappy (`snap`), lz4 (the
//! frame format read and written here, its blocks by `lz4_flex`) and zstd (our own encoder and
//! decoder) sit behind the cargo features of the same names, so a consumer can read what any
//! producer wrote. Decompression is always bounded: data that would expand past the caller's
//! limit is an error, never an allocation.
//!
//! Wire forms follow what the Java client writes and accepts:
//! - gzip: a gzip stream (several concatenated members are accepted);
//! - snappy: the xerial framing the Java client writes; unframed raw snappy (librdkafka's choice for some
//!   versions) is accepted too;
//! - lz4: the LZ4 frame format, independent 64 KiB blocks;
//! - zstd: one Zstandard frame.

use bytes::{Bytes, BytesMut};

use crate::error::{ProtocolError, Result};

/// A compression codec, as stored in the low three bits of a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Compression {
    /// No compression (0).
    #[default]
    None,
    /// gzip (1).
    Gzip,
    /// snappy (2), with the `snappy` feature.
    Snappy,
    /// lz4 (3), with the `lz4` feature.
    Lz4,
    /// zstd (4), with the `zstd` feature.
    Zstd,
}

impl Compression {
    /// Every codec, in id order (whether or not this build has it: see [`is_available`](Self::is_available)).
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec id in batch attributes.
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with attribute id `id`.
    pub fn from_id(id: u8) -> Result<Self> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            codec => Err(ProtocolError::UnsupportedCompression {
                codec,
                reason: "unknown codec id",
            }),
        }
    }

    /// The codec's name as Kafka's `compression.type` spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Parses a `compression.type` value.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    /// True when this build can compress and decompress with the codec.
    pub const fn is_available(self) -> bool {
        match self {
            Compression::None | Compression::Gzip => true,
            Compression::Snappy => cfg!(feature = "snappy"),
            Compression::Lz4 => cfg!(feature = "lz4"),
            Compression::Zstd => cfg!(feature = "zstd"),
        }
    }

    /// Compresses `input`, appending the result to `out`.
    pub fn compress(self, input: &[u8], out: &mut BytesMut) -> Result<()> {
        match self {
            Compression::None => {
                out.extend_from_slice(input);
                Ok(())
            }
            Compression::Gzip => gzip::compress(input, out),
            Compression::Snappy => snappy::compress(input, out),
            Compression::Lz4 => lz4::compress(input, out),
            Compression::Zstd => zstd::compress(input, out),
        }
    }

    /// Compresses `input` at `level`, appending the result to `out`. Only gzip has levels here
    /// (1 to 9, `compression.gzip.level` of KIP-390); the other codecs compress as
    /// [`compress`](Self::compress) does and ignore it. `None` is the codec's default.
    pub fn compress_at(self, input: &[u8], out: &mut BytesMut, level: Option<u32>) -> Result<()> {
        match self {
            Compression::Gzip => gzip::compress_at(input, out, level),
            _ => self.compress(input, out),
        }
    }

    /// Decompresses `input`, failing with [`ProtocolError::DecompressedTooLarge`] if the result would
    /// exceed `limit` bytes.
    pub fn decompress(self, input: &[u8], limit: usize) -> Result<Bytes> {
        match self {
            Compression::None => {
                if input.len() > limit {
                    return Err(ProtocolError::DecompressedTooLarge {
                        codec: self.name(),
                        limit,
                    });
                }
                Ok(Bytes::copy_from_slice(input))
            }
            Compression::Gzip => gzip::decompress(input, limit),
            Compression::Snappy => snappy::decompress(input, limit),
            Compression::Lz4 => lz4::decompress(input, limit),
            Compression::Zstd => zstd::decompress(input, limit),
        }
    }
}

fn codec_error(codec: &'static str, e: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::Compression {
        codec,
        message: e.to_string(),
    }
}

mod gzip;
#[cfg(any(feature = "lz4", feature = "zstd"))]
mod xxhash;

#[cfg(not(feature = "snappy"))]
mod snappy {
    use super::*;
    pub fn compress(_: &[u8], _: &mut BytesMut) -> Result<()> {
        Err(missing(
            Compression::Snappy,
            "built without the `snappy` feature",
        ))
    }
    pub fn decompress(_: &[u8], _: usize) -> Result<Bytes> {
        Err(missing(
            Compression::Snappy,
            "built without the `snappy` feature",
        ))
    }
}

#[cfg(not(feature = "lz4"))]
mod lz4 {
    use super::*;
    pub fn compress(_: &[u8], _: &mut BytesMut) -> Result<()> {
        Err(missing(Compression::Lz4, "built without the `lz4` feature"))
    }
    pub fn decompress(_: &[u8], _: usize) -> Result<Bytes> {
        Err(missing(Compression::Lz4, "built without the `lz4` feature"))
    }
}

#[cfg(not(feature = "zstd"))]
mod zstd {
    use super::*;
    pub fn compress(_: &[u8], _: &mut BytesMut) -> Result<()> {
        Err(missing(
            Compression::Zstd,
            "built without the `zstd` feature",
        ))
    }
    pub fn decompress(_: &[u8], _: usize) -> Result<Bytes> {
        Err(missing(
            Compression::Zstd,
            "built without the `zstd` feature",
        ))
    }
}

#[allow(dead_code)]
fn missing(codec: Compression, reason: &'static str) -> ProtocolError {
    ProtocolError::UnsupportedCompression {
        codec: codec.id(),
        reason,
    }
}

#[cfg(feature = "snappy")]
mod snappy {
    //! Snappy in the xerial stream framing the Java client uses: an 8-byte magic, two 4-byte
    //! version words, then blocks of (4-byte compressed length, raw snappy block).
    use super::*;
    use bytes::BufMut;

    const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
    /// The Java client's block size.
    const BLOCK: usize = 32 * 1024;

    pub fn compress(input: &[u8], out: &mut BytesMut) -> Result<()> {
        out.extend_from_slice(&MAGIC);
        out.put_i32(1); // version
        out.put_i32(1); // minimum compatible version
        let mut enc = snap::raw::Encoder::new();
        let mut block = vec![0u8; snap::raw::max_compress_len(BLOCK)];
        for chunk in input.chunks(BLOCK) {
            let n = enc
                .compress(chunk, &mut block)
                .map_err(|e| codec_error("snappy", e))?;
            let len = i32::try_from(n).map_err(|e| codec_error("snappy", e))?;
            out.put_i32(len);
            out.extend_from_slice(&block[..n]);
        }
        Ok(())
    }

    pub fn decompress(input: &[u8], limit: usize) -> Result<Bytes> {
        let mut dec = snap::raw::Decoder::new();
        let mut out = Vec::new();
        let mut append = |block: &[u8], out: &mut Vec<u8>| -> Result<()> {
            let n = snap::raw::decompress_len(block).map_err(|e| codec_error("snappy", e))?;
            if n > limit.saturating_sub(out.len()) {
                return Err(ProtocolError::DecompressedTooLarge {
                    codec: "snappy",
                    limit,
                });
            }
            let start = out.len();
            out.resize(start + n, 0);
            dec.decompress(block, &mut out[start..])
                .map_err(|e| codec_error("snappy", e))?;
            Ok(())
        };
        match input.strip_prefix(&MAGIC[..]) {
            None => append(input, &mut out)?,
            Some(rest) => {
                // Skip the two version words.
                let mut rest = rest
                    .get(8..)
                    .ok_or_else(|| codec_error("snappy", "truncated xerial header"))?;
                while !rest.is_empty() {
                    let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                        return Err(codec_error("snappy", "truncated xerial block length"));
                    };
                    let len = usize::try_from(i32::from_be_bytes(*len))
                        .map_err(|_| codec_error("snappy", "negative xerial block length"))?;
                    let block = tail
                        .get(..len)
                        .ok_or_else(|| codec_error("snappy", "truncated xerial block"))?;
                    append(block, &mut out)?;
                    rest = &tail[len..];
                }
            }
        }
        Ok(Bytes::from(out))
    }
}

#[cfg(feature = "lz4")]
mod lz4;

#[cfg(feature = "zstd")]
mod zstd;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 7000) as u8)
            .collect()
    }

    #[test]
    fn every_available_codec_round_trips() {
        let data = sample();
        for codec in Compression::ALL.into_iter().filter(|c| c.is_available()) {
            let mut out = BytesMut::new();
            codec.compress(&data, &mut out).unwrap();
            let back = codec.decompress(&out, data.len()).unwrap();
            assert_eq!(&back[..], &data[..], "{codec:?}");
        }
    }

    #[test]
    fn decompression_is_bounded() {
        let data = vec![0u8; 1 << 20];
        for codec in Compression::ALL.into_iter().filter(|c| c.is_available()) {
            let mut out = BytesMut::new();
            codec.compress(&data, &mut out).unwrap();
            let err = codec.decompress(&out, 1000).unwrap_err();
            assert!(
                matches!(err, ProtocolError::DecompressedTooLarge { limit: 1000, .. }),
                "{codec:?}: {err}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in Compression::ALL
            .into_iter()
            .filter(|c| *c != Compression::None && c.is_available())
        {
            for junk in [
                &b""[..],
                b"\x00",
                b"\xff\xff\xff\xff\xff\xff\xff\xff\xff",
                b"\x82SNAPPY\x00\x00\x00\x00\x01",
            ] {
                let _ = codec.decompress(junk, 1 << 20);
            }
            assert!(
                codec
                    .decompress(b"definitely not compressed data", 1 << 20)
                    .is_err(),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn names_and_ids_round_trip() {
        for codec in Compression::ALL {
            assert_eq!(Compression::from_id(codec.id()).unwrap(), codec);
            assert_eq!(Compression::from_name(codec.name()), Some(codec));
        }
        assert!(Compression::from_id(5).is_err());
    }
}
