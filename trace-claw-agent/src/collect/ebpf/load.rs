//! Loads the kernel programs, fills in their `CONFIG`, attaches them to their tracepoints and
//! hands out the maps. Everything is owned by [`Kernel`]; dropping it detaches the programs and
//! frees the maps (nothing is pinned).
//!
//! The kernel's BTF is never parsed whole: `btf` reads the few offsets and type ids needed in
//! one streaming pass, and aya gets a BTF holding only the `tp_btf` typedefs (see
//! [`loader_without_kernel_btf`]). Parsing it whole made the agent's peak RSS three times its
//! steady RSS (docs/ebpf.md, "Memory").

use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, RawTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader};
use trace_claw_common::abi::{
    BucketKey, ExitingProc, FastCounters, KernelConfig, SlotCounters, StagedSlot, TrackedProc,
    COMM_LEN, MAX_FAST, PID_BITMAP_WORDS,
};
use trace_claw_common::names::{self, MetricDef};
use trace_claw_common::tracepoint::{TracepointField, CHECKED_FIELDS, EXIT_GROUP_DEAD};

use super::btf::Btf;
use super::{EbpfError, DISABLE_ENV, VMLINUX_BTF};

/// The compiled kernel programs, built into OUT_DIR by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/trace-claw-ebpf"));

/// Program name (also its tracepoint's), tracepoint category, and the one series only it
/// measures: a program with one is optional (without its hook the rest still loads, and its
/// series is left out); `None`: the tracked set needs it.
const TRACEPOINTS: &[(&str, &str, Option<&MetricDef>)] = &[
    (
        "block_bio_queue",
        "block",
        Some(&names::PROCESS_IO_BLOCK_READ),
    ),
    ("sock_send_length", "sock", Some(&names::PROCESS_NET_SENT)),
    ("sock_recv_length", "sock", Some(&names::PROCESS_NET_RECV)),
    ("task_newtask", "task", None),
    ("task_rename", "task", None),
    ("sched_process_exec", "sched", None),
    ("sched_process_exit", "sched", None),
];

/// BTF tracepoint programs (`tp_btf`), their tracepoint, and its typedef in the kernel BTF.
const BTF_TRACEPOINTS: &[(&str, &str, &str)] = &[
    (
        "sched_stat_runtime",
        "sched_stat_runtime",
        "btf_trace_sched_stat_runtime",
    ),
    (
        "sched_process_free",
        "sched_process_free",
        "btf_trace_sched_process_free",
    ),
];
/// The structs and members of the kernel BTF that [`kernel_config`] reads.
const CONFIG_NAMES: &[&str] = &[
    "task_struct",
    "signal_struct",
    "task_io_accounting",
    "tgid",
    "pid",
    "exit_code",
    "real_parent",
    "signal",
    "ioac",
    "rchar",
    "wchar",
    "comm",
    "live",
];
/// The `TRACE_CLAW_EBPF_DISABLE` name that makes the exit program work as on kernels whose
/// `sched_process_exit` has no `group_dead` (before 6.16).
const GROUP_DEAD: &str = "group_dead";
/// The program that flushes a CPU's staged time bucket, run on demand (never attached).
pub const FLUSH_STAGED: &str = "flush_staged";

/// The loaded (not yet attached) programs and their maps.
pub struct Kernel {
    ebpf: Ebpf,
    /// Tracked processes and their counters, by tgid.
    pub procs: HashMap<MapData, u32, TrackedProc>,
    /// Processes between their exit and the freeing of their last thread, by tid.
    pub exiting: HashMap<MapData, u32, ExitingProc>,
    /// `STAT_*` counters.
    pub stats: Array<MapData, u64>,
    /// `PROCS`'s fd, for [`Kernel::tracked_all`]'s batch reads.
    procs_fd: OwnedFd,
    /// Counters of tracked processes by `tgid & fast_mask` (see [`Kernel::tracked`]).
    fast: Array<MapData, FastCounters>,
    fast_mask: u32,
    /// Bits of the tgids userspace seeded (see [`Kernel::mark_seeded`]).
    seeded_bits: Array<MapData, u64>,
    /// Lifecycle events; taken by the reader thread.
    pub events: Option<RingBuf<MapData>>,
    /// The trees' time buckets; taken by the tree-cost log.
    pub buckets: Option<HashMap<MapData, BucketKey, SlotCounters>>,
    /// Each CPU's staged time bucket; taken by the tree-cost log.
    pub staged: Option<PerCpuArray<MapData, StagedSlot>>,
    /// The optional programs left out, and why.
    left_out: Vec<LeftOut>,
}

