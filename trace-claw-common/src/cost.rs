//! [`TreeCosts`]: one line of `tree-costs-YYYY-MM-DD.jsonl`, the tracked trees' counters in
//! time slots, from which the analyzer measures what each action cost: 5 ms slots from the
//! kernel programs (eBPF), or one slot per sampling interval from polling (`interpolated`).

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// File name prefix of the time-slotted tree costs.
pub const TREE_COSTS_PREFIX: &str = "tree-costs";

/// One slot: `[offset, cpu_ns, read_bytes, write_bytes, block_read_bytes, net_sent_bytes,
/// net_recv_bytes, active_from_us, active_to_us]`: `offset` counted in slots from the line's
/// `timestamp`; the last two bound the part of the slot in which the tree used anything, in µs
/// from the slot's start.
pub type Slot = [u64; 9];

/// One tick of one tracked process tree: what its processes used in each slot of time in which
/// they used anything, and which processes it held.
///
/// ```json
/// {"timestamp":"2026-11-24T10:00:00.120000Z","root_pid":4242,"root_name":"node","slot_ms":10,
///  "pids":[4242,4250],"slots":[[0,3998211,4096,0,0,0,0,0,10000],[7,120004,0,512,0,310,0,2100,2950]]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeCosts {
    /// Start of slot 0 (the first non-empty slot; the tick's time when there is none).
    pub timestamp: Timestamp,
    /// The tgid that roots the tree: a process that matched the target and whose parent is
    /// not tracked.
    pub root_pid: u32,
    /// The root's process name (comm), when known.
    #[serde(default)]
    pub root_name: String,
    /// Width of a slot in milliseconds.
    pub slot_ms: u32,
    /// The tree's tracked processes at the tick.
    #[serde(default)]
    pub pids: Vec<u32>,
    /// The non-empty slots, by offset.
    #[serde(default)]
    pub slots: Vec<Slot>,
    /// For each slot whose bytes were moved in a narrower part of it than its active part:
    /// `[offset, io_from_us, io_to_us]`, by offset. Its bytes are charged by that part; a slot
    /// not listed has its bytes charged by its active part, like its CPU time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_active: Vec<[u64; 3]>,
    /// The slots are sampling intervals (procfs polling, no eBPF): what the tree used between
    /// two samples, its use within a slot taken as uniform, so a cost measured from them is
    /// interpolated at the resolution of `slot_ms`. Absent (false) for eBPF's measured slots.
    #[serde(default, skip_serializing_if = "is_false")]
    pub interpolated: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl TreeCosts {
    /// Start and end (Unix ns) of slot `s` of this line.
    pub fn slot_span(&self, s: &Slot) -> (i64, i64) {
        let width = i64::from(self.slot_ms) * 1_000_000;
        let start = self
            .timestamp
            .0
            .saturating_add((s[0] as i64).saturating_mul(width));
        (start, start.saturating_add(width))
    }

    /// Start and end (Unix ns) of the part of slot `s` in which the tree used anything.
    pub fn active_span(&self, s: &Slot) -> (i64, i64) {
        self.span_within(s, s[7], s[8])
    }

    /// Start and end (Unix ns) of the part of slot `s` in which the tree moved bytes
    /// ([`Self::io_active`]; its active part when not listed).
    pub fn io_span(&self, s: &Slot) -> (i64, i64) {
        match self.io_active.binary_search_by_key(&s[0], |io| io[0]) {
            Ok(i) => self.span_within(s, self.io_active[i][1], self.io_active[i][2]),
            Err(_) => self.active_span(s),
        }
    }

    /// `from_us..to_us` after the start of slot `s`, in Unix ns, clamped to the slot.
    fn span_within(&self, s: &Slot, from_us: u64, to_us: u64) -> (i64, i64) {
        let (start, end) = self.slot_span(s);
        let at = |us: u64| {
            start
                .saturating_add((us as i64).saturating_mul(1_000))
                .min(end)
        };
        (at(from_us), at(to_us.max(from_us)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_line() {
        let line = r#"{"timestamp":"2026-11-24T10:00:00.120000Z","root_pid":4242,"root_name":"node","slot_ms":10,"pids":[4242,4250],"slots":[[0,3998211,4096,0,0,0,0,0,10000],[7,120004,0,512,0,310,0,2100,2950]]}"#;
        let t: TreeCosts = serde_json::from_str(line).expect("valid line");
        assert_eq!(t.slots.len(), 2);
        let (start, end) = t.slot_span(&t.slots[1]);
        assert_eq!(end - start, 10_000_000);
        assert_eq!(start - t.timestamp.0, 70_000_000);
        let (from, to) = t.active_span(&t.slots[1]);
        assert_eq!((from - start, to - start), (2_100_000, 2_950_000));
        assert_eq!(
            t.io_span(&t.slots[1]),
            (from, to),
            "not listed: the active part"
        );
        assert_eq!(serde_json::to_string(&t).expect("serializes"), line);
    }

    #[test]
    fn bytes_moved_in_a_narrower_part_are_placed_there() {
        let line = r#"{"timestamp":"2026-11-24T10:00:00.000000Z","root_pid":1,"root_name":"","slot_ms":5,"pids":[],"slots":[[0,10,1,0,0,0,0,0,5000],[3,10,1,0,0,0,0,1000,4000]],"io_active":[[3,1500,1500]]}"#;
        let t: TreeCosts = serde_json::from_str(line).expect("valid line");
        let start = t.slot_span(&t.slots[1]).0;
        assert_eq!(
            t.io_span(&t.slots[1]),
            (start + 1_500_000, start + 1_500_000)
        );
        assert_eq!(t.io_span(&t.slots[0]), t.active_span(&t.slots[0]));
        assert_eq!(serde_json::to_string(&t).expect("serializes"), line);
    }
}
