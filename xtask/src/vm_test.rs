//! `cargo xtask vm-test --kernel 6.1`: boots a Debian cloud kernel in qemu with an initramfs
//! holding busybox, the release agent and a self-checking workload, runs the agent there with
//! `--ebpf require`, and reports which tracepoints the kernel has, whether the programs loaded,
//! and how the agent's exit totals compare with what the workload read from its own /proc.
//!
//! Everything is fetched from packages and cached under `target/vm/`: qemu and busybox-static
//! (apt, like `setup`), the kernel `.deb` (apt-get download on a private source list per Debian
//! release, so the system's sources stay untouched). KVM is used when `/dev/kvm` opens and the
//! boot works with it; otherwise TCG (`-cpu max`), which is what nested VMs without working KVM
//! get.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;

use crate::proc_util::{build_agent, run_checked, run_quiet, target_dir, Profile};
use crate::tools;

/// Flags of `vm-test`.
#[derive(Debug, Args)]
pub struct VmTestArgs {
    /// Kernels to boot (repeatable): 5.10 (bullseye), 6.1 (bookworm), 6.12 (trixie).
    #[arg(long = "kernel", required = true)]
    pub kernels: Vec<String>,
    /// Seconds one boot may take before it counts as failed.
    #[arg(long, default_value_t = 300)]
    pub boot_timeout: u64,
}

/// A Debian release whose cloud kernel `vm-test` boots.
struct KernelRelease {
    /// The kernel series as given on the command line.
    series: &'static str,
    /// The Debian release that ships it.
    codename: &'static str,
    /// Whether the support table (README, docs/ebpf.md) promises that the programs load on it:
    /// `vm-test` fails when such a kernel does not pass, and only reports the others.
    promised: bool,
}

/// The kernels `vm-test` knows, each one Debian's `linux-image-cloud-amd64` of that release.
/// 5.10 is not promised: its verifier rejects the atomic or/and/cmpxchg the programs use
/// (BPF atomics beyond add are 5.12+).
const RELEASES: &[KernelRelease] = &[
    KernelRelease {
        series: "5.10",
        codename: "bullseye",
        promised: false,
    },
    KernelRelease {
        series: "6.1",
        codename: "bookworm",
        promised: true,
    },
    KernelRelease {
        series: "6.12",
        codename: "trixie",
        promised: true,
    },
];

/// qemu, the busybox the initramfs runs, and cpio to pack it.
const APT_PACKAGES: &[&str] = &["qemu-system-x86", "busybox-static", "cpio"];

/// The process name the agent tracks inside the VM (the workload script's file name).
const WORKLOAD: &str = "clawvm";
/// The status the workload exits with, which the agent's exit event must carry.
const WORKLOAD_EXIT: i64 = 7;
/// Bytes the workload writes with dd (and reads back).
const WORKLOAD_BYTES: u64 = 256 * 4096;

/// The workload: dd writes and reads a file, the shell spins, then it reports its own
/// on-CPU ns (schedstat), its reaped children's CPU (stat, clock ticks) and its rchar/wchar
/// (which include reaped children) just before it exits.
const WORKLOAD_SCRIPT: &str = r#"#!/bin/sh
dd if=/dev/zero of=/tmp/clawvm.dat bs=4096 count=256 2>/dev/null
dd if=/tmp/clawvm.dat of=/dev/null bs=4096 2>/dev/null
i=0
while [ $i -lt 20000 ]; do i=$((i+1)); done
read -r ns rest < /proc/$$/schedstat
read -r p c s pp pg se tt tp f mi cmi ma cma ut st cut cst rest < /proc/$$/stat
while read -r k v; do case $k in rchar:) R=$v;; wchar:) W=$v;; esac; done < /proc/$$/io
echo "VM-WORKLOAD self_ns=$ns child_ticks=$((cut+cst)) rchar=$R wchar=$W"
exit 7
"#;

/// PID 1 in the VM: mounts, lists the tracepoints the programs use, runs the agent against
/// the workload and prints everything on the console with a `VM-` prefix, then powers off.
const INIT_SCRIPT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mount -t tracefs tracefs /sys/kernel/tracing
mount -t bpf bpf /sys/fs/bpf
echo "VM-KERNEL $(uname -r)"
T=/sys/kernel/tracing/events
for ev in sched/sched_process_exec sched/sched_process_fork sched/sched_process_exit \
    sched/sched_process_free sched/sched_stat_runtime block/block_bio_queue \
    sock/sock_send_length sock/sock_recv_length; do
  if [ -e $T/$ev/format ]; then
    echo "VM-TP $ev $(grep -o 'field:[^;]*' $T/$ev/format | grep -v common_ | sed 's/field://' | tr ' ' '_' | tr '\n' ' ')"
  else
    echo "VM-TP $ev missing"
  fi
