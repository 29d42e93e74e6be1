//! The demo federation's test-only keys and their keyring files.

use vouch_attest::{Digest, SecretKey};

/// Nodes in the published demo keyring (`keys/testnet/`).
pub const KEYRING_NODES: usize = 5;

/// Name of demo node `n` (from 1).
pub fn node_name(n: usize) -> String {
    format!("node-{n}")
}

/// The test-only secret key of demo node `n`.
pub fn node_key(n: usize) -> SecretKey {
    let seed = Digest::of(format!("vouch testnet {}", node_name(n)).as_bytes());
    SecretKey::from_seed(seed.as_bytes())
}

/// The keyring file of demo node `n`, as committed in `keys/testnet/`.
pub fn keyring_file(n: usize) -> String {
    format!(
        "# Demo federation node {n}. TEST ONLY: its secret key is public\n\
         # (seed = SHA-256(\"vouch testnet node-{n}\")). Never trust it.\n\
         name = \"{name}\"\n\
         operator = \"vouch testnet\"\n\
         key = \"{key}\"\n\
         multiaddrs = [\"/ip4/127.0.0.1/tcp/{p2p}\"]\n\
         http = \"http://127.0.0.1:{http}\"\n\
         valid_from = 2026-11-01\n\
         test_only = true\n",
        name = node_name(n),
        key = node_key(n).public_key(),
        p2p = 4000 + n,
        http = 8480 + n,
    )
}
