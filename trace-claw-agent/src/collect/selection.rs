//! Which processes are targets: those whose comm, `argv[0]` or exe contains the target name,
//! and, when `kubernetes.namespace` or `kubernetes.pod_selector` is set, only those running in
//! a pod they pick (with an empty name: every process of those pods). Descendants of a target
//! are tracked whatever their name (`target::tracked_tree`).
//!
//! A process's pod comes from its cgroup (`container`) and the pod's namespace and labels from
//! the pod watch (`crate::k8s`): a process of a pod the watch has not told of yet is not a
//! target until it has, so a backend looks again when [`TargetSelection::pods_changed`] says so.

use std::path::Path;

use super::container::{ContainerIds, ContainerRef};
use super::process::{ProcStat, ProcessTable};
use crate::k8s::PodSelector;
use crate::target::NameMatcher;

/// The target name and, optionally, the pods targets must run in.
#[derive(Debug)]
pub struct TargetSelection {
    name: NameMatcher,
    pods: Option<PodTargets>,
}

/// The pods of the selection, and the container of each process asked about.
#[derive(Debug)]
struct PodTargets {
    selector: PodSelector,
    containers: ContainerIds,
    /// The pod directory's generation at the last [`TargetSelection::pods_changed`].
    generation: Option<u64>,
}

impl TargetSelection {
    /// Targets by `name`; with `pods`, only (with an empty name: all) the processes of the
    /// pods it picks, whose cgroups are read under `proc_root`.
    pub fn new(name: &str, pods: Option<PodSelector>, proc_root: &Path) -> Self {
        Self {
            name: NameMatcher::new(name),
            pods: pods.map(|selector| PodTargets {
                selector,
                containers: ContainerIds::new(proc_root),
                generation: None,
            }),
        }
    }

    /// Whether targets are picked by pod.
    pub fn by_pod(&self) -> bool {
        self.pods.is_some()
    }

    /// Starts a scan of the process table: the containers of processes not asked about during
    /// the previous scan are forgotten.
    pub fn start_scan(&mut self) {
        if let Some(p) = &mut self.pods {
            p.containers.start_tick();
        }
    }

    /// Whether the pods the watch knows changed since the last call (true the first time):
    /// matches made before may be out of date.
    pub fn pods_changed(&mut self) -> bool {
        let Some(p) = &mut self.pods else {
            return false;
        };
        let now = crate::k8s::directory().map(crate::k8s::PodDirectory::generation);
        let changed = p.generation.is_none() || now != p.generation;
        p.generation = now.or(Some(0));
        changed
    }

    /// Whether process `s` of `table` is a target. The comm is tried first; `argv[0]` and exe
    /// are read only when it does not match, and the cgroup only when the name does.
    pub fn matches<T: ProcessTable + ?Sized>(&mut self, table: &T, s: &ProcStat) -> bool {
        let named = self.name_is_any() || self.name.matches_name(&s.comm) || {
            let (argv0, exe) = table.names(s.key.pid);
            self.name.matches(&s.comm, argv0.as_deref(), exe.as_deref())
        };
        named
            && self.pods.as_mut().is_none_or(|p| {
                let container = p.containers.of(s.key);
                p.picks(container.as_deref())
            })
    }

    /// Whether process `pid`, which has just executed `filename` and has these names, is a
    /// target (its cgroup read now).
    pub fn matches_exec(
        &self,
        pid: u32,
        comm: &str,
        argv0: Option<&str>,
        exe: Option<&str>,
        filename: &str,
    ) -> bool {
        let named = self.name_is_any()
            || self.name.matches(comm, argv0, exe)
            || self.name.matches_name(filename);
        named
            && self.pods.as_ref().is_none_or(|p| {
                let container = p.containers.read_now(pid);
                p.picks(container.as_ref())
            })
    }

    /// With pods and no name, every process of the pods is a target.
    fn name_is_any(&self) -> bool {
        self.pods.is_some() && self.name.needle().is_empty()
    }

    /// The lower-cased target name (empty: any process of the picked pods).
    pub fn name(&self) -> &str {
        self.name.needle()
    }
}

impl PodTargets {
    /// Whether a process in `container` runs in a pod the selector picks.
    fn picks(&self, container: Option<&ContainerRef>) -> bool {
        let Some(uid) = container.and_then(|c| c.pod_uid.as_deref()) else {
            return false;
        };
        crate::k8s::directory()
            .and_then(|d| d.pod(uid))
            .is_some_and(|pod| self.selector.matches(&pod))
    }
}
