//! Per-action costs from the kernel's 5 ms time buckets, end to end: a "gateway" process runs
//! actions that each spawn a child burning an exact amount of CPU and moving exact bytes, with
//! a busy decoy tree of the same name beside it; the agent's tree-costs stream and `analyze`
//! must charge every action what its own tree used (ground truth: wait4 rusage, the processes'
//! own /proc/self/io and socket byte counts, the sizes of their O_DIRECT reads, which the
//! block layer must serve), the decoy to no action, and the CPU burned between actions to the
//! tree's idle cost.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::UdpSocket;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use trace_claw_agent::collect::SampleBuffer;
use trace_claw_common::event::{ActionEvent, EVENT_TOOL};
use trace_claw_common::time::Timestamp;

use crate::require_ebpf;
use crate::with_ebpf::roles::{burn_cpu, cpu_clock};
use crate::with_ebpf::{proc_io, wait4, Target, ROLE};

/// One action: CPU the child burns, KiB it writes to /dev/null, reads from /dev/zero, sends
/// to (and receives from) itself over loopback UDP, and reads from a file with O_DIRECT.
#[derive(Debug, Clone, Copy)]
struct Work {
    cpu_ms: u64,
    write_kib: u64,
    read_kib: u64,
    udp_kib: u64,
    direct_kib: u64,
}

/// What an action really used, from the processes' own accounting.
#[derive(Debug, Default, Clone, Copy)]
struct Truth {
    cpu_ns: u64,
    read: u64,
    write: u64,
    sent: u64,
    recv: u64,
    block_read: u64,
}

/// The 14 actions: 20 to 300 ms of CPU, up to 2 MiB of I/O, up to 4 MiB of block reads.
const ACTIONS: [Work; 14] = [
    w(20, 64, 0, 0, 64),
    w(50, 0, 256, 16, 0),
    w(300, 1024, 1024, 64, 1024),
    w(25, 4, 4, 4, 4),
    w(150, 2048, 0, 0, 0),
    w(80, 0, 2048, 32, 4096),
    w(200, 512, 512, 128, 256),
    w(30, 16, 16, 0, 0),
    w(120, 256, 0, 8, 512),
    w(60, 0, 0, 256, 0),
    w(250, 128, 128, 0, 2048),
    w(40, 1024, 64, 16, 0),
    w(100, 32, 32, 32, 128),
    w(20, 0, 0, 0, 0),
];

const fn w(cpu_ms: u64, write_kib: u64, read_kib: u64, udp_kib: u64, direct_kib: u64) -> Work {
    Work {
        cpu_ms,
        write_kib,
        read_kib,
        udp_kib,
        direct_kib,
    }
}

/// The file the actions read with O_DIRECT (wrapping around at its end).
const DIRECT_FILE_BYTES: usize = 1 << 20;
/// Bytes per O_DIRECT read: a multiple of any logical block size.
const DIRECT_CHUNK: usize = 64 << 10;

/// CPU the gateway burns between some actions, outside any action: the tree's idle cost.
const IDLE_BURN_MS: u64 = 120;
/// Between which actions it does (after action `i`).
const IDLE_BURN_AFTER: [usize; 3] = [2, 6, 10];

/// Whether `got` is within max(5 %, `floor`) of `want`.
fn within(got: f64, want: f64, floor: f64) -> bool {
    (got - want).abs() <= (0.05 * want).max(floor)
}

