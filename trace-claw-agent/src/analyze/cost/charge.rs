//! Charging actions to the tracked tree that ran them, from its time slots: which tree, which
//! actions overlap on it, what a group of actions cost together (shared time once), what the
//! tree used while none of them ran (idle), and what the other trees used. A cost from a
//! polled tree's slots (sampling intervals) is marked interpolated, at the interval's
//! resolution, and has only what polling measures (CPU, read and write bytes).

use std::collections::BTreeMap;

use serde::Serialize;

use super::slots::{Amounts, TreeSlots};
use crate::analyze::source::action::Action;
use crate::analyze::summary::timeline::{ResourceCost, METHOD_INTERPOLATED, METHOD_TIME_SLOTS};
use crate::openclaw_feed::GATEWAY_COMMS;

/// Each action's tree and cost.
#[derive(Debug, Default)]
pub struct Charged {
    /// Per action (same index as the actions given), the root of the tree charged.
    pub trees: Vec<Option<u32>>,
    /// Per action, its cost; empty when no tree has slots (nothing to charge).
    pub costs: Vec<Option<ResourceCost>>,
}

/// Trees that matched the target but ran none of the actions, reported apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct OtherTrees {
    /// How many.
    pub trees: usize,
    /// What they used in the analyzed range, together.
    pub cost: ResourceCost,
}

/// Counters polling measures: CPU, read and write bytes (the first of [`Amounts`]).
const POLLED_AMOUNTS: usize = 3;

/// A cost of `tree` from slot amounts.
fn slot_cost(slots: &TreeSlots, tree: u32, a: Amounts) -> ResourceCost {
    let t = slots.trees.get(&tree);
    let polled = t.is_some_and(|t| t.interpolated);
    let slot_ms = t.map_or(0, |t| t.slot_ms);
    let slot_ms = if slot_ms == 0 { slots.slot_ms } else { slot_ms };
    let mut c = ResourceCost {
        method: Some(if polled {
            METHOD_INTERPOLATED
        } else {
            METHOD_TIME_SLOTS
        }),
        resolution_ms: Some(f64::from(slot_ms)),
        root_pid: Some(tree),
        ..ResourceCost::default()
    };
    let measured = if polled { POLLED_AMOUNTS } else { a.len() };
    for (field, v) in c.fields().into_iter().zip(a).take(measured) {
        *field = Some(v);
    }
    c
}

/// The tree an action at `t` without a known pid is charged to: OpenClaw's gateway if a tree's
/// root is named so (of several, such as the `openclaw` launcher that started the gateway and
/// exited, the one whose used time is nearest `t`), else the tree that used the most CPU.
fn default_tree(slots: &TreeSlots, t: i64) -> Option<u32> {
    let named = slots
        .trees
        .iter()
        .filter(|(_, tree)| {
            GATEWAY_COMMS
                .iter()
                .any(|n| tree.root_name.eq_ignore_ascii_case(n))
        })
        .min_by_key(|(_, tree)| tree.distance_from(t));
    if let Some((&root, _)) = named {
        return Some(root);
    }
    let cpu = |t: &super::slots::Tree| t.cost(i64::MIN, i64::MAX)[0];
    slots
        .trees
        .iter()
        .max_by(|a, b| cpu(a.1).total_cmp(&cpu(b.1)))
        .map(|(&root, _)| root)
}

/// Charges each action to the tree holding its `pid` (or the default tree) and measures its
/// window there; marks actions that overlap on one tree.
pub fn charge(slots: &TreeSlots, actions: &[&Action]) -> Charged {
    let trees: Vec<Option<u32>> = actions
        .iter()
        .map(|a| {
            a.event
                .pid
                .and_then(|pid| slots.tree_holding(pid, a.start().0))
                .or_else(|| default_tree(slots, a.start().0))
        })
        .collect();
    if slots.trees.is_empty() {
        return Charged {
            trees,
            costs: Vec::new(),
        };
    }
    let mut costs: Vec<Option<ResourceCost>> = actions
        .iter()
        .zip(&trees)
        .map(|(a, tree)| {
            let root = (*tree)?;
            let t = slots.trees.get(&root)?;
            Some(slot_cost(slots, root, t.cost(a.start().0, a.end().0)))
        })
        .collect();
    // Overlaps per tree: actions sorted by start, each compared with those starting before
    // it ends.
    let mut by_tree: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, tree) in trees.iter().enumerate() {
        if let Some(root) = tree {
            by_tree.entry(*root).or_default().push(i);
        }
    }
    for idx in by_tree.values_mut() {
        idx.sort_by_key(|&i| actions[i].start());
        for (k, &i) in idx.iter().enumerate() {
            for &j in &idx[k + 1..] {
                if actions[j].start() >= actions[i].end() {
                    break;
                }
                for n in [i, j] {
                    if let Some(c) = &mut costs[n] {
                        c.overlapping_actions += 1;
                    }
                }
            }
        }
    }
    Charged { trees, costs }
}

