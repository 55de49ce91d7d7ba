//! Integration tests: the built binaries, driven as a user would.

mod agent_socket;
mod analyze;
mod analyze_files;
mod analyze_golden;
mod cli;
mod collect;
mod container_ids;
mod deploy;
mod openclaw_feed;
mod openclaw_replay;
mod openclaw_sqlite;
mod openclaw_sqlite_live;
mod otlp_export;
mod otlp_grpc;
mod otlp_tls;
mod peers;
mod polling_cost;
mod prometheus;
mod readme;
mod receive;
mod reliability;
mod top;
mod util;
