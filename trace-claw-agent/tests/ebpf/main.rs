//! Privileged tests of the eBPF backend against the real kernel.
//!
//! Each test makes its own ground truth (a child burning CPU, moving N bytes through a file or
//! B bytes over loopback TCP, spawning K grandchildren) and checks the backend's samples and
//! exit events against it and against the kernel's own accounting (wait4 rusage, /proc/PID/io).
//!
//! Every test starts with [`require_ebpf`]: without root, tracefs, BTF or the built-in programs
//! it prints `skipping: <reason>`, unless `CI=true` or `TRACE_CLAW_EBPF=require`, where it fails.
//!
//! The binary has its own `main` (no libtest): it runs the tests one after another, and when
//! started with `TRACE_CLAW_EBPF_TEST_ROLE` set it plays one of the children instead.

use std::process::ExitCode;

use trace_claw_agent::collect::ebpf::probe;

#[cfg(not(no_ebpf))]
mod action_costs;
#[cfg(not(no_ebpf))]
mod degraded;
#[cfg(not(no_ebpf))]
use with_ebpf::{roles, tests};

/// Built without the kernel programs: nothing can run; skip (or fail under CI).
#[cfg(no_ebpf)]
fn main() -> ExitCode {
    if require_ebpf() {
        panic!("probe() found no problem in a build without eBPF");
    }
    ExitCode::SUCCESS
}

