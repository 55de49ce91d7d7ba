//! The eBPF backend of process collection: exact per-process CPU, I/O and socket bytes and the
//! fork/exec/exit stream of the tracked tree, from the kernel programs in `trace-claw-ebpf`.
//!
//! - [`probe`] explains why the programs cannot load here (not built in, not root, no tracefs,
//!   no BTF) before anything is attempted.
//! - `load` loads and attaches the programs; `ring_reader` is the thread that drains their ring
//!   buffer; `read` seeds the tracked set and turns its events, the maps and the tracked
//!   processes' /proc files (`proc_files`) into samples and [`ProcessEvent`]s; `tree_costs`
//!   drains the trees' 5 ms time buckets into `tree-costs-*.jsonl`.
//!
//! [`ProcessEvent`]: trace_claw_common::event::ProcessEvent

use std::path::{Path, PathBuf};

#[cfg(not(no_ebpf))]
use trace_claw_common::tracepoint::{TracepointField, CHECKED_FIELDS};

pub mod btf;
#[cfg(not(no_ebpf))]
mod load;
#[cfg(not(no_ebpf))]
mod proc_files;
#[cfg(not(no_ebpf))]
mod read;
#[cfg(not(no_ebpf))]
mod ring_reader;
#[cfg(not(no_ebpf))]
mod tree_costs;

#[cfg(not(no_ebpf))]
pub use load::LeftOut;
#[cfg(not(no_ebpf))]
pub use read::EbpfCollector;

/// Where the kernel's BTF is read from.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// The environment variable naming optional programs to leave out (comma-separated): a
/// diagnostic that makes the loader treat their hooks as missing (docs/ebpf.md).
pub const DISABLE_ENV: &str = "TRACE_CLAW_EBPF_DISABLE";
/// tracefs mount points, in the order they are tried.
pub const TRACEFS_ROOTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// What the eBPF backend needs to start.
#[derive(Debug, Clone)]
pub struct EbpfOptions {
    /// Target process name (case-insensitive substring of comm, argv\[0\] or exe).
    pub process_name: String,
    /// The pods targets must run in (`kubernetes.namespace`, `kubernetes.pod_selector`).
    pub pod_selector: Option<crate::k8s::PodSelector>,
    /// procfs root used for the seed scan and per-process reads.
    pub proc_root: PathBuf,
    /// Installed memory, for `process.memory.usage_percent`.
    pub total_memory_bytes: u64,
    /// Entries of the kernel's direct-mapped counters array (a power of two); `None` sizes it
    /// to the host's `pid_max`. The eBPF tests make it tiny so that tracked processes share
    /// entries and the `PROCS` fallback runs.
    pub fast_entries: Option<u32>,
    /// Where `tree-costs-*.jsonl` is written (the output directory); `None`: not written.
    pub tree_costs_dir: Option<PathBuf>,
    /// Optional programs to leave out as if this kernel lacked their hooks (a diagnostic, from
    /// `TRACE_CLAW_EBPF_DISABLE`).
    pub disabled_hooks: Vec<String>,
}

