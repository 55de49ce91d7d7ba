//! The container and Kubernetes pod a process runs in, from its cgroup path
//! (`/proc/PID/cgroup`, [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html)):
//! the `container.id` and `k8s.pod.uid` labels of its samples.
//!
//! Container runtimes name the cgroup of a container after its 64-hex id, and the kubelet names
//! the cgroup of a pod after its uid, in one of these shapes (cgroup v2 `0::PATH` lines and v1
//! `N:controllers:PATH` lines alike):
//!
//! | runtime, cgroup driver | path |
//! |---|---|
//! | containerd, systemd | `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope` |
//! | containerd, cgroupfs | `/kubepods/burstable/pod<uid>/<id>` |
//! | CRI-O, systemd | `.../kubepods-pod<uid_with_underscores>.slice/crio-<id>.scope` |
//! | docker, systemd | `/system.slice/docker-<id>.scope` |
//! | docker, cgroupfs | `/docker/<id>` |
//!
//! A process's cgroup is read once, the first time it is sampled: runtimes place a container's
//! first process before it executes the container's program, and its children inherit it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use trace_claw_common::names::labels;

use crate::target::ProcessKey;

/// Prefixes a runtime puts before the container id in a systemd scope name.
const SCOPE_PREFIXES: &[&str] = &["cri-containerd-", "crio-", "docker-", "libpod-"];

/// Where a containerised process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    /// The runtime's 64-hex container id.
    pub container_id: String,
    /// The Kubernetes pod uid (with dashes), when the container belongs to a pod.
    pub pod_uid: Option<String>,
    /// What the API server calls the pod and the container, once it has told (`crate::k8s`).
    pub names: Option<PodNames>,
}

/// The Kubernetes names of a container's pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNames {
    /// `k8s.pod.name`.
    pub pod: String,
    /// `k8s.namespace.name`.
    pub namespace: String,
    /// `k8s.container.name`, when the pod's status lists the container.
    pub container: Option<String>,
}

impl ContainerRef {
    /// The `container.id`, `k8s.pod.uid`, `k8s.pod.name`, `k8s.namespace.name` and
    /// `k8s.container.name` labels, as many as are known.
    pub fn labels(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let names = self.names.as_ref();
        [
            Some((labels::CONTAINER_ID, self.container_id.as_str())),
            self.pod_uid
                .as_deref()
                .map(|uid| (labels::K8S_POD_UID, uid)),
            names.map(|n| (labels::K8S_POD_NAME, n.pod.as_str())),
            names.map(|n| (labels::K8S_NAMESPACE_NAME, n.namespace.as_str())),
            names
                .and_then(|n| n.container.as_deref())
                .map(|c| (labels::K8S_CONTAINER_NAME, c)),
        ]
        .into_iter()
        .flatten()
    }

    /// This container with the names `directory` knows for its pod, if it knows any now.
    fn named(&self, directory: &crate::k8s::PodDirectory) -> Option<Self> {
        let pod = directory.pod(self.pod_uid.as_deref()?)?;
        Some(Self {
            names: Some(PodNames {
                container: pod.containers.get(&self.container_id).cloned(),
                pod: pod.name,
                namespace: pod.namespace,
            }),
            ..self.clone()
        })
    }
}

/// The container of a process, from the text of its `/proc/PID/cgroup`: the cgroup v2 line
/// first, then the v1 lines in order; `None` outside a container.
pub fn parse_proc_cgroup(text: &str) -> Option<ContainerRef> {
    let paths = text.lines().filter_map(|line| {
        let mut fields = line.splitn(3, ':');
        let hierarchy = fields.next()?;
        let _controllers = fields.next()?;
        Some((hierarchy != "0", fields.next()?))
    });
    let mut paths: Vec<(bool, &str)> = paths.collect();
    // A stable sort keeps the v1 lines in file order after the v2 one.
    paths.sort_by_key(|&(is_v1, _)| is_v1);
    paths
        .into_iter()
        .find_map(|(_, path)| parse_cgroup_path(path))
}

/// The container of process `pid` now, from `<proc_root>/<pid>/cgroup`; `None` outside a
/// container, and when the file cannot be read (the process is gone, or there is no procfs).
fn read_container(proc_root: &Path, pid: u32) -> Option<ContainerRef> {
    let path = proc_root.join(pid.to_string()).join("cgroup");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| parse_proc_cgroup(&text))
}

