//! Writing `tree-costs-YYYY-MM-DD.jsonl`, the tracked trees' use per time slot, for both
//! backends: the kernel programs' 5 ms slots (`ebpf::tree_costs` drains them), or one slot per
//! sampling interval from polling (`interpolated`). The analyzer charges each action what its
//! own tree used in its window.
//!
//! A tree with slots gets a line every tick; one without (idle) gets a line, with its
//! processes so that an action's pid can be matched to its tree, when its set of processes
//! changed and at least once a minute.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use trace_claw_common::cost::{Slot, TreeCosts, TREE_COSTS_PREFIX};
use trace_claw_common::time::Timestamp;

use crate::daily_jsonl::DailyJsonl;
use crate::export::ExportError;

/// One tracked tree at a tick: its root's name and its processes.
#[derive(Debug, Default)]
pub struct Tree {
    /// The root's comm, when it is alive.
    pub root_name: String,
    /// Tracked processes of the tree, sorted.
    pub pids: Vec<u32>,
}

/// What one tree used this tick: its slots from `timestamp`, each `slot_ms` wide.
#[derive(Debug)]
pub struct Busy {
    /// Start of slot 0.
    pub timestamp: Timestamp,
    /// Width of a slot.
    pub slot_ms: u32,
    /// The non-empty slots.
    pub slots: Vec<Slot>,
    /// The slots whose bytes were moved in a narrower part ([`TreeCosts::io_active`]).
    pub io_active: Vec<[u64; 3]>,
}

/// How often an idle tree whose processes did not change gets a line anyway.
const MEMBERSHIP_REFRESH_NS: u64 = 60_000_000_000;

/// The `tree-costs-*.jsonl` writer of one backend.
pub struct TreeCostWriter {
    out: Option<DailyJsonl>,
    /// Whether the slots are sampling intervals ([`TreeCosts::interpolated`]).
    interpolated: bool,
    /// The slot width of an idle tree's line: the last one written.
    slot_ms: u32,
    /// Per tree, the processes of its last line and when (monotonic ns) it was written.
    last_line: HashMap<u32, (Vec<u32>, u64)>,
    /// Lines written so far.
    lines: u64,
    write_failed: bool,
}

impl TreeCostWriter {
    /// Writes to `dir` (nothing when `None`); `interpolated` marks polling's slots, `slot_ms`
    /// is the slot width until a tick says otherwise.
    pub fn new(dir: Option<&Path>, interpolated: bool, slot_ms: u32) -> Result<Self, ExportError> {
        Ok(Self {
            out: dir
                .map(|d| DailyJsonl::new(d, TREE_COSTS_PREFIX))
                .transpose()?,
            interpolated,
            slot_ms,
            last_line: HashMap::new(),
            lines: 0,
            write_failed: false,
        })
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Writes this tick's lines (at `now`, monotonic `now_mono_ns`): one per tree of `busy`,
    /// and one per tree of `trees` (by root) whose processes changed or that had no line for
    /// a minute.
    pub fn tick(
        &mut self,
        now_mono_ns: u64,
        now: Timestamp,
        trees: &BTreeMap<u32, Tree>,
        mut busy: BTreeMap<u32, Busy>,
    ) {
        self.last_line.retain(|root, _| trees.contains_key(root));
        let empty = Tree::default();
        let mut roots: Vec<u32> = trees.keys().chain(busy.keys()).copied().collect();
        roots.sort_unstable();
        roots.dedup();
        for root in roots {
            let tree = trees.get(&root).unwrap_or(&empty);
            let used = busy.remove(&root);
            let used_at = used.as_ref().map(|b| b.timestamp);
            if let Some(b) = &used {
                self.slot_ms = b.slot_ms;
            }
            let due = self.last_line.get(&root).is_none_or(|(pids, at)| {
                *pids != tree.pids || now_mono_ns.saturating_sub(*at) >= MEMBERSHIP_REFRESH_NS
            });
            if used.is_none() && !due {
                continue;
            }
            self.last_line
                .insert(root, (tree.pids.clone(), now_mono_ns));
            let (slots, io_active) = used.map(|b| (b.slots, b.io_active)).unwrap_or_default();
            let line = TreeCosts {
                timestamp: used_at.unwrap_or(now),
                root_pid: root,
                root_name: tree.root_name.clone(),
                slot_ms: self.slot_ms,
                pids: tree.pids.clone(),
                slots,
                io_active,
                interpolated: self.interpolated,
            };
            self.write(&line);
        }
        if let Some(out) = &mut self.out {
            if let Err(e) = out.flush() {
                self.warn_once(&e);
            }
        }
    }

    fn write(&mut self, line: &TreeCosts) {
        let Some(out) = &mut self.out else {
            return;
        };
        match out.append(line.timestamp, line) {
            Ok(()) => self.lines += 1,
            Err(e) => self.warn_once(&e),
        }
    }

    fn warn_once(&mut self, e: &ExportError) {
        if !self.write_failed {
            log::error!(
                "cannot write tree costs (per-action costs will be interpolated): {}",
                crate::error::error_chain(e)
            );
            self.write_failed = true;
        }
    }
}
