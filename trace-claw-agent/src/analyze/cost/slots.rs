//! Reading `tree-costs-*.jsonl`: each tracked tree's time slots (eBPF's 5 ms, or polling's
//! sampling intervals, marked interpolated), and which tree held which pid when.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use trace_claw_common::cost::TreeCosts;

use crate::analyze::source::lines::{self, json_reason, LineStats};

/// What a tree used, in [`ResourceCost::fields`] order: CPU seconds, read, write, block-read,
/// sent and received bytes.
///
/// [`ResourceCost::fields`]: crate::analyze::summary::timeline::ResourceCost::fields
pub type Amounts = [f64; 6];

/// One tracked process tree's slots.
#[derive(Debug, Default)]
pub struct Tree {
    /// Its root's process name.
    pub root_name: String,
    /// Whether its slots are sampling intervals (polling): a cost from them is interpolated.
    pub interpolated: bool,
    /// Width of its slots in ms (the widest, if lines differ).
    pub slot_ms: u32,
    /// `(start, end)` of the active part of each slot, Unix ns, sorted by start.
    spans: Vec<(i64, i64)>,
    /// `(start, end)` of the part of each slot in which bytes were moved (same index; within
    /// its active part).
    io_spans: Vec<(i64, i64)>,
    /// What the tree used in each slot (same index).
    amounts: Vec<Amounts>,
}

impl Tree {
    /// What the tree used in `[start, end)`: every slot whose active part is inside, and the
    /// share of one whose active part an edge cuts in proportion to the overlap (within the
    /// active part, use is taken as uniform; an instant counts where it falls). A slot's bytes
    /// are shared by the part in which they were moved, its CPU time by its active part.
    pub fn cost(&self, start: i64, end: i64) -> Amounts {
        let mut sum = [0.0; 6];
        let first = self.spans.partition_point(|&(_, e)| e < start);
        let slots = self.spans[first..]
            .iter()
            .zip(&self.io_spans[first..])
            .zip(&self.amounts[first..]);
        for ((&span, &io_span), a) in slots {
            if span.0 >= end {
                break;
            }
            let (cpu, io) = (overlap(span, start, end), overlap(io_span, start, end));
            sum[0] += a[0] * cpu;
            for (total, v) in sum.iter_mut().zip(a).skip(1) {
                *total += v * io;
            }
        }
        sum
    }

    /// How far (ns) `t` is from the time the tree used anything: 0 inside, `i64::MAX` for a
    /// tree without slots.
    pub fn distance_from(&self, t: i64) -> i64 {
        let (Some(first), Some(last)) = (
            self.spans.first().map(|s| s.0),
            self.spans.iter().map(|s| s.1).max(),
        ) else {
            return i64::MAX;
        };
        if t < first {
            first - t
        } else {
            (t - last).max(0)
        }
    }

    /// What the tree used in the union of `windows` (each `(start, end)`): a time covered by
    /// several windows counts once.
    pub fn union_cost(&self, windows: &mut [(i64, i64)]) -> Amounts {
        windows.sort_unstable();
        let mut sum = [0.0; 6];
        let mut current: Option<(i64, i64)> = None;
        let mut flush = |w: (i64, i64)| {
            for (total, v) in sum.iter_mut().zip(self.cost(w.0, w.1)) {
                *total += v;
            }
        };
        for &(s, e) in windows.iter() {
            current = match current {
                Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
                Some(w) => {
                    flush(w);
                    Some((s, e))
                }
                None => Some((s, e)),
            };
        }
        if let Some(w) = current {
            flush(w);
        }
        sum
    }
}

/// The share of `span` (use taken as uniform within it) that lies in `[start, end)`; an
/// instant counts where it falls.
fn overlap((s, e): (i64, i64), start: i64, end: i64) -> f64 {
    if e > s {
        (e.min(end) - s.max(start)).max(0) as f64 / (e - s) as f64
    } else {
        f64::from(u8::from(s >= start && s < end))
    }
}

