//! The researchers' counters: kept as verdicts arrive, they equal a count
//! from scratch after any sequence of writes; latest verdicts replace
//! earlier ones; free identities land in one aggregate.

mod common;

use common::{artifact, key, verdict};
use vouch_attest::*;
use vouch_node::store::Store;
use vouch_node::store::stats::Agreement;

/// A signer's log being written: its key, next seq and head.
struct Writer {
    key: SecretKey,
    seq: u64,
    prev: Digest,
}

impl Writer {
    fn new(name: &str) -> Writer {
        Writer {
            key: key(name),
            seq: 0,
            prev: Digest::ZERO,
        }
    }

    fn sign(&mut self, sha: Digest, outcome: Outcome) -> VerifiedVerdict {
        let v = sign(
            &verdict(&self.key, self.seq, self.prev, sha, outcome),
            &self.key,
        )
        .unwrap();
        self.seq += 1;
        self.prev = v.id();
        v
    }
}

fn bad(n: u8) -> Outcome {
    Outcome::Bad {
        rebuilt_sha256: Digest::of(&[n]),
    }
}

#[test]
fn latest_verdicts_decide_and_pairs_follow() {
    let store = Store::temporary().unwrap();
    let (mut a, mut b, mut c) = (Writer::new("a"), Writer::new("b"), Writer::new("c"));
    let tracked = [a.key.public_key(), b.key.public_key(), c.key.public_key()];
    store.track_signers(&tracked).unwrap();
    let x = artifact(1);
    store
        .apply(
            &[
                a.sign(x, Outcome::Good),
                b.sign(x, bad(1)),
                c.sign(x, bad(1)),
            ],
            16,
        )
        .unwrap();
    let pair = |s: &Store, p: &Writer, q: &Writer| {
        let (k1, k2) = (p.key.public_key(), q.key.public_key());
        let key = if k1 <= k2 { (k1, k2) } else { (k2, k1) };
        s.stats().pairs.get(&key).copied().unwrap_or_default()
    };
    assert_eq!(
        pair(&store, &b, &c),
        Agreement {
            both: 1,
            same_outcome: 1,
            both_bad: 1,
            same_rebuilt: 1
        }
    );
    assert_eq!(
        pair(&store, &a, &b),
        Agreement {
            both: 1,
            same_outcome: 0,
            both_bad: 0,
            same_rebuilt: 0
        }
    );
    // a signs again: BAD, the same bytes as b and c. Its GOOD no longer
    // counts anywhere.
    store.apply(&[a.sign(x, bad(1))], 16).unwrap();
    assert_eq!(
        pair(&store, &a, &b),
        Agreement {
            both: 1,
            same_outcome: 1,
            both_bad: 1,
            same_rebuilt: 1
        }
    );
    let snap = store.stats();
    let mine = snap.signers[&a.key.public_key()]["archlinux/-/core"];
    assert_eq!((mine.good, mine.bad, mine.fail), (0, 1, 0));
    // c rebuilt different bytes after all.
    store.apply(&[c.sign(x, bad(2))], 16).unwrap();
    assert_eq!(
        pair(&store, &b, &c),
        Agreement {
            both: 1,
            same_outcome: 1,
            both_bad: 1,
            same_rebuilt: 0
        }
    );
}

#[test]
fn counters_kept_as_verdicts_arrive_equal_a_count_from_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut writers: Vec<Writer> = (0..6).map(|i| Writer::new(&format!("w{i}"))).collect();
    // Four tracked, two not.
    let tracked: Vec<PublicKey> = writers[..4].iter().map(|w| w.key.public_key()).collect();
    store.track_signers(&tracked).unwrap();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for _batch in 0..40 {
        let mut batch = Vec::new();
        for _ in 0..12 {
            let w = next(6) as usize;
            let sha = artifact(next(25));
            let outcome = match next(4) {
                0 => Outcome::Good,
                1 => Outcome::Fail {
                    reason: FailReason::Build,
                },
                2 => bad(1),
                _ => bad(next(3) as u8 + 2),
            };
            batch.push(writers[w].sign(sha, outcome));
        }
        store.apply(&batch, 16).unwrap();
    }
    let kept = store.stats();
    assert_eq!(kept.verdicts, 480);
    // The same tracked set again: the saved counters are older than the
    // store, so they are counted from the index.
    assert!(
        store.track_signers(&tracked).unwrap(),
        "should have counted again"
    );
    let counted = store.stats();
    assert_eq!(kept.signers, counted.signers);
    assert_eq!(kept.pairs, counted.pairs);
    assert_eq!(kept.others, counted.others);
    assert_eq!(kept.others.total(), counted.others.total());
    assert!(
        kept.pairs
            .values()
            .any(|p| p.same_rebuilt > 0 && p.same_rebuilt < p.both_bad)
    );
    // Saved and reopened: loaded, not counted.
    store.persist_stats().unwrap();
    store.flush().unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(
        !store.track_signers(&tracked).unwrap(),
        "should have loaded"
    );
    assert_eq!(store.stats().pairs, counted.pairs);
}

#[test]
fn a_flood_of_identities_lands_in_one_aggregate() {
    let store = Store::temporary().unwrap();
    let own = Writer::new("own");
    store.track_signers(&[own.key.public_key()]).unwrap();
    for i in 0..300 {
        let mut w = Writer::new(&format!("sybil {i}"));
        store
            .apply(&[w.sign(artifact(1), Outcome::Good)], 16)
            .unwrap();
    }
    let s = store.stats();
    assert_eq!(s.signers.len(), 1);
    assert!(s.pairs.is_empty());
    assert_eq!(s.others.good, 300);
}
