//! The names Kubernetes gives the pods of this node: `k8s.pod.name`, `k8s.namespace.name` and
//! `k8s.container.name` for the processes whose cgroup names a pod uid and container id
//! (`collect::container`).
//!
//! In a cluster the agent lists and then watches the pods of its own node (`spec.nodeName`
//! field selector) with its ServiceAccount, which may get, list and watch pods and nothing more
//! (`deploy/kubernetes/clusterrole.yaml`), and keeps a [`PodDirectory`]: pod uid to name, namespace,
//! and container id to container name. One agent process has one directory, set at start
//! ([`directory`]); the samplers look processes up there.
//!
//! - `watch`: the list-then-watch loop over the API server's HTTP API.
//! - `selector`: the pods `--k8s-namespace` and `--k8s-pod-selector` pick.

mod selector;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};

use serde::Deserialize;

pub use selector::PodSelector;
pub use watch::{ApiServer, WatchError};

/// A pod as the directory keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodMeta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// Container id (the runtime's 64-hex id, without `containerd://`) to container name.
    pub containers: HashMap<String, String>,
}

/// Pod uid to [`PodMeta`], for the pods of this node.
#[derive(Debug, Default)]
pub struct PodDirectory {
    pods: RwLock<HashMap<String, PodMeta>>,
    /// Bumped by every change, so that a reader can tell when to look again.
    generation: AtomicU64,
}

impl PodDirectory {
    /// The pod with `uid`, if the API server has told of it.
    pub fn pod(&self, uid: &str) -> Option<PodMeta> {
        self.read().get(uid).cloned()
    }

    /// How many pods it knows.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether it knows no pod.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A number that changes whenever a pod is added, changed or removed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, PodMeta>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.pods
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, PodMeta>> {
        self.pods
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces everything with a fresh list.
    fn replace(&self, pods: impl IntoIterator<Item = Pod>) {
        let fresh = pods.into_iter().filter_map(Pod::entry).collect();
        *self.write() = fresh;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Applies one watch event.
    fn apply(&self, kind: &str, pod: Pod) {
        let Some((uid, meta)) = pod.entry() else {
            return;
        };
        let mut pods = self.write();
        if kind == "DELETED" {
            pods.remove(&uid);
        } else {
            pods.insert(uid, meta);
        }
        drop(pods);
        self.generation.fetch_add(1, Ordering::Release);
    }
}

static DIRECTORY: OnceLock<PodDirectory> = OnceLock::new();

/// This agent's pod directory, when the pod watch runs.
pub fn directory() -> Option<&'static PodDirectory> {
    DIRECTORY.get()
}

/// Where the agent finds the API server and its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAccess {
    /// `https://host:port` (or `http://` for a test server).
    pub api_server: String,
    /// This node's name (the `spec.nodeName` of the pods to watch).
    pub node_name: String,
    /// The ServiceAccount token, sent as a bearer token when readable.
    pub token_file: PathBuf,
    /// The cluster's CA certificate, trusted for the API server.
    pub ca_file: PathBuf,
}

/// The ServiceAccount files a pod gets mounted.
const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

