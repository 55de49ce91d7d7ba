//! `trace-claw`: the same CLI as `trace-claw-agent`, under the original tool's name.
fn main() -> std::process::ExitCode {
    trace_claw_agent::app::main()
}