/// The burst workload against the real kernel and `analyze`.
pub fn actions_are_charged_what_their_own_tree_used() {
    if !require_ebpf() {
        return;
    }
    let target = Target::new("cost");
    let dir = tempfile::tempdir().expect("tempdir");
    // On the disk of the build (a tmpfs has no block device and refuses O_DIRECT).
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("data tempdir");
    let direct_file = data.path().join("direct.bin");
    let mut f = std::fs::File::create(&direct_file).expect("direct file");
    f.write_all(&vec![0xa5_u8; DIRECT_FILE_BYTES])
        .expect("write direct file");
    f.sync_all().expect("sync direct file");
    drop(f);
    // The decoy: a second tree whose name matches, busy the whole time.
    let decoy = target.spawn("spin", &["60000".into(), "0".into()]);
    let mut gateway = Command::new(&target.link)
        .env(ROLE, "gateway")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn gateway");
    let gateway_pid = gateway.id();
    let mut to_gw = gateway.stdin.take().expect("stdin");
    let mut from_gw = BufReader::new(gateway.stdout.take().expect("stdout"));
    let mut c = target.collector_with(None, Some(dir.path()));
    let mut buf = SampleBuffer::default();
    let mut last_tick = Instant::now();
    let mut tick = |c: &mut trace_claw_agent::collect::ebpf::EbpfCollector, force: bool| {
        if force || last_tick.elapsed() >= Duration::from_secs(2) {
            buf.start_tick(Timestamp::now());
            c.collect(&mut buf);
            last_tick = Instant::now();
        }
    };
    let mut events = Vec::new();
    let mut truths = Vec::new();
    let mut idle_truth_ns = 0u64;
    let mut ask = |line: String| -> Vec<u64> {
        to_gw.write_all(line.as_bytes()).expect("command");
        to_gw.flush().expect("flush");
        let mut reply = String::new();
        from_gw.read_line(&mut reply).expect("reply");
        reply
            .split_whitespace()
            .map(|v| v.parse().expect("number"))
            .collect()
    };
    std::thread::sleep(Duration::from_millis(300));
    for (i, work) in ACTIONS.iter().enumerate() {
        let line = format!(
            "action {} {} {} {} {} {}\n",
            work.cpu_ms,
            work.write_kib,
            work.read_kib,
            work.udp_kib,
            work.direct_kib,
            direct_file.display()
        );
        let start = Timestamp::now();
        let r = ask(line.clone());
        // The action's work ends when the gateway waits for the next command: its reply is
        // part of the truth, and is charged when the gateway stops running after it.
        wait_until_asleep(gateway_pid);
        let end = Timestamp::now();
        // Child cpu, read, write, sent, recv, O_DIRECT bytes read; the gateway's own cpu,
        // then its read and write, which include the reaped child's (wait folds them into the
        // parent's signal_struct).
        let reply_len = r.iter().map(|v| v.to_string().len() + 1).sum::<usize>() as u64;
        truths.push(Truth {
            cpu_ns: r[0] + r[6],
            read: r[7] + line.len() as u64,
            write: r[8] + reply_len,
            sent: r[3],
            recv: r[4],
            block_read: r[5],
        });
        let mut e = ActionEvent::new(EVENT_TOOL, start);
        e.tool_name = Some(format!("work{i}"));
        e.session_id = Some("burst".into());
        e.duration_ms = (end.0 - start.0) as f64 / 1e6;
        e.pid = Some(gateway_pid);
        events.push(e);
        std::thread::sleep(Duration::from_millis(250 + 40 * (i as u64 % 5)));
        if IDLE_BURN_AFTER.contains(&i) {
            let r = ask(format!("idle {IDLE_BURN_MS}\n"));
            idle_truth_ns += r[0];
            std::thread::sleep(Duration::from_millis(250));
        }
        tick(&mut c, false);
    }
    // An action logged around actions 0 and 1: it overlaps both.
    let mut around = ActionEvent::new(EVENT_TOOL, events[0].timestamp);
    around.tool_name = Some("around".into());
    around.session_id = Some("overlap".into());
    around.duration_ms = (events[1].end().0 - events[0].timestamp.0) as f64 / 1e6;
    around.pid = Some(gateway_pid);
    events.push(around);
    drop(to_gw);
    assert!(gateway.wait().expect("gateway").success());
    std::thread::sleep(Duration::from_millis(50));
    tick(&mut c, true);
    // SAFETY: kill has no memory preconditions; the decoy is our child.
    unsafe { libc::kill(decoy as i32, libc::SIGKILL) };
    let _decoy = wait4(decoy);
    assert!(c.tree_cost_lines() > 0, "no tree-costs lines written");
    drop(c);

    let events_file = dir.path().join("events-test.jsonl");
    let mut f = std::fs::File::create(&events_file).expect("events file");
    for e in &events {
        writeln!(f, "{}", serde_json::to_string(e).expect("json")).expect("write");
    }
    drop(f);
    let report = analyze(dir.path());
    check_actions(&report, &truths);
    check_totals(&report, &truths, idle_truth_ns);
}