done
trace-claw-agent collect -p clawvm --ebpf require -i 1 -o /tmp/out > /tmp/agent.log 2>&1 &
A=$!
while kill -0 $A 2>/dev/null && ! grep -q 'collecting every' /tmp/agent.log; do sleep 1; done
if kill -0 $A 2>/dev/null; then
  /bin/clawvm
  echo "VM-WORKLOAD-EXIT $?"
  sleep 2
  kill -INT $A
fi
wait $A
echo "VM-AGENT-EXIT $?"
sed 's/^/VM-AGENT-LOG /' /tmp/agent.log
cat /tmp/out/process-events-*.jsonl 2>/dev/null | grep '"kind":"exit"' | grep clawvm | sed 's/^/VM-EXIT-EVENT /'
echo VM-DONE
poweroff -f
"#;

/// Runs `vm-test`.
pub fn run(args: &VmTestArgs) -> anyhow::Result<()> {
    let releases = args
        .kernels
        .iter()
        .map(|k| {
            RELEASES.iter().find(|r| r.series == k).with_context(|| {
                let known: Vec<&str> = RELEASES.iter().map(|r| r.series).collect();
                format!("--kernel {k}: not one of {}", known.join(", "))
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    tools::apt_install("vm-test", APT_PACKAGES)?;
    let agent = build_agent(Profile::Release)?;
    let vm_dir = target_dir().join("vm");
    let initramfs = build_initramfs(&agent, &vm_dir)?;
    let mut failed = Vec::new();
    for release in releases {
        let kernel = fetch_kernel(release, &vm_dir)?;
        let started = Instant::now();
        let (console, accel) = boot(&kernel, &initramfs, args.boot_timeout)?;
        let report = Report::parse(&console);
        println!(
            "vm-test {} ({accel}, {:.0} s):\n{}",
            release.series,
            started.elapsed().as_secs_f64(),
            report.render()
        );
        if let Err(why) = report.verdict() {
            if !release.promised {
                println!(
                    "vm-test {}: not in the support table, so not a failure: {why}",
                    release.series
                );
                continue;
            }
            let log = vm_dir.join(format!("console-{}.log", release.series));
            std::fs::write(&log, &console).with_context(|| format!("cannot write {log:?}"))?;
            failed.push(format!(
                "{}: {why} (console in {})",
                release.series,
                log.display()
            ));
        }
    }
    if !failed.is_empty() {
        bail!("vm-test failed:\n  {}", failed.join("\n  "));
    }
    Ok(())
}

/// Downloads the release's cloud kernel `.deb` (once) and returns its extracted vmlinuz.
fn fetch_kernel(release: &KernelRelease, vm_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = vm_dir.join(release.codename);
    let vmlinuz = dir.join("vmlinuz");
    if vmlinuz.is_file() {
        eprintln!("vm-test: kernel {}: cached", release.series);
        return Ok(vmlinuz);
    }
    eprintln!(
        "vm-test: kernel {}: fetching from Debian {}",
        release.series, release.codename
    );
    let mirror = tools::debian_mirror();
    let keyring = tools::DEBIAN_KEYRING;
    let codename = release.codename;
    let sources = format!(
        "deb [signed-by={keyring}] {mirror} {codename} main\n\
         deb [signed-by={keyring}] {mirror}-security {codename}-security main\n"
    );
    let opts = tools::private_apt_options(&dir.join("apt"), &sources)?;
    run_quiet(Command::new("apt-get").args(&opts).arg("update"))?;
    let show = run_quiet(Command::new("apt-cache").args(&opts).args([
        "show",
        "--no-all-versions",
        "linux-image-cloud-amd64",
    ]))?;
    let show = String::from_utf8_lossy(&show);
    let image = show
        .lines()
        .filter_map(|l| l.strip_prefix("Depends:"))
        .flat_map(|deps| deps.split([',', ' ']))
        .find(|d| d.starts_with("linux-image-") && d.ends_with("-cloud-amd64"))
        .with_context(|| format!("linux-image-cloud-amd64 in {codename} names no kernel image"))?
        .to_owned();
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs).with_context(|| format!("cannot create {debs:?}"))?;
    run_quiet(
        Command::new("apt-get")
            .args(&opts)
            .args(["download", &image])
            .current_dir(&debs),
    )?;
    let deb = tools::file_named(&debs, |n| n.ends_with(".deb"))?
        .with_context(|| format!("apt-get download {image} left no .deb in {debs:?}"))?;
    let unpacked = dir.join("unpacked");
    run_quiet(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    let boot = unpacked.join("boot");
    let image_file = tools::file_named(&boot, |n| n.starts_with("vmlinuz-"))?
        .with_context(|| format!("{deb:?} holds no boot/vmlinuz-*"))?;
    std::fs::copy(&image_file, &vmlinuz)
        .with_context(|| format!("cannot copy {image_file:?} to {vmlinuz:?}"))?;
    std::fs::remove_dir_all(&unpacked).with_context(|| format!("cannot remove {unpacked:?}"))?;
    Ok(vmlinuz)
}

/// Builds `vm_dir/initramfs.cpio`: busybox, the agent and the libraries `ldd` names for it,
/// the workload and `/init`. Rebuilt every run (the agent may have changed).
fn build_initramfs(agent: &Path, vm_dir: &Path) -> anyhow::Result<PathBuf> {
    let root = vm_dir.join("initramfs");
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("cannot remove {root:?}"))?;
    }
    for sub in ["bin", "proc", "sys", "tmp", "dev"] {
        std::fs::create_dir_all(root.join(sub))
            .with_context(|| format!("cannot create {:?}", root.join(sub)))?;
    }
    copy_into(&root, Path::new("/bin/busybox"), "bin/busybox")?;
    copy_into(&root, agent, "bin/trace-claw-agent")?;
    let ldd = run_quiet(Command::new("ldd").arg(agent))?;
    for lib in String::from_utf8_lossy(&ldd)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        copy_into(&root, Path::new(lib), lib.trim_start_matches('/'))?;
    }
    write_executable(&root.join("init"), INIT_SCRIPT)?;
    write_executable(&root.join("bin").join(WORKLOAD), WORKLOAD_SCRIPT)?;
    let cpio = vm_dir.join("initramfs.cpio");
    let pack = format!("find . | cpio --quiet -o -H newc > '{}'", cpio.display());
    run_checked(Command::new("sh").args(["-c", &pack]).current_dir(&root))?;
    Ok(cpio)
}

/// Copies `from` to `root/rel`, creating its folder.
fn copy_into(root: &Path, from: &Path, rel: &str) -> anyhow::Result<()> {
    let to = root.join(rel);
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {parent:?}"))?;
    }
    std::fs::copy(from, &to).with_context(|| format!("cannot copy {from:?} to {to:?}"))?;
    Ok(())
}

