//! The sequences section of a compressed block: each sequence is (literals to copy, offset,
//! match length), coded as three FSE-coded symbols plus extra bits. Each symbol kind takes the
//! format's predefined table, a single repeated symbol, or a table of its own described in the
//! block, whichever suits the block.

use super::super::tables::{
    LL_BASE, LL_BITS, LL_DEFAULT, LL_DEFAULT_LOG, ML_BASE, ML_BITS, ML_DEFAULT, ML_DEFAULT_LOG,
    OF_DEFAULT, OF_DEFAULT_LOG,
};
use super::bits::BitWriter;
use super::fse;
use std::sync::OnceLock;

/// One sequence: `literals` bytes from the literals section, then `length` bytes copied from
/// `offset_value` back (an offset + 3, or 1 for the most recent offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sequence {
    pub(super) literals: u32,
    pub(super) length: u32,
    pub(super) offset_value: u32,
}

/// Codes of the literal lengths below 64 and of the match lengths (less 3) below 128: beyond
/// those, a code is the position of the highest bit plus a constant.
const LL_SMALL: [u8; 64] = small_codes::<64>(&LL_BASE, 16);
const ML_SMALL: [u8; 128] = small_codes::<128>(&ML_BASE, 32);

const fn small_codes<const N: usize>(bases: &[u32], first: u8) -> [u8; N] {
    let mut codes = [0u8; N];
    let mut v = 0;
    while v < N {
        if v < first as usize {
            codes[v] = v as u8;
        } else {
            let mut i = 0;
            while i + 1 < bases.len() && bases[i + 1] as usize <= v {
                i += 1;
            }
            codes[v] = first + i as u8;
        }
        v += 1;
    }
    codes
}

#[inline(always)]
fn ll_code(literals: u32) -> u8 {
    if literals < 64 {
        LL_SMALL[literals as usize]
    } else {
        (literals.ilog2() + 19) as u8
    }
}

#[inline(always)]
fn ml_code(length: u32) -> u8 {
    let base = length - 3;
    if base < 128 {
        ML_SMALL[base as usize]
    } else {
        (base.ilog2() + 36) as u8
    }
}

#[inline]
fn ll_extra(code: u8, literals: u32) -> (u64, u32) {
    if code < 16 {
        (0, 0)
    } else {
        let i = usize::from(code - 16);
        (u64::from(literals - LL_BASE[i]), LL_BITS[i])
    }
}

#[inline]
fn ml_extra(code: u8, length: u32) -> (u64, u32) {
    if code < 32 {
        (0, 0)
    } else {
        let i = usize::from(code - 32);
        (u64::from(length - 3 - ML_BASE[i]), ML_BITS[i])
    }
}

fn ll_default() -> &'static fse::Table {
    static TABLE: OnceLock<fse::Table> = OnceLock::new();
    TABLE.get_or_init(|| fse::Table::new(&LL_DEFAULT, LL_DEFAULT_LOG))
}

fn ml_default() -> &'static fse::Table {
    static TABLE: OnceLock<fse::Table> = OnceLock::new();
    TABLE.get_or_init(|| fse::Table::new(&ML_DEFAULT, ML_DEFAULT_LOG))
}

fn of_default() -> &'static fse::Table {
    static TABLE: OnceLock<fse::Table> = OnceLock::new();
    TABLE.get_or_init(|| fse::Table::new(&OF_DEFAULT, OF_DEFAULT_LOG))
}

