//! What has been finished in one partition, and what to commit for it.
//!
//! Events of different aggregates finish out of offset order, so the committed offset is the
//! lowest offset not finished yet; the offsets finished above it go into the commit's metadata
//! (`kbus1:` and ranges relative to the committed offset, e.g. `kbus1:2-4,7`), so that after a
//! restart or a rebalance the next owner skips them instead of handling them again. The metadata
//! is kept under [`MAX_METADATA`] bytes; ranges that do not fit are left out (their events are
//! handled again: at least once).

use std::collections::BTreeSet;
use std::fmt::Write;

use kbus_client::consumer::OffsetAndMetadata;

/// The most metadata bytes written (brokers accept 4096 by default).
pub const MAX_METADATA: usize = 3000;
const PREFIX: &str = "kbus1:";

/// The progress of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionProgress {
    /// Offsets received and not finished.
    pending: BTreeSet<i64>,
    /// Offsets finished above the lowest pending one (or above `next`, with none pending).
    finished: BTreeSet<i64>,
    /// The offset after the last one received (or the committed offset, before any).
    next: i64,
    /// Offsets the last commit said were finished already: skipped when they arrive.
    done_before: BTreeSet<i64>,
    /// True once `next` means something: a committed offset was found or a record arrived.
    /// Until then there is nothing to commit (committing would move the group's offset).
    known: bool,
}

impl PartitionProgress {
    /// The progress of a partition taken over at `committed` (its offset and metadata).
    pub fn resume(committed: Option<&OffsetAndMetadata>) -> PartitionProgress {
        let Some(c) = committed else {
            return PartitionProgress::default();
        };
        PartitionProgress {
            next: c.offset,
            done_before: parse(c.offset, &c.metadata),
            known: true,
            ..Default::default()
        }
    }

    /// True when the record at `offset` was finished before the partition was taken over: skip it.
    pub fn done_before(&self, offset: i64) -> bool {
        self.done_before.contains(&offset)
    }

    /// The record at `offset` was received and is now under way.
    pub fn received(&mut self, offset: i64) {
        if !self.known {
            self.next = offset;
            self.known = true;
        }
        self.pending.insert(offset);
        self.next = self.next.max(offset + 1);
    }

    /// The record at `offset` needs nothing more (handled, dead-lettered, or skipped).
    pub fn finished(&mut self, offset: i64) {
        if !self.known {
            self.next = offset;
            self.known = true;
        }
        self.next = self.next.max(offset + 1);
        if self.pending.remove(&offset) {
            self.finished.insert(offset);
        }
        // Finished offsets below every pending one are covered by the committed offset.
        let low = self.low();
        while self.finished.first().is_some_and(|f| *f < low) {
            self.finished.pop_first();
        }
        while self.done_before.first().is_some_and(|f| *f < low) {
            self.done_before.pop_first();
        }
    }

    /// Records under way.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The lowest offset not finished: what a commit names.
    fn low(&self) -> i64 {
        self.pending.first().copied().unwrap_or(self.next)
    }

    /// What to commit now: the lowest offset not finished, and the offsets finished above it (with
    /// those a previous owner finished and that were not reached yet). `None` while nothing is
    /// known about the partition (no committed offset found, no record read).
    pub fn committable(&self) -> Option<OffsetAndMetadata> {
        if !self.known {
            return None;
        }
        let offset = self.low();
        let above: BTreeSet<i64> = self
            .finished
            .iter()
            .chain(self.done_before.iter())
            .copied()
            .filter(|o| *o > offset)
            .collect();
        Some(OffsetAndMetadata {
            offset,
            metadata: format(offset, &above),
        })
    }
}

/// `kbus1:` and the offsets as ranges relative to `base`; empty for none.
fn format(base: i64, offsets: &BTreeSet<i64>) -> String {
    if offsets.is_empty() {
        return String::new();
    }
    let mut out = String::from(PREFIX);
    let mut iter = offsets.iter().map(|o| o - base).peekable();
    let mut first = true;
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().unwrap_or(end);
        }
        let mut range = String::new();
        if !first {
            range.push(',');
        }
        if start == end {
            let _ = write!(range, "{start}");
        } else {
            let _ = write!(range, "{start}-{end}");
        }
        if out.len() + range.len() > MAX_METADATA {
            break;
        }
        out.push_str(&range);
        first = false;
    }
    out
}

