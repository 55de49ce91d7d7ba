//! Sessions as the merged actions define them: each session's id and the span from its first
//! action's start to its last action's end, and the resource window around that span.

use std::collections::HashMap;

use crate::analyze::source::action::Action;

/// Resource samples this close to a session's first start or last end still count for the
/// session (a short session may fall between two samples).
pub const SESSION_SLACK_NS: i64 = 5_000_000_000;

/// A session and the span of its actions (Unix ns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpan {
    /// Session id.
    pub id: String,
    /// Start of its earliest action.
    pub start: i64,
    /// End of its latest action.
    pub end: i64,
}

impl SessionSpan {
    /// `[start, end]` widened by [`SESSION_SLACK_NS`] on both sides: the samples that count
    /// for the session.
    pub fn resource_window(&self) -> (i64, i64) {
        (
            self.start.saturating_sub(SESSION_SLACK_NS),
            self.end.saturating_add(SESSION_SLACK_NS),
        )
    }
}

/// Sessions in order of their first action (ties by id).
pub fn sessions(actions: &[&Action]) -> Vec<SessionSpan> {
    let mut sessions: Vec<SessionSpan> = Vec::new();
    let mut idx: HashMap<&str, usize> = HashMap::new();
    for a in actions {
        let i = *idx.entry(a.session()).or_insert_with(|| {
            sessions.push(SessionSpan {
                id: a.session().to_owned(),
                start: i64::MAX,
                end: i64::MIN,
            });
            sessions.len() - 1
        });
        sessions[i].start = sessions[i].start.min(a.start().0);
        sessions[i].end = sessions[i].end.max(a.end().0);
    }
    sessions.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
    sessions
}