/// Every tree's slots within the analyzed range.
#[derive(Debug, Default)]
pub struct TreeSlots {
    /// Trees by root pid.
    pub trees: BTreeMap<u32, Tree>,
    /// Per pid, the trees that held it: `(root, first seen, last seen)`.
    members: HashMap<u32, Vec<(u32, i64, i64)>>,
    /// Width of the slots in ms (the widest, if files differ).
    pub slot_ms: u32,
}

impl TreeSlots {
    /// Reads `paths`, keeping slots that overlap `[since, until)`; returns each file's line
    /// counts alongside.
    pub fn read(paths: &[&Path], since: i64, until: i64) -> (Self, Vec<LineStats>) {
        let mut slots = Self::default();
        let stats = paths
            .iter()
            .map(|path| {
                let mut stats = LineStats::default();
                let read = lines::open(path).and_then(|f| {
                    lines::for_each_line(path, f, |n, line| {
                        if lines::is_blank(line) {
                            return;
                        }
                        match serde_json::from_slice::<TreeCosts>(line) {
                            Ok(t) => {
                                stats.records += 1;
                                slots.add(&t, since, until);
                            }
                            Err(e) => stats.bad(n, json_reason(&e)),
                        }
                    })
                });
                match read {
                    Ok(read) => stats.read(read),
                    Err(e) => stats.bad(0, e.to_string()),
                }
                stats
            })
            .collect();
        for tree in slots.trees.values_mut() {
            let mut order: Vec<usize> = (0..tree.spans.len()).collect();
            order.sort_by_key(|&i| tree.spans[i]);
            tree.spans = order.iter().map(|&i| tree.spans[i]).collect();
            tree.io_spans = order.iter().map(|&i| tree.io_spans[i]).collect();
            tree.amounts = order.iter().map(|&i| tree.amounts[i]).collect();
        }
        (slots, stats)
    }

    fn add(&mut self, line: &TreeCosts, since: i64, until: i64) {
        let t = line.timestamp.0;
        self.slot_ms = self.slot_ms.max(line.slot_ms);
        let tree = self.trees.entry(line.root_pid).or_default();
        if !line.root_name.is_empty() {
            tree.root_name.clone_from(&line.root_name);
        }
        tree.interpolated |= line.interpolated;
        if !line.slots.is_empty() {
            tree.slot_ms = tree.slot_ms.max(line.slot_ms);
        }
        for slot in &line.slots {
            let span = line.active_span(slot);
            if span.1 <= since || span.0 >= until {
                continue;
            }
            tree.spans.push(span);
            tree.io_spans.push(line.io_span(slot));
            tree.amounts.push([
                slot[1] as f64 / 1e9,
                slot[2] as f64,
                slot[3] as f64,
                slot[4] as f64,
                slot[5] as f64,
                slot[6] as f64,
            ]);
        }
        for &pid in &line.pids {
            let trees = self.members.entry(pid).or_default();
            match trees.iter_mut().find(|(root, ..)| *root == line.root_pid) {
                Some(m) => (m.1, m.2) = (m.1.min(t), m.2.max(t)),
                None => trees.push((line.root_pid, t, t)),
            }
        }
    }

