//! The real OTLP peers the integration tests talk to, installed idempotently under `.tools/`
//! (gitignored) without touching the system's package configuration (see [`crate::tools`]):
//!
//! - VictoriaMetrics single node (an OTLP/HTTP metrics backend): the Debian trixie package,
//!   unpacked into `.tools/vm` (the binary runs on bookworm's libraries).
//! - The official OpenTelemetry Python SDK and its OTLP/HTTP exporter, in `.tools/venv`, with
//!   the OTLP/gRPC exporter for its protos and grpcio (`tests/peers/otlp_grpc_server.py`).

use crate::tools::{self, DebPackage};

/// Python packages of the venv, pinned to the versions the tests were written against.
const PYTHON_PACKAGES: &[&str] = &[
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
    "opentelemetry-exporter-otlp-proto-grpc==1.45.2",
];

/// VictoriaMetrics, unpacked into `.tools/vm` (where the tests look for it).
const VICTORIA_METRICS: DebPackage = DebPackage {
    name: "victoria-metrics",
    provides: "usr/bin/victoria-metrics",
};

/// Installs every peer that is missing; each step first checks whether it is already done.
pub fn install_peers() -> anyhow::Result<()> {
    let vm = tools::tools_dir()?.join("vm");
    tools::unpack_debs("setup", &[VICTORIA_METRICS], &vm)?;
    tools::python_venv("setup", PYTHON_PACKAGES)?;
    Ok(())
}
