//! Which signers a node accepts, and how much of each. Identities are
//! free, so every quota on signers outside the keyring holds twice: per
//! signer, and for all of them together. A flood of fresh keys can fill the
//! shared budget, never the disk, and never the known signers' share (they
//! are exempt).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vouch_attest::{PublicKey, VerifiedVerdict};

use crate::store::{Store, StoreError};

/// `[admission]` in the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// `any`: verdicts of any signer are stored (within the quotas below);
    /// `keyring`: only signers of the keyring, the node itself and `trusted`.
    pub accept: Accept,
    /// Extra trusted signers (`ed25519:...`), beside the keyring.
    pub trusted: Vec<String>,
    /// Most verdicts stored or held pending per signer outside the keyring.
    pub unknown_signer_max_verdicts: u64,
    /// Most verdicts stored or held pending for all signers outside the
    /// keyring together.
    pub unknown_total_max_verdicts: u64,
    /// Most verdicts per minute accepted per signer outside the keyring.
    pub unknown_signer_per_minute: u32,
    /// Most verdicts per minute accepted from all signers outside the
    /// keyring together.
    pub unknown_total_per_minute: u32,
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
            unknown_total_max_verdicts: 2_000_000,
            unknown_signer_per_minute: 60_000,
            unknown_total_per_minute: 300_000,
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
    /// Signers outside the keyring together hold their storage quota.
    TotalStorage,
    /// The signer sent too much too fast.
    Rate,
    /// Signers outside the keyring together sent too much too fast.
    TotalRate,
}

impl Refusal {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotAccepted => "admission.signer_not_accepted",
            Refusal::Storage => "quota.signer_storage",
            Refusal::TotalStorage => "quota.unknown_storage",
            Refusal::Rate => "quota.signer_rate",
            Refusal::TotalRate => "quota.unknown_rate",
        }
    }
    /// For people.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NotAccepted => "this node accepts only signers of its keyring",
            Refusal::Storage => {
                "this signer is not in the node's keyring and holds its storage quota"
            }
            Refusal::TotalStorage => {
                "signers outside the node's keyring together hold their storage quota"
            }
            Refusal::Rate => "this signer is not in the node's keyring and exceeds its rate quota",
            Refusal::TotalRate => {
                "signers outside the node's keyring together exceed their rate quota"
            }
        }
    }
}

/// Per-signer buckets kept at most; a new signer beyond is refused as
/// [`Refusal::TotalRate`] until idle buckets are swept.
const MAX_BUCKETS: usize = 65_536;
/// Time between sweeps of full (idle) buckets.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

struct Rates {
    total: Bucket,
    per_signer: HashMap<PublicKey, Bucket>,
    swept: Instant,
}

/// The admission policy with its rate state.
pub struct Admission {
    config: AdmissionConfig,
    known: BTreeSet<PublicKey>,
    rates: Mutex<Rates>,
}

