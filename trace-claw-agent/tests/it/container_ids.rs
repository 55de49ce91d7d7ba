//! `container.id` and `k8s.pod.uid` from real cgroups: the test creates cgroups in the path
//! shapes of containerd, CRI-O and docker under the host's cgroup v2 mount, moves a real process
//! into each, runs the agent and checks every process's samples carry the ids its path names.
//!
//! Needs root and a cgroup v2 mount (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid
//! hosts): skipped with a message otherwise, failed under `CI=true`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use trace_claw_common::names::labels;

use crate::reliability::support::require_root;
use crate::util::{agent, named_copy, read_jsonl, run, text, unique, Reaped};

/// The mount point of the cgroup v2 hierarchy, from `/proc/self/mountinfo`.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        let fstype = fs.split(' ').next()?;
        let point = mount.split(' ').nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(point))
    })
}

/// The cgroup v2 mount when the test can create cgroups there; else skips (or fails in CI).
fn require_cgroup_root(test: &str) -> Option<PathBuf> {
    if !require_root(test) {
        return None;
    }
    let mount = cgroup2_mount();
    if mount.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(!ci, "{test}: no cgroup v2 mount, and CI=true");
        eprintln!("skipping {test}: no cgroup v2 mount");
    }
    mount
}

/// A cgroup path created for the test; removed (deepest first) on drop.
struct TestCgroup {
    mount: PathBuf,
    relative: PathBuf,
}

impl TestCgroup {
    fn create(mount: &Path, relative: &str) -> Self {
        let path = mount.join(relative);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        Self {
            mount: mount.to_owned(),
            relative: PathBuf::from(relative),
        }
    }

    /// Moves process `pid` into the cgroup.
    fn enter(&self, pid: u32) {
        let procs = self.mount.join(&self.relative).join("cgroup.procs");
        std::fs::write(&procs, pid.to_string())
            .unwrap_or_else(|e| panic!("write {}: {e}", procs.display()));
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let mut dir = Some(self.relative.as_path());
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            // Best effort: a directory still holding a process stays (and is reported below).
            if let Err(e) = std::fs::remove_dir(self.mount.join(d)) {
                eprintln!("cannot remove cgroup {}: {e}", d.display());
                return;
            }
            dir = d.parent();
        }
    }
}

