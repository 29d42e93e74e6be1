//! Which signers a node accepts, and how much of each: a flood from one
//! unknown signer cannot fill the disk or starve the others.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use vouch_attest::PublicKey;

/// `[admission]` in the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// `any`: verdicts of any signer are stored (within the quotas below);
    /// `keyring`: only signers of the keyring, the node itself and `trusted`.
    pub accept: Accept,
    /// Extra trusted signers (`ed25519:...`), beside the keyring.
    pub trusted: Vec<String>,
    /// Most verdicts stored per signer outside the keyring.
    pub unknown_signer_max_verdicts: u64,
    /// Most verdicts per minute accepted per signer outside the keyring.
    pub unknown_signer_per_minute: u32,
}

/// Which signers are accepted at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accept {
    /// Any signer, within quotas.
    Any,
    /// Only known signers.
    Keyring,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            accept: Accept::Any,
            trusted: Vec::new(),
            unknown_signer_max_verdicts: 100_000,
            unknown_signer_per_minute: 60_000,
        }
    }
}

/// Why a verdict was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The node does not accept this signer at all.
    NotAccepted,
    /// The signer holds its storage quota.
    Storage,
    /// The signer sent too much too fast.
    Rate,
}

impl Refusal {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotAccepted => "admission.signer_not_accepted",
            Refusal::Storage => "quota.signer_storage",
            Refusal::Rate => "quota.signer_rate",
        }
    }
    /// For people.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NotAccepted => "this node accepts only signers of its keyring",
            Refusal::Storage => {
                "this signer is not in the node's keyring and holds its storage quota"
            }
            Refusal::Rate => "this signer is not in the node's keyring and exceeds its rate quota",
        }
    }
}

/// The admission policy with its per-signer rate state.
pub struct Admission {
    config: AdmissionConfig,
    known: BTreeSet<PublicKey>,
    buckets: Mutex<HashMap<PublicKey, Bucket>>,
}

impl Admission {
    /// The policy over `known` signers (keyring, the node itself, trusted).
    pub fn new(config: AdmissionConfig, known: BTreeSet<PublicKey>) -> Admission {
        Admission {
            config,
            known,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `signer` is a known signer (exempt from quotas).
    pub fn is_known(&self, signer: &PublicKey) -> bool {
        self.known.contains(signer)
    }

    /// Decides for one verdict of `signer`, which has `stored` verdicts.
    pub fn admit(&self, signer: &PublicKey, stored: u64) -> Result<(), Refusal> {
        if self.known.contains(signer) {
            return Ok(());
        }
        if self.config.accept == Accept::Keyring {
            return Err(Refusal::NotAccepted);
        }
        if stored >= self.config.unknown_signer_max_verdicts {
            return Err(Refusal::Storage);
        }
        let rate = f64::from(self.config.unknown_signer_per_minute.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Forget idle buckets rather than grow without bound.
            buckets.retain(|_, b| b.tokens < rate);
        }
        let bucket = buckets.entry(*signer).or_insert(Bucket {
            tokens: rate,
            at: Instant::now(),
        });
        if bucket.take(rate, rate / 60.0) {
            Ok(())
        } else {
            Err(Refusal::Rate)
        }
    }
}

/// A token bucket: `capacity` tokens, refilled at `per_second`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(capacity: f64) -> Bucket {
        Bucket {
            tokens: capacity,
            at: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, capacity: f64, per_second: f64) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * per_second;
        self.tokens = (self.tokens + refill).min(capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_attest::SecretKey;

    #[test]
    fn quotas_apply_to_unknown_signers_only() {
        let known = SecretKey::from_seed(&[1; 32]).public_key();
        let stranger = SecretKey::from_seed(&[2; 32]).public_key();
        let a = Admission::new(
            AdmissionConfig {
                unknown_signer_max_verdicts: 10,
                unknown_signer_per_minute: 3,
                ..AdmissionConfig::default()
            },
            [known].into(),
        );
        assert_eq!(a.admit(&known, 1_000_000), Ok(()));
        assert_eq!(a.admit(&stranger, 10), Err(Refusal::Storage));
        assert_eq!(a.admit(&stranger, 0), Ok(()));
        assert_eq!(a.admit(&stranger, 0), Ok(()));
        assert_eq!(a.admit(&stranger, 0), Ok(()));
        assert_eq!(a.admit(&stranger, 0), Err(Refusal::Rate));
        let strict = Admission::new(
            AdmissionConfig {
                accept: Accept::Keyring,
                ..AdmissionConfig::default()
            },
            [known].into(),
        );
        assert_eq!(strict.admit(&stranger, 0), Err(Refusal::NotAccepted));
        assert_eq!(strict.admit(&known, 0), Ok(()));
    }
}
