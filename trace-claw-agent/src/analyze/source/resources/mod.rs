//! Resource samples (`resources-*.jsonl`), streamed chunk by chunk ([`read`]) into fixed-size
//! aggregates ([`aggregate`], [`buckets`]) whatever the number of samples.

pub mod aggregate;
pub mod buckets;
pub mod read;
pub mod series;