#[test]
fn samples_carry_the_container_and_pod_of_each_runtime_shape() {
    let Some(mount) = require_cgroup_root("samples_carry_the_container_and_pod") else {
        return;
    };
    let tag = unique("tc");
    let id = |n: u64| format!("{n:016x}").repeat(4);
    let uid = |n: u64| format!("{n:08x}-0000-4000-8000-{n:012x}");
    // (cgroup path, container id, pod uid): one per runtime and cgroup driver.
    let shapes: Vec<(String, String, Option<String>)> = vec![
        (
            format!(
                "kubepods-{tag}.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{}.scope",
                uid(1).replace('-', "_"),
                id(1)
            ),
            id(1),
            Some(uid(1)),
        ),
        (
            format!("kubepods-{tag}/burstable/pod{}/{}", uid(2), id(2)),
            id(2),
            Some(uid(2)),
        ),
        (
            format!(
                "kubepods-{tag}.slice/kubepods-pod{}.slice/crio-{}.scope",
                uid(3).replace('-', "_"),
                id(3)
            ),
            id(3),
            Some(uid(3)),
        ),
        (
            format!("system-{tag}.slice/docker-{}.scope", id(4)),
            id(4),
            None,
        ),
        (format!("docker-{tag}/{}", id(5)), id(5), None),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("cgsl");
    let exe = named_copy(dir.path(), "/bin/sleep", &name);
    // Declared before the processes, so dropped after them: a cgroup with a process in it
    // cannot be removed.
    let cgroups: Vec<TestCgroup> = shapes
        .iter()
        .map(|(path, _, _)| TestCgroup::create(&mount, path))
        .collect();
    let mut children = Vec::new();
    let mut want: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for (cgroup, (_, container, pod)) in cgroups.iter().zip(&shapes) {
        let child = Reaped(Command::new(&exe).arg("60").spawn().expect("sleep starts"));
        cgroup.enter(child.0.id());
        want.insert(
            child.0.id().to_string(),
            (Some(container.clone()), pod.clone()),
        );
        children.push(child);
    }
    // One process left on the host: no labels.
    let host = Reaped(Command::new(&exe).arg("60").spawn().expect("sleep starts"));
    want.insert(host.0.id().to_string(), (None, None));
    children.push(host);

    // Both backends label through the same code; `auto` is eBPF where it loads.
    for ebpf in ["off", "auto"] {
        let out = dir.path().join(format!("out-{ebpf}"));
        let o = run(agent()
            .args(["collect", "--process", &name, "--ebpf", ebpf])
            .args(["--interval", "0.2", "--count", "2", "--output-dir"])
            .arg(&out));
        assert!(o.status.success(), "{}", text(&o));
        let samples = read_jsonl(&out, "resources-");
        for (pid, (container, pod)) in &want {
            let mine: Vec<&serde_json::Value> = samples
                .iter()
                .filter(|s| s["labels"][labels::PID] == pid.as_str())
                .collect();
            assert!(!mine.is_empty(), "--ebpf {ebpf}: no samples of pid {pid}");
            for s in mine {
                let l = &s["labels"];
                assert_eq!(
                    l[labels::CONTAINER_ID].as_str(),
                    container.as_deref(),
                    "{s}"
                );
                assert_eq!(l[labels::K8S_POD_UID].as_str(), pod.as_deref(), "{s}");
            }
        }
    }
    drop(children);
    drop(cgroups);
    for (path, _, _) in &shapes {
        let top = path.split('/').next().expect("top");
        assert!(!mount.join(top).exists(), "cgroup {top} left behind");
    }
}

/// A stand-in API server on a free loopback port: the pod list of node `node-a` holds `listed`;
/// a watch gets `watched` as one ADDED event and is then held open.
struct FakeApiServer {
    url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn pod_json(uid: &str, name: &str, container: &str, id: &str) -> serde_json::Value {
    labelled_pod_json(uid, name, "apps", &[], (container, id))
}

/// A pod of `namespace` with `labels`, running one container.
fn labelled_pod_json(
    uid: &str,
    name: &str,
    namespace: &str,
    labels: &[(&str, &str)],
    (container, id): (&str, &str),
) -> serde_json::Value {
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    serde_json::json!({
        "metadata": {"uid": uid, "name": name, "namespace": namespace, "labels": labels,
                     "resourceVersion": "101"},
        "status": {"containerStatuses": [{"name": container, "containerID": format!("containerd://{id}")}]}
    })
}

impl FakeApiServer {
    fn start(listed: serde_json::Value, watched: serde_json::Value) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let seen = std::sync::Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut head = String::new();
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                while reader.read_line(&mut head).is_ok_and(|n| n > 2) {
                    if head.ends_with("\r\n\r\n") {
                        break;
                    }
                }
                let target = head.split(' ').nth(1).unwrap_or("").to_owned();
                seen.lock().expect("lock").push(target.clone());
                if !target.contains("fieldSelector=spec.nodeName%3Dnode-a") {
                    let _ =
                        stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
                } else if target.contains("watch=1") {
                    let event = format!(
                        "{}\n",
                        serde_json::json!({"type": "ADDED", "object": watched})
                    );
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{event}\r\n",
                        event.len()
                    );
                    let _ = stream.flush();
                    // Held open, as a watch is, until the agent goes.
                    std::thread::spawn(move || {
                        std::thread::sleep(std::time::Duration::from_secs(30));
                        drop(stream);
                    });
                } else {
                    let body = serde_json::json!({
                        "kind": "PodList",
                        "metadata": {"resourceVersion": "100"},
                        "items": listed
                    })
                    .to_string();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            }
        });
        Self { url, requests }
    }
}

