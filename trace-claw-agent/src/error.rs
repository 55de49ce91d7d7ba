//! Errors as log lines: every subsystem keeps its own `thiserror` enum, and this module turns
//! any of them, with its sources, into the one line a log or an HTTP reply shows.

/// An error and its sources as one line: `error: cause: cause`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read config 'c.yaml'")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn joins_the_error_and_each_source_with_a_colon() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(error_chain(&e), "cannot read config 'c.yaml': disk on fire");
    }
}
