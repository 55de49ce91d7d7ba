//! Lines in the YAML text, so that every config error names the line of its key: serde_norway
//! knows the line of a parse error only, and places a duplicate key at its mapping's start.

/// The 1-based line to report for `error`, raised while parsing `text` (0 when unknown), and
/// its message without the location serde_norway appends.
pub(super) fn locate_error(text: &str, error: &serde_norway::Error) -> (usize, String) {
    let message = strip_location(&error.to_string());
    let mut line = error.location().map_or(0, |l| l.line());
    // serde reports a duplicate field at the start of its mapping: point at the repeat.
    if let Some(key) = message
        .split_once("duplicate field `")
        .and_then(|(_, rest)| rest.split('`').next())
    {
        line = line_of_repeat(text, line, key).unwrap_or(line);
    }
    (line, message)
}

/// serde_norway appends " at line L column C"; the line is reported separately.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// 1-based line of the second `key:` in the block mapping that starts at 1-based line
/// `start`, if there is one.
fn line_of_repeat(text: &str, start: usize, key: &str) -> Option<usize> {
    let mut indent = None;
    let mut seen = false;
    for (i, line) in text.lines().enumerate().skip(start.saturating_sub(1)) {
        let Some((here, name)) = indent_and_key(line) else {
            continue;
        };
        let level = *indent.get_or_insert(here);
        if here < level {
            return None; // the mapping ended
        }
        if here == level && name == key {
            if seen {
                return Some(i + 1);
            }
            seen = true;
        }
    }
    None
}

/// 1-based line of a dotted key (`collector.interval_seconds`) in block-style YAML, 0 if absent.
pub(super) fn line_of_key(text: &str, dotted: &str) -> usize {
    let parts: Vec<&str> = dotted.split('.').collect();
    let mut depth = 0;
    let mut indents: Vec<usize> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some((indent, key)) = indent_and_key(line) else {
            continue;
        };
        while indents.last().is_some_and(|&d| indent <= d) {
            indents.pop();
        }
        if indents.len() != depth {
            continue;
        }
        if key == parts[depth] {
            if depth + 1 == parts.len() {
                return i + 1;
            }
            indents.push(indent);
            depth += 1;
        }
    }
    0
}

/// The indentation of a block-style YAML line and the key it starts with (unquoted), or `None`
/// for a blank or comment line.
fn indent_and_key(line: &str) -> Option<(usize, &str)> {
    let body = line.trim_start();
    if body.is_empty() || body.starts_with('#') {
        return None;
    }
    let key = body
        .split(':')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    Some((line.len() - body.len(), key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_key_lines() {
        let text = "mode: local\notel:\n  endpoint: x\ncollector:\n  # c\n  enabled: true\n  interval_seconds: 1\n";
        assert_eq!(line_of_key(text, "collector.interval_seconds"), 7);
        assert_eq!(line_of_key(text, "otel.endpoint"), 3);
        assert_eq!(line_of_key(text, "collector.process_name"), 0);
    }
}
