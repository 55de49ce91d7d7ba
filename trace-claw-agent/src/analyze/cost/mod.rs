//! Per-action resource cost measured from the tracked trees' 5 ms time slots (eBPF,
//! `tree-costs-*.jsonl`), charged to the tree that ran each action.
//!
//! - `slots`: reading the slots of every tree, and which tree held which pid.
//! - `charge`: each action's tree and cost, overlaps, group and idle costs, other trees.
//!
//! Without slots (procfs polling, or data from before eBPF time slots) costs are interpolated
//! between the tracked set's samples (`summary::timeline::interpolated_cost`) and say so.

pub mod charge;
pub mod slots;
