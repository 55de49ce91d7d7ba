//! The async runtime of the network threads (the OTLP sender, the receiver): each runs its own
//! single-threaded tokio runtime, so collection itself stays synchronous.

use std::future::Future;

/// Runs `future` to completion on this thread, on a new current-thread runtime with I/O and
/// timers; fails only when that runtime cannot start.
pub fn block_on<F: Future>(future: F) -> std::io::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}
