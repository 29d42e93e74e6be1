//! The demo backend: deterministic and fast. It "rebuilds" a package by
//! hashing its name, and reproduces some packages and not others, on purpose.

use vouch_attest::{Digest, FailReason, Outcome};

/// What happens when node `node` rebuilds the artifact `name` with published
/// sha256 `published`.
///
/// - names starting with `unrepro-` never reproduce: every node gets its own
///   different result (BAD);
/// - names starting with `flaky-` fail to build (timeout) everywhere but on
///   node 1;
/// - everything else reproduces (GOOD).
pub fn rebuild(node: usize, name: &str, published: &Digest) -> Outcome {
    if name.starts_with("unrepro-") {
        let rebuilt = Digest::of(format!("{name} rebuilt on node {node}").as_bytes());
        Outcome::Bad {
            rebuilt_sha256: rebuilt,
        }
    } else if name.starts_with("flaky-") && node != 1 {
        Outcome::Fail {
            reason: FailReason::Timeout,
        }
    } else {
        let _ = published;
        Outcome::Good
    }
}

/// The backend's version, recorded in every verdict.
pub const VERSION: &str = concat!("demo-", env!("CARGO_PKG_VERSION"));