impl Admission {
    /// The policy over `known` signers (keyring, the node itself, trusted).
    pub fn new(config: AdmissionConfig, known: BTreeSet<PublicKey>) -> Admission {
        let total = f64::from(config.unknown_total_per_minute.max(1));
        Admission {
            config,
            known,
            rates: Mutex::new(Rates {
                total: Bucket::full(total),
                per_signer: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// Whether `signer` is a known signer (exempt from quotas).
    pub fn is_known(&self, signer: &PublicKey) -> bool {
        self.known.contains(signer)
    }

    /// The rate decision for one verdict of `signer`, taken when it
    /// arrives (storage is decided by the writer, see [`Ledger`]).
    pub fn admit(&self, signer: &PublicKey) -> Result<(), Refusal> {
        if self.known.contains(signer) {
            return Ok(());
        }
        if self.config.accept == Accept::Keyring {
            return Err(Refusal::NotAccepted);
        }
        let rate = f64::from(self.config.unknown_signer_per_minute.max(1));
        let total = f64::from(self.config.unknown_total_per_minute.max(1));
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if now.duration_since(rates.swept) >= SWEEP_EVERY {
            // A bucket that has refilled is the same as none: forget it.
            rates
                .per_signer
                .retain(|_, b| !b.is_full(rate, rate / 60.0, now));
            rates.swept = now;
        }
        if rates.per_signer.len() >= MAX_BUCKETS && !rates.per_signer.contains_key(signer) {
            return Err(Refusal::TotalRate);
        }
        let bucket = rates
            .per_signer
            .entry(*signer)
            .or_insert_with(|| Bucket::full(rate));
        if !bucket.peek(rate, rate / 60.0) {
            return Err(Refusal::Rate);
        }
        if !rates.total.take(total, total / 60.0) {
            return Err(Refusal::TotalRate);
        }
        if let Some(b) = rates.per_signer.get_mut(signer) {
            b.take(rate, rate / 60.0);
        }
        Ok(())
    }

    /// The storage held by signers outside the keyring now, read from
    /// `store`: the writer opens one per group commit.
    ///
    /// The total is what the store holds (appended and pending) less the
    /// known signers' logs; known signers' pending entries are counted
    /// with the unknown ones (an over-count only ever refuses earlier).
    pub fn ledger<'a>(&'a self, store: &'a Store) -> Result<Ledger<'a>, StoreError> {
        let counts = store.counts()?;
        let mut known = 0u64;
        for k in &self.known {
            known += store.head(k)?.map_or(0, |h| h.count);
        }
        Ok(Ledger {
            admission: self,
            store,
            unknown_total: (counts.verdicts + counts.pending).saturating_sub(known),
            per_signer: HashMap::new(),
        })
    }
}

/// The storage quotas, charged verdict by verdict inside one group commit.
pub struct Ledger<'a> {
    admission: &'a Admission,
    store: &'a Store,
    unknown_total: u64,
    per_signer: HashMap<PublicKey, u64>,
}

impl Ledger<'_> {
    /// Charges `v` to its signer and to the shared budget, or says which
    /// quota it would break. Known signers and envelopes already stored
    /// cost nothing.
    pub fn charge(&mut self, v: &VerifiedVerdict) -> Result<(), LedgerError> {
        let signer = v.signer();
        if self.admission.is_known(signer) || self.store.contains(&v.id())? {
            return Ok(());
        }
        let max = self.admission.config.unknown_signer_max_verdicts;
        let held = match self.per_signer.get(signer) {
            Some(n) => *n,
            None => {
                let n = self.store.held_by(signer, max)?;
                self.per_signer.insert(*signer, n);
                n
            }
        };
        if held >= max {
            return Err(LedgerError::Refused(Refusal::Storage));
        }
        if self.unknown_total >= self.admission.config.unknown_total_max_verdicts {
            return Err(LedgerError::Refused(Refusal::TotalStorage));
        }
        self.unknown_total += 1;
        self.per_signer.insert(*signer, held + 1);
        Ok(())
    }
}

/// What charging can end in.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A quota is full.
    #[error("{}", .0.reason())]
    Refused(Refusal),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
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

    /// Whether a token is there, taking none.
    pub fn peek(&self, capacity: f64, per_second: f64) -> bool {
        let refill = self.at.elapsed().as_secs_f64() * per_second;
        (self.tokens + refill).min(capacity) >= 1.0
    }

    /// Whether the bucket has refilled completely by `now`.
    pub fn is_full(&self, capacity: f64, per_second: f64, now: Instant) -> bool {
        self.tokens + now.duration_since(self.at).as_secs_f64() * per_second >= capacity
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

    fn key(n: u8) -> PublicKey {
        SecretKey::from_seed(&[n; 32]).public_key()
    }

    #[test]
    fn rates_apply_to_unknown_signers_per_signer_and_in_total() {
        let known = key(1);
        let a = Admission::new(
            AdmissionConfig {
                unknown_signer_per_minute: 3,
                unknown_total_per_minute: 5,
                ..AdmissionConfig::default()
            },
            [known].into(),
        );
        for _ in 0..1000 {
            assert_eq!(a.admit(&known), Ok(()));
        }
        for _ in 0..3 {
            assert_eq!(a.admit(&key(2)), Ok(()));
        }
        assert_eq!(a.admit(&key(2)), Err(Refusal::Rate));
        // Fresh keys share the total: two more, then none.
        assert_eq!(a.admit(&key(3)), Ok(()));
        assert_eq!(a.admit(&key(4)), Ok(()));
        assert_eq!(a.admit(&key(5)), Err(Refusal::TotalRate));
        assert_eq!(a.admit(&key(6)), Err(Refusal::TotalRate));
        let strict = Admission::new(
            AdmissionConfig {
                accept: Accept::Keyring,
                ..AdmissionConfig::default()
            },
            [known].into(),
        );
        assert_eq!(strict.admit(&key(2)), Err(Refusal::NotAccepted));
        assert_eq!(strict.admit(&known), Ok(()));
    }

    #[test]
    fn idle_buckets_are_forgotten() {
        let mut b = Bucket::full(10.0);
        assert!(b.take(10.0, 1000.0));
        let later = Instant::now() + Duration::from_secs(1);
        assert!(b.is_full(10.0, 1000.0, later));
        assert!(!b.is_full(10.0, 0.001, later));
    }
}