/// What the actions `idx` cost together on their trees, their shared time counted once, and
/// what those trees used in `window` while none of them ran; `None` without slots.
pub fn group_costs(
    slots: &TreeSlots,
    actions: &[&Action],
    charged: &Charged,
    idx: &[usize],
    window: (i64, i64),
) -> Option<(ResourceCost, ResourceCost)> {
    let mut windows: BTreeMap<u32, Vec<(i64, i64)>> = BTreeMap::new();
    for &i in idx {
        if let Some(root) = charged.trees[i] {
            windows
                .entry(root)
                .or_default()
                .push((actions[i].start().0, actions[i].end().0));
        }
    }
    let mut busy: Option<ResourceCost> = None;
    let mut idle: Option<ResourceCost> = None;
    for (root, mut w) in windows {
        let tree = slots.trees.get(&root)?;
        let union = tree.union_cost(&mut w);
        let all = tree.cost(window.0, window.1);
        let rest: Amounts = std::array::from_fn(|k| (all[k] - union[k]).max(0.0));
        busy.get_or_insert_with(ResourceCost::default)
            .add(&slot_cost(slots, root, union));
        idle.get_or_insert_with(ResourceCost::default)
            .add(&slot_cost(slots, root, rest));
    }
    Some((busy?, idle?))
}

