//! `trace-claw-agent`: see `trace-claw-agent --help`.
fn main() -> std::process::ExitCode {
    trace_claw_agent::app::main()
}
