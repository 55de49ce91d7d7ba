//! Resource samples (`resources-*.jsonl`), streamed chunk by chunk ([`read`]) into fixed-size
//! aggregates ([`aggregate`], [`buckets`], [`edges`]) whatever the number of samples, each sample added to
//! the windows open at its time ([`sweep`]).

pub mod aggregate;
pub mod buckets;
pub mod edges;
pub mod read;
pub mod series;
pub mod sweep;
