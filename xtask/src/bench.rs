//! `cargo xtask bench`: the benchmarks, one module each under `bench/`, sharing the
//! measurement helpers of `bench/measure.rs`.

mod analyze;
mod ebpf;
mod measure;
mod openclaw_store;
mod overhead;
mod receiver;

use clap::{Args, Subcommand};

/// Flags of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Agent CPU and RSS at 1 Hz over a 50-process tree, beside a psutil baseline.
    Overhead(overhead::OverheadArgs),
    /// OTLP receiver ingest rate, spans/s per core, 512-span protobuf batches.
    Receiver(receiver::ReceiverArgs),
    /// Analyzer speed, peak RSS and core scaling on generated trace dirs, beside a Python baseline.
    Analyze(analyze::BenchAnalyzeArgs),
    /// eBPF backend (root): program cost, pipe ping-pong, exec storm, overhead vs polling.
    Ebpf(ebpf::BenchEbpfArgs),
}

/// Runs the chosen benchmark.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    match &args.which {
        Bench::Overhead(a) => overhead::run(a),
        Bench::Receiver(a) => receiver::run(a),
        Bench::Analyze(a) => analyze::run(a),
        Bench::Ebpf(a) => ebpf::run(a),
    }
}