#[test]
fn pods_are_named_from_the_api_servers_list_and_watch() {
    let Some(mount) = require_cgroup_root("pods_are_named_from_the_api_server") else {
        return;
    };
    let tag = unique("tk");
    let id = |n: u64| format!("{n:016x}").repeat(4);
    let uid = |n: u64| format!("{n:08x}-0000-4000-8000-{n:012x}");
    // Listed, arriving by the watch, and never told of.
    let paths: Vec<String> = (11..=13)
        .map(|n| format!("kubepods-{tag}/besteffort/pod{}/{}", uid(n), id(n)))
        .collect();
    let server = FakeApiServer::start(
        serde_json::json!([pod_json(&uid(11), "gw-11", "gateway", &id(11))]),
        pod_json(&uid(12), "gw-12", "sidecar", &id(12)),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("k8sl");
    let exe = named_copy(dir.path(), "/bin/sleep", &name);
    let cgroups: Vec<TestCgroup> = paths
        .iter()
        .map(|p| TestCgroup::create(&mount, p))
        .collect();
    let mut children = Vec::new();
    let mut want = BTreeMap::new();
    let names = [Some(("gw-11", "gateway")), Some(("gw-12", "sidecar")), None];
    for (cgroup, expected) in cgroups.iter().zip(names) {
        let child = Reaped(Command::new(&exe).arg("60").spawn().expect("sleep starts"));
        cgroup.enter(child.0.id());
        want.insert(child.0.id().to_string(), expected);
        children.push(child);
    }
    let out = dir.path().join("out");
    let o = run(agent()
        .args(["collect", "--process", &name, "--ebpf", "off"])
        .args(["--interval", "0.3", "--count", "5", "--output-dir"])
        .arg(&out)
        .env("TRACE_CLAW_K8S_API_SERVER", &server.url)
        .env("NODE_NAME", "node-a"));
    assert!(o.status.success(), "{}", text(&o));
    let samples = read_jsonl(&out, "resources-");
    let last_tick = samples
        .iter()
        .filter_map(|s| s["timestamp"].as_str())
        .max()
        .expect("samples")
        .to_owned();
    for (pid, expected) in &want {
        let last: Vec<&serde_json::Value> = samples
            .iter()
            .filter(|s| s["labels"][labels::PID] == pid.as_str() && s["timestamp"] == last_tick)
            .collect();
        assert!(!last.is_empty(), "no samples of {pid} in the last tick");
        for s in last {
            let l = &s["labels"];
            assert!(l[labels::K8S_POD_UID].is_string(), "{s}");
            match expected {
                Some((pod, container)) => {
                    assert_eq!(l[labels::K8S_POD_NAME], *pod, "{s}");
                    assert_eq!(l[labels::K8S_NAMESPACE_NAME], "apps", "{s}");
                    assert_eq!(l[labels::K8S_CONTAINER_NAME], *container, "{s}");
                }
                None => assert!(l[labels::K8S_POD_NAME].is_null(), "{s}"),
            }
        }
    }
    let requests = server.requests.lock().expect("lock").clone();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("watch=1") && r.contains("resourceVersion=100")),
        "the watch resumed from the list's version: {requests:?}"
    );
    drop(children);
    drop(cgroups);
}

/// A pod of the selection test: number, namespace, labels, and whether the selector picks it.
type TestPod<'a> = (u64, &'a str, &'a [(&'a str, &'a str)], bool);