impl ClusterAccess {
    /// The access in-cluster: the API server from `KUBERNETES_SERVICE_HOST`/`_PORT` (unless
    /// `api_server` names one), the node from `node_name` or `NODE_NAME` (the DaemonSet sets it
    /// from `spec.nodeName`), the mounted ServiceAccount. `None` outside a cluster.
    pub fn discover(
        api_server: Option<&str>,
        node_name: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<Self> {
        let api_server = match api_server {
            Some(url) => url.to_owned(),
            None => {
                let host = env("KUBERNETES_SERVICE_HOST")?;
                let port = env("KUBERNETES_SERVICE_PORT").unwrap_or_else(|| "443".to_owned());
                if host.contains(':') {
                    format!("https://[{host}]:{port}")
                } else {
                    format!("https://{host}:{port}")
                }
            }
        };
        let node_name = node_name.map(str::to_owned).or_else(|| env("NODE_NAME"))?;
        Some(Self {
            api_server,
            node_name,
            token_file: PathBuf::from(SERVICE_ACCOUNT).join("token"),
            ca_file: PathBuf::from(SERVICE_ACCOUNT).join("ca.crt"),
        })
    }
}

/// Starts the pod watch of `access` on its own thread and makes its directory this agent's;
/// fails when the watch cannot be set up (a bad URL or CA file). A second call is refused.
pub fn start(access: &ClusterAccess) -> Result<(), WatchError> {
    let api = ApiServer::new(access)?;
    if DIRECTORY.set(PodDirectory::default()).is_err() {
        return Err(WatchError::AlreadyRunning);
    }
    let Some(directory) = DIRECTORY.get() else {
        return Err(WatchError::AlreadyRunning);
    };
    std::thread::Builder::new()
        .name("k8s-pods".to_owned())
        .spawn(move || api.run(directory))
        .map_err(WatchError::Thread)?;
    Ok(())
}

/// The parts of a pod the directory uses.
#[derive(Debug, Deserialize)]
struct Pod {
    metadata: PodObjectMeta,
    #[serde(default)]
    status: PodStatus,
}

#[derive(Debug, Deserialize)]
struct PodObjectMeta {
    uid: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodStatus {
    #[serde(default)]
    container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    init_container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    ephemeral_container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerStatus {
    name: String,
    /// `containerd://<id>`, `cri-o://<id>`, `docker://<id>`; absent until it started.
    #[serde(rename = "containerID")]
    container_id: Option<String>,
}

impl Pod {
    fn entry(self) -> Option<(String, PodMeta)> {
        let uid = self.metadata.uid?;
        let status = self.status;
        let containers = status
            .container_statuses
            .into_iter()
            .chain(status.init_container_statuses)
            .chain(status.ephemeral_container_statuses)
            .filter_map(|c| {
                let id = c.container_id?;
                let bare = id.rsplit_once("://").map_or(id.as_str(), |(_, id)| id);
                Some((bare.to_owned(), c.name))
            })
            .collect();
        Some((
            uid,
            PodMeta {
                name: self.metadata.name.unwrap_or_default(),
                namespace: self.metadata.namespace.unwrap_or_default(),
                labels: self.metadata.labels,
                containers,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, name: &str, containers: &[(&str, &str)]) -> Pod {
        let statuses: Vec<serde_json::Value> = containers
            .iter()
            .map(|(n, id)| serde_json::json!({"name": n, "containerID": format!("containerd://{id}")}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"uid": uid, "name": name, "namespace": "apps"},
            "status": {"containerStatuses": statuses}
        }))
        .expect("pod")
    }

    #[test]
    fn list_then_events_keep_the_directory_current() {
        let d = PodDirectory::default();
        d.replace([
            pod("u1", "gw-0", &[("gateway", "aa")]),
            pod("u2", "old", &[]),
        ]);
        assert_eq!(d.len(), 2);
        let after_list = d.generation();
        let gw = d.pod("u1").expect("u1");
        assert_eq!((gw.name.as_str(), gw.namespace.as_str()), ("gw-0", "apps"));
        assert_eq!(gw.containers["aa"], "gateway");
        d.apply(
            "MODIFIED",
            pod("u1", "gw-0", &[("gateway", "aa"), ("sidecar", "bb")]),
        );
        assert_eq!(d.pod("u1").expect("u1").containers["bb"], "sidecar");
        assert!(d.generation() > after_list, "a change is seen");
        d.apply("DELETED", pod("u2", "old", &[]));
        assert!(d.pod("u2").is_none());
        d.apply("ADDED", pod("u3", "new", &[]));
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn in_cluster_access_comes_from_the_service_variables_and_node_name() {
        let env = |k: &str| match k {
            "KUBERNETES_SERVICE_HOST" => Some("10.96.0.1".to_owned()),
            "KUBERNETES_SERVICE_PORT" => Some("6443".to_owned()),
            "NODE_NAME" => Some("node-a".to_owned()),
            _ => None,
        };
        let a = ClusterAccess::discover(None, None, env).expect("in cluster");
        assert_eq!(a.api_server, "https://10.96.0.1:6443");
        assert_eq!(a.node_name, "node-a");
        assert!(ClusterAccess::discover(None, None, |_| None).is_none());
        let a = ClusterAccess::discover(Some("http://127.0.0.1:1"), Some("n"), |_| None);
        assert_eq!(
            a.map(|a| a.api_server),
            Some("http://127.0.0.1:1".to_owned())
        );
    }
}
