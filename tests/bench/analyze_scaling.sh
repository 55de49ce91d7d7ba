#!/usr/bin/env bash
# Core scaling of `trace-claw-agent analyze` (issue 17) on a machine without a Rust toolchain.
#
# Needs, relative to the repository root: target/release/trace-claw-agent and
# target/release/xtask (release builds copied there). Generates the action-dense traces on the
# spot with the xtask's generator (nothing large is shipped), runs the analyzer pinned to each
# core count (CPUs 0..N-1, sched affinity), 3 runs each, and prints the table: size, actions,
# cores, median wall, CPU, CPU %, peak RSS, MB/s, the ratio to the Python baseline (only when
# python3 is there; one run per size) and to one core. Deletes each trace once measured.
#
# Usage: tests/bench/analyze_scaling.sh [SIZES_MB] [CORES]
#   defaults: 300,1000 and 1,2,4,8,16 (counts above the machine's cores are dropped)
#   env: RUNS (3), PYTHON_RUNS (1; 0 skips the baseline), WORK_DIR (./target/bench-analyze-scaling; needs ~1.1x the largest size free)
# About 4 minutes on 16 cores for the defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."

sizes=${1:-300,1000}
wanted=${2:-1,2,4,8,16}
runs=${RUNS:-3}
python_runs=${PYTHON_RUNS:-1}
work=${WORK_DIR:-$PWD/target/bench-analyze-scaling}
available=$(nproc)

cores=""
for n in ${wanted//,/ }; do
    if [ "$n" -le "$available" ]; then
        cores="${cores:+$cores,}$n"
    else
        echo "analyze_scaling: skipping $n cores (this machine has $available)" >&2
    fi
done
for bin in trace-claw-agent xtask; do
    [ -x "target/release/$bin" ] || { echo "analyze_scaling: no target/release/$bin" >&2; exit 2; }
done

echo "machine: $available cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "sizes: $sizes MB; cores: $cores; runs: $runs; work dir: $work"
mkdir -p "$work"
exec target/release/xtask bench analyze --prebuilt --profile dense \
    --sizes-mb "$sizes" --cores "$cores" --runs "$runs" --python-runs "$python_runs" --dir "$work" --delete-after
