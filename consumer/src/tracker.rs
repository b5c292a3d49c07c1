//! Which offsets of one partition may be committed. Records are received in offset order but
//! finish in any order (key lanes run concurrently), so the commit position is the first record
//! still unfinished, or the one after the last received when none is: never past a record whose
//! effect is not committed. Records the consumer skips (filtered on their header) are never
//! pending, so they move the position on as soon as everything before them is done.

use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub struct Tracker {
    pending: BTreeSet<i64>,
    last_received: Option<i64>,
    committed: Option<i64>,
}

impl Tracker {
    /// Note a received record; false if it was received before (it must not be handled twice).
    pub fn receive(&mut self, offset: i64, handled: bool) -> bool {
        if self.last_received.is_some_and(|last| offset <= last) {
            return false;
        }
        self.last_received = Some(offset);
        if handled {
            self.pending.insert(offset);
        }
        true
    }

    /// A received record is finished (applied, skipped or dead-lettered); false if it was not
    /// pending (finished before, or never handled).
    pub fn finish(&mut self, offset: i64) -> bool {
        self.pending.remove(&offset)
    }

    /// Records received and not finished.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The offset to commit: everything below it is finished.
    pub fn position(&self) -> Option<i64> {
        match self.pending.first() {
            Some(first) => Some(*first),
            None => self.last_received.map(|last| last + 1),
        }
    }

    /// The position, if it moved since the last call that returned one.
    pub fn take_commit(&mut self) -> Option<i64> {
        let position = self.position()?;
        if self.committed.is_some_and(|c| c >= position) {
            return None;
        }
        self.committed = Some(position);
        Some(position)
    }

    /// A commit of `position` failed: offer it again next time.
    pub fn commit_failed(&mut self, position: i64) {
        if self.committed == Some(position) {
            self.committed = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_up_to_the_first_unfinished_record() {
        let mut t = Tracker::default();
        assert_eq!(t.position(), None);
        for offset in 10..15 {
            assert!(t.receive(offset, offset != 12));
        }
        assert!(
            !t.receive(13, true),
            "a record received twice is not handled twice"
        );
        assert_eq!(t.take_commit(), Some(10));
        assert!(t.finish(11));
        assert!(t.finish(13));
        assert!(!t.finish(13), "finishing twice counts once");
        assert_eq!(t.take_commit(), None, "10 is still unfinished");
        t.finish(10);
        assert_eq!(
            t.take_commit(),
            Some(14),
            "12 was skipped, 14 is unfinished"
        );
        t.finish(14);
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.take_commit(), Some(15));
        t.commit_failed(15);
        assert_eq!(
            t.take_commit(),
            Some(15),
            "a failed commit is offered again"
        );
    }
}
