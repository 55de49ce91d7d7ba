//! The tracked trees' time buckets: every tick, the closed 5 ms slots of the kernel's
//! `BUCKETS` map are read, deleted, and written as one [`TreeCosts`] line per tree to
//! `tree-costs-YYYY-MM-DD.jsonl`, where the analyzer measures each action's cost.
//!
//! A slot is closed once it is at least one slot old: a program adds to the slot of the
//! moment it runs, and runs for nanoseconds, so nothing is added to a closed slot after it is
//! read. Runtime updates are staged per CPU first (see the kernel's `buckets`): every CPU whose
//! staged slot is closed is flushed into `BUCKETS` before the drain. A tree without a busy slot gets a line (its processes, so that an action's pid can be
//! matched to its tree) when its set of processes changed, and at least once a minute.

use std::collections::{BTreeMap, HashMap as StdHashMap};
use std::path::Path;

use aya::maps::{HashMap, MapData, PerCpuArray};
use trace_claw_common::abi::{BucketKey, SlotCounters, StagedSlot, BUCKET_NS};
use trace_claw_common::cost::{Slot, TreeCosts, TREE_COSTS_PREFIX};
use trace_claw_common::time::Timestamp;

use crate::daily_jsonl::DailyJsonl;
use crate::export::ExportError;

use super::EbpfError;

/// One tracked tree at a tick: its root's name and its processes.
#[derive(Debug, Default)]
pub struct Tree {
    /// The root's comm, when it is alive.
    pub root_name: String,
    /// Tracked processes of the tree.
    pub pids: Vec<u32>,
}

/// How often an idle tree whose processes did not change gets a line anyway.
const MEMBERSHIP_REFRESH_NS: u64 = 60_000_000_000;

/// Drains `BUCKETS` into `tree-costs-*.jsonl`.
pub struct TreeCostLog {
    map: HashMap<MapData, BucketKey, SlotCounters>,
    /// Each CPU's staged bucket (the values are in CPU order: possible CPUs are `0..n`).
    staged: PerCpuArray<MapData, StagedSlot>,
    out: Option<DailyJsonl>,
    /// Keys of the last walk (kept for its allocation).
    keys: Vec<BucketKey>,
    /// Closed buckets read this tick, by (root, slot).
    closed: BTreeMap<(u32, u64), SlotCounters>,
    /// Per tree, the processes of its last line and when (monotonic ns) it was written.
    last_line: StdHashMap<u32, (Vec<u32>, u64)>,
    /// Lines written so far (the tests read them back).
    lines: u64,
    write_failed: bool,
    flush_failed: bool,
}

