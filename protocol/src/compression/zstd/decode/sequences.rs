//! The sequences section of a compressed block, decoded and carried out at once: each sequence
//! copies literals to the output, then a match from the output already written in this frame.
//! Its three symbol kinds each take the predefined table, one repeated symbol, a table described
//! in the block, or the previous block's.

use std::borrow::Cow;
use std::sync::OnceLock;

use super::super::tables::{
    LL_BASE, LL_BITS, LL_DEFAULT, LL_DEFAULT_LOG, ML_BASE, ML_BITS, ML_DEFAULT, ML_DEFAULT_LOG,
    OF_DEFAULT, OF_DEFAULT_LOG,
};
use super::bits::BackBits;
use super::{fse, Fail, BLOCK};

/// A state of a sequence table, with its symbol already turned into the value it stands for:
/// `base` plus the next `extra` bits of the stream.
#[derive(Clone, Copy, Default, Debug)]
struct Entry {
    base: u32,
    extra: u8,
    bits: u8,
    next: u16,
}

/// A decoding table of one symbol kind.
#[derive(Clone, Debug)]
pub(super) struct Table {
    log: u32,
    entries: Vec<Entry>,
}

#[derive(Clone, Copy)]
enum Kind {
    LiteralLength,
    Offset,
    MatchLength,
}

impl Kind {
    fn max_symbol(self) -> usize {
        match self {
            Kind::LiteralLength => 35,
            Kind::Offset => 31,
            Kind::MatchLength => 52,
        }
    }

    fn max_log(self) -> u32 {
        match self {
            Kind::LiteralLength | Kind::MatchLength => 9,
            Kind::Offset => 8,
        }
    }

    /// The base value and extra bits of `symbol`.
    fn value(self, symbol: u8) -> Result<(u32, u8), &'static str> {
        let s = usize::from(symbol);
        if s > self.max_symbol() {
            return Err("a sequence code out of range");
        }
        Ok(match self {
            Kind::LiteralLength if s < 16 => (s as u32, 0),
            Kind::LiteralLength => (LL_BASE[s - 16], LL_BITS[s - 16] as u8),
            Kind::MatchLength if s < 32 => (s as u32 + 3, 0),
            Kind::MatchLength => (ML_BASE[s - 32] + 3, ML_BITS[s - 32] as u8),
            Kind::Offset => (1u32 << s, symbol),
        })
    }

    fn table(self, states: &[fse::Entry], log: u32) -> Result<Table, &'static str> {
        let entries = states
            .iter()
            .map(|e| {
                let (base, extra) = self.value(e.symbol)?;
                Ok(Entry {
                    base,
                    extra,
                    bits: e.bits,
                    next: e.base,
                })
            })
            .collect::<Result<Vec<_>, &'static str>>()?;
        Ok(Table { log, entries })
    }

    fn predefined(self) -> &'static Table {
        static TABLES: OnceLock<[Table; 3]> = OnceLock::new();
        let tables = TABLES.get_or_init(|| {
            let make = |kind: Kind, norm: &[i16], log: u32| {
                fse::build(norm, log)
                    .and_then(|states| kind.table(&states, log))
                    .expect("the predefined tables are valid")
            };
            [
                make(Kind::LiteralLength, &LL_DEFAULT, LL_DEFAULT_LOG),
                make(Kind::Offset, &OF_DEFAULT, OF_DEFAULT_LOG),
                make(Kind::MatchLength, &ML_DEFAULT, ML_DEFAULT_LOG),
            ]
        });
        &tables[self as usize]
    }

    /// Reads this kind's table in `mode` from the start of `data` into `slot`; returns the bytes
    /// it took.
    fn read(
        self,
        mode: u8,
        data: &[u8],
        slot: &mut Option<Cow<'static, Table>>,
    ) -> Result<usize, &'static str> {
        match mode {
            0 => {
                *slot = Some(Cow::Borrowed(self.predefined()));
                Ok(0)
            }
            1 => {
                let symbol = *data.first().ok_or("a sequence table cut short")?;
                let (base, extra) = self.value(symbol)?;
                let entry = Entry {
                    base,
                    extra,
                    bits: 0,
                    next: 0,
                };
                *slot = Some(Cow::Owned(Table {
                    log: 0,
                    entries: vec![entry],
                }));
                Ok(1)
            }
            2 => {
                let (norm, log, used) =
                    fse::read_description(data, self.max_symbol(), self.max_log())?;
                let states = fse::build(&norm, log)?;
                *slot = Some(Cow::Owned(self.table(&states, log)?));
                Ok(used)
            }
            _ => match slot {
                Some(_) => Ok(0),
                None => Err("a sequence table repeated before any was given"),
            },
        }
    }
}

/// What a frame's blocks hand on to the next: the sequence tables and the recent offsets.
pub(super) struct FrameState {
    /// The tables in force: the predefined ones borrowed, not copied per block.
    ll: Option<Cow<'static, Table>>,
    of: Option<Cow<'static, Table>>,
    ml: Option<Cow<'static, Table>>,
    reps: [u32; 3],
    /// The block's sequences as (literals, offset, match length), decoded before they are
    /// carried out.
    decoded: Vec<[u32; 3]>,
}

