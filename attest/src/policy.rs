//! The client's trust policy: N of M configured signers, and what a trusted
//! `BAD` or a fork proof does. Evaluation is pure: verdicts, fork proofs and
//! `now` go in, a [`Decision`] comes out.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::dates::{line_col, unix_seconds};
use crate::digest::Digest;
use crate::envelope::VerifiedVerdict;
use crate::error::PolicyError;
use crate::fork::CheckedFork;
use crate::keys::PublicKey;
use crate::verdict::{FailReason, Outcome};

/// Default tolerance for verdicts dated in the future, in seconds.
pub const DEFAULT_MAX_CLOCK_SKEW: u64 = 300;

/// What counts toward the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CountBy {
    /// Each configured signer (key) is one vote; M is the number of signers.
    #[default]
    Signers,
    /// Each operator is one vote however many keys it runs; M is the number
    /// of distinct operators.
    Operators,
}

/// A signer the policy trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustedSigner {
    /// A name for people.
    pub name: String,
    /// Who runs it.
    pub operator: String,
    /// Its public key.
    pub key: PublicKey,
    /// Verdicts issued before this (unix seconds) do not count.
    pub valid_from: Option<u64>,
    /// Verdicts issued after this (unix seconds) do not count.
    pub valid_until: Option<u64>,
}

/// A validated trust policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    threshold: usize,
    veto_on_bad: bool,
    count: CountBy,
    reject_on_fork: bool,
    max_clock_skew: u64,
    signers: Vec<TrustedSigner>,
}

/// The policy's answer for one artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// At least N trusted GOOD verdicts for exactly this sha256, and no veto.
    Verified,
    /// A trusted BAD under `veto_on_bad`, or a fork proof under
    /// `reject_on_fork`.
    Rejected,
    /// Not enough verdicts yet.
    Unknown,
}

impl Status {
    /// `VERIFIED`, `REJECTED` or `UNKNOWN`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Verified => "VERIFIED",
            Status::Rejected => "REJECTED",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// What one configured signer contributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SignerState {
    /// Its latest verdict for the artifact is GOOD.
    Good {
        /// The verdict.
        verdict: Digest,
        /// Its seq.
        seq: u64,
    },
    /// Its latest verdict for the artifact is BAD.
    Bad {
        /// The verdict.
        verdict: Digest,
        /// Its seq.
        seq: u64,
        /// What it rebuilt.
        rebuilt_sha256: Digest,
    },
    /// Its latest verdict for the artifact is FAIL.
    Fail {
        /// The verdict.
        verdict: Digest,
        /// Its seq.
        seq: u64,
        /// Why it failed.
        reason: FailReason,
    },
    /// No verdict for the artifact.
    NoVerdict,
    /// A fork proof exists against it: none of its verdicts count.
    Forked {
        /// The fork proof's id.
        proof: Digest,
    },
    /// It has verdicts for the artifact, but none that count.
    Excluded {
        /// Why.
        why: Exclusion,
    },
}

/// Why a configured signer's verdicts were set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// Issued outside the signer's `valid_from`/`valid_until`.
    OutsideValidity,
    /// Dated further in the future than `max_clock_skew` allows.
    FutureDated,
}

/// One line of the report: a configured signer and what it said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignerReport {
    /// The signer's name.
    pub name: String,
    /// Its operator.
    pub operator: String,
    /// Its key.
    pub key: PublicKey,
    /// What counted.
    #[serde(flatten)]
    pub state: SignerState,
}

/// The outcome of evaluating a policy for one artifact, with everything
/// behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The answer.
    pub status: Status,
    /// The artifact asked about.
    pub artifact: Digest,
    /// N.
    pub threshold: usize,
    /// M: configured signers (or operators), never "those that answered".
    pub configured: usize,
    /// What was counted: `signers` or `operators`.
    pub count_by: CountBy,
    /// GOOD votes counted.
    pub good: usize,
    /// One entry per configured signer, in policy order.
    pub signers: Vec<SignerReport>,
    /// Verdicts for this artifact by signers the policy does not name.
    pub untrusted_verdicts: usize,
    /// Why the status is what it is, for people.
    pub reasons: Vec<String>,
    /// Forks of configured signers that the verdicts themselves prove (two
    /// conflicting verdicts, §6) and that were not among the proofs given:
    /// worth passing on. Sorted by proof id.
    #[serde(skip)]
    pub found_forks: Vec<CheckedFork>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    threshold: usize,
    #[serde(default = "yes")]
    veto_on_bad: bool,
    #[serde(default)]
    count: CountBy,
    #[serde(default)]
    reject_on_fork: bool,
    #[serde(default = "default_skew")]
    max_clock_skew: u64,
    #[serde(default)]
    signer: Vec<toml::Spanned<SignerFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerFile {
    name: String,
    operator: String,
    key: String,
    valid_from: Option<toml::value::Datetime>,
    valid_until: Option<toml::value::Datetime>,
}

fn yes() -> bool {
    true
}