/// The container a cgroup path names, if any: its last segment holding a container id, and the
/// pod segment above it.
pub fn parse_cgroup_path(path: &str) -> Option<ContainerRef> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = segments.iter().rposition(|s| container_id(s).is_some())?;
    let container_id = container_id(segments[at])?.to_owned();
    let pod_uid = segments[..at].iter().rev().find_map(|s| pod_uid(s));
    Some(ContainerRef {
        container_id,
        pod_uid,
        names: None,
    })
}

/// The container id a cgroup directory name holds: `<id>`, or `<runtime>-<id>.scope`.
fn container_id(segment: &str) -> Option<&str> {
    let bare = segment
        .strip_suffix(".scope")
        .map_or(Some(segment), |scope| {
            SCOPE_PREFIXES.iter().find_map(|p| scope.strip_prefix(p))
        })?;
    (bare.len() == 64 && bare.bytes().all(|b| b.is_ascii_hexdigit())).then_some(bare)
}

/// The pod uid a cgroup directory name holds: `pod<uid>` (cgroupfs driver) or
/// `kubepods[-<qos>]-pod<uid_with_underscores>.slice` (systemd driver), as a dashed uid.
fn pod_uid(segment: &str) -> Option<String> {
    let name = segment.strip_suffix(".slice").unwrap_or(segment);
    let uid = if let Some(uid) = name.strip_prefix("pod") {
        uid
    } else if name.starts_with("kubepods") {
        &name[name.rfind("-pod")? + "-pod".len()..]
    } else {
        return None;
    };
    let uid = uid.replace('_', "-");
    is_uuid(&uid).then_some(uid)
}

/// Whether `s` is a UUID in its 8-4-4-4-12 form.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The container of each tracked process, read from its cgroup file on first sight and
/// forgotten once the process has left the tree.
#[derive(Debug)]
pub struct ContainerIds {
    proc_root: PathBuf,
    /// Each process's container (`None`: not in one, or unreadable) and the tick it was last
    /// asked for.
    by_process: HashMap<ProcessKey, (Option<Arc<ContainerRef>>, u64)>,
    tick: u64,
}

impl ContainerIds {
    /// Reads `<proc_root>/<pid>/cgroup`.
    pub fn new(proc_root: &Path) -> Self {
        Self {
            proc_root: proc_root.to_owned(),
            by_process: HashMap::new(),
            tick: 0,
        }
    }

    /// Starts a tick: forgets the processes not asked for during the last one.
    pub fn start_tick(&mut self) {
        let last = self.tick;
        self.by_process.retain(|_, (_, seen)| *seen == last);
        self.tick += 1;
    }

    /// The container of process `pid` now, read from its cgroup file whatever is cached.
    pub fn read_now(&self, pid: u32) -> Option<ContainerRef> {
        read_container(&self.proc_root, pid)
    }