#[test]
fn targets_are_picked_by_namespace_and_pod_labels() {
    let Some(mount) = require_cgroup_root("targets_are_picked_by_namespace_and_pod_labels") else {
        return;
    };
    for ebpf in ["off", "require"] {
        let tag = unique("ks");
        let id = |n: u64| format!("{n:016x}").repeat(4);
        let uid = |n: u64| format!("{n:08x}-0000-4000-8000-{n:012x}");
        let gateway = [("app", "gateway"), ("env", "prod")];
        // (pod, namespace, labels, picked): listed, except the last, which the watch brings.
        let pods: [TestPod; 4] = [
            (21, "apps", &gateway, true),
            (22, "apps", &[("app", "batch")], false),
            (23, "other", &gateway, false),
            (24, "apps", &gateway, true),
        ];
        let json: Vec<serde_json::Value> = pods
            .iter()
            .map(|&(n, ns, labels, _)| {
                let name = format!("pod-{n}");
                labelled_pod_json(&uid(n), &name, ns, labels, ("main", &id(n)))
            })
            .collect();
        let server =
            FakeApiServer::start(serde_json::Value::from(json[..3].to_vec()), json[3].clone());
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = named_copy(dir.path(), "/bin/sleep", &unique("ksel"));
        let cgroups: Vec<TestCgroup> = pods
            .iter()
            .map(|&(n, ..)| {
                let path = format!("kubepods-{tag}/besteffort/pod{}/{}", uid(n), id(n));
                TestCgroup::create(&mount, &path)
            })
            .collect();
        let mut children = Vec::new();
        let mut picked = BTreeMap::new();
        for (cgroup, &(_, _, _, wanted)) in cgroups.iter().zip(&pods) {
            let child = Reaped(Command::new(&exe).arg("60").spawn().expect("sleep starts"));
            cgroup.enter(child.0.id());
            picked.insert(child.0.id().to_string(), wanted);
            children.push(child);
        }
        // Same program, in no pod.
        let outside = Reaped(Command::new(&exe).arg("60").spawn().expect("sleep starts"));
        picked.insert(outside.0.id().to_string(), false);
        let out = dir.path().join("out");
        let o = run(agent()
            .args(["collect", "--ebpf", ebpf, "--k8s-namespace", "apps"])
            .args(["--k8s-pod-selector", "app in (gateway),env!=dev"])
            .args(["--interval", "0.3", "--count", "8", "--output-dir"])
            .arg(&out)
            .env("TRACE_CLAW_K8S_API_SERVER", &server.url)
            .env("NODE_NAME", "node-a"));
        assert!(o.status.success(), "--ebpf {ebpf}: {}", text(&o));
        let samples = read_jsonl(&out, "resources-");
        let last_tick = samples
            .iter()
            .filter(|s| s["labels"][labels::PID] != "total")
            .filter_map(|s| s["timestamp"].as_str())
            .max()
            .unwrap_or_default()
            .to_owned();
        for (pid, wanted) in &picked {
            let of_pid: Vec<&serde_json::Value> = samples
                .iter()
                .filter(|s| s["labels"][labels::PID] == pid.as_str())
                .collect();
            if *wanted {
                assert!(
                    of_pid.iter().any(|s| s["timestamp"] == last_tick.as_str()),
                    "--ebpf {ebpf}: pid {pid} of a picked pod is not tracked: {}",
                    text(&o)
                );
                for s in of_pid {
                    assert_eq!(s["labels"][labels::K8S_NAMESPACE_NAME], "apps", "{s}");
                }
            } else {
                assert!(
                    of_pid.is_empty(),
                    "--ebpf {ebpf}: pid {pid} is tracked though its pod is not picked: {}",
                    of_pid[0]
                );
            }
        }
        drop((children, outside));
        drop(cgroups);
    }
}

#[test]
fn picking_by_pod_outside_a_cluster_is_refused_with_the_keys_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(agent()
        .args([
            "collect",
            "--ebpf",
            "off",
            "--k8s-namespace",
            "apps",
            "--count",
            "1",
        ])
        .arg("--output-dir")
        .arg(dir.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("NODE_NAME"));
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("kubernetes.namespace"), "{}", text(&o));
    let o = run(agent()
        .args(["collect", "--ebpf", "off", "--count", "1"])
        .args(["--k8s-pod-selector", "app in gateway"])
        .arg("--output-dir")
        .arg(dir.path()));
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("kubernetes.pod_selector"), "{}", text(&o));
    assert!(text(&o).contains("(a,b,...)"), "{}", text(&o));
}
