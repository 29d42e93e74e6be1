//! vouch-node: the rebuilder daemon's library. `vouchd` is a thin binary
//! over it.

#![forbid(unsafe_code)]

pub mod admission;
pub mod api;
pub mod backend;
pub mod config;
pub mod daemon;
pub mod datadir;
pub mod evidence;
pub mod ingest;
pub mod metrics;
pub mod p2p;
pub mod remote;
pub mod scheduler;
pub mod store;
pub mod sync;
pub mod vm;
pub mod worker;