/// An optional program that is not loaded.
#[derive(Debug, Clone)]
pub struct LeftOut {
    /// The program (and tracepoint) name.
    pub program: &'static str,
    /// The series it alone measures, left out of the samples.
    pub metric: &'static MetricDef,
    /// Why: disabled, not in this kernel, another layout, or the verifier's refusal.
    pub reason: String,
}

/// Whether `event` (`<category>/<tracepoint>`) is the hook of an optional program.
pub fn is_optional(event: &str) -> bool {
    TRACEPOINTS
        .iter()
        .any(|&(name, category, metric)| metric.is_some() && event == format!("{category}/{name}"))
}

/// Whether the programs work without `field` in this kernel's record: the field of an optional
/// hook, or `sched_process_exit`'s `group_dead` (the exit program then reads `signal->live`).
pub fn has_fallback(field: &TracepointField) -> bool {
    is_optional(field.event) || is_group_dead(field)
}

fn is_group_dead(field: &TracepointField) -> bool {
    field.event == "sched/sched_process_exit" && field.offset == EXIT_GROUP_DEAD
}

/// Whether this kernel's `sched_process_exit` carries `group_dead` (and it is not `disabled`).
fn exit_has_group_dead(disabled: &[String]) -> bool {
    let Some(root) = super::tracefs_root() else {
        return false;
    };
    !disabled.iter().any(|d| d == GROUP_DEAD)
        && CHECKED_FIELDS
            .iter()
            .filter(|f| is_group_dead(f))
            .all(|f| !super::lacks_field(root, f))
}

