//! HTML helpers shared by the page and its SVG timelines: escaping, one stable colour per
//! model or tool name, and `put!`.

/// `write!` into a `String`, whose `fmt::Write` impl never returns an error.
macro_rules! put {
    ($dst:expr, $($arg:tt)*) => {{
        // String's fmt::Write never fails: nothing to handle.
        let _ = write!($dst, $($arg)*);
    }};
}
pub(crate) use put;

const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac",
    "#ff9da7", "#e15759",
];

/// `s` with the five markup characters escaped, for text and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A stable colour per name.
pub fn colour(name: &str) -> &'static str {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    PALETTE[(h % PALETTE.len() as u64) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(colour("gpt-4"), colour("gpt-4"));
    }
}
