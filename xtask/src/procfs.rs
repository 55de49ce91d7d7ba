//! Readings of a running process from /proc: its resident set and its threads' on-CPU time
//! (proc_pid_status(5), and `/proc/PID/task/TID/schedstat` as described in the kernel's
//! `Documentation/scheduler/sched-stats.rst`).

use std::io;

/// VmRSS of `pid` in KiB; `None` once it is gone (a zombie has no VmRSS either).
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    vm_kib(pid).map(|(rss, _)| rss)
}

/// VmRSS and VmHWM (its peak since the last exec) of `pid` in KiB; `None` once it is gone.
/// Unlike wait4's `ru_maxrss`, VmHWM leaves out what the process held before its exec (a
/// forked copy of a large parent).
pub fn vm_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((
        status_kib(&status, "VmRSS:")?,
        status_kib(&status, "VmHWM:")?,
    ))
}

/// The line starting with `field` of a `/proc/PID/status` text, in KiB.
fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Sum of the on-CPU time (`sum_exec_runtime`) of every thread of `pid`, in nanoseconds: exact
/// where rusage and /proc/PID/stat count 10 ms clock ticks. A thread that exits between
/// listing and reading no longer counts.
pub fn on_cpu_ns(pid: u32) -> io::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        total += parse_schedstat_ns(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad {}", path.display()),
            )
        })?;
    }
    Ok(total)
}

/// The first field of a schedstat line: time spent on the CPU, in nanoseconds.
fn parse_schedstat_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_from_a_status_text_and_none_from_a_zombie() {
        let cases = [
            (
                "Name:\tsleep\nVmPeak:\t    8192 kB\nVmRSS:\t    1536 kB\n",
                Some(1536),
            ),
            ("Name:\tzombie\nState:\tZ (zombie)\n", None),
        ];
        for (status, rss) in cases {
            assert_eq!(status_kib(status, "VmRSS:"), rss, "{status:?}");
        }
    }

    #[test]
    fn reads_the_on_cpu_time_of_a_schedstat_line() {
        let ns = parse_schedstat_ns("2034567 12345 17\n");
        assert_eq!(ns, Some(2_034_567));
        assert!(parse_schedstat_ns("").is_none());
    }
}