fn default_skew() -> u64 {
    DEFAULT_MAX_CLOCK_SKEW
}

impl Policy {
    /// Parses and validates a policy file (see `spec/verdict.md`).
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
            PolicyError::Syntax {
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        let mut signers = Vec::with_capacity(file.signer.len());
        let mut lines = Vec::with_capacity(file.signer.len());
        for entry in &file.signer {
            let line = line_col(text, entry.span().start).0;
            let s = entry.get_ref();
            let bad = |message: String| PolicyError::Signer {
                name: s.name.clone(),
                line,
                message,
            };
            let key: PublicKey = s.key.parse().map_err(|e| bad(format!("key: {e}")))?;
            let valid_from = s
                .valid_from
                .as_ref()
                .map(unix_seconds)
                .transpose()
                .map_err(|e| bad(format!("valid_from: {e}")))?;
            let valid_until = s
                .valid_until
                .as_ref()
                .map(unix_seconds)
                .transpose()
                .map_err(|e| bad(format!("valid_until: {e}")))?;
            signers.push(TrustedSigner {
                name: s.name.clone(),
                operator: s.operator.clone(),
                key,
                valid_from,
                valid_until,
            });
            lines.push(line);
        }
        Policy::build(
            file.threshold,
            file.veto_on_bad,
            file.count,
            file.reject_on_fork,
            file.max_clock_skew,
            signers,
            &lines,
        )
    }

    /// A policy from its parts, validated. `veto_on_bad` defaults to true in
    /// files; here it is explicit.
    pub fn new(
        threshold: usize,
        veto_on_bad: bool,
        signers: Vec<TrustedSigner>,
    ) -> Result<Policy, PolicyError> {
        Policy::build(
            threshold,
            veto_on_bad,
            CountBy::Signers,
            false,
            DEFAULT_MAX_CLOCK_SKEW,
            signers,
            &[],
        )
    }

    fn build(
        threshold: usize,
        veto_on_bad: bool,
        count: CountBy,
        reject_on_fork: bool,
        max_clock_skew: u64,
        signers: Vec<TrustedSigner>,
        lines: &[usize],
    ) -> Result<Policy, PolicyError> {
        if signers.is_empty() {
            return Err(PolicyError::NoSigners);
        }
        let mut keys = BTreeSet::new();
        let mut names = BTreeSet::new();
        for (i, s) in signers.iter().enumerate() {
            let line = lines.get(i).copied().unwrap_or(0);
            let dup = |what| PolicyError::Duplicate {
                name: s.name.clone(),
                line,
                what,
            };
            if !keys.insert(s.key) {
                return Err(dup("key"));
            }
            if !names.insert(s.name.as_str()) {
                return Err(dup("name"));
            }
            if let (Some(from), Some(until)) = (s.valid_from, s.valid_until)
                && from > until
            {
                return Err(PolicyError::Signer {
                    name: s.name.clone(),
                    line,
                    message: "valid_from is after valid_until".to_string(),
                });
            }
        }
        let policy = Policy {
            threshold,
            veto_on_bad,
            count,
            reject_on_fork,
            max_clock_skew,
            signers,
        };
        let m = policy.configured();
        if threshold == 0 || threshold > m {
            return Err(PolicyError::Threshold {
                threshold,
                configured: m,
                unit: match count {
                    CountBy::Signers => "signers",
                    CountBy::Operators => "operators",
                },
            });
        }
        Ok(policy)
    }

    /// N.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Whether a trusted BAD rejects.
    pub fn veto_on_bad(&self) -> bool {
        self.veto_on_bad
    }

    /// Whether a fork proof against a configured signer rejects.
    pub fn reject_on_fork(&self) -> bool {
        self.reject_on_fork
    }

    /// What counts toward the threshold.
    pub fn count_by(&self) -> CountBy {
        self.count
    }

    /// The configured signers, in file order.
    pub fn signers(&self) -> &[TrustedSigner] {
        &self.signers
    }

    /// M: configured signers, or distinct operators when counting operators.
    pub fn configured(&self) -> usize {
        match self.count {
            CountBy::Signers => self.signers.len(),
            CountBy::Operators => self
                .signers
                .iter()
                .map(|s| s.operator.as_str())
                .collect::<BTreeSet<_>>()
                .len(),
        }
    }

