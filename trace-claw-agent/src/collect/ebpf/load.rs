//! Loads the kernel programs, fills in their `CONFIG`, attaches them to their tracepoints and
//! hands out the maps. Everything is owned by [`Kernel`]; dropping it detaches the programs and
//! frees the maps (nothing is pinned).

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

use super::btf::Btf;
use super::{EbpfError, VMLINUX_BTF};

/// The compiled kernel programs, built into OUT_DIR by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/trace-claw-ebpf"));

/// Program name, tracepoint category, and the tracepoints it is attached to.
const TRACEPOINTS: &[(&str, &str, &[&str])] = &[
    ("block_bio_queue", "block", &["block_bio_queue"]),
    ("sock_send_length", "sock", &["sock_send_length"]),
    ("sock_recv_length", "sock", &["sock_recv_length"]),
    ("task_newtask", "task", &["task_newtask"]),
    ("task_rename", "task", &["task_rename"]),
    ("sched_process_exec", "sched", &["sched_process_exec"]),
    ("sched_process_exit", "sched", &["sched_process_exit"]),
];
/// BTF tracepoint programs (`tp_btf`) and their tracepoint.
const BTF_TRACEPOINTS: &[(&str, &str)] = &[
    ("sched_stat_runtime", "sched_stat_runtime"),
    ("sched_process_free", "sched_process_free"),
];
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
}

impl Kernel {
    /// Loads the programs, configured to start tracking at exec when the comm contains
    /// `needle` (lower-cased, at most 15 bytes are compared), with `fast_entries` in `FAST`
    /// (rounded up to a power of two; `None`: enough for the host's `pid_max`).
    pub fn load(needle: &str, fast_entries: Option<u32>) -> Result<Self, EbpfError> {
        let pid_max = pid_max();
        let words = pid_max.map_or(PID_BITMAP_WORDS, |n| {
            n.div_ceil(64).clamp(1, PID_BITMAP_WORDS)
        });
        let fast_len = fast_entries
            .or(pid_max)
            .map_or(MAX_FAST, |n| n.next_power_of_two().clamp(1, MAX_FAST));
        let mut config = kernel_config(needle, &Btf::from_file(Path::new(VMLINUX_BTF))?)?;
        config.fast_mask = fast_len - 1;
        // aya parses the kernel BTF (~20 MB in memory) in `EbpfLoader::new`, but keeps it to
        // itself, and the `tp_btf` programs need it too: drop the loader's copy before parsing
        // ours, so that two are never held at once.
        let mut loader = EbpfLoader::new();
        loader.btf(None);
        let kernel_btf = aya::Btf::from_sys_fs().map_err(EbpfError::KernelBtf)?;
        let mut ebpf = loader
            .btf(Some(&kernel_btf))
            .override_global("CONFIG", &config, true)
            .map_max_entries("KERNEL_BITS", words)
            .map_max_entries("SEEDED_BITS", words)
            .map_max_entries("FAST", fast_len)
            .map_max_entries("THREAD_IO", fast_len)
            .load(OBJECT)
            .map_err(EbpfError::Load)?;
        for &(name, _, hooks) in TRACEPOINTS {
            let program: &mut TracePoint = typed_program(&mut ebpf, name, hooks[0])?;
            program.load().map_err(program_error(name, hooks[0]))?;
        }
        for &(name, hook) in BTF_TRACEPOINTS {
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
            staged: Some(staged),
        })
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
        for &(name, category, hooks) in TRACEPOINTS {
            let program: &mut TracePoint = typed_program(&mut self.ebpf, name, hooks[0])?;
            for &hook in hooks {
                program
                    .attach(category, hook)
                    .map_err(program_error(name, hook))?;
            }
        }
        for &(name, hook) in BTF_TRACEPOINTS {
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

/// Returns the heap freed after loading to the OS: aya parses the whole kernel BTF (~20 MB) in
/// `EbpfLoader::new`, and glibc would otherwise keep those pages in the agent's RSS for good.
#[cfg(target_env = "gnu")]
fn release_freed_memory() {
    // SAFETY: malloc_trim only returns free heap pages; it has no preconditions.
    let _released = unsafe { libc::malloc_trim(0) };
}

#[cfg(not(target_env = "gnu"))]
fn release_freed_memory() {}

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
