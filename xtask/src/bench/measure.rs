//! What the benchmarks measure with: a finished child's CPU time and peak RSS, a running one's
//! steady-state RSS and CPU share and start-up time, the median of several runs, and the target
//! tree of sleeping processes the agent is pointed at.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::child::OwnedChild;
use crate::procfs;

/// Name the target processes run under (a copy of `sleep`), so nothing else matches.
pub const TARGET_NAME: &str = "tcbench-target";

/// CPU seconds and peak RSS of one finished child.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User plus system CPU seconds.
    pub cpu_seconds: f64,
    /// Peak resident set size in KiB.
    pub max_rss_kib: i64,
}

/// Waits for `child` with wait4 and returns its resource usage; fails unless it exited 0.
pub fn wait_usage(child: Child) -> anyhow::Result<Usage> {
    let pid = i32::try_from(child.id()).context("pid out of range")?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own unreaped child; status and usage point to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid {
        bail!("wait4({pid}) failed: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("benchmarked process {pid} failed (wait status {status})");
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Usage {
        cpu_seconds: secs(usage.ru_utime) + secs(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
    })
}

/// The median of `v` (the mean of the middle two for an even count); NaN when empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Starts the target tree: `n` long sleeping processes named [`TARGET_NAME`] (a copy of
/// `/bin/sleep` in `dir`), killed when the returned handles are dropped.
pub fn spawn_target_tree(dir: &Path, n: usize) -> anyhow::Result<Vec<OwnedChild>> {
    let exe = dir.join(TARGET_NAME);
    std::fs::copy("/bin/sleep", &exe).context("cannot copy /bin/sleep")?;
    (0..n)
        .map(|_| {
            Command::new(&exe)
                .arg("3600")
                .spawn()
                .map(OwnedChild::killed_on_drop)
                .context("cannot start target")
        })
        .collect()
}

/// Samples a process's VmRSS, VmHWM and on-CPU time once a second until it exits: the last RSS
/// reading (the steady state), the last VmHWM (the peak, start-up included) and the CPU share
/// from the first sample after [`STEADY_AFTER`] to the last one (steady state, without the
/// start-up's BTF parsing and program loading).
pub struct AgentWatch(std::thread::JoinHandle<AgentReadings>);

/// What [`AgentWatch`] read of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentReadings {
    /// The last VmRSS, MiB.
    pub last_mib: f64,
    /// The last VmHWM, MiB.
    pub peak_mib: f64,
    /// On-CPU share from [`STEADY_AFTER`] on, % of one core.
    pub steady_cpu: Option<f64>,
}

/// When the steady-state CPU window of [`AgentWatch`] opens.
pub const STEADY_AFTER: Duration = Duration::from_secs(5);

impl AgentWatch {
    /// Starts sampling `pid` on a thread of its own.
    pub fn start(pid: u32) -> Self {
        Self(std::thread::spawn(move || {
            let started = Instant::now();
            let mut kib = (0, 0);
            let mut first: Option<(Instant, u64)> = None;
            let mut last: Option<(Instant, u64)> = None;
            while let Some(read) = procfs::vm_kib(pid) {
                kib = read;
                if started.elapsed() >= STEADY_AFTER {
                    if let Ok(ns) = procfs::on_cpu_ns(pid) {
                        let now = (Instant::now(), ns);
                        first.get_or_insert(now);
                        last = Some(now);
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            let steady = match (first, last) {
                (Some((t0, c0)), Some((t1, c1))) if t1 > t0 => {
                    Some(c1.saturating_sub(c0) as f64 / (t1 - t0).as_nanos() as f64 * 100.0)
                }
                _ => None,
            };
            AgentReadings {
                last_mib: kib.0 as f64 / 1024.0,
                peak_mib: kib.1 as f64 / 1024.0,
                steady_cpu: steady,
            }
        }))
    }

    /// What it read, once the process has exited.
    pub fn finish(self) -> AgentReadings {
        self.0.join().unwrap_or_default()
    }
}

/// The time from a child's spawn to the first line of its stderr containing a marker (the
/// agent's start-up line); reads on a thread of its own and drains the rest of the stream, so
/// the child never blocks on a full pipe.
pub struct StartupWatch(std::thread::JoinHandle<Option<Duration>>);

impl StartupWatch {
    /// Starts reading `stderr` of a child spawned at `spawned`.
    pub fn start(stderr: ChildStderr, spawned: Instant, marker: &'static str) -> Self {
        Self(std::thread::spawn(move || {
            let mut found = None;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if found.is_none() && line.contains(marker) {
                    found = Some(spawned.elapsed());
                }
            }
            found
        }))
    }

    /// The time to the marker; `None` if the child never printed it. Returns once the child
    /// has closed its stderr (exited).
    pub fn finish(self) -> Option<Duration> {
        self.0.join().ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_an_odd_count_is_the_middle_value() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn median_of_nothing_is_nan() {
        assert!(median(Vec::new()).is_nan());
    }
}