impl Kernel {
    /// Loads the programs, configured to start tracking at exec when the comm contains
    /// `needle` (lower-cased, at most 15 bytes are compared), with `fast_entries` in `FAST`
    /// (rounded up to a power of two; `None`: enough for the host's `pid_max`). An optional
    /// program whose hook this kernel lacks, or that is named in `disabled`, is left out
    /// ([`Kernel::left_out`]); the others must load.
    pub fn load(
        needle: &str,
        fast_entries: Option<u32>,
        disabled: &[String],
    ) -> Result<Self, EbpfError> {
        if let Some(unknown) = disabled.iter().find(|d| {
            *d != GROUP_DEAD
                && !TRACEPOINTS
                    .iter()
                    .any(|&(name, _, metric)| metric.is_some() && name == d.as_str())
        }) {
            return Err(EbpfError::NotOptional(unknown.clone()));
        }
        let pid_max = pid_max();
        let words = pid_max.map_or(PID_BITMAP_WORDS, |n| {
            n.div_ceil(64).clamp(1, PID_BITMAP_WORDS)
        });
        let fast_len = fast_entries
            .or(pid_max)
            .map_or(MAX_FAST, |n| n.next_power_of_two().clamp(1, MAX_FAST));
        let typedefs: Vec<&'static str> = BTF_TRACEPOINTS.iter().map(|t| t.2).collect();
        let names: Vec<&'static str> = CONFIG_NAMES.iter().chain(&typedefs).copied().collect();
        let btf = Btf::from_file(Path::new(VMLINUX_BTF), &names)?;
        let mut config = kernel_config(needle, &btf)?;
        config.fast_mask = fast_len - 1;
        config.exit_has_group_dead = u32::from(exit_has_group_dead(disabled));
        let kernel_btf = aya::Btf::parse(&btf.typedef_btf(&typedefs)?, aya::Endianness::default())
            .map_err(EbpfError::KernelBtf)?;
        drop(btf);
        let mut ebpf = loader_without_kernel_btf()
            .override_global("CONFIG", &config, true)
            .map_max_entries("KERNEL_BITS", words)
            .map_max_entries("SEEDED_BITS", words)
            .map_max_entries("FAST", fast_len)
            .map_max_entries("THREAD_IO", fast_len)
            .load(OBJECT)
            .map_err(EbpfError::Load)?;
        let left_out = load_tracepoints(&mut ebpf, disabled)?;
        for &(name, hook, _) in BTF_TRACEPOINTS {
            let program: &mut BtfTracePoint = typed_program(&mut ebpf, name, hook)?;
            program
                .load(hook, &kernel_btf)
                .map_err(program_error(name, hook))?;
        }
        drop(kernel_btf);
        let flush: &mut RawTracePoint = typed_program(&mut ebpf, FLUSH_STAGED, FLUSH_STAGED)?;
        flush
            .load()
            .map_err(program_error(FLUSH_STAGED, FLUSH_STAGED))?;
        let procs = take_map(&mut ebpf, "PROCS")?;
        let procs_fd = match &procs {
            aya::maps::Map::HashMap(data) => data.fd().as_fd().try_clone_to_owned().map_err(|e| {
                aya::sys::SyscallError {
                    call: "dup",
                    io_error: e,
                }
                .into()
            }),
            _ => Err(aya::maps::MapError::InvalidName {
                name: "PROCS".to_owned(),
            }),
        }
        .map_err(map_error("PROCS"))?;
        let procs = HashMap::try_from(procs).map_err(map_error("PROCS"))?;
        let exiting =
            HashMap::try_from(take_map(&mut ebpf, "EXITING")?).map_err(map_error("EXITING"))?;
        let stats = Array::try_from(take_map(&mut ebpf, "STATS")?).map_err(map_error("STATS"))?;
        let fast = Array::try_from(take_map(&mut ebpf, "FAST")?).map_err(map_error("FAST"))?;
        let seeded_bits = Array::try_from(take_map(&mut ebpf, "SEEDED_BITS")?)
            .map_err(map_error("SEEDED_BITS"))?;
        let events =
            RingBuf::try_from(take_map(&mut ebpf, "EVENTS")?).map_err(map_error("EVENTS"))?;
        let buckets =
            HashMap::try_from(take_map(&mut ebpf, "BUCKETS")?).map_err(map_error("BUCKETS"))?;
        let staged =
            PerCpuArray::try_from(take_map(&mut ebpf, "STAGED")?).map_err(map_error("STAGED"))?;
        release_freed_memory();
        Ok(Self {
            ebpf,
            procs,
            procs_fd,
            exiting,
            stats,
            fast,
            fast_mask: config.fast_mask,
            seeded_bits,
            events: Some(events),
            buckets: Some(buckets),
            left_out,
            staged: Some(staged),
        })
    }

    /// The optional programs that are not loaded.
    pub fn left_out(&self) -> &[LeftOut] {
        &self.left_out
    }

    /// Sets the bit of `pid` in `SEEDED_BITS`; call before inserting `pid` into `PROCS`, or
    /// the programs may skip it. This process is the map's only writer, so the
    /// read-modify-write is safe; the bit stays set after the process ends (a stale bit only
    /// costs the programs a hash lookup).
    pub fn mark_seeded(&mut self, pid: u32) -> Result<(), aya::maps::MapError> {
        let word = pid / 64;
        if word >= self.seeded_bits.len() {
            return Ok(()); // beyond the bitmap: the programs look such pids up in PROCS
        }
        let bits = self.seeded_bits.get(&word, 0)?;
        self.seeded_bits.set(word, bits | 1u64 << (pid % 64), 0)
    }

    /// The tracked process `pid` with its counters complete (its `PROCS` and `FAST` ones
    /// summed); `None` if it is not tracked.
    pub fn tracked(&self, pid: u32) -> Option<TrackedProc> {
        let tracked = self.procs.get(&pid, 0).ok()?;
        Some(self.with_fast(pid, tracked))
    }

