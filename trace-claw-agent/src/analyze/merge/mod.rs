//! Merging: one action per call across the sources that saw it ([`actions`], streamed in time
//! order by [`ordered`]), the sessions those actions form ([`sessions`]), and the resource
//! samples brought onto the actions' start and end times ([`lookup`]).

pub mod actions;
pub mod lookup;
pub mod ordered;
pub mod sessions;
