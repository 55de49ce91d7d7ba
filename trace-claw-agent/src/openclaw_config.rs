//! `generate-config`: OpenClaw's diagnostics settings, pointing its `diagnostics-otel` plugin at
//! trace-claw's receiver (or `openclaw.otel_endpoint`).

use serde_json::{json, Value};

use crate::config::Config;

/// The OTLP endpoint OpenClaw should export to: `override_endpoint`, else the receiver when it is
/// enabled, else `openclaw.otel_endpoint`.
pub fn endpoint(config: &Config, override_endpoint: Option<&str>) -> String {
    match override_endpoint {
        Some(e) => e.to_owned(),
        None if config.receiver.enabled => format!("http://{}", config.receiver.listen),
        None => config.openclaw.otel_endpoint.clone(),
    }
}

/// The JSON to merge into `~/.openclaw/openclaw.json`.
pub fn diagnostics_json(config: &Config, endpoint: &str) -> Value {
    let o = &config.openclaw;
    json!({
        "diagnostics": {
            "enabled": true,
            "otel": {
                "enabled": true,
                "endpoint": endpoint,
                "protocol": "http/protobuf",
                "serviceName": o.service_name,
                "traces": o.traces,
                "metrics": o.metrics,
                "logs": o.logs,
                "sampleRate": o.sample_rate,
                "flushIntervalMs": o.flush_interval_ms,
            }
        },
        "plugins": {
            "allow": ["diagnostics-otel"],
            "entries": { "diagnostics-otel": { "enabled": true } }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_at_the_receiver_when_enabled() {
        let mut c = Config::default();
        assert_eq!(endpoint(&c, None), "http://localhost:4318");
        c.receiver.enabled = true;
        c.receiver.listen = "127.0.0.1:14318".into();
        let e = endpoint(&c, None);
        assert_eq!(e, "http://127.0.0.1:14318");
        let v = diagnostics_json(&c, &e);
        assert_eq!(v["diagnostics"]["otel"]["protocol"], "http/protobuf");
        assert_eq!(
            v["diagnostics"]["otel"]["endpoint"],
            "http://127.0.0.1:14318"
        );
    }
}