    /// Every tracked process, as [`Kernel::tracked`] gives it, into `out` (cleared first).
    /// `PROCS` is read with `BPF_MAP_LOOKUP_BATCH`, a syscall per 256 entries instead of two
    /// per entry (a key walk and a lookup): aya has no batch API.
    pub fn tracked_all(&self, out: &mut Vec<(u32, TrackedProc)>) -> std::io::Result<()> {
        out.clear();
        let mut keys = [0u32; BATCH];
        let mut values = [TrackedProc::default(); BATCH];
        let mut token = 0u32;
        let mut first = true;
        loop {
            let mut attr = BatchAttr {
                in_batch: if first {
                    0
                } else {
                    std::ptr::addr_of!(token) as u64
                },
                out_batch: std::ptr::addr_of_mut!(token) as u64,
                keys: keys.as_mut_ptr() as u64,
                values: values.as_mut_ptr() as u64,
                count: BATCH as u32,
                map_fd: self.procs_fd.as_raw_fd() as u32,
                elem_flags: 0,
                flags: 0,
            };
            // SAFETY: `attr` is the kernel's batch layout; `keys` and `values` hold `count`
            // elements of PROCS's key and value types, `token` the hash map's 4-byte cursor,
            // all alive for the call.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    BPF_MAP_LOOKUP_BATCH,
                    std::ptr::addr_of_mut!(attr),
                    size_of::<BatchAttr>(),
                )
            };
            // ENOENT: this was the last batch (its entries are still returned).
            let done = ret < 0;
            if done {
                let error = std::io::Error::last_os_error();
                if error.raw_os_error() != Some(libc::ENOENT) {
                    return Err(error);
                }
            }
            let n = (attr.count as usize).min(BATCH);
            out.extend(
                keys[..n]
                    .iter()
                    .zip(&values[..n])
                    .map(|(&pid, &tracked)| (pid, self.with_fast(pid, tracked))),
            );
            if done {
                return Ok(());
            }
            first = false;
        }
    }

    /// `tracked` (`pid`'s `PROCS` value) plus the counters of `pid`'s `FAST` entry, if it
    /// owns one.
    fn with_fast(&self, pid: u32, mut tracked: TrackedProc) -> TrackedProc {
        if let Some(fast) = self.fast_entry(pid) {
            tracked.counters = tracked.counters.plus(&fast.counters);
        }
        tracked
    }

    /// Stops tracking `pid` (removes it from `PROCS`). Its `FAST` entry, if any, is left to
    /// the kernel programs, which free it when the process's task is freed or when its pid is
    /// tracked again: only they write `FAST`, so no update of theirs can be lost.
    pub fn forget(&mut self, pid: u32) {
        let _gone = self.procs.remove(&pid);
    }

    /// `pid`'s `FAST` entry, if it owns it.
    fn fast_entry(&self, pid: u32) -> Option<FastCounters> {
        let entry = self.fast.get(&(pid & self.fast_mask), 0).ok()?;
        (entry.owner == u64::from(pid)).then_some(entry)
    }

    /// Runs `flush_staged` on `cpu`: its staged time bucket goes to `BUCKETS`.
    pub fn flush_staged(&self, cpu: u32) -> Result<(), EbpfError> {
        use aya::programs::{RawTracePointRunOptions, TestRun};
        let flush: &RawTracePoint = self
            .ebpf
            .program(FLUSH_STAGED)
            .ok_or(EbpfError::MissingProgram(FLUSH_STAGED))?
            .try_into()
            .map_err(program_error(FLUSH_STAGED, FLUSH_STAGED))?;
        let options = RawTracePointRunOptions {
            cpu: Some(cpu),
            ..RawTracePointRunOptions::default()
        };
        flush
            .test_run(options)
            .map(drop)
            .map_err(program_error(FLUSH_STAGED, FLUSH_STAGED))
    }

    /// Attaches every program; from here on the tracked set follows forks and execs.
    pub fn attach(&mut self) -> Result<(), EbpfError> {
        for &(name, category, _) in TRACEPOINTS {
            if self.left_out.iter().any(|l| l.program == name) {
                continue;
            }
            let program: &mut TracePoint = typed_program(&mut self.ebpf, name, name)?;
            program
                .attach(category, name)
                .map_err(program_error(name, name))?;
        }
        for &(name, hook, _) in BTF_TRACEPOINTS {
            let program: &mut BtfTracePoint = typed_program(&mut self.ebpf, name, hook)?;
            program.attach().map_err(program_error(name, hook))?;
        }
        Ok(())
    }
}

/// `BPF_MAP_LOOKUP_BATCH` (`enum bpf_cmd` in linux/bpf.h).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
/// Entries read per batch syscall.
const BATCH: usize = 256;

