//! Counters for researchers (`GET /api/vouch/v1/stats`), kept as verdicts
//! arrive so that a request never scans the store.
//!
//! For each *tracked* signer (this node and the signers of its keyring and
//! `trusted` list; set by [`Store::track_signers`]) and each
//! `distribution/release/component`: how many artifacts its latest verdict
//! calls GOOD, BAD, FAIL. For each pair of tracked signers, over the
//! artifacts both spoke about (latest verdicts): how often their outcomes
//! agree, and when both say BAD, how often they rebuilt the same bytes.
//! Verdicts of other signers are counted in one aggregate, so that free
//! identities cannot grow these counters: their size is bounded by the
//! tracked signers and the repositories, not by who sends verdicts.
//!
//! Each new verdict of a tracked signer costs one index seek for the
//! signer's previous verdict about the artifact and one per other tracked
//! signer. The counters are saved in the store with the number of verdicts
//! they reflect; when that number or the tracked set differs at open (a
//! crash, a new keyring), they are counted again from the index.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use vouch_attest::{Digest, Envelope, Outcome, OutcomeKind, PublicKey, Verdict};

use super::packages::Appended;
use super::{Store, StoreError, keys};

/// Counts of latest outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    /// GOOD.
    pub good: u64,
    /// BAD.
    pub bad: u64,
    /// FAIL.
    pub fail: u64,
}

impl Outcomes {
    fn slot(&mut self, k: OutcomeKind) -> &mut u64 {
        match k {
            OutcomeKind::Good => &mut self.good,
            OutcomeKind::Bad => &mut self.bad,
            OutcomeKind::Fail => &mut self.fail,
        }
    }

    /// All counted.
    pub fn total(&self) -> u64 {
        self.good + self.bad + self.fail
    }
}

/// How two signers compare over the artifacts both spoke about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    /// Artifacts both spoke about.
    pub both: u64,
    /// Of those, with the same outcome.
    pub same_outcome: u64,
    /// Artifacts both called BAD.
    pub both_bad: u64,
    /// Of those, where both rebuilt the same bytes.
    pub same_rebuilt: u64,
}

impl Agreement {
    fn of(a: Said, b: Said) -> Agreement {
        let both_bad = a.kind == OutcomeKind::Bad && b.kind == OutcomeKind::Bad;
        Agreement {
            both: 1,
            same_outcome: u64::from(a.kind == b.kind),
            both_bad: u64::from(both_bad),
            same_rebuilt: u64::from(both_bad && a.rebuilt == b.rebuilt),
        }
    }

    fn add(&mut self, d: Agreement) {
        self.both += d.both;
        self.same_outcome += d.same_outcome;
        self.both_bad += d.both_bad;
        self.same_rebuilt += d.same_rebuilt;
    }

    fn sub(&mut self, d: Agreement) {
        self.both = self.both.saturating_sub(d.both);
        self.same_outcome = self.same_outcome.saturating_sub(d.same_outcome);
        self.both_bad = self.both_bad.saturating_sub(d.both_bad);
        self.same_rebuilt = self.same_rebuilt.saturating_sub(d.same_rebuilt);
    }
}

/// What a verdict said, as the counters need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Said {
    kind: OutcomeKind,
    rebuilt: Option<Digest>,
}