#[cfg(not(no_ebpf))]
fn main() -> ExitCode {
    if let Ok(role) = std::env::var(with_ebpf::ROLE) {
        return roles::run(&role);
    }
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let tests: [(&str, fn()); 11] = [
        ("cpu_matches_wait4_rusage", tests::cpu_matches_wait4_rusage),
        (
            "a_process_running_before_start_is_counted",
            tests::a_process_running_before_start_is_counted,
        ),
        ("file_bytes_are_exact", tests::file_bytes_are_exact),
        (
            "loopback_tcp_bytes_are_exact",
            tests::loopback_tcp_bytes_are_exact,
        ),
        (
            "short_lived_grandchildren_are_all_counted",
            tests::short_lived_grandchildren_are_all_counted,
        ),
        (
            "processes_sharing_a_fast_entry_are_counted",
            tests::processes_sharing_a_fast_entry_are_counted,
        ),
        (
            "samples_cover_a_live_tree",
            tests::samples_cover_a_live_tree,
        ),
        (
            "a_process_renaming_itself_to_the_target_is_tracked",
            tests::a_process_renaming_itself_to_the_target_is_tracked,
        ),
        (
            "actions_are_charged_what_their_own_tree_used",
            action_costs::actions_are_charged_what_their_own_tree_used,
        ),
        (
            "a_missing_hook_leaves_out_only_its_series",
            degraded::a_missing_hook_leaves_out_only_its_series,
        ),
        (
            "exits_are_found_without_group_dead",
            degraded::exits_are_found_without_group_dead,
        ),
    ];
    let mut failed = 0;
    let mut ran = 0;
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        ran += 1;
        eprintln!("test {name} ...");
        match std::panic::catch_unwind(test) {
            Ok(()) => eprintln!("test {name} ... ok"),
            Err(_) => {
                eprintln!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    eprintln!("ebpf tests: {ran} run, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Whether the eBPF tests can run here. Prints `skipping: <reason>` and returns false when they
/// cannot, except under `CI=true` or `TRACE_CLAW_EBPF=require`, where it panics.
fn require_ebpf() -> bool {
    let Some(why) = probe() else {
        return true;
    };
    let strict = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("TRACE_CLAW_EBPF").is_ok_and(|v| v.eq_ignore_ascii_case("require"));
    if strict {
        panic!("eBPF required (CI=true or TRACE_CLAW_EBPF=require) but unavailable: {why}");
    }
    eprintln!("skipping: {why}");
    false
}

/// Everything that needs the built-in eBPF backend.
#[cfg(not(no_ebpf))]
mod with_ebpf {
    use std::collections::HashMap;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Command, ExitCode, Stdio};
    use std::time::{Duration, Instant};

    use trace_claw_agent::collect::ebpf::EbpfOptions;
    use trace_claw_agent::collect::SampleBuffer;
    use trace_claw_common::event::{ProcessEvent, ProcessEventKind};
    use trace_claw_common::names;
    use trace_claw_common::time::Timestamp;

    use super::require_ebpf;

    /// Environment variable that turns this binary into a test child.
    pub const ROLE: &str = "TRACE_CLAW_EBPF_TEST_ROLE";

    /// A unique target name and a symlink to this binary carrying it, so an exec of the symlink
    /// gets a comm the kernel programs match.
    pub(crate) struct Target {
        name: String,
        pub(crate) link: PathBuf,
        _dir: tempfile::TempDir,
    }

    impl Target {
        pub(crate) fn new(tag: &str) -> Self {
            let name = format!("tcx{}{tag}", std::process::id() % 100_000);
            assert!(name.len() <= 15, "comm holds 15 bytes: '{name}'");
            let dir = tempfile::tempdir().expect("tempdir");
            let link = dir.path().join(&name);
            let exe = std::env::current_exe().expect("current_exe");
            std::os::unix::fs::symlink(exe, &link).expect("symlink");
            Self {
                name,
                link,
                _dir: dir,
            }
        }

        /// The comm the kernel programs match.
        pub(crate) fn name(&self) -> &str {
            &self.name
        }

        fn collector(&self) -> trace_claw_agent::collect::ebpf::EbpfCollector {
            self.collector_with(None, None)
        }

        /// A collector whose kernel `FAST` array has `fast_entries` entries, writing its
        /// tree costs to `tree_costs_dir`.
        pub(crate) fn collector_with(
            &self,
            fast_entries: Option<u32>,
            tree_costs_dir: Option<&Path>,
        ) -> trace_claw_agent::collect::ebpf::EbpfCollector {
            self.start(fast_entries, tree_costs_dir, &[])
        }

        /// A collector whose loader treats `disabled` (`TRACE_CLAW_EBPF_DISABLE` names) as
        /// missing from this kernel.
        pub(crate) fn collector_without(
            &self,
            disabled: &[&str],
        ) -> trace_claw_agent::collect::ebpf::EbpfCollector {
            self.start(None, None, disabled)
        }

        fn start(
            &self,
            fast_entries: Option<u32>,
            tree_costs_dir: Option<&Path>,
            disabled: &[&str],
        ) -> trace_claw_agent::collect::ebpf::EbpfCollector {
            trace_claw_agent::collect::ebpf::EbpfCollector::start(&EbpfOptions {
                pod_selector: None,
                process_name: self.name.clone(),
                proc_root: PathBuf::from("/proc"),
                total_memory_bytes: 1 << 30,
                fast_entries,
                tree_costs_dir: tree_costs_dir.map(Path::to_owned),
                disabled_hooks: disabled.iter().map(|d| (*d).to_owned()).collect(),
            })
            .expect("eBPF backend starts")
        }

        /// Starts this binary as `role` through the symlink; returns the pid to reap with wait4.
        pub(crate) fn spawn(&self, role: &str, args: &[String]) -> u32 {
            Command::new(&self.link)
                .env(ROLE, role)
                .args(args)
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn child")
                .id()
        }
    }

    /// The kernel's resource usage of a waited-for child.
    pub(crate) struct Reaped {
        pub(crate) status: i32,
        pub(crate) cpu_ns: u64,
    }

    /// Reaps `pid` with wait4, returning its status and rusage user+system time.
    pub(crate) fn wait4(pid: u32) -> Reaped {
        let mut status = 0;
        // SAFETY: an all-zero rusage is valid; wait4 fills it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `status` and `usage` are valid out-pointers for the duration of the call.
        let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
        assert_eq!(r, pid as i32, "wait4({pid})");
        let tv_ns =
            |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000;
        Reaped {
            status,
            cpu_ns: tv_ns(usage.ru_utime) + tv_ns(usage.ru_stime),
        }
    }

    /// Waits for `pid` to exit without reaping it (it stays a zombie, /proc/PID/io readable).
    fn wait_exited_keep_zombie(pid: u32) {
        // SAFETY: an all-zero siginfo_t is valid; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out-pointer.
        let r = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
        assert_eq!(r, 0, "waitid({pid})");
    }

    /// Collects ticks until an exit event for every pid in `pids` has been seen (or 20 s pass,
    /// which fails the caller's assertions with what was seen).
    pub(crate) fn collect_until_exited(
        c: &mut trace_claw_agent::collect::ebpf::EbpfCollector,
        pids: &[u32],
    ) -> Vec<ProcessEvent> {
        let mut events = Vec::new();
        collect_into(c, pids, &mut events);
        events
    }

    /// Adds events to `events` until it holds an exit of each of `pids` (20 s at most).
    fn collect_into(
        c: &mut trace_claw_agent::collect::ebpf::EbpfCollector,
        pids: &[u32],
        events: &mut Vec<ProcessEvent>,
    ) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = SampleBuffer::default();
        loop {
            buf.start_tick(Timestamp::now());
            c.collect(&mut buf);
            events.extend(c.drain_events());
            let done = pids.iter().all(|p| {
                events
                    .iter()
                    .any(|e| e.pid == *p && e.kind == ProcessEventKind::Exit)
            });
            if done || Instant::now() > deadline {
                return;
            }
            c.wait_for_event(Duration::from_millis(200));
        }
    }

    /// Asserts that the eBPF on-CPU time `ebpf_ns` is within 1% of wait4's `rusage_ns`, which
    /// must be above `min_ns` (the child burned enough for 1% to mean something).
    pub(crate) fn assert_cpu_within_1_percent(ebpf_ns: u64, rusage_ns: u64, min_ns: u64) {
        let err = ebpf_ns.abs_diff(rusage_ns) as f64 / rusage_ns as f64;
        eprintln!(
            "  cpu: ebpf {ebpf_ns} ns, wait4 rusage {rusage_ns} ns, error {:.3}%",
            err * 100.0
        );
        assert!(rusage_ns > min_ns, "the child burned too little");
        assert!(err < 0.01, "on-CPU time off by {:.3}%", err * 100.0);
    }

    pub(crate) fn exit_of(events: &[ProcessEvent], pid: u32) -> &ProcessEvent {
        events
            .iter()
            .find(|e| e.pid == pid && e.kind == ProcessEventKind::Exit)
            .unwrap_or_else(|| panic!("no exit event for pid {pid}; events: {events:#?}"))
    }

    /// Waits until `pid` is blocked in read(2) (`/proc/PID/syscall` starts with syscall 0), so
    /// everything it did before has been counted.
    fn wait_blocked_in_read(pid: u32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(format!("/proc/{pid}/syscall")).expect("syscall");
            if text.starts_with("0 ") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pid {pid} never blocked in read: {text}"
            );
            std::thread::yield_now();
        }
    }

    /// The backend's (read, write) bytes of `pid` from one tick's samples.
    fn io_samples(c: &mut trace_claw_agent::collect::ebpf::EbpfCollector, pid: u32) -> (u64, u64) {
        let mut buf = SampleBuffer::default();
        buf.start_tick(Timestamp::now());
        c.collect(&mut buf);
        let pid = pid.to_string();
        let value = |metric: &str| {
            buf.samples()
                .iter()
                .find(|s| s.name == metric && s.label("pid") == Some(pid.as_str()))
                .map(|s| s.value as u64)
                .unwrap_or_else(|| panic!("no {metric} sample for pid {pid}"))
        };
        (
            value(names::PROCESS_IO_READ.name),
            value(names::PROCESS_IO_WRITE.name),
        )
    }

    /// Reads `rchar` and `wchar` from /proc/PID/io.
    pub(crate) fn proc_io(pid: u32) -> (u64, u64) {
        let text = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("read /proc/PID/io");
        let field = |key: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {key} in {text}"))
        };
        (field("rchar:"), field("wchar:"))
    }

    pub mod tests {
        use super::*;

        /// A child burning a known pattern of CPU (busy 80 ms, sleep 20 ms, five times): the exit
        /// event's on-CPU time is within 1% of the rusage wait4 reports.
        pub fn cpu_matches_wait4_rusage() {
            if !require_ebpf() {
                return;
            }
            let target = Target::new("cpu");
            let mut c = target.collector();
            let pid = target.spawn("burn", &["5".into(), "80".into(), "20".into()]);
            let reaped = wait4(pid);
            assert_eq!(reaped.status, 0);
            let events = collect_until_exited(&mut c, &[pid]);
            let exit = exit_of(&events, pid);
            let ebpf_ns = exit.totals.expect("exit carries totals").cpu_ns;
            assert_cpu_within_1_percent(ebpf_ns, reaped.cpu_ns, 300_000_000);
            assert!(events
                .iter()
                .any(|e| e.pid == pid && e.kind == ProcessEventKind::Exec));
            assert_eq!(exit.exit_code, Some(0));
        }

        /// A child already burning CPU when the backend starts (found by the start-up scan,
        /// not by exec): its exit total, start-up baseline plus what the kernel counted, is
        /// within 1% of its wait4 rusage.
        pub fn a_process_running_before_start_is_counted() {
            if !require_ebpf() {
                return;
            }
            let target = Target::new("seed");
            let pid = target.spawn("burn", &["5".into(), "80".into(), "20".into()]);
            std::thread::sleep(Duration::from_millis(150));
            let mut c = target.collector();
            let reaped = wait4(pid);
            assert_eq!(reaped.status, 0);
            let events = collect_until_exited(&mut c, &[pid]);
            let exit = exit_of(&events, pid);
            let ebpf_ns = exit.totals.expect("exit carries totals").cpu_ns;
            let err = ebpf_ns.abs_diff(reaped.cpu_ns) as f64 / reaped.cpu_ns as f64;
            eprintln!(
                "  seeded cpu: ebpf {ebpf_ns} ns, wait4 rusage {} ns, error {:.3}%",
                reaped.cpu_ns,
                err * 100.0
            );
            assert!(err < 0.01, "on-CPU time off by {:.3}%", err * 100.0);
        }

        /// A child writing then reading back exactly N bytes of a file, between two points where
        /// it is blocked reading its stdin: between those points the backend's read bytes grow by
        /// exactly N + 1 (the go byte) and write bytes by exactly N + 1 (the done byte). The exit
        /// event's totals equal the kernel's rchar/wchar of the zombie exactly.
        #[expect(
            clippy::zombie_processes,
            reason = "reaped with libc::wait4 after reading its /proc/PID/io as a zombie"
        )]
        pub fn file_bytes_are_exact() {
            if !require_ebpf() {
                return;
            }
            const N: u64 = 1_048_573;
            let target = Target::new("io");
            let dir = tempfile::tempdir().expect("tempdir");
            let file = dir.path().join("data");
            let mut c = target.collector();
            let mut child = Command::new(&target.link)
                .env(ROLE, "io")
                .args([file.display().to_string(), N.to_string(), "3".into()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn");
            let pid = child.id();
            let mut stdin = child.stdin.take().expect("stdin");
            let mut stdout = child.stdout.take().expect("stdout");
            let mut byte = [0u8; 1];
            stdout.read_exact(&mut byte).expect("ready byte");
            wait_blocked_in_read(pid);
            let before = io_samples(&mut c, pid);
            stdin.write_all(b"g").expect("go byte");
            stdout.read_exact(&mut byte).expect("done byte");
            wait_blocked_in_read(pid);
            let after = io_samples(&mut c, pid);
            eprintln!("  io: before {before:?}, after {after:?}, N = {N}");
            assert_eq!(after.0 - before.0, N + 1, "read bytes: N + the go byte");
            assert_eq!(after.1 - before.1, N + 1, "write bytes: N + the done byte");
            drop(stdin);
            wait_exited_keep_zombie(pid);
            let (rchar, wchar) = proc_io(pid);
            let reaped = wait4(pid);
            assert_eq!(reaped.status >> 8, 3);
            let events = collect_until_exited(&mut c, &[pid]);
            let exit = exit_of(&events, pid);
            let t = exit.totals.expect("exit carries totals");
            eprintln!(
                "  io at exit: ebpf read {} write {}; kernel rchar {rchar} wchar {wchar}",
                t.read_bytes, t.write_bytes
            );
            assert_eq!(t.write_bytes, wchar, "write bytes vs the kernel's wchar");
            assert_eq!(t.read_bytes, rchar, "read bytes vs the kernel's rchar");
            assert_eq!(std::fs::metadata(&file).expect("file").len(), N);
            assert_eq!(exit.exit_code, Some(3));
        }

        /// A child sending exactly B bytes to a loopback TCP server and reading exactly R back:
        /// socket bytes sent and received are exact.
        pub fn loopback_tcp_bytes_are_exact() {
            if !require_ebpf() {
                return;
            }
            const B: u64 = 3_000_017;
            const R: u64 = 777_777;
            let target = Target::new("net");
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let mut c = target.collector();
            let pid = target.spawn("net", &[addr.to_string(), B.to_string()]);
            let (mut conn, _) = listener.accept().expect("accept");
            let mut received = Vec::new();
            conn.read_to_end(&mut received).expect("read from child");
            assert_eq!(received.len() as u64, B, "server received B bytes");
            conn.write_all(&vec![7u8; R as usize]).expect("reply");
            drop(conn);
            let reaped = wait4(pid);
            assert_eq!(reaped.status, 0);
            let events = collect_until_exited(&mut c, &[pid]);
            let t = exit_of(&events, pid).totals.expect("exit carries totals");
            eprintln!(
                "  net: ebpf sent {} recv {}; B = {B}, R = {R}",
                t.net_sent_bytes, t.net_recv_bytes
            );
            assert_eq!(t.net_sent_bytes, B);
            assert_eq!(t.net_recv_bytes, R);
        }

        /// A child that runs 200 grandchildren living ~5 ms each, one after another: all 200 exec
        /// and exit events are seen with their exit codes, their CPU sums (with the child's) to the
        /// child's wait4 rusage within 1%, and nothing stays in the kernel map.
        pub fn short_lived_grandchildren_are_all_counted() {
            if require_ebpf() {
                check_tree("tree", None);
            }
        }

        /// The same with a one-entry `FAST` array: the first tracked process to run (the child)
        /// owns it until it exits, every grandchild counts in `PROCS`, and every nanosecond is
        /// still counted once.
        pub fn processes_sharing_a_fast_entry_are_counted() {
            if require_ebpf() {
                check_tree("fast1", Some(1));
            }
        }

        /// Runs the 200-grandchildren tree with `fast_entries` and checks it (see above).
        fn check_tree(tag: &str, fast_entries: Option<u32>) {
            const K: usize = 200;
            let target = Target::new(tag);
            let mut c = target.collector_with(fast_entries, None);
            let pid = target.spawn("spawn", &[K.to_string(), "5".into()]);
            let reaped = wait4(pid);
            assert_eq!(reaped.status, 0);
            let mut events = collect_until_exited(&mut c, &[pid]);
            let grandchildren: Vec<u32> = events
                .iter()
                .filter(|e| e.kind == ProcessEventKind::Fork && e.ppid == pid)
                .map(|e| e.pid)
                .collect();
            // An exit event is emitted when the task is freed, an RCU grace period after its
            // reap, so the last grandchildren's may come after the child's.
            collect_into(&mut c, &grandchildren, &mut events);
            let execs = events
                .iter()
                .filter(|e| e.kind == ProcessEventKind::Exec && grandchildren.contains(&e.pid))
                .count();
            let exits: HashMap<u32, &ProcessEvent> = events
                .iter()
                .filter(|e| e.kind == ProcessEventKind::Exit && grandchildren.contains(&e.pid))
                .map(|e| (e.pid, e))
                .collect();
            eprintln!(
                "  tree: {} forks, {execs} execs, {} exits of grandchildren",
                grandchildren.len(),
                exits.len()
            );
            assert_eq!(grandchildren.len(), K, "forks seen");
            assert_eq!(execs, K, "execs seen");
            assert_eq!(exits.len(), K, "exits seen");
            for (i, pid) in grandchildren.iter().enumerate() {
                assert_eq!(
                    exits[pid].exit_code,
                    Some((i % 4) as i32),
                    "exit code of grandchild #{i}"
                );
            }
            let tree_ns: u64 = exits
                .values()
                .map(|e| e.totals.expect("totals").cpu_ns)
                .sum::<u64>()
                + exit_of(&events, pid).totals.expect("totals").cpu_ns;
            let err = tree_ns.abs_diff(reaped.cpu_ns) as f64 / reaped.cpu_ns as f64;
            eprintln!(
                "  tree cpu: ebpf {tree_ns} ns, wait4 rusage {} ns, error {:.3}%",
                reaped.cpu_ns,
                err * 100.0
            );
            assert!(err < 0.01, "tree CPU off by {:.3}%", err * 100.0);
            let dropped = c.events_dropped();
            assert_eq!(dropped, 0, "events dropped");
            assert_eq!(
                c.tracked_count(),
                0,
                "kernel map must be empty after all exits"
            );
        }

        /// A child started under a non-matching name that renames itself (prctl PR_SET_NAME, like
        /// node's `process.title`) to the target is tracked from then on: its exit event arrives
        /// with the CPU it burned after the rename.
        pub fn a_process_renaming_itself_to_the_target_is_tracked() {
            if !require_ebpf() {
                return;
            }
            let target = Target::new("rn");
            let mut c = target.collector();
            let exe = std::env::current_exe().expect("current_exe");
            let pid = Command::new(exe)
                .env(ROLE, "rename")
                .arg(&target.name)
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn")
                .id();
            let reaped = wait4(pid);
            assert_eq!(reaped.status, 0);
            let events = collect_until_exited(&mut c, &[pid]);
            let exit = exit_of(&events, pid);
            assert_eq!(exit.comm, target.name);
            let cpu = exit.totals.expect("totals").cpu_ns;
            assert!(
                cpu >= 50_000_000,
                "counted the 50 ms burned after the rename: {cpu} ns"
            );
        }

        /// While a matched child and its grandchild run, each tick has per-process samples for both
        /// with `source: ebpf`, and `pid="total"` samples summing them.
        #[expect(
            clippy::zombie_processes,
            reason = "reaped with libc::wait4 like the other children"
        )]
        pub fn samples_cover_a_live_tree() {
            if !require_ebpf() {
                return;
            }
            let target = Target::new("live");
            let mut c = target.collector();
            let mut child = Command::new(&target.link)
                .env(ROLE, "tree-hold")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn");
            let pid = child.id();
            let mut ready = String::new();
            child
                .stdout
                .as_mut()
                .expect("stdout")
                .read_to_string(&mut ready)
                .expect("grandchild pid");
            let grandchild: u32 = ready.trim().parse().expect("pid line");
            let mut buf = SampleBuffer::default();
            buf.start_tick(Timestamp::now());
            c.collect(&mut buf);
            let value = |pid: &str, metric: &str| {
                buf.samples()
                    .iter()
                    .find(|s| s.name == metric && s.label("pid") == Some(pid))
                    .map(|s| {
                        assert_eq!(s.label("source"), Some("ebpf"));
                        s.value
                    })
            };
            let (p, g) = (pid.to_string(), grandchild.to_string());
            for metric in [names::PROCESS_CPU_TIME.name, names::PROCESS_MEMORY_RSS.name] {
                assert!(value(&p, metric).is_some(), "{metric} for the child");
                assert!(value(&g, metric).is_some(), "{metric} for the grandchild");
            }
            let count = value("total", names::PROCESS_COUNT.name).expect("process.count");
            assert_eq!(count, 2.0, "child and grandchild tracked");
            let rss_sum = value(&p, names::PROCESS_MEMORY_RSS.name).unwrap_or(0.0)
                + value(&g, names::PROCESS_MEMORY_RSS.name).unwrap_or(0.0);
            assert_eq!(
                value("total", names::PROCESS_MEMORY_RSS.name),
                Some(rss_sum)
            );
            drop(child.stdin.take());
            let reaped = wait4(pid);
            assert_eq!(reaped.status, 0);
            let events = collect_until_exited(&mut c, &[pid, grandchild]);
            assert_eq!(exit_of(&events, grandchild).exit_code, Some(0));
            assert_eq!(
                c.tracked_count(),
                0,
                "kernel map must be empty after all exits"
            );
        }
    }

    /// What the children do.
    pub mod roles {
        use super::*;

        pub fn run(role: &str) -> ExitCode {
            let args: Vec<String> = std::env::args().skip(1).collect();
            let arg = |i: usize| -> u64 {
                args.get(i)
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| panic!("role {role}: argument {i} missing"))
            };
            match role {
                "burn" => burn(arg(0), arg(1), arg(2)),
                "io" => return io(Path::new(&args[0]), arg(1), arg(2) as u8),
                "net" => net(&args[0], arg(1)),
                "spawn" => return spawn(arg(0), arg(1)),
                "spin" => {
                    spin(Duration::from_millis(arg(0)));
                    return ExitCode::from(arg(1) as u8);
                }
                "tree-hold" => return tree_hold(),
                "threads" => {
                    threads(arg(0), Duration::from_millis(arg(1)));
                    return ExitCode::from(arg(2) as u8);
                }
                "gateway" => return crate::action_costs::gateway(),
                "action" => return crate::action_costs::action(&args),
                "rename" => {
                    let name = std::ffi::CString::new(args[0].as_str()).expect("name");
                    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
                    let r = unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
                    assert_eq!(r, 0, "prctl(PR_SET_NAME)");
                    burn_cpu(Duration::from_millis(50));
                }
                "tree-hold-leaf" => {
                    let mut sink = Vec::new();
                    let _eof = std::io::stdin().read_to_end(&mut sink);
                }
                other => panic!("unknown role '{other}'"),
            }
            ExitCode::SUCCESS
        }

        /// Runs `n` threads that each burn `d` of CPU, and joins them.
        fn threads(n: u64, d: Duration) {
            let handles: Vec<_> = (0..n)
                .map(|_| std::thread::spawn(move || burn_cpu(d)))
                .collect();
            for h in handles {
                h.join().expect("thread");
            }
        }

        /// Busy-loops for `d` of wall time.
        fn spin(d: Duration) {
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed() < d {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }

        /// The CPU time `clock` (a CPU-time clock id) reads.
        pub(crate) fn cpu_clock(clock: libc::clockid_t) -> Duration {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `ts` is a valid out-pointer; the caller passes a clock that exists.
            unsafe { libc::clock_gettime(clock, &mut ts) };
            Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
        }

        fn thread_cpu() -> Duration {
            cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
        }

        /// Busy-loops until this thread has used `d` more CPU time.
        pub(crate) fn burn_cpu(d: Duration) {
            let end = thread_cpu() + d;
            let mut x = 0u64;
            while thread_cpu() < end {
                for _ in 0..20_000 {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
        }

        fn burn(rounds: u64, busy_ms: u64, idle_ms: u64) {
            for _ in 0..rounds {
                burn_cpu(Duration::from_millis(busy_ms));
                std::thread::sleep(Duration::from_millis(idle_ms));
            }
        }

        /// Signals ready, waits for a go byte, writes and reads back `n` bytes of `path`, signals
        /// done, waits for stdin to close, exits with `code`.
        fn io(path: &Path, n: u64, code: u8) -> ExitCode {
            let mut stdin = std::io::stdin().lock();
            let mut stdout = std::io::stdout().lock();
            let mut byte = [0u8; 1];
            stdout
                .write_all(b"r")
                .and_then(|()| stdout.flush())
                .expect("ready");
            stdin.read_exact(&mut byte).expect("go");
            let data = vec![0x5a_u8; n as usize];
            std::fs::File::create(path)
                .and_then(|mut f| f.write_all(&data))
                .expect("write file");
            let mut back = vec![0u8; n as usize];
            std::fs::File::open(path)
                .and_then(|mut f| f.read_exact(&mut back))
                .expect("read file");
            stdout
                .write_all(b"d")
                .and_then(|()| stdout.flush())
                .expect("done");
            let _eof = stdin.read(&mut byte);
            ExitCode::from(code)
        }

        fn net(addr: &str, n: u64) {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(&vec![1u8; n as usize]).expect("send");
            s.shutdown(std::net::Shutdown::Write).expect("shutdown");
            let mut back = Vec::new();
            s.read_to_end(&mut back).expect("receive");
        }

        fn spawn(k: u64, ms: u64) -> ExitCode {
            let exe = std::env::current_exe().expect("current_exe");
            for i in 0..k {
                let status = Command::new(&exe)
                    .env(ROLE, "spin")
                    .args([ms.to_string(), (i % 4).to_string()])
                    .status()
                    .expect("spawn grandchild");
                assert_eq!(status.code(), Some((i % 4) as i32));
            }
            ExitCode::SUCCESS
        }

        /// Starts one grandchild that lives until stdin closes, prints its pid, closes stdout.
        fn tree_hold() -> ExitCode {
            let exe = std::env::current_exe().expect("current_exe");
            let mut grandchild = Command::new(&exe)
                .env(ROLE, "tree-hold-leaf")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn grandchild");
            println!("{}", grandchild.id());
            // SAFETY: closing our own stdout so the parent's read_to_string returns.
            unsafe { libc::close(1) };
            let mut sink = Vec::new();
            let _eof = std::io::stdin().read_to_end(&mut sink);
            drop(grandchild.stdin.take());
            let status = grandchild.wait().expect("wait grandchild");
            ExitCode::from(u8::from(!status.success()))
        }
    }
}