/// The table one kind of symbol is coded with in this block.
enum Coder {
    Fitted(fse::Table),
    Predefined(&'static fse::Table),
}

impl Coder {
    fn table(&self) -> &fse::Table {
        match self {
            Coder::Fitted(t) => t,
            Coder::Predefined(t) => t,
        }
    }
}

const PREDEFINED: u8 = 0;
const MODE_RLE: u8 = 1;
const COMPRESSED: u8 = 2;

/// Chooses the coding of `codes` and appends its table description (if any) to `tables`: one
/// symbol repeated is RLE; from 64 sequences on (or with a symbol the predefined table lacks) a
/// table fitted to the block pays for its description; below, the predefined table.
fn choose(
    codes: &[u8],
    alphabet: usize,
    default: fn() -> &'static fse::Table,
    max_log: u32,
    tables: &mut Vec<u8>,
) -> (u8, Coder) {
    let mut counts = [0u32; 64];
    let counts = &mut counts[..alphabet];
    for &c in codes {
        counts[c as usize] += 1;
    }
    let distinct = counts.iter().filter(|&&c| c > 0).count();
    let fits_default = counts[default().symbols()..].iter().all(|&c| c == 0);
    if distinct == 1 && (codes.len() > 2 || !fits_default) {
        tables.push(codes[0]);
        return (MODE_RLE, Coder::Fitted(fse::Table::rle(codes[0])));
    }
    if distinct >= 2 && (codes.len() >= 64 || !fits_default) {
        let log = fse::table_log(codes.len(), distinct, 5, max_log);
        let used = counts.iter().rposition(|&c| c > 0).unwrap_or(0) + 1;
        let norm = fse::normalize(&counts[..used], codes.len() as u32, log);
        tables.extend_from_slice(&fse::describe(&norm, log));
        return (COMPRESSED, Coder::Fitted(fse::Table::new(&norm, log)));
    }
    (PREDEFINED, Coder::Predefined(default()))
}

/// Appends the sequences section for `seqs` to `out`.
pub(super) fn write(seqs: &[Sequence], out: &mut Vec<u8>) {
    let n = seqs.len();
    match n {
        0 => {
            out.push(0);
            return;
        }
        1..=127 => out.push(n as u8),
        128..=0x7EFF => out.extend_from_slice(&[(n >> 8) as u8 + 0x80, n as u8]),
        _ => {
            out.push(0xFF);
            out.extend_from_slice(&((n - 0x7F00) as u16).to_le_bytes());
        }
    }
    let mut ll = Vec::with_capacity(n);
    let mut ml = Vec::with_capacity(n);
    let mut of = Vec::with_capacity(n);
    for s in seqs {
        ll.push(ll_code(s.literals));
        ml.push(ml_code(s.length));
        of.push(s.offset_value.ilog2() as u8);
    }
    let mut tables = Vec::new();
    let (ll_mode, ll_coder) = choose(&ll, 36, ll_default, 9, &mut tables);
    let (of_mode, of_coder) = choose(&of, 32, of_default, 8, &mut tables);
    let (ml_mode, ml_coder) = choose(&ml, 53, ml_default, 9, &mut tables);
    out.push(ll_mode << 6 | of_mode << 4 | ml_mode << 2);
    out.extend_from_slice(&tables);

    // Sequences go in reverse: the decoder reads the first one first.
    let (llt, oft, mlt) = (ll_coder.table(), of_coder.table(), ml_coder.table());
    let mut w = BitWriter::with_capacity(n * 4);
    let last = n - 1;
    let mut ml_state = mlt.start(ml[last]);
    let mut of_state = oft.start(of[last]);
    let mut ll_state = llt.start(ll[last]);
    put_extras(&mut w, &seqs[last], ll[last], ml[last], of[last]);
    for i in (0..last).rev() {
        // At most 9 + 9 + 8 state bits over the 7 a flush leaves.
        oft.encode(&mut w, &mut of_state, of[i]);
        mlt.encode(&mut w, &mut ml_state, ml[i]);
        llt.encode(&mut w, &mut ll_state, ll[i]);
        w.flush();
        put_extras(&mut w, &seqs[i], ll[i], ml[i], of[i]);
    }
    mlt.finish(&mut w, ml_state);
    oft.finish(&mut w, of_state);
    llt.finish(&mut w, ll_state);
    w.flush();
    out.extend_from_slice(&w.finish_backward());
}

/// A sequence's extra bits: literal length's and match length's (at most 16 each, so pushed
/// together), flushed, then the offset's (at most 26 for the 8 MiB window), flushed.
#[inline(always)]
fn put_extras(w: &mut BitWriter, s: &Sequence, ll: u8, ml: u8, of: u8) {
    let (ll_value, ll_bits) = ll_extra(ll, s.literals);
    let (ml_value, ml_bits) = ml_extra(ml, s.length);
    w.add(ll_value | ml_value << ll_bits, ll_bits + ml_bits);
    w.add(u64::from(s.offset_value), u32::from(of));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_codes_and_their_extra_bits_give_back_the_length() {
        // A block holds at most 128 KiB, so neither goes past it.
        for literals in 0..128 * 1024u32 {
            let code = ll_code(literals);
            assert!(code <= 35);
            let (extra, bits) = ll_extra(code, literals);
            assert!(extra < 1 << bits, "{literals}");
            let base = if code < 16 {
                u32::from(code)
            } else {
                LL_BASE[usize::from(code - 16)]
            };
            assert_eq!(base + extra as u32, literals);
        }
        for length in 3..=128 * 1024u32 {
            let code = ml_code(length);
            assert!(code <= 52);
            let (extra, bits) = ml_extra(code, length);
            assert!(extra < 1 << bits, "{length}");
            let base = if code < 32 {
                u32::from(code)
            } else {
                ML_BASE[usize::from(code - 32)]
            };
            assert_eq!(base + extra as u32 + 3, length);
        }
    }
}
