//! The literals section of a compressed block: raw, one repeated byte, or Huffman-coded with a
//! tree of its own or the previous block's.

use super::huffman::{self, Table};

const RAW: u8 = 0;
const RLE: u8 = 1;
const COMPRESSED: u8 = 2;

/// The most literals (and bytes of output) one block holds.
const MAX: usize = 128 * 1024;

/// Where a block's literals are: in the block itself (raw), or decoded into the buffer.
pub(super) enum Literals {
    /// `len` bytes of the block from `start`.
    InBlock { start: usize, len: usize },
    /// The first `len` bytes of the decoding buffer.
    Decoded { len: usize },
}

/// Reads the literals section at the start of `block`; returns where the literals are and the
/// bytes the section took. `tree` is the Huffman table in force (replaced by a new one).
pub(super) fn read(
    block: &[u8],
    tree: &mut Option<Table>,
    buf: &mut Vec<u8>,
) -> Result<(Literals, usize), &'static str> {
    let b0 = *block
        .first()
        .ok_or("a block without its literals section")?;
    let kind = b0 & 3;
    let format = (b0 >> 2) & 3;
    let byte = |i: usize| -> Result<u64, &'static str> {
        block
            .get(i)
            .map(|&b| u64::from(b))
            .ok_or("a literals header cut short")
    };
    if kind == RAW || kind == RLE {
        let (size, header) = match format {
            0 | 2 => (u64::from(b0 >> 3), 1),
            1 => (u64::from(b0 >> 4) | byte(1)? << 4, 2),
            _ => (u64::from(b0 >> 4) | byte(1)? << 4 | byte(2)? << 12, 3),
        };
        let size = size as usize;
        if size > MAX {
            return Err("a block with too many literals");
        }
        if kind == RAW {
            if block.len() < header + size {
                return Err("raw literals cut short");
            }
            return Ok((
                Literals::InBlock {
                    start: header,
                    len: size,
                },
                header + size,
            ));
        }
        let value = *block.get(header).ok_or("RLE literals cut short")?;
        buf.clear();
        buf.resize(size, value);
        return Ok((Literals::Decoded { len: size }, header + 1));
    }
    // Huffman-coded: sizes of the regenerated and compressed literals, and the stream count.
    let (regenerated, compressed, header, four) = match format {
        0 | 1 => {
            let v = u64::from(b0) | byte(1)? << 8 | byte(2)? << 16;
            ((v >> 4) & 0x3FF, v >> 14, 3, format == 1)
        }
        2 => {
            let v = u64::from(b0) | byte(1)? << 8 | byte(2)? << 16 | byte(3)? << 24;
            ((v >> 4) & 0x3FFF, v >> 18, 4, true)
        }
        _ => {
            let v =
                u64::from(b0) | byte(1)? << 8 | byte(2)? << 16 | byte(3)? << 24 | byte(4)? << 32;
            ((v >> 4) & 0x3_FFFF, v >> 22, 5, true)
        }
    };
    let (regenerated, compressed) = (regenerated as usize, compressed as usize);
    if regenerated > MAX {
        return Err("a block with too many literals");
    }
    let mut data = block
        .get(header..header + compressed)
        .ok_or("Huffman literals cut short")?;
    if kind == COMPRESSED {
        let (table, used) = huffman::read_table(data)?;
        *tree = Some(table);
        data = &data[used..];
    }
    let table = tree
        .as_ref()
        .ok_or("literals reusing a Huffman tree before any was given")?;
    buf.clear();
    buf.resize(regenerated, 0);
    if four {
        table.decode_four(data, buf)?;
    } else {
        table.decode_stream(data, buf)?;
    }
    Ok((Literals::Decoded { len: regenerated }, header + compressed))
}