fn write_executable(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).with_context(|| format!("cannot write {path:?}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {path:?} executable"))
}

/// Boots `kernel` with `initramfs`, with KVM when it works and TCG otherwise, and returns the
/// console and the accelerator used.
fn boot(kernel: &Path, initramfs: &Path, timeout_s: u64) -> anyhow::Result<(String, &'static str)> {
    let kvm_opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if kvm_opens {
        let console = qemu(kernel, initramfs, "kvm", timeout_s)?;
        if console.contains("VM-DONE") {
            return Ok((console, "kvm"));
        }
        eprintln!("vm-test: the boot with KVM did not finish; retrying with TCG");
    }
    Ok((qemu(kernel, initramfs, "tcg", timeout_s)?, "tcg"))
}

fn qemu(kernel: &Path, initramfs: &Path, accel: &str, timeout_s: u64) -> anyhow::Result<String> {
    let cpu = if accel == "kvm" { "host" } else { "max" };
    let mut cmd = Command::new("timeout");
    cmd.arg(timeout_s.to_string())
        .arg("qemu-system-x86_64")
        .args(["-accel", accel, "-cpu", cpu, "-m", "1024", "-smp", "2"])
        .args(["-nographic", "-no-reboot", "-kernel"])
        .arg(kernel)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", "console=ttyS0 panic=-1 quiet"]);
    eprintln!("vm-test: booting {} ({accel})", kernel.display());
    let out = cmd.output().context(
        "cannot start qemu-system-x86_64 (cargo xtask vm-test installs qemu-system-x86)",
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).replace('\r', ""))
}

/// What the VM's console says about one kernel.
#[derive(Debug, Default)]
struct Report {
    kernel: Option<String>,
    /// `(event, fields or "missing")` for each tracepoint the programs use.
    tracepoints: Vec<(String, String)>,
    agent_exit: Option<i64>,
    agent_log: Vec<String>,
    workload: Option<WorkloadFigures>,
    exit_event: Option<serde_json::Value>,
}

/// What the workload read from its own /proc just before it exited.
#[derive(Debug, Default)]
struct WorkloadFigures {
    self_ns: u64,
    child_ticks: u64,
    rchar: u64,
    wchar: u64,
}