/// The `batch` member of `union bpf_attr` (linux/bpf.h).
#[repr(C)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Returns the heap freed after loading to the OS (aya's copies of the object, its sections
/// and relocation tables), which glibc would otherwise keep in the agent's RSS for good.
#[cfg(target_env = "gnu")]
fn release_freed_memory() {
    // SAFETY: malloc_trim only returns free heap pages; it has no preconditions.
    let _released = unsafe { libc::malloc_trim(0) };
}

#[cfg(not(target_env = "gnu"))]
fn release_freed_memory() {}

/// An [`EbpfLoader`] without the kernel BTF. aya 0.14's `EbpfLoader::new` reads and parses
/// all of `/sys/kernel/btf/vmlinux` (~20 MB at its peak, which glibc keeps) even when told
/// afterwards not to use it, and these programs need none of it: they have no CO-RE
/// relocations, and the `tp_btf` type ids come from [`Btf::typedef_btf`]. So its open is made
/// to fail: for the moment of the call, the soft `RLIMIT_NOFILE` is lowered to the lowest free
/// descriptor. Should that not work, the loader parses as before and its copy is dropped.
/// Another thread opening a file in that window (microseconds) gets EMFILE; at start-up only
/// the receiver's and the Prometheus endpoint's accept loops may run, and on EMFILE they log
/// once and retry after 100 ms (`http_server.rs`).
fn loader_without_kernel_btf() -> EbpfLoader<'static> {
    let lowered = LoweredFdLimit::to_lowest_free_fd();
    let mut loader = EbpfLoader::new();
    drop(lowered);
    loader.btf(None);
    loader
}

/// `RLIMIT_NOFILE` lowered so that no descriptor can be opened; restored on drop.
struct LoweredFdLimit(libc::rlimit);

impl LoweredFdLimit {
    fn to_lowest_free_fd() -> Option<Self> {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `old` is a live rlimit for getrlimit to fill in.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) } != 0 {
            return None;
        }
        // The file is closed at the end of this statement: its descriptor is the lowest free.
        let lowest = std::fs::File::open("/").ok()?.as_raw_fd();
        let lowered = libc::rlimit {
            rlim_cur: libc::rlim_t::try_from(lowest).ok()?,
            rlim_max: old.rlim_max,
        };
        // SAFETY: `lowered` is a valid rlimit below the hard limit.
        (unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) } == 0).then_some(Self(old))
    }
}

impl Drop for LoweredFdLimit {
    fn drop(&mut self) {
        // SAFETY: restores the limit read by getrlimit; setting it back cannot fail for an
        // unprivileged process either, as it is not above the unchanged hard limit.
        let _restored = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.0) };
    }
}

/// Loads the tracepoint programs; an optional one whose hook is unavailable here (see
/// [`unavailable`]) or that the verifier refuses is left out and returned with the reason.
fn load_tracepoints(ebpf: &mut Ebpf, disabled: &[String]) -> Result<Vec<LeftOut>, EbpfError> {
    let mut left_out = Vec::new();
    for &(name, category, metric) in TRACEPOINTS {
        let skip = metric.and_then(|m| unavailable(category, name, disabled).map(|r| (m, r)));
        if let Some((metric, reason)) = skip {
            left_out.push(LeftOut {
                program: name,
                metric,
                reason,
            });
            continue;
        }
        let program: &mut TracePoint = typed_program(ebpf, name, name)?;
        match (program.load(), metric) {
            (Ok(()), _) => {}
            (Err(e), Some(metric)) => left_out.push(LeftOut {
                program: name,
                metric,
                reason: crate::error::error_chain(&program_error(name, name)(e)),
            }),
            (Err(e), None) => return Err(program_error(name, name)(e)),
        }
    }
    Ok(left_out)
}

/// Why the optional program `name`'s hook `category:name` cannot be used here, if it cannot:
/// it is `disabled`, the kernel lacks the tracepoint, or a field the program reads is not where
/// it expects it.
fn unavailable(category: &str, name: &str, disabled: &[String]) -> Option<String> {
    if disabled.iter().any(|d| d == name) {
        return Some(format!("disabled by {DISABLE_ENV}"));
    }
    let root = super::tracefs_root()?;
    let event = format!("{category}/{name}");
    if !root.join("events").join(&event).is_dir() {
        return Some("not in this kernel".to_owned());
    }
    CHECKED_FIELDS
        .iter()
        .filter(|f| f.event == event)
        .find(|f| super::lacks_field(root, f))
        .map(|f| {
            format!(
                "no '{}' at offset {} in its record",
                f.declaration, f.offset
            )
        })
}

