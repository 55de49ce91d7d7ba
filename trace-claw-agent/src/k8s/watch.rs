//! List, then watch, the pods of one node through the API server's HTTP API
//! (`GET /api/v1/pods?fieldSelector=spec.nodeName=<node>`, then the same with `watch=1` from the
//! list's `resourceVersion`), as the Kubernetes API conventions describe it: a watch that ends
//! is resumed from the last version seen, one that the server expired (410 Gone) or that fails
//! starts over with a fresh list, after a backoff.
//!
//! Two requests on one field selector do not justify the kube and k8s-openapi crates (a large
//! share of the agent's build and binary, against its footprint goals): this is an HTTP GET and
//! line-delimited JSON, over the same hyper client and TLS as the exporter.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use super::{ClusterAccess, Pod, PodDirectory};
use crate::http_client::{connector, Connector, PostError, TlsFiles};

/// Longest list answer read (a node runs at most a few hundred pods).
const MAX_LIST_BYTES: usize = 64 * 1024 * 1024;
/// Longest watch event read.
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;
/// Seconds the server keeps a watch open before the client resumes it.
const WATCH_SECONDS: u32 = 300;
/// First wait after a failure; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why the pod watch cannot run or had to start over.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The API server's URL or the cluster's CA file cannot be used.
    #[error("kubernetes API server")]
    Setup(#[source] PostError),
    /// The API server did not answer, or not in time.
    #[error("request to the kubernetes API server failed")]
    Transport(#[source] hyper_util::client::legacy::Error),
    /// The connection broke while reading.
    #[error("reading the kubernetes API server's answer")]
    Read(#[source] hyper::Error),
    /// A non-2xx answer (403: the ServiceAccount may not list pods).
    #[error("kubernetes API server answered HTTP {status}: {body}")]
    Status {
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// An answer that is not the JSON expected.
    #[error("unexpected answer from the kubernetes API server: {0}")]
    Decode(String),
    /// The watch was started twice.
    #[error("the pod watch is already running")]
    AlreadyRunning,
    /// Its thread could not start.
    #[error("cannot start the pod watch thread")]
    Thread(#[source] std::io::Error),
}

/// The API server, ready to list and watch one node's pods.
pub struct ApiServer {
    client: Client<Connector, Empty<Bytes>>,
    pods_url: String,
    node_name: String,
    token_file: std::path::PathBuf,
}

#[derive(Deserialize)]
struct PodList {
    metadata: ListMeta,
    #[serde(default)]
    items: Vec<Pod>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    resource_version: Option<String>,
}

#[derive(Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    object: serde_json::Value,
}

/// How a watch ended.
enum WatchEnd {
    /// The server closed it: resume from this version.
    Resume(String),
    /// The version expired (410): list again.
    Relist,
}

impl ApiServer {
    /// Connects (lazily) to `access`'s API server, trusting the cluster's CA.
    pub fn new(access: &ClusterAccess) -> Result<Self, WatchError> {
        let tls = TlsFiles {
            ca_file: access
                .api_server
                .starts_with("https://")
                .then(|| access.ca_file.clone()),
            ..TlsFiles::default()
        };
        let connector = connector(&access.api_server, Duration::from_secs(10), &tls)
            .map_err(WatchError::Setup)?;
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            pods_url: format!(
                "{}/api/v1/pods?fieldSelector=spec.nodeName%3D{}",
                access.api_server.trim_end_matches('/'),
                access.node_name
            ),
            node_name: access.node_name.clone(),
            token_file: access.token_file.clone(),
        })
    }

    /// Keeps `directory` current until the process ends; failures are logged once each and
    /// retried with backoff.
    pub fn run(self, directory: &PodDirectory) {
        let ran = crate::runtime::block_on(async {
            let mut backoff = MIN_BACKOFF;
            let mut last_error: Option<String> = None;
            let mut listed_once = false;
            loop {
                match self.list_and_watch(directory, &mut listed_once).await {
                    Ok(()) => backoff = MIN_BACKOFF,
                    Err(e) => {
                        let text = crate::error::error_chain(&e);
                        if last_error.as_deref() != Some(text.as_str()) {
                            log::warn!(
                                "k8s pod names: {text}; pods keep their uid and container id \
                                 labels, retrying"
                            );
                            last_error = Some(text);
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        });
        if let Err(e) = ran {
            log::error!("k8s pod names: cannot start the watch's runtime: {e}");
        }
    }

    /// One list, then watches until the version expires.
    async fn list_and_watch(
        &self,
        directory: &PodDirectory,
        listed_once: &mut bool,
    ) -> Result<(), WatchError> {
        let body = self.get(&self.pods_url).await?;
        let bytes = read_limited(body, MAX_LIST_BYTES).await?;
        let list: PodList =
            serde_json::from_slice(&bytes).map_err(|e| WatchError::Decode(e.to_string()))?;
        let mut version = list.metadata.resource_version.unwrap_or_default();
        directory.replace(list.items);
        if !*listed_once {
            *listed_once = true;
            log::info!(
                "k8s pod names: {} pods on node {}, watching for changes",
                directory.len(),
                self.node_name
            );
        }
        loop {
            match self.watch(directory, &version).await? {
                WatchEnd::Resume(v) => version = v,
                WatchEnd::Relist => return Ok(()),
            }
        }
    }

    /// Applies the events of one watch from `version`.
    async fn watch(&self, directory: &PodDirectory, version: &str) -> Result<WatchEnd, WatchError> {
        let url = format!(
            "{}&watch=1&allowWatchBookmarks=true&timeoutSeconds={WATCH_SECONDS}&resourceVersion={version}",
            self.pods_url
        );
        let mut body = self.get(&url).await?;
        let mut version = version.to_owned();
        let mut line: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(WatchError::Read)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let mut rest = &data[..];
            while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&rest[..end]);
                rest = &rest[end + 1..];
                if let Some(end) = apply_event(directory, &line, &mut version)? {
                    return Ok(end);
                }
                line.clear();
            }
            line.extend_from_slice(rest);
            if line.len() > MAX_EVENT_BYTES {
                return Err(WatchError::Decode(format!(
                    "a watch event over {MAX_EVENT_BYTES} bytes"
                )));
            }
        }
        Ok(WatchEnd::Resume(version))
    }

    /// GETs `url` with the ServiceAccount's token; the body of a 2xx answer.
    async fn get(&self, url: &str) -> Result<hyper::body::Incoming, WatchError> {
        let mut request = Request::get(url).header(ACCEPT, "application/json");
        // Tokens are rotated by the kubelet: read it for every request. Without one (a test
        // server, or no mounted token) the request goes anonymously.
        if let Ok(token) = std::fs::read_to_string(&self.token_file) {
            request = request.header(AUTHORIZATION, format!("Bearer {}", token.trim()));
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| WatchError::Decode(e.to_string()))?;
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .map_err(|_| WatchError::Decode("no answer within 30 s".to_owned()))?
            .map_err(WatchError::Transport)?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = read_limited(response.into_body(), 4096)
                .await
                .unwrap_or_default();
            return Err(WatchError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).trim().to_owned(),
            });
        }
        Ok(response.into_body())
    }
}