/// `distribution/release/component` of a verdict's subject.
pub(crate) fn group_of(v: &Verdict) -> String {
    format!(
        "{}/{}/{}",
        v.subject.distribution,
        v.subject.release.as_deref().unwrap_or("-"),
        v.subject.component.as_deref().unwrap_or("-")
    )
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatsSnapshot {
    /// The tracked signers.
    pub tracked: Vec<PublicKey>,
    /// Per tracked signer and group, latest outcomes.
    pub signers: BTreeMap<PublicKey, BTreeMap<String, Outcomes>>,
    /// Per pair of tracked signers (the lower key first).
    pub pairs: BTreeMap<(PublicKey, PublicKey), Agreement>,
    /// Every verdict of an untracked signer (not only the latest).
    pub others: Outcomes,
    /// Verdicts the counters reflect.
    pub verdicts: u64,
}

#[derive(Default)]
pub(crate) struct State {
    tracked: Vec<PublicKey>,
    signers: BTreeMap<(PublicKey, String), Outcomes>,
    pairs: BTreeMap<(PublicKey, PublicKey), Agreement>,
    others: Outcomes,
    /// Verdicts reflected.
    applied: u64,
    dirty: bool,
    saved: Option<Instant>,
}

/// The counters, in memory.
#[derive(Default)]
pub(crate) struct Stats {
    state: Mutex<State>,
}

impl Stats {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The counters as saved in `meta`.
#[derive(Serialize, Deserialize)]
struct Saved {
    applied: u64,
    tracked: Vec<PublicKey>,
    signers: Vec<(PublicKey, String, Outcomes)>,
    pairs: Vec<(PublicKey, PublicKey, Agreement)>,
    others: Outcomes,
}

/// Most signers tracked.
pub const MAX_TRACKED: usize = 64;

/// Seconds between saves of the counters (and at shutdown).
const SAVE_EVERY_SECS: u64 = 30;

fn pair(a: PublicKey, b: PublicKey) -> (PublicKey, PublicKey) {
    if a <= b { (a, b) } else { (b, a) }
}

fn damaged(detail: impl Into<String>) -> StoreError {
    StoreError::Damaged {
        tree: keys::BY_ARTIFACT,
        detail: detail.into(),
    }
}

impl Store {
    /// Sets the tracked signers: loads the saved counters when they match
    /// the store and this set, or counts them again from the index. Returns
    /// whether they were counted again.
    pub fn track_signers(&self, signers: &[PublicKey]) -> Result<bool, StoreError> {
        let mut tracked = signers.to_vec();
        tracked.sort();
        tracked.dedup();
        let verdicts = self
            .tally
            .verdicts
            .load(std::sync::atomic::Ordering::Relaxed);
        if let Some(bytes) = self.meta.get(keys::META_STATS)?
            && let Ok(saved) = serde_json::from_slice::<Saved>(&bytes)
            && saved.applied == verdicts
            && saved.tracked == tracked
        {
            let mut s = self.tally.stats().lock();
            *s = State {
                tracked,
                signers: saved
                    .signers
                    .into_iter()
                    .map(|(k, g, o)| ((k, g), o))
                    .collect(),
                pairs: saved
                    .pairs
                    .into_iter()
                    .map(|(a, b, c)| ((a, b), c))
                    .collect(),
                others: saved.others,
                applied: saved.applied,
                dirty: false,
                saved: Some(Instant::now()),
            };
            return Ok(false);
        }
        let state = self.count_stats(tracked, verdicts)?;
        *self.tally.stats().lock() = state;
        self.save_stats()?;
        Ok(true)
    }

    /// Counts everything from the `by-artifact` index: one pass, decoding
    /// only the latest verdict of each tracked signer per artifact.
    fn count_stats(&self, tracked: Vec<PublicKey>, verdicts: u64) -> Result<State, StoreError> {
        let mut state = State {
            tracked,
            applied: verdicts,
            dirty: true,
            ..State::default()
        };
        let mut artifact: Option<[u8; 32]> = None;
        let mut latest: Vec<(PublicKey, Said)> = Vec::new();
        // The last entry seen of the current (artifact, signer).
        let mut last: Option<([u8; 64], super::kv::Bytes)> = None;
        let finish_signer = |state: &mut State,
                             latest: &mut Vec<(PublicKey, Said)>,
                             last: &mut Option<([u8; 64], super::kv::Bytes)>|
         -> Result<(), StoreError> {
            if let Some((k, id)) = last.take() {
                let signer = PublicKey::from_bytes(
                    keys::id32(&k[32..])
                        .as_ref()
                        .ok_or_else(|| damaged("bad key"))?,
                )
                .map_err(|_| damaged("bad signer in key"))?;
                if state.tracked.binary_search(&signer).is_ok() {
                    let (group, said) = self.said(&id)?;
                    *state
                        .signers
                        .entry((signer, group))
                        .or_default()
                        .slot(said.kind) += 1;
                    latest.push((signer, said));
                }
            }
            Ok(())
        };
        let finish_artifact = |state: &mut State, latest: &mut Vec<(PublicKey, Said)>| {
            for i in 0..latest.len() {
                for j in i + 1..latest.len() {
                    let (a, sa) = latest[i];
                    let (b, sb) = latest[j];
                    state
                        .pairs
                        .entry(pair(a, b))
                        .or_default()
                        .add(Agreement::of(sa, sb));
                }
            }
            latest.clear();
        };
        for item in self.by_artifact.iter() {
            let (k, id) = item?;
            if k.len() != 72 {
                return Err(damaged("key of the wrong length"));
            }
            let art: [u8; 32] = keys::id32(&k[..32]).ok_or_else(|| damaged("bad key"))?;
            let pair_key: [u8; 64] = k[..64].try_into().map_err(|_| damaged("bad key"))?;
            if last.as_ref().is_some_and(|(p, _)| *p != pair_key) {
                finish_signer(&mut state, &mut latest, &mut last)?;
            }
            if artifact.is_some_and(|a| a != art) {
                finish_artifact(&mut state, &mut latest);
            }
            artifact = Some(art);
            let signer = keys::id32(&k[32..64]).ok_or_else(|| damaged("bad key"))?;
            if !state.tracked.iter().any(|t| t.as_bytes() == &signer) {
                let (_, said) = self.said(&id)?;
                *state.others.slot(said.kind) += 1;
            }
            last = Some((pair_key, id));
        }
        finish_signer(&mut state, &mut latest, &mut last)?;
        finish_artifact(&mut state, &mut latest);
        Ok(state)
    }

    /// The group and outcome of the stored verdict at pointer `p`.
    fn said(&self, p: &[u8]) -> Result<(String, Said), StoreError> {
        let bytes = self.at(p)?;
        let v = Envelope::decode(&bytes)
            .and_then(|e| e.unverified_verdict())
            .map_err(|e| damaged(e.to_string()))?;
        Ok((
            group_of(&v),
            Said {
                kind: v.outcome.result(),
                rebuilt: match v.outcome {
                    Outcome::Bad { rebuilt_sha256 } => Some(rebuilt_sha256),
                    _ => None,
                },
            },
        ))
    }

    /// `signer`'s latest verdict about `artifact` with a seq below `below`.
    fn said_before(
        &self,
        artifact: &Digest,
        signer: &PublicKey,
        below: u64,
    ) -> Result<Option<Said>, StoreError> {
        if below == 0 {
            return Ok(None);
        }
        let lo = keys::artifact_signer_seq(artifact.as_bytes(), signer.as_bytes(), 0);
        let hi = keys::artifact_signer_seq(artifact.as_bytes(), signer.as_bytes(), below - 1);
        match self.by_artifact.range(lo..=hi).next_back() {
            Some(item) => {
                let (_, id) = item?;
                Ok(Some(self.said(&id)?.1))
            }
            None => Ok(None),
        }
    }

    /// After a write committed: moves the counters for what it appended,
    /// in order. An entry's "before" is what the store held before it:
    /// entries of the same write not yet counted are left out.
    pub(crate) fn note_stats(&self, appended: &[Appended]) -> Result<(), StoreError> {
        if appended.is_empty() {
            return Ok(());
        }
        let tracked = self.tally.stats().lock().tracked.clone();
        // Seqs of this write not yet counted, per signer, in order.
        let mut waiting: HashMap<PublicKey, VecDeque<u64>> = HashMap::new();
        for a in appended {
            waiting.entry(a.signer).or_default().push_back(a.seq);
        }
        let mut changes: Vec<Change> = Vec::new();
        for a in appended {
            if let Some(q) = waiting.get_mut(&a.signer) {
                q.pop_front();
            }
            let now = Said {
                kind: a.outcome,
                rebuilt: a.rebuilt,
            };
            if tracked.binary_search(&a.signer).is_err() {
                changes.push(Change::Other(a.outcome));
                continue;
            }
            let before = self.said_before(&a.sha256, &a.signer, a.seq)?;
            changes.push(Change::Signer {
                signer: a.signer,
                group: a.group.clone(),
                before: before.map(|b| b.kind),
                now: a.outcome,
            });
            for b in tracked.iter().filter(|b| **b != a.signer) {
                let below = waiting
                    .get(b)
                    .and_then(|q| q.front().copied())
                    .unwrap_or(u64::MAX);
                let Some(theirs) = self.said_before(&a.sha256, b, below)? else {
                    continue;
                };
                changes.push(Change::Pair {
                    pair: pair(a.signer, *b),
                    before: before.map(|mine| Agreement::of(mine, theirs)),
                    now: Agreement::of(now, theirs),
                });
            }
        }
        let mut s = self.tally.stats().lock();
        for c in changes {
            match c {
                Change::Other(k) => *s.others.slot(k) += 1,
                Change::Signer {
                    signer,
                    group,
                    before,
                    now,
                } => {
                    let o = s.signers.entry((signer, group)).or_default();
                    if let Some(b) = before {
                        let slot = o.slot(b);
                        *slot = slot.saturating_sub(1);
                    }
                    *o.slot(now) += 1;
                }
                Change::Pair { pair, before, now } => {
                    let p = s.pairs.entry(pair).or_default();
                    if let Some(b) = before {
                        p.sub(b);
                    }
                    p.add(now);
                }
            }
        }
        s.applied += appended.len() as u64;
        s.dirty = true;
        Ok(())
    }

    /// Saves the counters when they changed and the last save is older
    /// than [`SAVE_EVERY_SECS`] (`force`: whenever they changed).
    pub(crate) fn maybe_save_stats(&self, force: bool) -> Result<(), StoreError> {
        let due = {
            let s = self.tally.stats().lock();
            s.dirty
                && (force
                    || s.saved
                        .is_none_or(|t| t.elapsed().as_secs() >= SAVE_EVERY_SECS))
        };
        if due {
            self.save_stats()?;
        }
        Ok(())
    }

    /// Whether `k` is a tracked signer.
    pub fn is_tracked(&self, k: &PublicKey) -> bool {
        self.tally.stats().lock().tracked.binary_search(k).is_ok()
    }

    /// Saves the counters now if they changed (at shutdown).
    pub fn persist_stats(&self) -> Result<(), StoreError> {
        self.maybe_save_stats(true)
    }

    fn save_stats(&self) -> Result<(), StoreError> {
        let bytes = {
            let mut s = self.tally.stats().lock();
            let saved = Saved {
                applied: s.applied,
                tracked: s.tracked.clone(),
                signers: s
                    .signers
                    .iter()
                    .map(|((k, g), o)| (*k, g.clone(), *o))
                    .collect(),
                pairs: s.pairs.iter().map(|((a, b), c)| (*a, *b, *c)).collect(),
                others: s.others,
            };
            s.dirty = false;
            s.saved = Some(Instant::now());
            serde_json::to_vec(&saved).map_err(|e| damaged(e.to_string()))?
        };
        self.meta.insert(keys::META_STATS, bytes)?;
        Ok(())
    }

    /// A copy of the counters.
    pub fn stats(&self) -> StatsSnapshot {
        let s = self.tally.stats().lock();
        let mut signers: BTreeMap<PublicKey, BTreeMap<String, Outcomes>> = BTreeMap::new();
        for t in &s.tracked {
            signers.entry(*t).or_default();
        }
        for ((k, g), o) in &s.signers {
            if o.total() > 0 {
                signers.entry(*k).or_default().insert(g.clone(), *o);
            }
        }
        StatsSnapshot {
            tracked: s.tracked.clone(),
            signers,
            pairs: s.pairs.clone(),
            others: s.others,
            verdicts: s.applied,
        }
    }
}

enum Change {
    Other(OutcomeKind),
    Signer {
        signer: PublicKey,
        group: String,
        before: Option<OutcomeKind>,
        now: OutcomeKind,
    },
    Pair {
        pair: (PublicKey, PublicKey),
        before: Option<Agreement>,
        now: Agreement,
    },
}