impl Report {
    fn parse(console: &str) -> Self {
        let mut report = Self::default();
        // Terminal escapes or kernel messages may precede a marker on its line.
        for line in console
            .lines()
            .filter_map(|l| l.find("VM-").map(|i| &l[i..]))
        {
            if let Some(v) = line.strip_prefix("VM-KERNEL ") {
                report.kernel = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("VM-TP ") {
                let (event, fields) = v.split_once(' ').unwrap_or((v, ""));
                report
                    .tracepoints
                    .push((event.to_owned(), fields.trim().to_owned()));
            } else if let Some(v) = line.strip_prefix("VM-AGENT-EXIT ") {
                report.agent_exit = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("VM-AGENT-LOG ") {
                report.agent_log.push(v.to_owned());
            } else if let Some(v) = line.strip_prefix("VM-WORKLOAD ") {
                report.workload = Some(WorkloadFigures::parse(v));
            } else if let Some(v) = line.strip_prefix("VM-EXIT-EVENT ") {
                report.exit_event = serde_json::from_str(v).ok();
            }
        }
        report
    }

    fn total(&self, key: &str) -> Option<u64> {
        self.exit_event.as_ref()?.get("totals")?.get(key)?.as_u64()
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let kernel = self.kernel.as_deref().unwrap_or("(no console output)");
        let _ = writeln!(out, "  kernel {kernel}");
        for (event, fields) in &self.tracepoints {
            let _ = writeln!(out, "  tracepoint {event}: {fields}");
        }
        let exit = self.agent_exit.map_or("none".to_owned(), |c| c.to_string());
        let _ = writeln!(out, "  agent --ebpf require exit status: {exit}");
        for line in self.agent_log.iter().filter(|l| !l.contains("INFO")) {
            let _ = writeln!(out, "  agent: {line}");
        }
        let code = self.exit_event.as_ref().and_then(|e| e.get("exit_code"));
        let _ = writeln!(out, "  exit event of {WORKLOAD}: exit_code {code:?}");
        if let (Some(w), Some(cpu), Some(read), Some(write)) = (
            self.workload.as_ref(),
            self.total("cpu_ns"),
            self.total("read_bytes"),
            self.total("write_bytes"),
        ) {
            let proc_cpu = w.proc_cpu_ns();
            let _ = writeln!(
                out,
                "  cpu: agent {cpu} ns, /proc {proc_cpu} ns (own schedstat {} + children {} ticks)",
                w.self_ns, w.child_ticks
            );
            let _ = writeln!(out, "  read: agent {read} B, /proc rchar {} B", w.rchar);
            let _ = writeln!(out, "  write: agent {write} B, /proc wchar {} B", w.wchar);
        }
        out
    }

    /// Ok when the programs loaded under `--ebpf require` and the exit event's totals match the
    /// workload's own figures within the tolerances the figures' resolution allows.
    fn verdict(&self) -> Result<(), String> {
        if self.agent_exit != Some(0) {
            return Err(format!("--ebpf require exited {:?}", self.agent_exit));
        }
        let event = self
            .exit_event
            .as_ref()
            .ok_or("no exit event for the workload")?;
        let code = event.get("exit_code").and_then(serde_json::Value::as_i64);
        if code != Some(WORKLOAD_EXIT) {
            return Err(format!(
                "exit event carries exit_code {code:?}, not {WORKLOAD_EXIT}"
            ));
        }
        let w = self
            .workload
            .as_ref()
            .ok_or("the workload printed no figures")?;
        let cpu = self.total("cpu_ns").ok_or("exit event without cpu_ns")?;
        // Children's CPU comes in 10 ms clock ticks: allow one tick per child (two dd).
        let slack_ns = 2 * TICK_NS + TICK_NS;
        if cpu.abs_diff(w.proc_cpu_ns()) > slack_ns {
            return Err(format!("cpu {cpu} ns vs /proc {} ns", w.proc_cpu_ns()));
        }
        // The workload's last reads and its report line come after its own figures.
        let read = self
            .total("read_bytes")
            .ok_or("exit event without read_bytes")?;
        let write = self
            .total("write_bytes")
            .ok_or("exit event without write_bytes")?;
        if read < WORKLOAD_BYTES || read.abs_diff(w.rchar) > 4096 {
            return Err(format!("read {read} B vs rchar {} B", w.rchar));
        }
        if write < WORKLOAD_BYTES || write.abs_diff(w.wchar) > 4096 {
            return Err(format!("write {write} B vs wchar {} B", w.wchar));
        }
        Ok(())
    }
}

/// One clock tick (USER_HZ 100) in ns.
const TICK_NS: u64 = 10_000_000;

impl WorkloadFigures {
    fn parse(line: &str) -> Self {
        let mut figures = Self::default();
        for pair in line.split_whitespace() {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let value = value.parse().unwrap_or(0);
            match key {
                "self_ns" => figures.self_ns = value,
                "child_ticks" => figures.child_ticks = value,
                "rchar" => figures.rchar = value,
                "wchar" => figures.wchar = value,
                _ => {}
            }
        }
        figures
    }

    fn proc_cpu_ns(&self) -> u64 {
        self.self_ns + self.child_ticks * TICK_NS
    }
}
