//! The tracked trees' time buckets: every tick, the closed 5 ms slots of the kernel's
//! `BUCKETS` map are read, deleted, and written as one line per tree to
//! `tree-costs-YYYY-MM-DD.jsonl` (`collect::tree_costs`), where the analyzer measures each
//! action's cost.
//!
//! A slot is closed once it is at least one slot old: a program adds to the slot of the
//! moment it runs, and runs for nanoseconds, so nothing is added to a closed slot after it is
//! read. Runtime updates are staged per CPU first (see the kernel's `buckets`): every CPU whose
//! staged slot is closed is flushed into `BUCKETS` before the drain.

use std::collections::BTreeMap;
use std::path::Path;

use aya::maps::{HashMap, MapData, PerCpuArray};
use trace_claw_common::abi::{BucketKey, SlotCounters, StagedSlot, BUCKET_NS};
use trace_claw_common::cost::Slot;
use trace_claw_common::time::Timestamp;

use crate::collect::tree_costs::{Busy, Tree, TreeCostWriter};
use crate::export::ExportError;

use super::EbpfError;

/// Drains `BUCKETS` into `tree-costs-*.jsonl`.
pub struct TreeCostLog {
    map: HashMap<MapData, BucketKey, SlotCounters>,
    /// Each CPU's staged bucket (the values are in CPU order: possible CPUs are `0..n`).
    staged: PerCpuArray<MapData, StagedSlot>,
    out: TreeCostWriter,
    /// Keys of the last walk (kept for its allocation).
    keys: Vec<BucketKey>,
    /// Closed buckets read this tick, by (root, slot).
    closed: BTreeMap<(u32, u64), SlotCounters>,
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
            out: TreeCostWriter::new(dir, false, (BUCKET_NS / 1_000_000) as u32)?,
            keys: Vec::new(),
            closed: BTreeMap::new(),
            flush_failed: false,
        })
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.out.lines()
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
        let mut busy: BTreeMap<u32, Busy> = BTreeMap::new();
        for (&(root, slot), c) in &self.closed {
            let b = busy.entry(root).or_insert_with(|| Busy {
                timestamp: wall(slot),
                slot_ms: (BUCKET_NS / 1_000_000) as u32,
                slots: Vec::new(),
                io_active: Vec::new(),
            });
            let first = ((b.timestamp.0 - clock_offset_ns) as u64) / BUCKET_NS;
            let (s, io) = slot_of(slot - first, slot, c);
            b.slots.push(s);
            b.io_active.extend(io);
        }
        self.closed.clear();
        let now = Timestamp(now_mono_ns as i64 + clock_offset_ns);
        self.out.tick(now_mono_ns, now, trees, busy);
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
}

/// The JSON slot of bucket `s` of slot number `slot`, at `offset`, and the part in which it
/// moved bytes (`[offset, from_us, to_us]`) when that is narrower than its active part.
fn slot_of(offset: u64, slot: u64, s: &SlotCounters) -> (Slot, Option<[u64; 3]>) {
    let start = slot * BUCKET_NS;
    let us = |t: u64| t.clamp(start, start + BUCKET_NS).saturating_sub(start) / 1_000;
    let c = &s.counters;
    let active = [us(s.active_from_ns), us(s.active_to_ns)];
    let io = [us(s.io_from_ns), us(s.io_to_ns)];
    let narrower = s.io_to_ns != 0 && io != active;
    (
        [
            offset,
            c.on_cpu_ns,
            c.read_bytes,
            c.write_bytes,
            c.block_read_bytes,
            c.net_sent_bytes,
            c.net_recv_bytes,
            active[0],
            active[1],
        ],
        narrower.then_some([offset, io[0], io[1]]),
    )
}