impl FrameState {
    pub(super) fn new() -> Self {
        FrameState {
            ll: None,
            of: None,
            ml: None,
            reps: [1, 4, 8],
            decoded: Vec::new(),
        }
    }
}

/// Bytes of the output buffer past the block's end that copies may overrun: they copy in
/// 16-byte pieces, and what they write past a sequence's end is overwritten by the next.
pub(super) const SLACK: usize = 32;

/// Where a block's output goes: appended to `out`, whose bytes from `frame_start` are this
/// frame's output so far (which matches may copy from), up to `end`, the caller's bound (its
/// limit, or the frame's declared size); `limited` says whether going past it means the output
/// is too large (else corrupt).
pub(super) struct Output<'a> {
    pub(super) out: &'a mut Vec<u8>,
    pub(super) frame_start: usize,
    pub(super) end: usize,
    pub(super) limited: bool,
}

/// Decodes the sequences section `section` and carries out its sequences with `literals`,
/// appending the block's output.
///
/// The sequences are decoded first, which gives the block's exact size: the output grows by
/// that (and [`SLACK`] for the copies to overrun, cut off again) before they are carried out.
pub(super) fn execute(
    section: &[u8],
    literals: &[u8],
    state: &mut FrameState,
    output: Output<'_>,
) -> Result<(), Fail> {
    let Output {
        out,
        frame_start,
        end: bound,
        limited,
    } = output;
    let block_start = out.len();
    let block_end = (block_start + BLOCK).min(bound);
    let too_much = |end: usize| {
        if end <= block_start + BLOCK {
            if limited {
                Fail::TooLarge
            } else {
                Fail::Corrupt("a frame longer than its declared size")
            }
        } else {
            Fail::Corrupt("a block longer than the format allows")
        }
    };
    let b0 = *section
        .first()
        .ok_or("a block without its sequences section")?;
    let byte = |i: usize| -> Result<usize, &'static str> {
        section
            .get(i)
            .map(|&b| usize::from(b))
            .ok_or("a sequences header cut short")
    };
    let (count, mut at) = match b0 {
        0..=127 => (usize::from(b0), 1),
        128..=254 => ((usize::from(b0) - 128) << 8 | byte(1)?, 2),
        255 => (byte(1)? | byte(2)? << 8 | 0x7F00, 3),
    };
    state.decoded.clear();
    // Literals and match bytes of all sequences.
    let (mut lit_total, mut match_total) = (0usize, 0usize);
    if count > 0 {
        let modes = byte(at)? as u8;
        at += 1;
        if modes & 3 != 0 {
            return Err(Fail::Corrupt("a sequences header with reserved bits set"));
        }
        at += Kind::LiteralLength.read(modes >> 6, &section[at..], &mut state.ll)?;
        at += Kind::Offset.read((modes >> 4) & 3, &section[at..], &mut state.of)?;
        at += Kind::MatchLength.read((modes >> 2) & 3, &section[at..], &mut state.ml)?;
        let (Some(ll), Some(of), Some(ml)) = (&state.ll, &state.of, &state.ml) else {
            return Err(Fail::Corrupt("a sequence table missing"));
        };
        let mut bits = BackBits::new(&section[at..])?;
        let (ll_mask, of_mask, ml_mask) = (
            ll.entries.len() - 1,
            of.entries.len() - 1,
            ml.entries.len() - 1,
        );
        let mut ll_state = bits.read(ll.log) as usize;
        let mut of_state = bits.read(of.log) as usize;
        let mut ml_state = bits.read(ml.log) as usize;
        let reps = &mut state.reps;
        let decoded = &mut state.decoded;
        decoded.reserve(count);
        for i in 0..count {
            let lle = ll.entries[ll_state & ll_mask];
            let ofe = of.entries[of_state & of_mask];
            let mle = ml.entries[ml_state & ml_mask];
            // A refill gives 56 bits: the offset's extra bits take up to 31, the lengths' up to
            // 16 each (another refill when they need it), the three state updates 26.
            bits.refill();
            let offset_value = ofe.base + bits.read_fast(u32::from(ofe.extra)) as u32;
            if ofe.extra + mle.extra + lle.extra > 25 {
                bits.refill();
            }
            let length = (mle.base + bits.read_fast(u32::from(mle.extra)) as u32) as usize;
            let lit_len = (lle.base + bits.read_fast(u32::from(lle.extra)) as u32) as usize;
            if i + 1 < count {
                bits.refill();
                ll_state = usize::from(lle.next) + bits.read_fast(u32::from(lle.bits)) as usize;
                ml_state = usize::from(mle.next) + bits.read_fast(u32::from(mle.bits)) as usize;
                of_state = usize::from(ofe.next) + bits.read_fast(u32::from(ofe.bits)) as usize;
            }
            let offset = if offset_value > 3 {
                let offset = offset_value - 3;
                *reps = [offset, reps[0], reps[1]];
                offset
            } else {
                match offset_value + u32::from(lit_len == 0) {
                    1 => reps[0],
                    2 => {
                        reps.swap(0, 1);
                        reps[0]
                    }
                    3 => {
                        *reps = [reps[2], reps[0], reps[1]];
                        reps[0]
                    }
                    _ => {
                        *reps = [reps[0].wrapping_sub(1), reps[0], reps[1]];
                        reps[0]
                    }
                }
            };
            decoded.push([lit_len as u32, offset, length as u32]);
            lit_total = lit_total.saturating_add(lit_len);
            match_total = match_total.saturating_add(length);
        }
        if bits.left() != 0 {
            return Err(Fail::Corrupt("a sequences bit stream of the wrong length"));
        }
    }
    if lit_total > literals.len() {
        return Err(Fail::Corrupt(
            "sequences asking for more literals than the block has",
        ));
    }
    let end = block_start
        .saturating_add(literals.len())
        .saturating_add(match_total);
    if end > block_end {
        return Err(too_much(end));
    }
    out.resize(end + SLACK, 0);
    let written = carry_out(&state.decoded, literals, out, block_start, frame_start);
    out.truncate(*written.as_ref().unwrap_or(&block_start));
    written.map(|_| ())
}

