//! The one definition of every metric and label name trace-claw writes.
//!
//! Collectors, exporters, the analyzer, the README table and the Grafana dashboard test all read
//! these constants; a name spelled anywhere else is a bug.

/// How a metric's values relate over time; decides the OTLP instrument the exporter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// An instantaneous reading (OTLP gauge).
    Gauge,
    /// A running total since the process (or host) started (OTLP monotonic cumulative sum).
    Counter,
}

/// Where a metric's value is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricSource {
    /// System-wide, read through sysinfo.
    System,
    /// Per process: eBPF counters when loaded, else polled from procfs.
    Process,
    /// About trace-claw itself.
    SelfMetric,
}

/// A metric's name together with everything a consumer needs to interpret it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// Name as written to JSONL and exported over OTLP.
    pub name: &'static str,
    /// UCUM unit as exported over OTLP (`%`, `By`, `s`, `By/s`, `1`).
    pub unit: &'static str,
    /// Gauge or cumulative counter.
    pub kind: MetricKind,
    /// Which collector produces it.
    pub source: MetricSource,
    /// The closest OpenTelemetry semantic-convention metric, if any.
    pub semconv: Option<&'static str>,
    /// One line for humans (README table, OTLP description).
    pub description: &'static str,
}

macro_rules! metrics {
    ($( $(#[$doc:meta])* $ident:ident = ($name:literal, $unit:literal, $kind:ident, $source:ident, $semconv:expr, $descr:literal); )*) => {
        $(
            $(#[$doc])*
            pub const $ident: MetricDef = MetricDef {
                name: $name,
                unit: $unit,
                kind: MetricKind::$kind,
                source: MetricSource::$source,
                semconv: $semconv,
                description: $descr,
            };
        )*
        /// Every metric trace-claw can emit, in documentation order.
        pub const ALL_METRICS: &[MetricDef] = &[$($ident),*];
    };
}

metrics! {
    /// System CPU busy percent; label `cpu` (`total` or the core index).
    SYSTEM_CPU_USAGE = ("system.cpu.usage_percent", "%", Gauge, System, Some("system.cpu.utilization"), "CPU busy percent, total and per core (label cpu)");
    /// One-minute load average.
    SYSTEM_LOAD_1M = ("system.cpu.load_avg_1m", "1", Gauge, System, Some("system.cpu.load_average.1m"), "Load average over 1 minute");
    /// Five-minute load average.
    SYSTEM_LOAD_5M = ("system.cpu.load_avg_5m", "1", Gauge, System, Some("system.cpu.load_average.5m"), "Load average over 5 minutes");
    /// Fifteen-minute load average.
    SYSTEM_LOAD_15M = ("system.cpu.load_avg_15m", "1", Gauge, System, Some("system.cpu.load_average.15m"), "Load average over 15 minutes");
    /// Memory in use, percent of total.
    SYSTEM_MEMORY_USAGE = ("system.memory.usage_percent", "%", Gauge, System, Some("system.memory.utilization"), "Memory in use, percent of total");
    /// Memory in use (total minus available).
    SYSTEM_MEMORY_USED = ("system.memory.used_bytes", "By", Gauge, System, Some("system.memory.usage"), "Memory in use (total minus available)");
    /// Memory available to new processes without swapping.
    SYSTEM_MEMORY_AVAILABLE = ("system.memory.available_bytes", "By", Gauge, System, Some("system.memory.usage"), "Memory available without swapping");
    /// Installed memory.
    SYSTEM_MEMORY_TOTAL = ("system.memory.total_bytes", "By", Gauge, System, Some("system.memory.limit"), "Installed memory");
    /// Swap in use, percent of total (0 when there is no swap).
    SYSTEM_SWAP_USAGE = ("system.swap.usage_percent", "%", Gauge, System, Some("system.paging.utilization"), "Swap in use, percent of total");
    /// Bytes sent since boot; label `interface`.
    SYSTEM_NET_SENT_TOTAL = ("system.network.bytes_sent_total", "By", Counter, System, Some("system.network.io"), "Bytes sent per interface since boot");
    /// Bytes received since boot; label `interface`.
    SYSTEM_NET_RECV_TOTAL = ("system.network.bytes_recv_total", "By", Counter, System, Some("system.network.io"), "Bytes received per interface since boot");
    /// Send rate over the last interval; label `interface`.
    SYSTEM_NET_SENT_RATE = ("system.network.bytes_sent_rate", "By/s", Gauge, System, None, "Bytes sent per second over the last interval");
    /// Receive rate over the last interval; label `interface`.
    SYSTEM_NET_RECV_RATE = ("system.network.bytes_recv_rate", "By/s", Gauge, System, None, "Bytes received per second over the last interval");
    /// CPU percent of one core used over the last interval (100 = one core busy).
    PROCESS_CPU_USAGE = ("process.cpu.usage_percent", "%", Gauge, Process, Some("process.cpu.utilization"), "CPU percent of one core over the last interval");
    /// On-CPU time since the process started (user + system).
    PROCESS_CPU_TIME = ("process.cpu.time_seconds", "s", Counter, Process, Some("process.cpu.time"), "On-CPU time since start (user + system)");
    /// Resident set size.
    PROCESS_MEMORY_RSS = ("process.memory.rss_bytes", "By", Gauge, Process, Some("process.memory.usage"), "Resident set size");
    /// Virtual memory size.
    PROCESS_MEMORY_VMS = ("process.memory.vms_bytes", "By", Gauge, Process, Some("process.memory.virtual"), "Virtual memory size");
    /// RSS as percent of installed memory.
    PROCESS_MEMORY_USAGE = ("process.memory.usage_percent", "%", Gauge, Process, None, "RSS as percent of installed memory");
    /// Bytes read since start (procfs: storage `read_bytes`; eBPF: the kernel's rchar, every read).
    PROCESS_IO_READ = ("process.io.read_bytes", "By", Counter, Process, Some("process.disk.io"), "Bytes read since start");
    /// Bytes written since start (procfs: storage `write_bytes`; eBPF: the kernel's wchar).
    PROCESS_IO_WRITE = ("process.io.write_bytes", "By", Counter, Process, Some("process.disk.io"), "Bytes written since start");
    /// Bytes read from block devices on the process's behalf (eBPF block layer).
    PROCESS_IO_BLOCK_READ = ("process.io.block_read_bytes", "By", Counter, Process, Some("process.disk.io"), "Bytes read from block devices since start");
    /// Socket bytes sent since tracking started (eBPF).
    PROCESS_NET_SENT = ("process.network.bytes_sent", "By", Counter, Process, Some("process.network.io"), "Socket bytes sent since tracking started");
    /// Socket bytes received since tracking started (eBPF).
    PROCESS_NET_RECV = ("process.network.bytes_recv", "By", Counter, Process, Some("process.network.io"), "Socket bytes received since tracking started");
    /// Thread count.
    PROCESS_THREADS = ("process.threads", "1", Gauge, Process, Some("process.thread.count"), "Number of threads");
    /// Live tracked processes (matched plus descendants).
    PROCESS_COUNT = ("process.count", "1", Gauge, Process, None, "Live tracked processes");
    /// Lifecycle events lost because the kernel ring buffer was full.
    EBPF_EVENTS_DROPPED = ("trace_claw.ebpf.events_dropped", "1", Counter, SelfMetric, None, "Kernel events dropped (ring buffer full)");
    /// OTLP export batches that failed or were dropped from a full queue.
    EXPORT_FAILED_BATCHES = ("trace_claw.export.failed_batches", "1", Counter, SelfMetric, None, "OTLP export batches failed or dropped");
    /// Requests the OTLP receiver refused (too large, malformed, timed out).
    RECEIVER_REJECTED_REQUESTS = ("trace_claw.receiver.rejected_requests", "1", Counter, SelfMetric, None, "OTLP receiver requests rejected");
}

/// Looks a metric up by its name.
pub fn metric_by_name(name: &str) -> Option<&'static MetricDef> {
    ALL_METRICS.iter().find(|m| m.name == name)
}

/// Label and attribute names used on samples.
pub mod labels {
    /// How the value was measured: one of [`SOURCE_EBPF`], [`SOURCE_PROCFS`], [`SOURCE_SYSINFO`].
    pub const SOURCE: &str = "source";
    /// Process id, or [`PID_TOTAL`] for the sum over the tracked tree.
    pub const PID: &str = "pid";
    /// Parent process id.
    pub const PPID: &str = "ppid";
    /// Process name (comm).
    pub const PROCESS_NAME: &str = "process_name";
    /// Why a process is tracked: [`TRACKED_MATCH`] or [`TRACKED_DESCENDANT`].
    pub const TRACKED: &str = "tracked";
    /// CPU core index or `total`.
    pub const CPU: &str = "cpu";
    /// Network interface name.
    pub const INTERFACE: &str = "interface";
    /// The 64-hex id of the container a process runs in (from its cgroup path; absent on the
    /// host). OTel semantic convention `container.id`.
    pub const CONTAINER_ID: &str = "container.id";
    /// The uid of the Kubernetes pod a process runs in (from its cgroup path; absent outside
    /// pods). OTel semantic convention `k8s.pod.uid`.
    pub const K8S_POD_UID: &str = "k8s.pod.uid";
    /// OTel semconv: the pod's name, from the API server (in a cluster).
    pub const K8S_POD_NAME: &str = "k8s.pod.name";
    /// OTel semconv: the pod's namespace, from the API server (in a cluster).
    pub const K8S_NAMESPACE_NAME: &str = "k8s.namespace.name";
    /// OTel semconv: the container's name in its pod, from the API server (in a cluster).
    pub const K8S_CONTAINER_NAME: &str = "k8s.container.name";
    /// Value of [`PID`] on the samples that sum the whole tracked tree.
    pub const PID_TOTAL: &str = "total";
    /// Value of [`CPU`] on the all-core sample.
    pub const CPU_TOTAL: &str = "total";
    /// Measured by the kernel programs.
    pub const SOURCE_EBPF: &str = "ebpf";
    /// Polled from /proc.
    pub const SOURCE_PROCFS: &str = "procfs";
    /// Read through the sysinfo crate.
    pub const SOURCE_SYSINFO: &str = "sysinfo";
    /// The process's own name matched the target.
    pub const TRACKED_MATCH: &str = "match";
    /// Spawned (directly or not) by a matched process.
    pub const TRACKED_DESCENDANT: &str = "descendant";
    /// OTel resource attribute: the pid of the process that sent the telemetry (OpenClaw's
    /// gateway); its tracked tree is charged the actions the spans describe.
    pub const RESOURCE_PROCESS_PID: &str = "process.pid";
}

/// Attributes of the OTLP spans an action is exported as: the OpenTelemetry GenAI semantic
/// conventions where they have a name, `trace_claw.*` for the rest.
pub mod span {
    /// GenAI: the operation (`chat` for an LLM call, `execute_tool` for a tool call).
    pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
    /// GenAI: the model asked for.
    pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
    /// GenAI: the model provider.
    pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
    /// GenAI: prompt tokens, cache reads and writes included (OpenClaw's `input` excludes them).
    pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    /// GenAI: completion tokens.
    pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    /// GenAI: the tool called.
    pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
    /// GenAI: the conversation (OpenClaw's session id).
    pub const GEN_AI_CONVERSATION_ID: &str = "gen_ai.conversation.id";
    /// The error's description, on a failed action.
    pub const ERROR_TYPE: &str = "error.type";
    /// The process that ran the action.
    pub const PROCESS_PID: &str = "process.pid";
    /// `gen_ai.operation.name` of an LLM call.
    pub const OPERATION_CHAT: &str = "chat";
    /// `gen_ai.operation.name` of a tool call.
    pub const OPERATION_EXECUTE_TOOL: &str = "execute_tool";
    /// Prompt tokens served from the provider's cache.
    pub const TOKENS_CACHE_READ: &str = "trace_claw.tokens.cache_read";
    /// Prompt tokens written to the provider's cache.
    pub const TOKENS_CACHE_WRITE: &str = "trace_claw.tokens.cache_write";
    /// The action's price in US dollars.
    pub const COST_USD: &str = "trace_claw.cost_usd";
    /// The action's type as trace-claw records it (`llm`, `tool`, ...).
    pub const EVENT_TYPE: &str = "trace_claw.event_type";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, a) in ALL_METRICS.iter().enumerate() {
            for b in &ALL_METRICS[i + 1..] {
                assert_ne!(a.name, b.name, "duplicate metric name");
            }
        }
    }

    #[test]
    fn counters_are_totals_and_rates_are_gauges() {
        for m in ALL_METRICS {
            if m.name.ends_with("_rate") || m.name.ends_with("_percent") {
                assert_eq!(m.kind, MetricKind::Gauge, "{} should be a gauge", m.name);
            }
        }
        assert_eq!(
            metric_by_name("process.cpu.time_seconds"),
            Some(&PROCESS_CPU_TIME)
        );
    }
}