/// Waits until `pid` sleeps (state `S` in /proc/PID/stat), at most a second.
fn wait_until_asleep(pid: u32) {
    let stat = format!("/proc/{pid}/stat");
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(&stat).expect("gateway stat");
        let state = text
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if state == Some('S') {
            return;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    panic!("the gateway did not go back to waiting for a command within 1 s");
}

/// `analyze --format json` of `dir`.
fn analyze(dir: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_trace-claw-agent"))
        .args(["analyze", "--format", "json", "--trace-dir"])
        .arg(dir)
        .output()
        .expect("run analyze");
    assert!(
        out.status.success(),
        "analyze failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("analyze JSON")
}

/// Every action within max(5 %, 5 ms) of its CPU and max(5 %, 4 KiB) of its bytes (block
/// reads included).
fn check_actions(report: &Value, truths: &[Truth]) {
    let rows: Vec<&Value> = report["action_timeline"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["session_id"] == "burst")
        .collect();
    assert_eq!(rows.len(), truths.len(), "one row per action");
    let mut bad = Vec::new();
    eprintln!(
        "  action  cpu ms true/got (err)   read B true/got   write B true/got   sent/recv true/got   \
         block read true/got"
    );
    for (i, (row, t)) in rows.iter().zip(truths).enumerate() {
        let c = &row["resource_cost"];
        assert_eq!(c["method"], "time_slots", "row {i}: {c}");
        let got = |k: &str| c[k].as_f64().unwrap_or(f64::NAN);
        let cpu = got("cpu_seconds") * 1e3;
        let want_cpu = t.cpu_ns as f64 / 1e6;
        eprintln!(
            "  {i:>6}  {want_cpu:>7.2}/{cpu:>7.2} ({:+.1}%)  {}/{:.0}  {}/{:.0}  {}/{:.0} {}/{:.0}  \
             {}/{:.0}",
            (cpu - want_cpu) / want_cpu * 100.0,
            t.read,
            got("read_bytes"),
            t.write,
            got("write_bytes"),
            t.sent,
            got("net_sent_bytes"),
            t.recv,
            got("net_recv_bytes"),
            t.block_read,
            got("block_read_bytes"),
        );
        let checks = [
            ("cpu ms", cpu, want_cpu, 5.0),
            ("read", got("read_bytes"), t.read as f64, 4096.0),
            ("write", got("write_bytes"), t.write as f64, 4096.0),
            ("sent", got("net_sent_bytes"), t.sent as f64, 4096.0),
            ("recv", got("net_recv_bytes"), t.recv as f64, 4096.0),
            (
                "block read",
                got("block_read_bytes"),
                t.block_read as f64,
                4096.0,
            ),
        ];
        for (what, got, want, floor) in checks {
            if !within(got, want, floor) {
                bad.push(format!("action {i}: {what} {got:.1}, truth {want:.1}"));
            }
        }
    }
    assert!(bad.is_empty(), "outside the bound: {bad:#?}");
}

/// The decoy is reported apart, the CPU burned between actions is the idle cost, and the
/// overlapping action is marked and its shared time counted once.
fn check_totals(report: &Value, truths: &[Truth], idle_truth_ns: u64) {
    let overall = &report["overall"];
    let others = &overall["other_trees"];
    eprintln!("  other trees: {others}");
    assert_eq!(others["trees"], 1, "the decoy tree, apart: {others}");
    assert!(
        others["cost"]["cpu_seconds"].as_f64().unwrap_or(0.0) > 1.0,
        "the decoy was busy: {others}"
    );
    let idle = overall["idle_cost"]["cpu_seconds"]
        .as_f64()
        .expect("idle cpu")
        * 1e3;
    let idle_truth = idle_truth_ns as f64 / 1e6;
    eprintln!("  idle cpu: truth >= {idle_truth:.2} ms, got {idle:.2} ms");
    // The gateway also idles in read(2) and is seeded before the first action: a few ms more.
    assert!(
        idle >= idle_truth - 5.0 && idle <= idle_truth * 1.05 + 15.0,
        "idle cost {idle:.2} ms, burned outside actions {idle_truth:.2} ms"
    );
    let all_cpu = overall["action_cost"]["cpu_seconds"].as_f64().expect("cpu") * 1e3;
    let sum: f64 = truths.iter().map(|t| t.cpu_ns as f64 / 1e6).sum();
    eprintln!("  actions together: truth {sum:.2} ms, got {all_cpu:.2} ms");
    assert!(
        within(all_cpu, sum, 5.0),
        "the overlapping action's time counted once: {all_cpu:.2} ms vs {sum:.2} ms"
    );
    let around = report["action_timeline"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["name"] == "around")
        .expect("the overlapping action");
    assert_eq!(around["resource_cost"]["overlapping_actions"], 2);
}

/// The gateway role: per `action CPU_MS WRITE_KIB READ_KIB UDP_KIB DIRECT_KIB FILE` line, runs a child doing
/// that work and replies with the child's and its own usage; per `idle MS` line, burns that
/// much CPU itself and replies with what it used.
pub fn gateway() -> ExitCode {
    let exe = std::env::current_exe().expect("current_exe");
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.expect("command");
        let words: Vec<&str> = line.split_whitespace().collect();
        let (cpu0, io0) = (process_cpu_ns(), self_io());
        let reply = match words.as_slice() {
            ["idle", ms] => {
                burn_cpu(Duration::from_millis(ms.parse().expect("ms")));
                format!("{}\n", process_cpu_ns() - cpu0)
            }
            ["action", args @ ..] => {
                let mut child = Command::new(&exe)
                    .env(ROLE, "action")
                    .args(args)
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn action");
                let mut report = String::new();
                child
                    .stdout
                    .take()
                    .expect("child stdout")
                    .read_to_string(&mut report)
                    .expect("child report");
                // Reaped with wait4 for its rusage; `Child` is not waited on again.
                let reaped = wait4(child.id());
                std::mem::forget(child);
                assert_eq!(reaped.status, 0);
                let cpu = process_cpu_ns() - cpu0;
                let io = self_io();
                format!(
                    "{} {} {} {} {}\n",
                    reaped.cpu_ns,
                    report.trim(),
                    cpu,
                    io.0 - io0.0,
                    io.1 - io0.1
                )
            }
            other => panic!("unknown command {other:?}"),
        };
        out.write_all(reply.as_bytes()).expect("reply");
        out.flush().expect("flush");
    }
    ExitCode::SUCCESS
}

/// The action role: burns `CPU_MS` of CPU, writes `WRITE_KIB` KiB to /dev/null, reads
/// `READ_KIB` KiB from /dev/zero, sends `UDP_KIB` KiB to itself over loopback UDP and receives
/// them, reads `DIRECT_KIB` KiB of `FILE` with O_DIRECT; prints its own rchar, wchar
/// (including this report's bytes), bytes sent and received, and bytes read with O_DIRECT.
pub fn action(args: &[String]) -> ExitCode {
    let n = |i: usize| -> u64 { args[i].parse().expect("number") };
    burn_cpu(Duration::from_millis(n(0)));
    let block = [0x5a_u8; 4096];
    let mut null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    for _ in 0..n(1) / 4 {
        null.write_all(&block).expect("write");
    }
    let mut zero = std::fs::File::open("/dev/zero").expect("/dev/zero");
    let mut back = [0u8; 4096];
    for _ in 0..n(2) / 4 {
        zero.read_exact(&mut back).expect("read");
    }
    let socket = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let me = socket.local_addr().expect("addr");
    let (mut sent, mut recv) = (0u64, 0u64);
    let mut datagram = [0u8; 1024];
    for _ in 0..n(3) {
        sent += socket.send_to(&block[..1024], me).expect("send") as u64;
        recv += socket.recv(&mut datagram).expect("recv") as u64;
    }
    let direct = read_direct(Path::new(&args[5]), n(4) << 10);
    let (rchar, wchar) = self_io();
    // The report's own write counts in wchar: its length is added before it is written (a
    // second pass in case adding it made the report one digit longer).
    let body = |w: u64| format!("{rchar} {w} {sent} {recv} {direct}\n");
    let len = body(wchar + body(wchar).len() as u64).len() as u64;
    let report = body(wchar + len);
    std::io::stdout()
        .write_all(report.as_bytes())
        .expect("report");
    ExitCode::SUCCESS
}

/// Reads `bytes` of `path` with O_DIRECT, in [`DIRECT_CHUNK`] reads from offset 0, wrapping
/// around at its end; returns the bytes read. Every read bypasses the page cache: the block
/// layer serves exactly these bytes.
fn read_direct(path: &Path, bytes: u64) -> u64 {
    if bytes == 0 {
        return 0;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .expect("open with O_DIRECT");
    let layout = std::alloc::Layout::from_size_align(DIRECT_CHUNK, 4096).expect("layout");
    // SAFETY: the layout has a non-zero size; the buffer is freed below with the same layout.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!ptr.is_null(), "alloc");
    // SAFETY: `ptr` points to DIRECT_CHUNK initialised bytes owned here until the dealloc.
    let buf = unsafe { std::slice::from_raw_parts_mut(ptr, DIRECT_CHUNK) };
    let mut done = 0u64;
    let mut offset = 0u64;
    while done < bytes {
        let want = (bytes - done).min(DIRECT_CHUNK as u64) as usize;
        let n = file
            .read_at(&mut buf[..want], offset)
            .expect("O_DIRECT read");
        assert_eq!(n, want, "short O_DIRECT read");
        done += n as u64;
        offset = (offset + n as u64) % DIRECT_FILE_BYTES as u64;
    }
    // SAFETY: allocated above with this layout; `buf` is not used after this.
    unsafe { std::alloc::dealloc(ptr, layout) };
    done
}

/// This process's CPU time (all threads), ns.
fn process_cpu_ns() -> u64 {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID).as_nanos() as u64
}

/// This process's rchar and wchar.
fn self_io() -> (u64, u64) {
    proc_io(std::process::id())
}