impl TreeCostLog {
    /// Drains `map`, after flushing `staged`; lines go to `dir` (none when `None`: the
    /// buckets are only emptied).
    pub fn new(
        map: HashMap<MapData, BucketKey, SlotCounters>,
        staged: PerCpuArray<MapData, StagedSlot>,
        dir: Option<&Path>,
    ) -> Result<Self, ExportError> {
        Ok(Self {
            map,
            staged,
            out: dir
                .map(|d| DailyJsonl::new(d, TREE_COSTS_PREFIX))
                .transpose()?,
            keys: Vec::new(),
            closed: BTreeMap::new(),
            last_line: StdHashMap::new(),
            lines: 0,
            write_failed: false,
            flush_failed: false,
        })
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Reads and deletes the slots closed at `now_mono_ns` (CLOCK_MONOTONIC), once `flush` (the
    /// kernel's `flush_staged` on a CPU) has emptied every CPU whose staged slot is closed, and
    /// writes a line for each root that had a bucket, and each tree of `trees` (by root, pids
    /// sorted) whose processes changed or that had no line for a minute; wall time is
    /// `monotonic + clock_offset_ns`.
    pub fn tick(
        &mut self,
        now_mono_ns: u64,
        clock_offset_ns: i64,
        trees: &BTreeMap<u32, Tree>,
        flush: impl Fn(u32) -> Result<(), EbpfError>,
    ) {
        let open_from = (now_mono_ns / BUCKET_NS).saturating_sub(1);
        self.flush_closed(open_from, flush);
        self.keys.clear();
        self.keys.extend(
            self.map
                .keys()
                .filter_map(Result::ok)
                .filter(|k| k.slot < open_from),
        );
        for key in &self.keys {
            if let Ok(counters) = self.map.get(key, 0) {
                self.closed.insert((key.root, key.slot), counters);
            }
            let _gone = self.map.remove(key);
        }
        let wall = |slot: u64| Timestamp((slot * BUCKET_NS) as i64 + clock_offset_ns);
        let now = Timestamp(now_mono_ns as i64 + clock_offset_ns);
        let mut roots: Vec<u32> = trees.keys().copied().collect();
        roots.extend(self.closed.keys().map(|&(root, _)| root));
        roots.sort_unstable();
        roots.dedup();
        self.last_line.retain(|root, _| trees.contains_key(root));
        let empty = Tree::default();
        for root in roots {
            let tree = trees.get(&root).unwrap_or(&empty);
            let mut slots = self.closed.range((root, 0)..=(root, u64::MAX)).peekable();
            let first = slots.peek().map(|(&(_, slot), _)| slot);
            let due = self.last_line.get(&root).is_none_or(|(pids, at)| {
                *pids != tree.pids || now_mono_ns.saturating_sub(*at) >= MEMBERSHIP_REFRESH_NS
            });
            if first.is_none() && !due {
                continue;
            }
            self.last_line
                .insert(root, (tree.pids.clone(), now_mono_ns));
            let line = TreeCosts {
                timestamp: first.map_or(now, wall),
                root_pid: root,
                root_name: tree.root_name.clone(),
                slot_ms: (BUCKET_NS / 1_000_000) as u32,
                pids: tree.pids.clone(),
                slots: slots
                    .map(|(&(_, slot), c)| slot_of(slot - first.unwrap_or(slot), slot, c))
                    .collect(),
            };
            self.write(&line);
        }
        self.closed.clear();
        if let Some(out) = &mut self.out {
            if let Err(e) = out.flush() {
                self.warn_once(&e);
            }
        }
    }

    /// Runs `flush` on every CPU whose staged slot is before `open_from`. A failure (a CPU gone
    /// offline) leaves that CPU's bucket staged until it can run; it is logged once.
    fn flush_closed(&mut self, open_from: u64, flush: impl Fn(u32) -> Result<(), EbpfError>) {
        let staged = match self.staged.get(&0, 0) {
            Ok(values) => values,
            Err(e) => {
                self.flush_failed_once(&EbpfError::Map {
                    name: "STAGED",
                    source: e,
                });
                return;
            }
        };
        for (cpu, s) in staged.iter().enumerate() {
            if s.root != 0 && s.slot < open_from {
                if let Err(e) = flush(cpu as u32) {
                    self.flush_failed_once(&e);
                }
            }
        }
    }

    fn flush_failed_once(&mut self, e: &EbpfError) {
        if !self.flush_failed {
            log::warn!(
                "cannot flush a CPU's staged time bucket (its last slot is written late or \
                 lost): {}",
                crate::error::error_chain(e)
            );
            self.flush_failed = true;
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

/// The JSON slot of bucket `c` of slot number `slot`, at `offset`.
fn slot_of(offset: u64, slot: u64, s: &SlotCounters) -> Slot {
    let start = slot * BUCKET_NS;
    let us = |t: u64| t.clamp(start, start + BUCKET_NS).saturating_sub(start) / 1_000;
    let c = &s.counters;
    [
        offset,
        c.on_cpu_ns,
        c.read_bytes,
        c.write_bytes,
        c.block_read_bytes,
        c.net_sent_bytes,
        c.net_recv_bytes,
        us(s.active_from_ns),
        us(s.active_to_ns),
    ]
}
