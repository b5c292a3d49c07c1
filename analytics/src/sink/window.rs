//! The archive's batching rule, which makes the set of archive objects, and what each holds,
//! independent of how the records happened to be polled, of restarts and of replays.
//!
//! Each partition's offsets are cut into fixed windows of `size` offsets: window `n` holds offsets
//! `[n*size, (n+1)*size)`, and is archived as one object named by its first offset `n*size`. While a
//! window is open (its last offset not yet consumed), every batch that adds records to it writes the
//! object again with all the window's records so far, so the object grows until the window is full
//! and is never split in two.
//!
//! A sink that (re)starts in the middle of a window (offset `c` committed, `n*size < c`) first reads
//! the window's earlier records `[n*size, c)` back from Kafka (a *backfill*; they are archived only,
//! their documents and dead letters were done before the commit), so the object it writes still holds
//! the whole window. The same happens whenever records of a partition do not continue the open window
//! exactly (a rebalance moved the partition away and back, or Kafka redelivered): the window is rebuilt
//! from Kafka rather than trusted. Consequently a straight run, a crashed-and-restarted run and a replay
//! from offset 0 write the same object names with the same records.
//!
//! (One caveat: if retention deleted the first records of a window that is still open when the sink
//! restarts, the rebuilt window starts at the first record Kafka still has, and is dated by it.)

use std::collections::HashMap;

use super::archive::ArchivedRecord;

/// A partition of a topic.
pub type TopicPartition = (String, i32);

/// The open window of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub topic: String,
    pub partition: i32,
    /// Its first offset: a multiple of the window size.
    pub start: i64,
    /// The offset after the last record added.
    pub next_offset: i64,
    /// Its records so far, in offset order.
    pub records: Vec<ArchivedRecord>,
    /// The ETag of the object as this sink wrote it last (`None`: not written by this run yet):
    /// the next write replaces only that version (see `archive::put_window`).
    pub e_tag: Option<String>,
}

impl Window {
    /// The timestamp of the window's first record, which dates the object.
    pub fn first_timestamp(&self) -> Option<i64> {
        self.records.first().and_then(|r| r.timestamp)
    }
}

/// What adding a record to its partition's window needs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The record continues the open window, or starts a new one at its first offset.
    Ready,
    /// The window's records `[from, until)` must be read back from Kafka first (then [`Windows::rebuild`]).
    Backfill { from: i64, until: i64 },
}

/// The open window of every partition the sink has seen.
#[derive(Debug)]
pub struct Windows {
    size: i64,
    open: HashMap<TopicPartition, Window>,
}

impl Windows {
    /// Windows of `size` offsets (at least 1).
    pub fn new(size: i64) -> Self {
        Self {
            size: size.max(1),
            open: HashMap::new(),
        }
    }

    /// The first offset of the window holding `offset`.
    pub fn start_of(&self, offset: i64) -> i64 {
        offset.div_euclid(self.size) * self.size
    }

    /// What placing the record at `offset` of `topic`/`partition` needs.
    pub fn check(&self, topic: &str, partition: i32, offset: i64) -> Placement {
        let start = self.start_of(offset);
        if offset == start {
            return Placement::Ready;
        }
        match self.open.get(&(topic.to_string(), partition)) {
            Some(w) if w.start == start && w.next_offset == offset => Placement::Ready,
            _ => Placement::Backfill {
                from: start,
                until: offset,
            },
        }
    }

    /// Replace the partition's window by the one starting at `start` holding `earlier` (records
    /// read back from Kafka, in offset order, all below `until`).
    pub fn rebuild(
        &mut self,
        topic: &str,
        partition: i32,
        start: i64,
        until: i64,
        earlier: Vec<ArchivedRecord>,
    ) {
        self.open.insert(
            (topic.to_string(), partition),
            Window {
                topic: topic.to_string(),
                partition,
                start,
                next_offset: until,
                records: earlier,
                e_tag: None,
            },
        );
    }