    /// The container of process `key`, reading its cgroup file the first time and naming its
    /// pod as soon as the pod directory can (shared, so the caller's labels may borrow from it
    /// while the cache changes).
    pub fn of(&mut self, key: ProcessKey) -> Option<Arc<ContainerRef>> {
        let tick = self.tick;
        let proc_root = &self.proc_root;
        let entry = self
            .by_process
            .entry(key)
            .or_insert_with(|| (read_container(proc_root, key.pid).map(Arc::new), tick));
        entry.1 = tick;
        let unnamed = entry
            .0
            .as_ref()
            .filter(|c| c.names.is_none() && c.pod_uid.is_some());
        if let (Some(c), Some(directory)) = (unnamed, crate::k8s::directory()) {
            if let Some(named) = c.named(directory) {
                entry.0 = Some(Arc::new(named));
            }
        }
        entry.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "1f3e2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b";
    const UID_UNDERSCORES: &str = "1f3e2a4b_5c6d_4e7f_8a9b_0c1d2e3f4a5b";

    fn parsed(path: &str) -> Option<(String, Option<String>)> {
        parse_cgroup_path(path).map(|c| (c.container_id, c.pod_uid))
    }

    fn in_pod() -> Option<(String, Option<String>)> {
        Some((ID.to_owned(), Some(UID.to_owned())))
    }

    fn bare() -> Option<(String, Option<String>)> {
        Some((ID.to_owned(), None))
    }

    #[test]
    fn reads_containerd_under_the_systemd_driver() {
        let path = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_UNDERSCORES}.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(parsed(&path), in_pod());
        let guaranteed = format!(
            "/kubepods.slice/kubepods-pod{UID_UNDERSCORES}.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(parsed(&guaranteed), in_pod());
    }

    #[test]
    fn reads_containerd_under_the_cgroupfs_driver() {
        assert_eq!(
            parsed(&format!("/kubepods/burstable/pod{UID}/{ID}")),
            in_pod()
        );
        assert_eq!(parsed(&format!("/kubepods/pod{UID}/{ID}")), in_pod());
    }

    #[test]
    fn reads_cri_o_and_skips_its_conmon() {
        let path = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_UNDERSCORES}.slice/crio-{ID}.scope"
        );
        assert_eq!(parsed(&path), in_pod());
        let conmon = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_UNDERSCORES}.slice/crio-conmon-{ID}.scope"
        );
        assert_eq!(parsed(&conmon), None);
    }

    #[test]
    fn reads_docker_outside_kubernetes() {
        assert_eq!(parsed(&format!("/system.slice/docker-{ID}.scope")), bare());
        assert_eq!(parsed(&format!("/docker/{ID}")), bare());
    }

    #[test]
    fn a_process_inside_a_container_cgroup_is_still_in_that_container() {
        // Runtimes that nest a sub-cgroup (systemd in the container, `init.scope`).
        let path = format!("/system.slice/docker-{ID}.scope/init.scope");
        assert_eq!(parsed(&path), bare());
    }

    #[test]
    fn host_processes_and_lookalikes_have_no_container() {
        for path in [
            "/",
            "/user.slice/user-1000.slice/session-2.scope",
            "/system.slice/containerd.service",
            "/process_api/2d9a2d043bb4c5a2302fee2e06925b4d",
            "/kubepods.slice/kubepods-burstable.slice",
            &format!("/docker/{}", &ID[..63]),
            &format!("/system.slice/docker-{ID}x.scope"),
        ] {
            assert_eq!(parsed(path), None, "{path}");
        }
    }

    #[test]
    fn a_malformed_pod_segment_leaves_only_the_container() {
        let path = format!("/kubepods/burstable/podnot-a-uid/{ID}");
        assert_eq!(parsed(&path), bare());
    }

    #[test]
    fn proc_cgroup_prefers_the_v2_line_then_v1_lines_in_order() {
        let v1_only = format!(
            "12:pids:/kubepods/burstable/pod{UID}/{ID}\n4:memory:/kubepods/burstable/pod{UID}/{ID}\n1:name=systemd:/\n"
        );
        assert_eq!(
            parse_proc_cgroup(&v1_only).map(|c| c.container_id),
            Some(ID.to_owned())
        );
        let other = ID.replace('0', "f");
        let hybrid = format!("1:name=systemd:/docker/{other}\n0::/docker/{ID}\n");
        assert_eq!(
            parse_proc_cgroup(&hybrid).map(|c| c.container_id),
            Some(ID.to_owned())
        );
        assert_eq!(parse_proc_cgroup("0::/\n"), None);
        assert_eq!(parse_proc_cgroup(""), None);
    }

    #[test]
    fn reads_a_process_once_and_forgets_it_after_it_leaves() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("42");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::write(dir.join("cgroup"), format!("0::/docker/{ID}\n")).expect("write");
        let key = ProcessKey {
            pid: 42,
            start_time: 1,
        };
        let mut ids = ContainerIds::new(root.path());
        ids.start_tick();
        assert_eq!(
            ids.of(key).map(|c| c.container_id.clone()).as_deref(),
            Some(ID)
        );
        // Not read again while the process stays in the tree.
        std::fs::write(dir.join("cgroup"), "0::/\n").expect("rewrite");
        ids.start_tick();
        assert_eq!(
            ids.of(key).map(|c| c.container_id.clone()).as_deref(),
            Some(ID)
        );
        // Absent for a tick: forgotten, so a reused key is read afresh.
        ids.start_tick();
        ids.start_tick();
        assert_eq!(ids.of(key), None);
        let missing = ProcessKey {
            pid: 7,
            start_time: 1,
        };
        assert_eq!(ids.of(missing), None);
    }
}