/// The trees no action was charged to, and what they used in `window`.
pub fn other_trees(slots: &TreeSlots, charged: &Charged, window: (i64, i64)) -> Option<OtherTrees> {
    let mut other = OtherTrees::default();
    for (&root, tree) in &slots.trees {
        if charged.trees.contains(&Some(root)) {
            continue;
        }
        other.trees += 1;
        other
            .cost
            .add(&slot_cost(slots, root, tree.cost(window.0, window.1)));
    }
    other.cost.root_pid = None;
    (other.trees > 0).then_some(other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;

    use trace_claw_common::event::ActionEvent;
    use trace_claw_common::time::Timestamp;

    use crate::analyze::source::action::Source;

    const MS: i64 = 1_000_000;
    const T0: i64 = 1_000 * MS;

    /// The gateway (root 10, name `openclaw`) uses 5 ms of CPU in each of slots 0-3 (0-40 ms
    /// after T0) and 8 ms in slot 9; the decoy (root 20) 9 ms in slot 0.
    fn slots() -> TreeSlots {
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        let gw = (0..4)
            .map(|i| format!("[{i},5000000,0,0,0,0,0,0,10000]"))
            .chain(["[9,8000000,0,0,0,0,0,0,10000]".to_owned()])
            .collect::<Vec<_>>()
            .join(",");
        writeln!(f, r#"{{"timestamp":"1970-01-01T00:00:01Z","root_pid":10,"root_name":"openclaw","slot_ms":10,"pids":[10,11],"slots":[{gw}]}}"#).expect("w");
        writeln!(f, r#"{{"timestamp":"1970-01-01T00:00:01Z","root_pid":20,"root_name":"node","slot_ms":10,"pids":[20],"slots":[[0,9000000,0,0,0,0,0,0,10000]]}}"#).expect("w");
        f.flush().expect("flush");
        TreeSlots::read(&[f.path()], i64::MIN, i64::MAX).0
    }

    fn action(pid: Option<u32>, from_ms: i64, to_ms: i64) -> Action {
        let mut e = ActionEvent::new("tool", Timestamp(T0 + from_ms * MS));
        e.duration_ms = (to_ms - from_ms) as f64;
        e.pid = pid;
        Action::new(e, Source::EventLog, &Arc::from("events.jsonl"), 1)
    }

    #[test]
    fn without_a_pid_the_gateway_named_tree_nearest_in_time_is_charged() {
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        // The launcher (root 5, also named openclaw) used slots 0-1, the gateway (root 9)
        // slots 5-9.
        writeln!(f, r#"{{"timestamp":"1970-01-01T00:00:01Z","root_pid":5,"root_name":"openclaw","slot_ms":10,"pids":[5],"slots":[[0,5000000,0,0,0,0,0,0,10000],[1,5000000,0,0,0,0,0,0,10000]]}}"#).expect("w");
        writeln!(f, r#"{{"timestamp":"1970-01-01T00:00:01Z","root_pid":9,"root_name":"openclaw","slot_ms":10,"pids":[9],"slots":[[5,1000000,0,0,0,0,0,0,10000],[9,1000000,0,0,0,0,0,0,10000]]}}"#).expect("w");
        f.flush().expect("flush");
        let s = TreeSlots::read(&[f.path()], i64::MIN, i64::MAX).0;
        let owned = [
            action(None, 5, 15),
            action(None, 60, 70),
            action(None, 200, 210),
        ];
        let actions: Vec<&Action> = owned.iter().collect();
        assert_eq!(charge(&s, &actions).trees, [Some(5), Some(9), Some(9)]);
    }

    #[test]
    fn a_polled_trees_cost_is_interpolated_at_its_interval() {
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        // Tree 30 used 1 s of CPU and 2000 bytes read in the 2 s from T0.
        writeln!(f, r#"{{"timestamp":"1970-01-01T00:00:01Z","root_pid":30,"root_name":"node","slot_ms":2000,"pids":[30],"slots":[[0,1000000000,2000,0,0,0,0,0,2000000]],"interpolated":true}}"#).expect("w");
        f.flush().expect("flush");
        let s = TreeSlots::read(&[f.path()], i64::MIN, i64::MAX).0;
        let owned = [action(Some(30), 500, 1000)];
        let actions: Vec<&Action> = owned.iter().collect();
        let c = charge(&s, &actions).costs[0].expect("a cost");
        assert_eq!(c.method, Some(METHOD_INTERPOLATED));
        assert_eq!(c.resolution_ms, Some(2000.0));
        assert_eq!(c.root_pid, Some(30));
        // A quarter of the interval: a quarter of its use, uniform within it.
        assert_eq!(c.cpu_seconds, Some(0.25));
        assert_eq!(c.read_bytes, Some(500.0));
        assert_eq!(c.block_read_bytes, None, "not measured by polling");
        assert_eq!(c.net_sent_bytes, None, "not measured by polling");
    }

    #[test]
    fn overlapping_actions_are_marked_counted_once_and_the_rest_is_idle() {
        let s = slots();
        let owned = [
            action(Some(11), 0, 20),
            action(Some(11), 10, 30),
            action(None, 35, 40),
            action(Some(20), 0, 10),
        ];
        let actions: Vec<&Action> = owned.iter().collect();
        let charged = charge(&s, &actions);
        assert_eq!(
            charged.trees,
            [Some(10), Some(10), Some(10), Some(20)],
            "by pid; without one, the tree named openclaw"
        );
        let cpu = |i: usize| charged.costs[i].and_then(|c| c.cpu_seconds).expect("cpu");
        assert!((cpu(0) - 0.010).abs() < 1e-12);
        assert!((cpu(1) - 0.010).abs() < 1e-12);
        assert_eq!(charged.costs[0].map(|c| c.overlapping_actions), Some(1));
        assert_eq!(charged.costs[2].map(|c| c.overlapping_actions), Some(0));
        let gateway = [0, 1, 2];
        let (busy, idle) =
            group_costs(&s, &actions, &charged, &gateway, (T0, T0 + 100 * MS)).expect("slots");
        // 0-30 ms once (15 ms) + 35-40 ms (2.5 ms); idle: the rest of 28 ms
        assert!(
            (busy.cpu_seconds.expect("cpu") - 0.0175).abs() < 1e-12,
            "{busy:?}"
        );
        assert!(
            (idle.cpu_seconds.expect("cpu") - 0.0105).abs() < 1e-12,
            "{idle:?}"
        );
        let others = other_trees(&s, &charge(&s, &actions[..3]), (T0, T0 + 100 * MS));
        assert_eq!(others.map(|o| o.trees), Some(1));
        assert_eq!(others.and_then(|o| o.cost.cpu_seconds), Some(0.009));
    }
}
