//! Frames written by the reference libraries' command line tools, read by kbus's own decoders.
//!
//! zstd (the `zstd` tool, libzstd 1.5): every level's choices (FSE-coded and repeated tables,
//! literals with a tree of their own or the previous block's, one or four streams, raw and RLE
//! blocks, long matches), with and without the content size and the checksum, and several frames
//! in a row. lz4 (the `lz4` tool, liblz4 1.9): independent and linked blocks, 64 KiB and 4 MiB
//! blocks, the content size, block and content checksums.
//!
//! `input()` regenerates what the files hold; `tests/data/*/README.md` say how they were made.

use kbus_protocol::compression::Compression;

/// 144,000 bytes (two blocks): text, a run of one byte, text again, incompressible bytes, and
/// text that repeats the first part from far back.
fn input() -> Vec<u8> {
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
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut v = Vec::with_capacity(144_000);
    while v.len() < 60_000 {
        let r = next();
        if r % 3 == 0 {
            v.extend_from_slice(format!("{} ", r % 100_000).as_bytes());
        } else {
            v.extend_from_slice(WORDS[(r % 12) as usize].as_bytes());
            v.push(b' ');
        }
    }
    v.truncate(60_000);
    v.resize(80_000, b'=');
    while v.len() < 110_000 {
        v.extend_from_slice(format!("id={} ", next() % 1000).as_bytes());
    }
    v.truncate(110_000);
    while v.len() < 114_000 {
        v.push((next() >> 24) as u8);
    }
    let head = v[..30_000].to_vec();
    v.extend_from_slice(&head);
    v
}

fn frame(name: &str) -> Vec<u8> {
    let dir = if name.ends_with(".lz4") {
        "lz4"
    } else {
        "zstd"
    };
    let path = format!("{}/tests/data/{dir}/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_level_of_the_reference_encoder_decodes_to_the_input() {
    let input = input();
    assert_eq!(input.len(), 144_000);
    for name in ["level1.zst", "level3.zst", "level9.zst", "level19.zst"] {
        let out = Compression::Zstd
            .decompress(&frame(name), input.len())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(out[..] == input[..], "{name} decodes to other bytes");
    }
}

#[test]
fn frames_without_content_size_or_checksum_and_frames_in_a_row_decode() {
    let input = input();
    // Streamed from stdin: no content size in the header, a window descriptor instead.
    let out = Compression::Zstd
        .decompress(&frame("streamed-no-checksum.zst"), input.len())
        .unwrap();
    assert!(out[..] == input[..]);
    // Two frames, as `cat a.zst b.zst` gives: the outputs one after the other.
    let mut two = frame("level1.zst");
    two.extend_from_slice(&frame("small.zst"));
    let out = Compression::Zstd.decompress(&two, 1 << 20).unwrap();
    assert_eq!(out.len(), input.len() + 1000);
    assert!(out[..input.len()] == input[..]);
    assert!(out[input.len()..] == input[..1000]);
}

#[test]
fn a_changed_byte_or_a_tight_limit_is_an_error_not_a_panic() {
    let input = input();
    let good = frame("level3.zst");
    assert!(Compression::Zstd
        .decompress(&good, input.len() - 1)
        .is_err());
    // Flip each byte in turn (a sample of positions): never a panic, and never the input back
    // unnoticed (the checksum catches what decodes).
    for i in (0..good.len()).step_by(97) {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        if let Ok(out) = Compression::Zstd.decompress(&bad, input.len()) {
            assert!(
                out[..] == input[..],
                "byte {i} changed the output unnoticed"
            );
        }
    }
}

#[test]
fn lz4_frames_of_every_kind_decode_to_the_input() {
    let input = &input()[..80_000];
    for name in [
        "default.lz4",
        "linked-64k-sized.lz4",
        "level9-linked-block-checksums.lz4",
    ] {
        let out = Compression::Lz4
            .decompress(&frame(name), input.len())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(out[..] == input[..], "{name} decodes to other bytes");
        assert!(Compression::Lz4
            .decompress(&frame(name), input.len() - 1)
            .is_err());
        // A changed byte: an error (every file has a checksum), or the same bytes.
        let mut bad = frame(name);
        for i in (7..bad.len()).step_by(89) {
            bad[i] ^= 0x10;
            if let Ok(out) = Compression::Lz4.decompress(&bad, input.len()) {
                assert!(
                    out[..] == input[..],
                    "{name}: byte {i} changed the output unnoticed"
                );
            }
            bad[i] ^= 0x10;
        }
    }
}
