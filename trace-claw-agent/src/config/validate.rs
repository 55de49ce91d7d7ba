//! Range checks on the merged configuration; an error names the key and where its value came
//! from.

use super::merge::Origins;
use super::schema::{Config, Mode, OTLP_GRPC, OTLP_HTTP_PROTOBUF};
use super::ConfigError;

impl Config {
    /// Checks every value that has the right type but may be out of range.
    pub(super) fn validate(&self, origins: &Origins<'_>) -> Result<(), ConfigError> {
        let fail = |key: &str, message: String| ConfigError::Invalid {
            origin: origins.of(key),
            key: key.to_owned(),
            message,
        };
        let interval = self.collector.interval_seconds;
        // Below 1 ms the timer period rounds towards zero, which the ticker cannot run.
        if !interval.is_finite() || !(0.001..=86_400.0).contains(&interval) {
            return Err(fail(
                "collector.interval_seconds",
                format!("must be a number of seconds in [0.001, 86400], got {interval}"),
            ));
        }
        let by_pod = self
            .kubernetes
            .pod_selection()
            .map_err(|e| fail("kubernetes.pod_selector", e))?
            .is_some();
        if self.collector.process_filter_enabled
            && self.collector.process_name.trim().is_empty()
            && !by_pod
        {
            return Err(fail(
                "collector.process_name",
                "must not be empty (unless kubernetes.namespace or kubernetes.pod_selector picks \
                 the targets)"
                    .to_owned(),
            ));
        }
        if by_pod && self.kubernetes.pod_names == Some(false) {
            return Err(fail(
                "kubernetes.pod_names",
                "must not be false when kubernetes.namespace or kubernetes.pod_selector picks \
                 the targets: they need the pod watch"
                    .to_owned(),
            ));
        }
        for (key, url) in [
            ("otel.endpoint", &self.otel.endpoint),
            ("openclaw.otel_endpoint", &self.openclaw.otel_endpoint),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(fail(
                    key,
                    format!("must be an http:// or https:// URL, got '{url}'"),
                ));
            }
        }
        let own_endpoints = [
            ("otel.metrics_endpoint", &self.otel.metrics_endpoint),
            ("otel.traces_endpoint", &self.otel.traces_endpoint),
        ];
        for (key, url) in own_endpoints {
            if let Some(url) = url {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(fail(
                        key,
                        format!("must be an http:// or https:// URL, got '{url}'"),
                    ));
                }
            }
        }
        if self.otel.protocol != OTLP_HTTP_PROTOBUF && self.otel.protocol != OTLP_GRPC {
            return Err(fail(
                "otel.protocol",
                format!(
                    "expected {OTLP_HTTP_PROTOBUF} (port 4318) or {OTLP_GRPC} (port 4317), got '{}'",
                    self.otel.protocol
                ),
            ));
        }
        for (name, value) in &self.otel.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(fail(
                    "otel.headers",
                    format!("'{name}' is not a valid header name"),
                ));
            }
            if http::HeaderValue::from_str(value).is_err() {
                return Err(fail(
                    "otel.headers",
                    format!("the value of '{name}' is not a valid header value"),
                ));
            }
        }
        if self.otel.tls.client_cert.is_some() != self.otel.tls.client_key.is_some() {
            return Err(fail(
                "otel.tls.client_cert",
                "a client certificate needs both otel.tls.client_cert and otel.tls.client_key"
                    .to_owned(),
            ));
        }
        if let Some(url) = &self.receiver.forward_to {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(fail(
                    "receiver.forward_to",
                    format!("must be an http:// or https:// URL, got '{url}'"),
                ));
            }
        }
        let listeners = [
            ("receiver.listen", Some(&self.receiver.listen)),
            ("prometheus.listen", self.prometheus.listen.as_ref()),
        ];
        for (key, listen) in listeners {
            if let Some(listen) = listen {
                if listen.parse::<std::net::SocketAddr>().is_err() {
                    return Err(fail(key, format!("must be IP:PORT, got '{listen}'")));
                }
            }
        }
        if !(0.0..=1.0).contains(&self.openclaw.sample_rate) {
            return Err(fail(
                "openclaw.sample_rate",
                format!("must be between 0 and 1, got {}", self.openclaw.sample_rate),
            ));
        }
        if self.openclaw.flush_interval_ms < 1000 {
            return Err(fail(
                "openclaw.flush_interval_ms",
                format!(
                    "OpenClaw's minimum is 1000, got {}",
                    self.openclaw.flush_interval_ms
                ),
            ));
        }
        if !self.otel.timeout_seconds.is_finite() || self.otel.timeout_seconds <= 0.0 {
            return Err(fail("otel.timeout_seconds", "must be positive".to_owned()));
        }
        if !self.receiver.request_timeout_seconds.is_finite()
            || self.receiver.request_timeout_seconds <= 0.0
        {
            return Err(fail(
                "receiver.request_timeout_seconds",
                "must be positive".to_owned(),
            ));
        }
        if self.otel.queue_batches == 0 {
            return Err(fail("otel.queue_batches", "must be at least 1".to_owned()));
        }
        if self.receiver.max_body_bytes == 0 {
            return Err(fail(
                "receiver.max_body_bytes",
                "must be at least 1".to_owned(),
            ));
        }
        if !self.local.enabled && self.mode == Mode::Local {
            return Err(fail(
                "local.enabled",
                "cannot be false in local mode: samples would go nowhere".to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{load_text, no_env};

    #[test]
    fn negative_interval_names_key_and_line() {
        let msg = load_text(
            "# top\ncollector:\n  cpu: true\n  interval_seconds: -1\n",
            no_env,
        )
        .expect_err("negative")
        .to_string();
        assert!(msg.contains("c.yaml:4"), "{msg}");
        assert!(msg.contains("collector.interval_seconds"), "{msg}");
    }

    #[test]
    fn rejects_an_interval_too_small_for_the_ticker() {
        for tiny in ["1e-12", "0.0009", "5e-324"] {
            let msg = load_text(&format!("collector:\n  interval_seconds: {tiny}\n"), no_env)
                .expect_err("too small")
                .to_string();
            assert!(msg.contains("c.yaml:2"), "{msg}");
        }
        let c = load_text("collector:\n  interval_seconds: 0.001\n", no_env).expect("1 ms");
        assert!(!c.interval().is_zero());
    }
}