/// Why the eBPF backend is not running.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    /// The agent was built without the kernel programs.
    #[error("agent built without eBPF (bpf-linker or the pinned nightly's rust-src missing at build time; run `cargo xtask setup` and rebuild)")]
    NotBuiltIn,
    /// Loading programs needs root, or CAP_BPF + CAP_PERFMON (+ CAP_DAC_READ_SEARCH for tracefs).
    #[error("not root (euid {euid}) and missing {missing}; run as root or grant CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH (deploy/systemd/trace-claw.service)")]
    NotPrivileged {
        /// The effective uid.
        euid: u32,
        /// The effective capabilities that are missing, by name.
        missing: String,
    },
    /// Tracepoints are attached through tracefs.
    #[error("tracefs not mounted at {} (mount -t tracefs tracefs /sys/kernel/tracing)", TRACEFS_ROOTS.join(" or "))]
    NoTracefs,
    /// The `task_struct` offsets come from the kernel's BTF.
    #[error("no kernel BTF at '{VMLINUX_BTF}' (kernel built without CONFIG_DEBUG_INFO_BTF)")]
    NoBtf,
    /// A tracepoint or tracepoint field the programs read is missing from this kernel.
    #[error(
        "kernel lacks tracepoint '{0}' or the field layout the programs read (see docs/ebpf.md)"
    )]
    MissingTracepoint(&'static str),
    /// The BTF was there but lacked what the programs need.
    #[error(transparent)]
    Btf(#[from] btf::BtfError),
    /// aya rejected the BTF of the `tp_btf` typedefs built from the kernel's.
    #[cfg(not(no_ebpf))]
    #[error("cannot hand aya the tracepoint types of the kernel BTF at '{VMLINUX_BTF}'")]
    KernelBtf(#[source] aya::BtfError),
    /// The object could not be loaded (verifier, permissions).
    #[cfg(not(no_ebpf))]
    #[error("cannot load the eBPF object")]
    Load(#[source] aya::EbpfError),
    /// A program could not be loaded or attached.
    #[cfg(not(no_ebpf))]
    #[error("cannot load or attach eBPF program '{name}' to '{hook}'")]
    Program {
        /// Program name.
        name: &'static str,
        /// The tracepoint.
        hook: &'static str,
        /// What aya said.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A map is missing or has the wrong type.
    #[cfg(not(no_ebpf))]
    #[error("eBPF map '{name}'")]
    Map {
        /// Map name.
        name: &'static str,
        /// What aya said.
        #[source]
        source: aya::maps::MapError,
    },
    /// `TRACE_CLAW_EBPF_DISABLE` names a program that cannot be left out.
    #[error("TRACE_CLAW_EBPF_DISABLE: '{0}' is not a hook that can be left out (block_bio_queue, sock_send_length, sock_recv_length) or 'group_dead'")]
    NotOptional(String),
    /// A program the object should contain is not in it.
    #[error("eBPF object has no program '{0}'")]
    MissingProgram(&'static str),
    /// The directory of `tree-costs-*.jsonl` could not be created.
    #[error("cannot write tree costs")]
    TreeCosts(#[source] crate::export::ExportError),
    /// The ring-buffer reader thread could not start.
    #[error("cannot start the ring-buffer reader")]
    Reader(#[source] std::io::Error),
}

/// Why eBPF cannot be used on this host, checked without loading anything; `None` if it may.
pub fn probe() -> Option<EbpfError> {
    if !crate::EBPF_BUILT_IN {
        return Some(EbpfError::NotBuiltIn);
    }
    probe_host()
}

#[cfg(not(no_ebpf))]
fn probe_host() -> Option<EbpfError> {
    if let Some(not_privileged) = missing_privileges() {
        return Some(not_privileged);
    }
    if tracefs_root().is_none() {
        return Some(EbpfError::NoTracefs);
    }
    if !Path::new(VMLINUX_BTF).exists() {
        return Some(EbpfError::NoBtf);
    }
    missing_tracepoint_field().map(EbpfError::MissingTracepoint)
}

/// Loading and attaching needs root, or these effective capabilities: CAP_BPF (load programs,
/// create maps), CAP_PERFMON (attach tracepoints) and CAP_DAC_READ_SEARCH (tracefs, which is
/// root-only, names the tracepoints). Per-process reads of other users' processes also need
/// CAP_SYS_PTRACE, which polling needs too, so it is not checked here.
#[cfg(not(no_ebpf))]
fn missing_privileges() -> Option<EbpfError> {
    const NEEDED: [(u32, &str); 3] = [
        (39, "CAP_BPF"),
        (38, "CAP_PERFMON"),
        (2, "CAP_DAC_READ_SEARCH"),
    ];
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return None;
    }
    let effective = procfs::process::Process::myself()
        .and_then(|me| me.status())
        .map_or(0, |status| status.capeff);
    let missing: Vec<&str> = NEEDED
        .iter()
        .filter(|(bit, _)| effective & (1 << bit) == 0)
        .map(|(_, name)| *name)
        .collect();
    (!missing.is_empty()).then(|| EbpfError::NotPrivileged {
        euid,
        missing: missing.join(", "),
    })
}

/// The first tracepoint of [`CHECKED_FIELDS`] whose format file on this kernel lacks the field
/// at the offset the kernel programs hard-code, among the fields the programs cannot do without
/// (the loader leaves out an optional hook, and reads `signal->live` without `group_dead`).
#[cfg(not(no_ebpf))]
fn missing_tracepoint_field() -> Option<&'static str> {
    let root = tracefs_root()?;
    CHECKED_FIELDS
        .iter()
        .filter(|field| !load::has_fallback(field))
        .find(|field| lacks_field(root, field))
        .map(|field| field.event)
}

/// Whether the format file of `field.event` under tracefs `root` lacks `field` at its offset.
#[cfg(not(no_ebpf))]
fn lacks_field(root: &Path, field: &TracepointField) -> bool {
    let line = format!("field:{};\toffset:{};", field.declaration, field.offset);
    let format = std::fs::read_to_string(root.join("events").join(field.event).join("format"));
    !format.is_ok_and(|text| text.contains(&line))
}

#[cfg(no_ebpf)]
fn probe_host() -> Option<EbpfError> {
    Some(EbpfError::NotBuiltIn)
}

/// The mounted tracefs, if any.
pub fn tracefs_root() -> Option<&'static Path> {
    TRACEFS_ROOTS
        .iter()
        .map(Path::new)
        .find(|p| p.join("events").is_dir())
}