/// Applies one watch line; `Some` when it ends the watch.
fn apply_event(
    directory: &PodDirectory,
    line: &[u8],
    version: &mut String,
) -> Result<Option<WatchEnd>, WatchError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let event: WatchEvent =
        serde_json::from_slice(line).map_err(|e| WatchError::Decode(e.to_string()))?;
    if event.kind == "ERROR" {
        // A Status object; 410 Gone: the version is too old to resume from.
        if event.object["code"].as_u64() == Some(410) {
            return Ok(Some(WatchEnd::Relist));
        }
        return Err(WatchError::Decode(format!("watch error: {}", event.object)));
    }
    if let Some(v) = event.object["metadata"]["resourceVersion"].as_str() {
        v.clone_into(version);
    }
    if event.kind == "BOOKMARK" {
        return Ok(None);
    }
    let pod: Pod =
        serde_json::from_value(event.object).map_err(|e| WatchError::Decode(e.to_string()))?;
    directory.apply(&event.kind, pod);
    Ok(None)
}

/// The body, refusing more than `limit` bytes.
async fn read_limited(
    mut body: hyper::body::Incoming,
    limit: usize,
) -> Result<Vec<u8>, WatchError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(WatchError::Read)?.into_data() {
            out.extend_from_slice(&data);
            if out.len() > limit {
                return Err(WatchError::Decode(format!("an answer over {limit} bytes")));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_lines_update_the_directory_and_the_version() {
        let d = PodDirectory::default();
        let mut v = "1".to_owned();
        let added = br#"{"type":"ADDED","object":{"metadata":{"uid":"u1","name":"gw","namespace":"a","resourceVersion":"7"},"status":{"containerStatuses":[{"name":"c","containerID":"cri-o://ab"}]}}}"#;
        assert!(apply_event(&d, added, &mut v).expect("event").is_none());
        assert_eq!(v, "7");
        assert_eq!(d.pod("u1").expect("u1").containers["ab"], "c");
        let bookmark = br#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}"#;
        assert!(apply_event(&d, bookmark, &mut v)
            .expect("bookmark")
            .is_none());
        assert_eq!(v, "9");
        let gone = br#"{"type":"ERROR","object":{"kind":"Status","code":410}}"#;
        assert!(matches!(
            apply_event(&d, gone, &mut v),
            Ok(Some(WatchEnd::Relist))
        ));
        assert!(apply_event(&d, b"{not json", &mut v).is_err());
    }
}
