//! System-wide CPU, load, memory, swap and per-interface network samples, read through sysinfo.

use std::time::Instant;

use sysinfo::{MemoryRefreshKind, Networks, System};
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
    networks: Networks,
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
        let networks = if families.network {
            Networks::new_with_refreshed_list()?
        } else {
            Networks::new()?
        };
        let core_labels = (0..system.cpus().len()).map(|i| i.to_string()).collect();
        Ok(Self {
            families,
            system,
            networks,
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
            self.networks.refresh(true);
            let now = Instant::now();
            let secs = now
                .duration_since(self.last_network_read)
                .as_secs_f64()
                .max(1e-3);
            self.last_network_read = now;
            for (name, data) in self.networks.iter() {
                let name = name.to_string_lossy();
                let l = [(labels::INTERFACE, name.as_ref()), src];
                let values: [(&MetricDef, f64); 4] = [
                    (
                        &names::SYSTEM_NET_SENT_TOTAL,
                        data.total_transmitted() as f64,
                    ),
                    (&names::SYSTEM_NET_RECV_TOTAL, data.total_received() as f64),
                    (
                        &names::SYSTEM_NET_SENT_RATE,
                        data.transmitted() as f64 / secs,
                    ),
                    (&names::SYSTEM_NET_RECV_RATE, data.received() as f64 / secs),
                ];
                for (def, value) in values {
                    buf.push(def, value, &l);
                }
            }
        }
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64 * 100.0
    }
}
