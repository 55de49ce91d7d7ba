//! The traced process tree: which processes match the target name, and which descend from one.
//!
//! A process is identified by `(pid, start_time)` so a restart or a reused PID is a new process.

use std::collections::{HashMap, HashSet};

use trace_claw_common::names::labels;

/// A process's identity, stable across PID reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessKey {
    /// Process id (tgid).
    pub pid: u32,
    /// Start time in clock ticks since boot (procfs) or seconds since the epoch (elsewhere).
    pub start_time: u64,
}

/// Why a process is traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    /// Its own name matched.
    Match,
    /// An ancestor matched.
    Descendant,
}

impl Tracked {
    /// Value of the `tracked` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Match => labels::TRACKED_MATCH,
            Self::Descendant => labels::TRACKED_DESCENDANT,
        }
    }
}

/// Case-insensitive substring match of a target name against a process's names.
#[derive(Debug, Clone)]
pub struct NameMatcher {
    needle: String,
}

impl NameMatcher {
    /// Matches processes whose names contain `name`, ignoring case.
    pub fn new(name: &str) -> Self {
        Self {
            needle: name.trim().to_lowercase(),
        }
    }

    /// The lower-cased target name.
    pub fn needle(&self) -> &str {
        &self.needle
    }

    /// Whether one name (comm, or a path whose basename is taken) contains the target.
    pub fn matches_name(&self, name: &str) -> bool {
        let base = name.rsplit('/').next().unwrap_or(name);
        !self.needle.is_empty() && base.to_lowercase().contains(&self.needle)
    }

    /// Whether the process matches by comm, `argv[0]` basename or exe basename.
    pub fn matches(&self, comm: &str, argv0: Option<&str>, exe: Option<&str>) -> bool {
        self.matches_name(comm)
            || argv0.is_some_and(|a| self.matches_name(a))
            || exe.is_some_and(|e| self.matches_name(e))
    }
}

/// Computes the tracked set from a snapshot of (pid, ppid, matched) triples: every matched
/// process and everything below it.
pub fn tracked_tree(procs: &[(u32, u32, bool)]) -> HashMap<u32, Tracked> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(pid, ppid, _) in procs {
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = HashMap::new();
    let mut stack: Vec<u32> = Vec::new();
    for &(pid, _, matched) in procs {
        if matched {
            out.insert(pid, Tracked::Match);
            stack.push(pid);
        }
    }
    let mut seen: HashSet<u32> = stack.iter().copied().collect();
    while let Some(pid) = stack.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or(&[]) {
            if seen.insert(child) {
                out.entry(child).or_insert(Tracked::Descendant);
                stack.push(child);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_openclaw_gateway_by_exe_and_children_by_comm() {
        let m = NameMatcher::new("Node");
        assert!(m.matches("openclaw", None, Some("/opt/node/bin/node")));
        assert!(!m.matches("openclaw", Some("openclaw"), None));
        let m = NameMatcher::new("openclaw");
        assert!(m.matches("openclaw-agent", None, None));
        assert!(m.matches("node", Some("/tmp/x/node_modules/.bin/openclaw"), None));
        assert!(!NameMatcher::new("").matches("anything", None, None));
    }

    #[test]
    fn descendants_are_tracked_but_not_siblings() {
        // 1 -> 10 (match) -> 11 -> 12 ; 1 -> 20 (not)
        let procs = [
            (1, 0, false),
            (10, 1, true),
            (11, 10, false),
            (12, 11, false),
            (20, 1, false),
        ];
        let t = tracked_tree(&procs);
        assert_eq!(t.get(&10), Some(&Tracked::Match));
        assert_eq!(t.get(&12), Some(&Tracked::Descendant));
        assert!(!t.contains_key(&20));
        assert!(!t.contains_key(&1));
    }
}