/// The offsets a commit's metadata says were finished; none for metadata kbus did not write.
fn parse(base: i64, metadata: &str) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    let Some(ranges) = metadata.strip_prefix(PREFIX) else {
        return out;
    };
    for range in ranges.split(',').filter(|r| !r.is_empty()) {
        let (start, end) = match range.split_once('-') {
            Some((a, b)) => (a.parse::<i64>(), b.parse::<i64>()),
            None => (range.parse::<i64>(), range.parse::<i64>()),
        };
        let (Ok(start), Ok(end)) = (start, end) else {
            // Damaged metadata: trust none of it (the events are handled again).
            return BTreeSet::new();
        };
        if start < 1 || end < start || end - start > 1_000_000 {
            return BTreeSet::new();
        }
        out.extend((start..=end).map(|d| base + d));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_is_the_lowest_unfinished_offset_with_the_finished_ones_above_it() {
        let mut p = PartitionProgress::resume(Some(&OffsetAndMetadata::new(100)));
        for o in 100..108 {
            p.received(o);
        }
        assert_eq!(p.committable().unwrap(), OffsetAndMetadata::new(100));
        for o in [102, 103, 104, 107] {
            p.finished(o);
        }
        let c = p.committable().unwrap();
        assert_eq!(c.offset, 100);
        assert_eq!(c.metadata, "kbus1:2-4,7");
        p.finished(100);
        p.finished(101);
        let c = p.committable().unwrap();
        assert_eq!((c.offset, c.metadata.as_str()), (105, "kbus1:2"));
        p.finished(105);
        p.finished(106);
        assert_eq!(p.committable().unwrap(), OffsetAndMetadata::new(108));
        assert_eq!(p.in_flight(), 0);
    }

    #[test]
    fn a_new_owner_skips_what_the_last_commit_says_was_finished() {
        let committed = OffsetAndMetadata {
            offset: 100,
            metadata: "kbus1:2-4,7".into(),
        };
        let mut p = PartitionProgress::resume(Some(&committed));
        let skipped: Vec<i64> = (100..110).filter(|o| p.done_before(*o)).collect();
        assert_eq!(skipped, [102, 103, 104, 107]);
        // Until the new owner gets past them, its commits keep saying so.
        p.received(100);
        assert_eq!(p.committable(), Some(committed.clone()));
        p.finished(100);
        for o in 101..110 {
            if p.done_before(o) {
                p.finished(o);
            } else {
                p.received(o);
            }
        }
        assert_eq!(p.committable().unwrap().offset, 101);
        assert_eq!(p.committable().unwrap().metadata, "kbus1:1-3,6");
    }

    #[test]
    fn metadata_others_wrote_or_damaged_metadata_is_ignored() {
        for metadata in [
            "",
            "something else",
            "kbus1:x",
            "kbus1:5-2",
            "kbus1:0",
            "kbus1:1-99999999",
        ] {
            let p = PartitionProgress::resume(Some(&OffsetAndMetadata {
                offset: 10,
                metadata: metadata.into(),
            }));
            assert!(!(10..20).any(|o| p.done_before(o)), "{metadata:?}");
        }
    }

    #[test]
    fn nothing_is_committed_for_a_partition_nothing_is_known_of() {
        let mut p = PartitionProgress::resume(None);
        assert_eq!(p.committable(), None, "committing 0 would rewind the group");
        p.received(500);
        assert_eq!(p.committable(), Some(OffsetAndMetadata::new(500)));
        p.finished(500);
        assert_eq!(p.committable(), Some(OffsetAndMetadata::new(501)));
        let mut skipped = PartitionProgress::resume(None);
        skipped.finished(42);
        assert_eq!(skipped.committable(), Some(OffsetAndMetadata::new(43)));
    }

    #[test]
    fn metadata_stays_under_the_limit_and_keeps_the_lowest_ranges() {
        let mut p = PartitionProgress::default();
        for o in 0..5000 {
            p.received(o);
        }
        for o in (2..5000).step_by(2) {
            p.finished(o);
        }
        let c = p.committable().unwrap();
        assert!(c.metadata.len() <= MAX_METADATA, "{}", c.metadata.len());
        assert!(
            c.metadata.starts_with("kbus1:2,4,6,"),
            "{}",
            &c.metadata[..20]
        );
        let back = PartitionProgress::resume(Some(&c));
        assert!(back.done_before(2) && !back.done_before(3));
    }
}
