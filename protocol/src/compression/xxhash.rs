//! xxHash, the checksums of the compression frames: XXH64 for zstd (the low 32 bits of it, seed
//! 0), XXH32 for lz4 (the frame header's check byte, optional block and content checksums).
// XXH64 serves zstd and XXH32 lz4: a build with one codec leaves the other unused.
#![cfg_attr(not(all(feature = "lz4", feature = "zstd")), allow(dead_code))]

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

#[inline(always)]
fn round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

#[inline(always)]
fn merge(acc: u64, v: u64) -> u64 {
    (acc ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4)
}

fn u64_at(data: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[i..i + 8]);
    u64::from_le_bytes(b)
}

/// XXH64 of `data` with seed 0.
pub(crate) fn xxh64(data: &[u8]) -> u64 {
    let mut i = 0;
    let mut h = if data.len() >= 32 {
        let mut v = [P1.wrapping_add(P2), P2, 0, 0u64.wrapping_sub(P1)];
        while i + 32 <= data.len() {
            for (lane, acc) in v.iter_mut().enumerate() {
                *acc = round(*acc, u64_at(data, i + lane * 8));
            }
            i += 32;
        }
        let mut h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
        for acc in v {
            h = merge(h, acc);
        }
        h
    } else {
        P5
    };
    h = h.wrapping_add(data.len() as u64);
    while i + 8 <= data.len() {
        h ^= round(0, u64_at(data, i));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        i += 8;
    }
    if i + 4 <= data.len() {
        let mut b = [0u8; 4];
        b.copy_from_slice(&data[i..i + 4]);
        h ^= u64::from(u32::from_le_bytes(b)).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        i += 4;
    }
    for &byte in &data[i..] {
        h ^= u64::from(byte).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

const Q1: u32 = 0x9E37_79B1;
const Q2: u32 = 0x85EB_CA77;
const Q3: u32 = 0xC2B2_AE3D;
const Q4: u32 = 0x27D4_EB2F;
const Q5: u32 = 0x1656_67B1;

#[inline(always)]
fn round32(acc: u32, lane: u32) -> u32 {
    acc.wrapping_add(lane.wrapping_mul(Q2))
        .rotate_left(13)
        .wrapping_mul(Q1)
}

fn u32_at(data: &[u8], i: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&data[i..i + 4]);
    u32::from_le_bytes(b)
}

/// XXH32 of `data` with seed 0.
pub(crate) fn xxh32(data: &[u8]) -> u32 {
    let mut i = 0;
    let mut h = if data.len() >= 16 {
        let mut v = [Q1.wrapping_add(Q2), Q2, 0, 0u32.wrapping_sub(Q1)];
        while i + 16 <= data.len() {
            for (lane, acc) in v.iter_mut().enumerate() {
                *acc = round32(*acc, u32_at(data, i + lane * 4));
            }
            i += 16;
        }
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        Q5
    };
    h = h.wrapping_add(data.len() as u32);
    while i + 4 <= data.len() {
        h = h.wrapping_add(u32_at(data, i).wrapping_mul(Q3));
        h = h.rotate_left(17).wrapping_mul(Q4);
        i += 4;
    }
    for &byte in &data[i..] {
        h = h.wrapping_add(u32::from(byte).wrapping_mul(Q5));
        h = h.rotate_left(11).wrapping_mul(Q1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(Q2);
    h ^= h >> 13;
    h = h.wrapping_mul(Q3);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_input_hashes_to_the_published_values() {
        assert_eq!(xxh64(b""), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh32(b""), 0x02CC_5D05);
    }
}
