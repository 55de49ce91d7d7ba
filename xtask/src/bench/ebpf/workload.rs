//! The workload processes of `bench ebpf`, run as copies of the xtask binary under names the
//! agent matches (`bench ebpf worker ROLE`): a pipe ping-pong pair and an exec storm.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

/// Flags of the hidden `bench ebpf worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(subcommand)]
    role: Role,
}

/// The workload a worker process runs.
#[derive(Debug, Subcommand)]
enum Role {
    /// Times `rounds` 1-byte round trips through pipes to an `echo` child; prints ns per trip.
    Pingpong {
        #[arg(long)]
        rounds: u64,
    },
    /// Copies stdin to stdout one byte at a time.
    Echo,
    /// Spawns `sleep` children of 1-20 ms, `parallel` at a time, for `seconds`; writes their
    /// pids to `pids_file`.
    Storm {
        #[arg(long)]
        seconds: u64,
        #[arg(long)]
        parallel: usize,
        #[arg(long)]
        pids_file: PathBuf,
    },
}

/// Round trips for a run of about `seconds` (about 15 us per trip here).
pub fn pingpong_rounds(seconds: u64) -> u64 {
    seconds.max(1) * 50_000
}

/// The ns per round trip a finished ping-pong worker printed.
pub fn read_ns_per_trip(mut child: Child) -> anyhow::Result<f64> {
    let mut text = String::new();
    child
        .stdout
        .take()
        .context("ping-pong stdout")?
        .read_to_string(&mut text)?;
    let status = child.wait()?;
    if !status.success() {
        bail!("ping-pong failed: {status}");
    }
    text.trim()
        .parse()
        .with_context(|| format!("ping-pong printed '{}'", text.trim()))
}

/// Runs the workload `args` names.
pub fn run(args: &WorkerArgs) -> anyhow::Result<()> {
    match &args.role {
        Role::Pingpong { rounds } => {
            pin_to_current_cpu();
            let me = std::env::current_exe()?;
            let mut echo = Command::new(me)
                .args(["bench", "ebpf", "worker", "echo"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut to = echo.stdin.take().context("echo stdin")?;
            let mut from = echo.stdout.take().context("echo stdout")?;
            let mut byte = [0u8; 1];
            let start = Instant::now();
            for _ in 0..*rounds {
                to.write_all(&byte)?;
                from.read_exact(&mut byte)?;
            }
            let ns = start.elapsed().as_nanos() as f64 / *rounds as f64;
            drop(to);
            echo.wait()?;
            println!("{ns:.1}");
            Ok(())
        }
        Role::Echo => {
            let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
            let mut byte = [0u8; 1];
            while input.read(&mut byte)? == 1 {
                output.write_all(&byte)?;
                output.flush()?;
            }
            Ok(())
        }
        Role::Storm {
            seconds,
            parallel,
            pids_file,
        } => storm(Duration::from_secs(*seconds), *parallel, pids_file),
    }
}

/// Pins this process, and the echo child it starts next, to the CPU it runs on: each round trip
/// is then two context switches on one CPU instead of cross-CPU wakeups, whose cost depends on
/// idle states and on where the scheduler happens to place the pair (5-40 us per round trip
/// between runs on the development VM).
fn pin_to_current_cpu() {
    // SAFETY: sched_getcpu has no preconditions; the zeroed cpu_set_t is valid and CPU_SET is
    // given a CPU number the kernel just returned.
    let pinned = unsafe {
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if pinned != 0 {
        eprintln!(
            "bench-ebpf: cannot pin the ping-pong pair: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Keeps `parallel` short `sleep` children running until `duration` has passed.
fn storm(duration: Duration, parallel: usize, pids_file: &Path) -> anyhow::Result<()> {
    let end = Instant::now() + duration;
    let mut seed: u64 = u64::from(std::process::id()) | 1;
    let mut next_ms = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        1 + seed % 20
    };
    let mut pids = Vec::new();
    let mut running = 0usize;
    loop {
        while running < parallel && Instant::now() < end {
            let child = Command::new("/bin/sleep")
                .arg(format!("0.{:03}", next_ms()))
                .spawn()?;
            pids.push(child.id());
            running += 1;
        }
        if running == 0 {
            break;
        }
        let mut status = 0;
        // SAFETY: waits for any of our own children; `status` is a live local.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            bail!("waitpid: {}", std::io::Error::last_os_error());
        }
        running -= 1;
    }
    let text: String = pids.iter().map(|p| format!("{p}\n")).collect();
    std::fs::write(pids_file, text)?;
    Ok(())
}