    /// Add a record for which [`Windows::check`] said `Ready` (or after [`Windows::rebuild`]).
    /// Returns the window it closed, if the record starts a new one.
    pub fn push(&mut self, record: ArchivedRecord) -> Option<Window> {
        let start = self.start_of(record.offset);
        let key = (record.topic.clone(), record.partition);
        let closed = match self.open.get(&key) {
            Some(w) if w.start == start => None,
            _ => self.open.remove(&key),
        };
        let window = self.open.entry(key).or_insert_with(|| Window {
            topic: record.topic.clone(),
            partition: record.partition,
            start,
            next_offset: start,
            records: Vec::new(),
            e_tag: None,
        });
        window.next_offset = record.offset + 1;
        window.records.push(record);
        closed
    }

    /// The open window of a partition.
    pub fn get(&self, topic: &str, partition: i32) -> Option<&Window> {
        self.open.get(&(topic.to_string(), partition))
    }

    /// Remember the ETag of what was written for the window of `topic`/`partition` starting at
    /// `start`, if that window is still the open one.
    pub fn written(&mut self, topic: &str, partition: i32, start: i64, e_tag: Option<String>) {
        if let Some(w) = self.open.get_mut(&(topic.to_string(), partition))
            && w.start == start
        {
            w.e_tag = e_tag;
        }
    }

    /// Forget a partition's window (it will be rebuilt from Kafka if the partition comes back).
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.open.remove(&(topic.to_string(), partition));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(partition: i32, offset: i64) -> ArchivedRecord {
        ArchivedRecord {
            topic: "t".into(),
            partition,
            offset,
            timestamp: Some(offset),
            key: None,
            headers: vec![],
            event_type: None,
            event_id: None,
            schema_id: None,
            payload: None,
        }
    }

    fn offsets(w: &Window) -> Vec<i64> {
        w.records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn windows_are_fixed_offset_ranges() {
        let mut windows = Windows::new(5);
        for o in 0..7 {
            assert_eq!(windows.check("t", 0, o), Placement::Ready);
            let closed = windows.push(rec(0, o));
            if o == 5 {
                assert_eq!(offsets(&closed.unwrap()), vec![0, 1, 2, 3, 4]);
            } else {
                assert!(closed.is_none());
            }
        }
        let open = windows.get("t", 0).unwrap();
        assert_eq!((open.start, offsets(open)), (5, vec![5, 6]));
        assert_eq!(open.first_timestamp(), Some(5));
    }

    #[test]
    fn starting_mid_window_needs_the_earlier_records() {
        let mut windows = Windows::new(5);
        assert_eq!(
            windows.check("t", 1, 7),
            Placement::Backfill { from: 5, until: 7 }
        );
        windows.rebuild("t", 1, 5, 7, vec![rec(1, 5), rec(1, 6)]);
        assert_eq!(windows.check("t", 1, 7), Placement::Ready);
        windows.push(rec(1, 7));
        assert_eq!(offsets(windows.get("t", 1).unwrap()), vec![5, 6, 7]);
    }

    #[test]
    fn a_record_that_does_not_continue_the_window_rebuilds_it() {
        let mut windows = Windows::new(10);
        for o in 0..4 {
            windows.push(rec(0, o));
        }
        // Redelivered from 2 (a rebalance, a replay): rebuild rather than append twice.
        assert_eq!(
            windows.check("t", 0, 2),
            Placement::Backfill { from: 0, until: 2 }
        );
        // Jumped ahead (another consumer handled 4..8): rebuild too.
        assert_eq!(
            windows.check("t", 0, 8),
            Placement::Backfill { from: 0, until: 8 }
        );
        // A partition's window is its own.
        assert_eq!(windows.check("t", 1, 0), Placement::Ready);
        assert_eq!(windows.check("t", 0, 4), Placement::Ready);
        windows.forget("t", 0);
        assert_eq!(
            windows.check("t", 0, 4),
            Placement::Backfill { from: 0, until: 4 }
        );
    }
}
