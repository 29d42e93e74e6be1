//! vouch-node: the rebuilder daemon's library. `vouchd` is a thin binary
//! over it.

#![forbid(unsafe_code)]

pub mod store;