/// Carries out `sequences` onto `out` from `pos` (sized for all of them, with [`SLACK`] more),
/// then the literals after the last; returns where the output ends. A separate loop from the
/// decoding: two short loops keep their values in registers where one long one spilled them.
fn carry_out(
    sequences: &[[u32; 3]],
    literals: &[u8],
    out: &mut [u8],
    mut pos: usize,
    frame_start: usize,
) -> Result<usize, Fail> {
    let mut lit_at = 0;
    for &[lit_len, offset, length] in sequences {
        let (lit_len, offset, length) = (lit_len as usize, offset as usize, length as usize);
        copy_literals(out, pos, literals, lit_at, lit_len);
        lit_at += lit_len;
        pos += lit_len;
        if offset == 0 || offset > pos - frame_start {
            return Err(Fail::Corrupt("a match reaching before the frame's start"));
        }
        copy_match(out, pos, offset, length);
        pos += length;
    }
    let rest = &literals[lit_at..];
    out[pos..pos + rest.len()].copy_from_slice(rest);
    Ok(pos + rest.len())
}

/// Copies `len` literals from `literals[at..]` to `buf[pos..]` (both in bounds; `buf` has
/// [`SLACK`] bytes beyond): short runs as one 16-byte piece when the source has the bytes.
#[inline(always)]
fn copy_literals(buf: &mut [u8], pos: usize, literals: &[u8], at: usize, len: usize) {
    if len <= 16 {
        if let Some(src) = literals.get(at..at + 16) {
            buf[pos..pos + 16].copy_from_slice(src);
            return;
        }
    }
    buf[pos..pos + len].copy_from_slice(&literals[at..at + len]);
}

/// Writes `len` bytes copied from `offset` back to `buf[pos..]` (`offset` at most `pos`, and
/// `buf` with [`SLACK`] bytes beyond the end): 16-byte pieces when they cannot overlap their
/// source, a fill for a run of one byte, byte by byte (each copying one written before) else.
#[inline(always)]
fn copy_match(buf: &mut [u8], pos: usize, offset: usize, len: usize) {
    let src = pos - offset;
    if offset >= 16 {
        let mut i = 0;
        while i < len {
            let (done, ahead) = buf.split_at_mut(pos + i);
            ahead[..16].copy_from_slice(&done[src + i..src + i + 16]);
            i += 16;
        }
    } else if offset == 1 {
        let byte = buf[src];
        buf[pos..pos + len].fill(byte);
    } else {
        for i in 0..len {
            buf[pos + i] = buf[src + i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `prefix`, then `len` bytes copied from `offset` back, in a buffer with slack.
    fn copied(prefix: &[u8], offset: usize, len: usize) -> Vec<u8> {
        let mut buf = prefix.to_vec();
        buf.resize(prefix.len() + len + SLACK, 0);
        copy_match(&mut buf, prefix.len(), offset, len);
        buf.truncate(prefix.len() + len);
        buf
    }

    #[test]
    fn matches_copy_from_behind_and_overlapping_ones_repeat_their_pattern() {
        assert_eq!(copied(b"xxabc", 3, 10), b"xxabcabcabcabca");
        assert_eq!(copied(b"z", 1, 5), b"zzzzzz");
        assert_eq!(copied(b"0123456789", 8, 4), b"01234567892345");
        let text: Vec<u8> = (0..100u8).collect();
        let out = copied(&text, 40, 70);
        assert_eq!(out[100..140], text[60..100]);
        assert_eq!(out[140..170], text[60..90]);
        let out = copied(&text, 16, 3);
        assert_eq!(out[100..], text[84..87]);
    }

    #[test]
    fn every_predefined_table_decodes_to_values_in_range() {
        for kind in [Kind::LiteralLength, Kind::Offset, Kind::MatchLength] {
            let table = kind.predefined();
            assert_eq!(table.entries.len(), 1 << table.log);
            for e in &table.entries {
                assert!(usize::from(e.next) + (1usize << e.bits) <= table.entries.len());
            }
        }
    }
}
