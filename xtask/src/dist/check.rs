//! `dist --check`: the built `.deb` installed, its agent run under exactly the privileges its
//! unit grants, and the package purged again (see the `dist` module doc).

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{ensure, Context};

use super::{copy, PACKAGE, UNIT_PATH, VERSION};
use crate::proc_util::{describe, is_root, output_of, run_checked, succeeds};

/// Purges the package when dropped, so a failed check leaves nothing installed.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let purged = succeeds(Command::new("dpkg").args(["--purge", PACKAGE]));
        eprintln!(
            "dist: dpkg --purge {PACKAGE}: {}",
            if purged { "removed" } else { "FAILED" }
        );
    }
}

/// Installs the .deb and checks the installed agent; see the module doc.
pub fn check_package(deb: &Path) -> anyhow::Result<()> {
    ensure!(is_root(), "dist --check installs a package and needs root");
    let status = output_of(Command::new("dpkg-query").args(["-W", "-f=${Status}", PACKAGE]));
    ensure!(
        !status.is_some_and(|s| s.contains("installed") && !s.contains("not-installed")),
        "{PACKAGE} is already installed here and the check would replace it; \
         remove it first (dpkg --purge {PACKAGE})"
    );
    run_checked(Command::new("dpkg").arg("-i").arg(deb))?;
    let installed = Installed;
    for (path, what) in [
        ("/usr/bin/trace-claw-agent", "the agent"),
        ("/usr/bin/trace-claw", "the trace-claw link"),
        ("/etc/trace-claw/trace_claw.yaml", "the config"),
        ("/lib/systemd/system/trace-claw.service", "the unit"),
    ] {
        ensure!(
            Path::new(path).exists(),
            "the package did not install {what} at {path}"
        );
    }
    for bin in ["/usr/bin/trace-claw-agent", "/usr/bin/trace-claw"] {
        let version = output_of(Command::new(bin).arg("version"))
            .with_context(|| format!("`{bin} version` failed"))?;
        ensure!(
            version.contains(VERSION) && version.contains("ebpf: built in"),
            "`{bin} version` says '{}'",
            version.trim()
        );
        eprintln!("dist: {bin} version: {}", version.replace('\n', "; "));
    }
    let unit = std::fs::read_to_string(Path::new("/").join(UNIT_PATH))
        .context("cannot read the installed unit")?;
    if succeeds(Command::new("systemd-analyze").arg("--version")) {
        run_checked(
            Command::new("systemd-analyze")
                .arg("verify")
                .arg(Path::new("/").join(UNIT_PATH)),
        )?;
    } else {
        eprintln!("dist: systemd-analyze is not installed; the unit's syntax was not verified");
    }
    collect_with_unit_privileges(&unit_capabilities(&unit)?)?;
    drop(installed);
    ensure!(
        !Path::new("/usr/bin/trace-claw-agent").exists(),
        "dpkg --purge left /usr/bin/trace-claw-agent behind"
    );
    eprintln!("dist: package check passed");
    Ok(())
}

/// The capabilities of the unit's `AmbientCapabilities=` line, as setpriv names them
/// (`+bpf,+perfmon,...`).
fn unit_capabilities(unit: &str) -> anyhow::Result<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("AmbientCapabilities="))
        .context("the unit has no AmbientCapabilities= line")?;
    let caps: Vec<String> = line
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    ensure!(!caps.is_empty(), "the unit's AmbientCapabilities= is empty");
    Ok(caps.join(","))
}

/// Runs the installed agent as `nobody` with only `caps`, against a process started here, and
/// requires eBPF samples of that process.
fn collect_with_unit_privileges(caps: &str) -> anyhow::Result<()> {
    let scratch = tempfile::Builder::new()
        .prefix("trace-claw-dist-")
        .tempdir()
        .context("cannot create a scratch directory")?;
    let out = scratch.path().join("trace");
    std::fs::create_dir_all(&out).context("cannot create the output directory")?;
    run_checked(Command::new("chown").arg("65534:65534").arg(&out))?;
    // A target with a name nothing else on the host has: a copy of sleep.
    let target_name = "tcdistprobe";
    let target_bin = scratch.path().join(target_name);
    copy(Path::new("/bin/sleep"), &target_bin)?;
    let mut target = Command::new(&target_bin)
        .arg("30")
        .spawn()
        .context("cannot start the target process")?;
    let target_pid = target.id();
    let mut agent = Command::new("setpriv");
    agent
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(format!("--inh-caps=-all,{caps}"))
        .arg(format!("--ambient-caps=-all,{caps}"))
        .arg(format!("--bounding-set=-all,{caps}"))
        .args([
            "/usr/bin/trace-claw-agent",
            "--config",
            "/etc/trace-claw/trace_claw.yaml",
        ])
        .args(["collect", "--process", target_name, "--ebpf", "require"])
        .args(["--count", "3", "--interval", "1", "--output-dir"])
        .arg(&out)
        .stdin(Stdio::null());
    eprintln!("+ {}", describe(&agent));
    let status = agent.status().context("cannot start setpriv");
    let _ = target.kill();
    let _ = target.wait();
    let status = status?;
    ensure!(
        status.success(),
        "the installed agent with only the unit's capabilities ({caps}) failed ({status})"
    );
    let mut ebpf_samples = 0usize;
    for entry in std::fs::read_dir(&out).context("cannot list the output directory")? {
        let path = entry?.path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("resources-"))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        ebpf_samples += text
            .lines()
            .filter(|l| {
                l.contains(&format!("\"pid\":\"{target_pid}\""))
                    && l.contains("\"source\":\"ebpf\"")
            })
            .count();
    }
    ensure!(
        ebpf_samples > 0,
        "no eBPF sample of the target (pid {target_pid}) in {}",
        out.display()
    );
    eprintln!("dist: as uid 65534 with {caps}: {ebpf_samples} eBPF samples of pid {target_pid}");
    Ok(())
}
