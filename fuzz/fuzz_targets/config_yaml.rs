//! Config YAML: `Config::from_yaml` on any text, then the full `Config::load` (file read,
//! validation, key-line lookup for error messages) on what parsed.
//!
//! Invariants: no panic; an error names the file; a validated config can run (its interval is
//! a usable, non-zero timer period).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use trace_claw_agent::config::Config;

fn scratch_file() -> &'static Path {
    static FILE: OnceLock<std::path::PathBuf> = OnceLock::new();
    FILE.get_or_init(|| trace_claw_fuzz::scratch_dir("config").join("fuzz.yaml"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.yaml");
    match Config::from_yaml(path, text) {
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with("fuzz.yaml:"),
                "error does not name the file: {msg}"
            );
        }
        Ok(_) => {
            let file = scratch_file();
            if std::fs::write(file, data).is_err() {
                return;
            }
            match Config::load(Some(file), |_| None, None) {
                Ok(config) => {
                    assert!(
                        !config.interval().is_zero(),
                        "validated interval {} is a zero timer period",
                        config.collector.interval_seconds
                    );
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(!msg.is_empty());
                }
            }
        }
    }
});
