//! Summarising: the merged actions and resource aggregates turned into the result model,
//! [`report::Report`], with per-session summaries, the timelines and the chart data.

pub mod charts;
pub mod metrics;
pub mod report;
pub mod session;
pub mod timeline;