/// This host's `pid_max`, if it can be read.
fn pid_max() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `CONFIG` for `needle` and the running kernel's `task_struct` layout.
fn kernel_config(needle: &str, btf: &Btf) -> Result<KernelConfig, EbpfError> {
    let mut config = KernelConfig::zeroed();
    // comm holds 15 bytes; a longer needle is matched on its first 15 and re-checked in
    // userspace against argv[0] and exe.
    let bytes = needle.trim().to_lowercase().into_bytes();
    let n = bytes.len().min(COMM_LEN - 1);
    config.needle[..n].copy_from_slice(&bytes[..n]);
    config.needle_len = n as u32;
    config.task_tgid_offset = btf.member_offset("task_struct", "tgid")?;
    config.task_exit_code_offset = btf.member_offset("task_struct", "exit_code")?;
    config.task_real_parent_offset = btf.member_offset("task_struct", "real_parent")?;
    config.task_signal_offset = btf.member_offset("task_struct", "signal")?;
    config.task_ioac_offset = btf.member_offset("task_struct", "ioac")?;
    config.signal_ioac_offset = btf.member_offset("signal_struct", "ioac")?;
    config.ioac_rchar_offset = btf.member_offset("task_io_accounting", "rchar")?;
    config.ioac_wchar_offset = btf.member_offset("task_io_accounting", "wchar")?;
    config.task_rchar_offset = config.task_ioac_offset + config.ioac_rchar_offset;
    config.task_wchar_offset = config.task_ioac_offset + config.ioac_wchar_offset;
    config.task_pid_offset = btf.member_offset("task_struct", "pid")?;
    config.task_comm_offset = btf.member_offset("task_struct", "comm")?;
    config.signal_live_offset = btf.member_offset("signal_struct", "live")?;
    Ok(config)
}

/// The program `name` of the object as its concrete type (`hook` names it in errors).
fn typed_program<'a, T>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
    hook: &'static str,
) -> Result<&'a mut T, EbpfError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(EbpfError::MissingProgram(name))?
        .try_into()
        .map_err(program_error(name, hook))
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, EbpfError> {
    ebpf.take_map(name).ok_or(EbpfError::Map {
        name,
        source: aya::maps::MapError::InvalidName {
            name: name.to_owned(),
        },
    })
}

fn program_error(
    name: &'static str,
    hook: &'static str,
) -> impl Fn(aya::programs::ProgramError) -> EbpfError {
    move |source| EbpfError::Program { name, hook, source }
}

fn map_error(name: &'static str) -> impl Fn(aya::maps::MapError) -> EbpfError {
    move |source| EbpfError::Map { name, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hooks_of_single_series_are_optional() {
        assert!(is_optional("sock/sock_send_length"));
        assert!(is_optional("block/block_bio_queue"));
        assert!(!is_optional("sched/sched_process_exit"));
        assert!(!is_optional("task/task_newtask"));
        assert!(
            CHECKED_FIELDS.iter().all(has_fallback),
            "no field check is fatal"
        );
    }

    #[test]
    fn disabling_a_hook_the_tracked_set_needs_is_an_error_naming_the_variable() {
        let err = Kernel::load("x", None, &["sched_process_exit".to_owned()])
            .err()
            .expect("refused before loading anything");
        assert_eq!(
            err.to_string(),
            "TRACE_CLAW_EBPF_DISABLE: 'sched_process_exit' is not a hook that can be left out \
             (block_bio_queue, sock_send_length, sock_recv_length) or 'group_dead'"
        );
    }

    #[test]
    fn a_disabled_hook_is_unavailable_whatever_the_kernel() {
        let disabled = ["sock_recv_length".to_owned()];
        assert_eq!(
            unavailable("sock", "sock_recv_length", &disabled).as_deref(),
            Some("disabled by TRACE_CLAW_EBPF_DISABLE")
        );
    }
}
