//! Rendering: the [`Report`](super::summary::report::Report) as terminal tables, plain lines,
//! JSON or an HTML page. Renderers read the report and nothing else; cell text they share
//! comes from [`format`](mod@format).

pub mod footer;
pub mod format;
pub mod html;
pub mod json;
pub mod markup;
pub mod svg;
pub mod table;
pub mod text;
