//! System-wide CPU, load, memory, swap and per-interface network samples, read through sysinfo.

use std::collections::HashMap;
use std::time::Instant;

use sysinfo::{MemoryRefreshKind, System};
use trace_claw_common::names::{self, labels, MetricDef};

use super::SampleBuffer;

/// Which system metric families to sample (`collector.cpu|memory|network`).
#[derive(Debug, Clone, Copy)]
pub struct SystemFamilies {
    /// CPU percent per core and total, load averages.
    pub cpu: bool,
    /// Memory and swap.
    pub memory: bool,
    /// Network interfaces.
    pub network: bool,
}

/// Samples the host through sysinfo.
pub struct SystemCollector {
    families: SystemFamilies,
    system: System,
    interfaces: Interfaces,
    /// Bytes (received, sent) per interface at the last read, for the rates.
    last_interface_totals: HashMap<String, (u64, u64)>,
    last_network_read: Instant,
    core_labels: Vec<String>,
}

impl SystemCollector {
    /// Prepares the readers; the first CPU percentages are relative to this moment.
    pub fn new(families: SystemFamilies) -> Result<Self, sysinfo::Error> {
        let mut system = System::new()?;
        if families.cpu {
            system.refresh_cpu_usage();
        }
        system.refresh_memory_specifics(MemoryRefreshKind::everything());
        let mut interfaces = Interfaces::new()?;
        let last_interface_totals = if families.network {
            interfaces.totals().into_iter().collect()
        } else {
            HashMap::new()
        };
        let core_labels = (0..system.cpus().len()).map(|i| i.to_string()).collect();
        Ok(Self {
            families,
            system,
            interfaces,
            last_interface_totals,
            last_network_read: Instant::now(),
            core_labels,
        })
    }

    /// Installed memory in bytes (for process memory percent).
    pub fn total_memory_bytes(&self) -> u64 {
        self.system.total_memory()
    }

    /// Pushes this tick's samples.
    pub fn collect(&mut self, buf: &mut SampleBuffer) {
        let src = (labels::SOURCE, labels::SOURCE_SYSINFO);
        if self.families.cpu {
            self.system.refresh_cpu_usage();
            buf.push(
                &names::SYSTEM_CPU_USAGE,
                f64::from(self.system.global_cpu_usage()),
                &[(labels::CPU, labels::CPU_TOTAL), src],
            );
            for (cpu, label) in self.system.cpus().iter().zip(&self.core_labels) {
                buf.push(
                    &names::SYSTEM_CPU_USAGE,
                    f64::from(cpu.usage()),
                    &[(labels::CPU, label.as_str()), src],
                );
            }
            // Load averages do not exist on every platform (Windows): leave them out there.
            if let Ok(load) = System::load_average() {
                for (def, value) in [
                    (&names::SYSTEM_LOAD_1M, load.one),
                    (&names::SYSTEM_LOAD_5M, load.five),
                    (&names::SYSTEM_LOAD_15M, load.fifteen),
                ] {
                    buf.push(def, value, &[src]);
                }
            }
        }
        if self.families.memory {
            self.system
                .refresh_memory_specifics(MemoryRefreshKind::everything());
            let total = self.system.total_memory();
            let available = self.system.available_memory();
            let used = total.saturating_sub(available);
            let swap_total = self.system.total_swap();
            let values: [(&MetricDef, f64); 5] = [
                (&names::SYSTEM_MEMORY_USAGE, percent(used, total)),
                (&names::SYSTEM_MEMORY_USED, used as f64),
                (&names::SYSTEM_MEMORY_AVAILABLE, available as f64),
                (&names::SYSTEM_MEMORY_TOTAL, total as f64),
                (
                    &names::SYSTEM_SWAP_USAGE,
                    percent(self.system.used_swap(), swap_total),
                ),
            ];
            for (def, value) in values {
                buf.push(def, value, &[src]);
            }
        }
        if self.families.network {
            let totals = self.interfaces.totals();
            let now = Instant::now();
            let secs = now
                .duration_since(self.last_network_read)
                .as_secs_f64()
                .max(1e-3);
            self.last_network_read = now;
            let mut last = std::mem::take(&mut self.last_interface_totals);
            for (name, (recv, sent)) in totals {
                // An interface that appeared since the last read has no rate yet: zero.
                let (last_recv, last_sent) = last.remove(&name).unwrap_or((recv, sent));
                let l = [(labels::INTERFACE, name.as_str()), src];
                let values: [(&MetricDef, f64); 4] = [
                    (&names::SYSTEM_NET_SENT_TOTAL, sent as f64),
                    (&names::SYSTEM_NET_RECV_TOTAL, recv as f64),
                    (
                        &names::SYSTEM_NET_SENT_RATE,
                        sent.saturating_sub(last_sent) as f64 / secs,
                    ),
                    (
                        &names::SYSTEM_NET_RECV_RATE,
                        recv.saturating_sub(last_recv) as f64 / secs,
                    ),
                ];
                for (def, value) in values {
                    buf.push(def, value, &l);
                }
                self.last_interface_totals.insert(name, (recv, sent));
            }
        }
    }
}

/// Bytes received and sent per network interface since boot.
///
/// On Linux one read of `/proc/net/dev` (through procfs): sysinfo reads nine sysfs files per
/// interface and lists their addresses on every refresh, the largest part of a tick's CPU
/// when the agent was profiled. Elsewhere sysinfo.
#[cfg(target_os = "linux")]
struct Interfaces;

#[cfg(target_os = "linux")]
impl Interfaces {
    fn new() -> Result<Self, sysinfo::Error> {
        Ok(Self)
    }

    /// (name, (received, sent)) per interface, sorted by name; empty if unreadable.
    fn totals(&mut self) -> Vec<(String, (u64, u64))> {
        let mut totals: Vec<_> = procfs::net::dev_status()
            .map(|devices| {
                devices
                    .into_values()
                    .map(|d| (d.name, (d.recv_bytes, d.sent_bytes)))
                    .collect()
            })
            .unwrap_or_default();
        totals.sort_unstable();
        totals
    }
}

#[cfg(not(target_os = "linux"))]
struct Interfaces(sysinfo::Networks);

#[cfg(not(target_os = "linux"))]
impl Interfaces {
    fn new() -> Result<Self, sysinfo::Error> {
        Ok(Self(sysinfo::Networks::new_with_refreshed_list()?))
    }

    /// (name, (received, sent)) per interface, sorted by name.
    fn totals(&mut self) -> Vec<(String, (u64, u64))> {
        self.0.refresh(true);
        let mut totals: Vec<_> = self
            .0
            .iter()
            .map(|(name, data)| {
                (
                    name.to_string_lossy().into_owned(),
                    (data.total_received(), data.total_transmitted()),
                )
            })
            .collect();
        totals.sort_unstable();
        totals
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64 * 100.0
    }
}