    /// Evaluates the policy for the artifact with sha256 `artifact`.
    ///
    /// `verdicts` may hold anything: verdicts of other signers or about other
    /// artifacts count for nothing. For each configured signer only its
    /// latest (highest `seq`) verdict about this sha256 counts, and none at
    /// all if `forks` holds a proof against it.
    pub fn evaluate(
        &self,
        artifact: &Digest,
        verdicts: &[VerifiedVerdict],
        forks: &[CheckedFork],
        now: u64,
    ) -> Decision {
        let trusted: BTreeSet<PublicKey> = self.signers.iter().map(|s| s.key).collect();
        // Forks proven by the proofs given and by the verdicts themselves
        // (two conflicting verdicts of one signer, §6); per signer the
        // lowest proof id is reported, so the answer does not depend on
        // the order of either list.
        let given: BTreeSet<Digest> = forks.iter().map(|f| f.id).collect();
        let found: Vec<CheckedFork> =
            crate::fork::find_forks(verdicts.iter().filter(|v| trusted.contains(v.signer())))
                .into_iter()
                .filter(|f| !given.contains(&f.id))
                .collect();
        let mut forked: BTreeMap<PublicKey, Digest> = BTreeMap::new();
        for f in forks.iter().chain(&found) {
            forked
                .entry(f.signer)
                .and_modify(|id| *id = (*id).min(f.id))
                .or_insert(f.id);
        }
        let about: Vec<&VerifiedVerdict> = verdicts
            .iter()
            .filter(|v| v.verdict().subject.sha256 == *artifact)
            .collect();
        let untrusted_verdicts = about
            .iter()
            .filter(|v| !trusted.contains(v.signer()))
            .count();

        let mut reports = Vec::with_capacity(self.signers.len());
        let mut reasons = Vec::new();
        for s in &self.signers {
            let state = if let Some(proof) = forked.get(&s.key) {
                reasons.push(format!(
                    "signer {} is forked (fork proof {proof}); its verdicts count for nothing",
                    s.name
                ));
                SignerState::Forked { proof: *proof }
            } else {
                self.signer_state(s, &about, now)
            };
            reports.push(SignerReport {
                name: s.name.clone(),
                operator: s.operator.clone(),
                key: s.key,
                state,
            });
        }

        let good = match self.count {
            CountBy::Signers => reports
                .iter()
                .filter(|r| matches!(r.state, SignerState::Good { .. }))
                .count(),
            CountBy::Operators => reports
                .iter()
                .filter(|r| matches!(r.state, SignerState::Good { .. }))
                .map(|r| r.operator.as_str())
                .collect::<BTreeSet<_>>()
                .len(),
        };
        let bad: Vec<&SignerReport> = reports
            .iter()
            .filter(|r| matches!(r.state, SignerState::Bad { .. }))
            .collect();
        let any_forked = reports
            .iter()
            .any(|r| matches!(r.state, SignerState::Forked { .. }));

        let status = if self.veto_on_bad && !bad.is_empty() {
            for r in &bad {
                reasons.push(format!("trusted signer {} says BAD (veto_on_bad)", r.name));
            }
            Status::Rejected
        } else if self.reject_on_fork && any_forked {
            reasons.push("a configured signer is forked (reject_on_fork)".to_string());
            Status::Rejected
        } else if good >= self.threshold {
            reasons.push(format!(
                "{good} of {} configured {} say GOOD; threshold {}",
                self.configured(),
                self.unit(),
                self.threshold
            ));
            Status::Verified
        } else {
            reasons.push(format!(
                "only {good} of {} configured {} say GOOD; threshold {}",
                self.configured(),
                self.unit(),
                self.threshold
            ));
            for r in &bad {
                reasons.push(format!(
                    "trusted signer {} says BAD (counted, no veto)",
                    r.name
                ));
            }
            Status::Unknown
        };

        Decision {
            status,
            artifact: *artifact,
            threshold: self.threshold,
            configured: self.configured(),
            count_by: self.count,
            good,
            signers: reports,
            untrusted_verdicts,
            reasons,
            found_forks: found,
        }
    }

    fn unit(&self) -> &'static str {
        match self.count {
            CountBy::Signers => "signers",
            CountBy::Operators => "operators",
        }
    }

    fn signer_state(&self, s: &TrustedSigner, about: &[&VerifiedVerdict], now: u64) -> SignerState {
        let mine: Vec<&VerifiedVerdict> = about
            .iter()
            .copied()
            .filter(|v| *v.signer() == s.key)
            .collect();
        if mine.is_empty() {
            return SignerState::NoVerdict;
        }
        let mut exclusion = None;
        let latest = mine
            .iter()
            .filter(|v| {
                let at = v.verdict().issued_at;
                if at > now.saturating_add(self.max_clock_skew) {
                    exclusion = Some(Exclusion::FutureDated);
                    return false;
                }
                if s.valid_from.is_some_and(|f| at < f) || s.valid_until.is_some_and(|u| at > u) {
                    exclusion = Some(Exclusion::OutsideValidity);
                    return false;
                }
                true
            })
            .max_by_key(|v| v.verdict().seq);
        let Some(v) = latest else {
            return SignerState::Excluded {
                why: exclusion.unwrap_or(Exclusion::OutsideValidity),
            };
        };
        let (verdict, seq) = (v.id(), v.verdict().seq);
        match v.verdict().outcome {
            Outcome::Good => SignerState::Good { verdict, seq },
            Outcome::Bad { rebuilt_sha256 } => SignerState::Bad {
                verdict,
                seq,
                rebuilt_sha256,
            },
            Outcome::Fail { reason } => SignerState::Fail {
                verdict,
                seq,
                reason,
            },
        }
    }
}
