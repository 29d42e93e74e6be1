//! vouch-testnet: a local federation for demos and scenario tests.
//!
//! The demo federation uses the **test-only** keys of `keys/testnet/`, whose
//! secrets are public: seed = SHA-256("vouch testnet node-N").

#![forbid(unsafe_code)]

pub mod archrepo;
pub mod backend;
pub mod client;
pub mod debrepo;
pub mod demo;
pub mod fixtures;
pub mod http;
pub mod keys;
pub mod mirror;
pub mod net;
pub mod node;
pub mod rebuild;
pub mod rogue;
pub mod serve;
pub mod sybil;
