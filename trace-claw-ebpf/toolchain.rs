//! The pinned eBPF toolchain: the one place that names it.
//!
//! Not part of the kernel crate's module tree. The agent's `build.rs` and `xtask` (setup, fuzz,
//! dist, fresh-check) include this file with `#[path]`, so the build, the installer and the check
//! can never disagree. To move the pin, change the constants here, run `cargo xtask setup` and
//! `cargo xtask fresh-check`, and record the result in docs/ebpf.md.
//!
//! Why a dated nightly: the kernel programs are compiled by rustc to LLVM bitcode and linked by
//! bpf-linker with the system's LLVM. The bitcode reader must understand what rustc's LLVM wrote,
//! so a floating `nightly` breaks the build whenever rustc moves to a newer LLVM (`Invalid
//! record`). nightly-2026-04-15 (rustc 1.97.0, LLVM 22.1.2) is proven with bpf-linker 0.13.0 on
//! Debian's llvm-22 (22.1.8); nightly-2026-08-01 (LLVM 22.1.8) and the floating nightly of
//! 2026-10-29 (LLVM 23.1.4) were both seen to fail.

/// The dated nightly that builds the kernel programs (`-Z build-std=core`) and the fuzz targets.
pub const RUST_TOOLCHAIN: &str = "nightly-2026-04-15";

/// rustup components the pinned nightly needs: `rust-src`, for `build-std`.
pub const RUST_COMPONENTS: &[&str] = &["rust-src"];

/// The bpf-linker release that links the kernel programs.
pub const BPF_LINKER_VERSION: &str = "0.13.0";

/// The LLVM major bpf-linker is built for (`--features llvm-N`, Debian's `llvm-N-dev`); it must
/// equal the LLVM major of [`RUST_TOOLCHAIN`].
pub const LLVM_MAJOR: u32 = 22;

/// The LLVM major in `rustc -vV` output (`LLVM version: 22.1.2`).
pub fn rustc_llvm_major(rustc_vv: &str) -> Option<u32> {
    rustc_vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version:"))
        .and_then(|v| v.trim().split('.').next())
        .and_then(|major| major.parse().ok())
}

/// The LLVM major of the bpf-linker binary at `path`, from the `libLLVM` it links.
///
/// `bpf-linker --version` prints only its own version, so this reads what the dynamic loader
/// resolves (`ldd`): `libLLVM.so.22.1` or `libLLVM-22.so`. `None` for a statically linked build.
pub fn bpf_linker_llvm_major(path: &std::path::Path) -> Option<u32> {
    let out = std::process::Command::new("ldd").arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().find_map(|word| {
        let name = word.rsplit('/').next()?;
        let rest = name
            .strip_prefix("libLLVM.so.")
            .or_else(|| name.strip_prefix("libLLVM-"))?;
        rest.split(['.', '-']).next()?.parse().ok()
    })
}

/// Why the pinned rustc and the installed bpf-linker cannot link together, naming both versions
/// and the fix; `None` when their LLVM majors agree (or bpf-linker's cannot be read).
pub fn llvm_mismatch(rustc_vv: &str, bpf_linker: &std::path::Path) -> Option<String> {
    let Some(rustc) = rustc_llvm_major(rustc_vv) else {
        return Some(format!(
            "cannot read the LLVM version of {RUST_TOOLCHAIN} from `rustc -vV`; \
             reinstall it: rustup toolchain install {RUST_TOOLCHAIN} --profile minimal -c rust-src"
        ));
    };
    match bpf_linker_llvm_major(bpf_linker) {
        Some(linker) if linker != rustc => Some(format!(
            "{RUST_TOOLCHAIN} writes LLVM {rustc} bitcode, but {} links LLVM {linker}; {}",
            bpf_linker.display(),
            if rustc == LLVM_MAJOR {
                format!(
                    "rebuild it for LLVM {rustc}: `cargo xtask setup` (or cargo install \
                     bpf-linker --version {BPF_LINKER_VERSION} --locked --force \
                     --no-default-features --features llvm-{rustc}, with \
                     /usr/lib/llvm-{rustc}/bin first in PATH)"
                )
            } else {
                format!(
                    "the pin says LLVM {LLVM_MAJOR}: make RUST_TOOLCHAIN a nightly on LLVM \
                     {LLVM_MAJOR} in trace-claw-ebpf/toolchain.rs"
                )
            }
        )),
        _ if rustc != LLVM_MAJOR => Some(format!(
            "{RUST_TOOLCHAIN} is built on LLVM {rustc}, but the pin says LLVM {LLVM_MAJOR}; \
             fix the constants in trace-claw-ebpf/toolchain.rs"
        )),
        _ => None,
    }
}