    /// Whether any tree was read.
    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }

    /// The tree that held `pid` nearest to time `t` (a pid reused by another tree later is
    /// told apart by when each tree held it).
    pub fn tree_holding(&self, pid: u32, t: i64) -> Option<u32> {
        let distance = |&(_, first, last): &(u32, i64, i64)| {
            if t < first {
                first - t
            } else {
                (t - last).max(0)
            }
        };
        self.members
            .get(&pid)?
            .iter()
            .min_by_key(|m| distance(m))
            .map(|&(root, ..)| root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const MS: i64 = 1_000_000;

    fn slots(lines: &[&str]) -> TreeSlots {
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        for l in lines {
            writeln!(f, "{l}").expect("write");
        }
        f.flush().expect("flush");
        let (slots, stats) = TreeSlots::read(&[f.path()], i64::MIN, i64::MAX);
        assert_eq!(stats[0].lines, lines.len() as u64);
        slots
    }

    const GATEWAY: &str = r#"{"timestamp":"1970-01-01T00:00:01Z","root_pid":10,"root_name":"node","slot_ms":10,"pids":[10,11],"slots":[[0,10000000,100,0,0,0,0,0,10000],[2,4000000,0,50,0,0,0,0,10000]]}"#;
    const DECOY: &str = r#"{"timestamp":"1970-01-01T00:00:01Z","root_pid":20,"root_name":"node","slot_ms":10,"pids":[20],"slots":[[0,9000000,0,0,0,0,0,1000,10000]]}"#;

    #[test]
    fn cost_takes_whole_slots_and_the_overlapping_part_of_cut_ones() {
        let s = slots(&[GATEWAY, DECOY]);
        let tree = &s.trees[&10];
        let at = |ms: i64| 1_000 * MS + ms * MS;
        // slot 0 = [1000, 1010) ms: 10 ms CPU; slot 2 = [1020, 1030): 4 ms CPU
        let c = tree.cost(at(5), at(25));
        assert!((c[0] - 0.007).abs() < 1e-12, "{c:?}");
        assert!((c[1] - 50.0).abs() < 1e-9, "half of slot 0's reads: {c:?}");
        assert!((c[2] - 25.0).abs() < 1e-9, "half of slot 2's writes: {c:?}");
        assert_eq!(tree.cost(at(10), at(20)), [0.0; 6], "an empty slot");
    }

    #[test]
    fn a_burst_inside_a_cut_slot_is_charged_whole() {
        // 3 ms of CPU between 2 and 5 ms into slot 0, then nothing
        let s = slots(&[
            r#"{"timestamp":"1970-01-01T00:00:01Z","root_pid":10,"slot_ms":10,"slots":[[0,3000000,0,0,0,0,0,2000,5000]]}"#,
        ]);
        let tree = &s.trees[&10];
        let at = |ms: i64| 1_000 * MS + ms * MS;
        assert!((tree.cost(at(1), at(6))[0] - 0.003).abs() < 1e-12);
        assert!((tree.cost(at(4), at(6))[0] - 0.001).abs() < 1e-12);
        assert_eq!(tree.cost(at(5), at(9))[0], 0.0);
    }

    #[test]
    fn bytes_moved_before_a_cut_are_charged_whole_and_cpu_by_its_share() {
        // CPU from 1 to 5 ms into slot 0; its 4096 bytes written at 2 ms (a child's exit),
        // its 100 bytes read between 0.5 and 2 ms of the next slot.
        let s = slots(&[
            r#"{"timestamp":"1970-01-01T00:00:01Z","root_pid":10,"slot_ms":10,"slots":[[0,4000000,0,4096,0,0,0,1000,5000],[1,0,100,0,0,0,0,500,2000]],"io_active":[[0,2000,2000]]}"#,
        ]);
        let tree = &s.trees[&10];
        let at = |ms: i64| 1_000 * MS + ms * MS;
        let c = tree.cost(at(0), at(3));
        assert!((c[0] - 0.002).abs() < 1e-12, "half the CPU: {c:?}");
        assert_eq!(c[2], 4096.0, "the write was before the cut: {c:?}");
        assert_eq!(tree.cost(at(3), at(10))[2], 0.0, "and not after it");
        let next = tree.cost(at(10), at(11) + MS / 4);
        assert!(
            (next[1] - 50.0).abs() < 1e-9,
            "unlisted: by its active part: {next:?}"
        );
    }

    #[test]
    fn overlapping_windows_count_once_in_a_union() {
        let s = slots(&[GATEWAY]);
        let tree = &s.trees[&10];
        let at = |ms: i64| 1_000 * MS + ms * MS;
        let u = tree.union_cost(&mut [(at(0), at(10)), (at(0), at(30)), (at(20), at(30))]);
        assert!((u[0] - 0.014).abs() < 1e-12, "{u:?}");
    }

    #[test]
    fn a_pid_belongs_to_the_tree_that_held_it() {
        let s = slots(&[GATEWAY, DECOY]);
        assert_eq!(s.tree_holding(11, 0), Some(10));
        assert_eq!(s.tree_holding(20, 0), Some(20));
        assert_eq!(s.tree_holding(99, 0), None);
        assert_eq!(s.trees.len(), 2);
    }
}
