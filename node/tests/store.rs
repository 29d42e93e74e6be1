//! The sled store: chains, gaps, forks, indexes, durability, format checks.

mod common;

use common::*;
use vouch_attest::*;
use vouch_node::store::{Applied, Store};

#[test]
fn a_chain_is_appended_and_indexed() {
    let store = Store::temporary().unwrap();
    let a = chain(&key("A"), 10);
    let res = store.apply(&a, 100).unwrap();
    assert!(res.iter().all(|r| *r == Applied::Accepted));
    assert_eq!(
        store.apply(&a[3..5], 100).unwrap(),
        vec![Applied::Duplicate; 2]
    );
    let head = store.head(&key("A").public_key()).unwrap().unwrap();
    assert_eq!((head.seq, head.id, head.count), (9, a[9].id(), 10));
    assert_eq!(
        store.by_artifact(&artifact(4), 10).unwrap(),
        vec![a[4].envelope().to_vec()]
    );
    let named = store.by_name("archlinux", "pkg-3", None, 100).unwrap();
    assert_eq!(
        named,
        vec![a[3].envelope().to_vec()],
        "seq 3 is the only pkg-3"
    );
    assert_eq!(
        store
            .by_name("archlinux", "pkg-0", Some("1.0-1"), 100)
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .by_name("archlinux", "pkg-3", Some("2.0-1"), 100)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .by_name("archlinux", "pkg-", None, 100)
            .unwrap()
            .is_empty(),
        "names are not prefixes of each other"
    );
    let range = store.log_range(&key("A").public_key(), 4, 3).unwrap();
    assert_eq!(
        range,
        a[4..7]
            .iter()
            .map(|v| v.envelope().to_vec())
            .collect::<Vec<_>>()
    );
    assert_eq!(store.counts().unwrap().verdicts, 10);
    assert_eq!(store.check_consistency().unwrap(), 10);
}

#[test]
fn a_gap_is_held_then_completed() {
    let store = Store::temporary().unwrap();
    let a = chain(&key("A"), 6);
    assert_eq!(
        store.apply(&a[..2], 100).unwrap(),
        vec![Applied::Accepted; 2]
    );
    let res = store.apply(&a[4..6], 100).unwrap();
    assert_eq!(res, vec![Applied::Pending { missing_from: 2 }; 2]);
    assert_eq!(store.counts().unwrap().pending, 2);
    assert!(
        store.by_artifact(&artifact(4), 10).unwrap().is_empty(),
        "pending entries are not served"
    );
    // Re-sending a held entry is still pending, not a fork.
    assert_eq!(
        store.apply(&a[4..5], 100).unwrap(),
        vec![Applied::Pending { missing_from: 2 }]
    );
    let res = store.apply(&a[2..4], 100).unwrap();
    assert_eq!(res, vec![Applied::Accepted; 2]);
    let head = store.head(&key("A").public_key()).unwrap().unwrap();
    assert_eq!(head.seq, 5, "the held entries followed");
    assert_eq!(store.counts().unwrap().pending, 0);
    assert_eq!(store.check_consistency().unwrap(), 6);
}

#[test]
fn pending_is_capped_per_signer() {
    let store = Store::temporary().unwrap();
    let a = chain(&key("A"), 8);
    let res = store.apply(&a[2..8], 3).unwrap();
    assert_eq!(res[..3], vec![Applied::Pending { missing_from: 0 }; 3]);
    assert!(matches!(
        res[3],
        Applied::Rejected {
            code: "quota.pending",
            ..
        }
    ));
}

#[test]
fn conflicts_become_fork_proofs() {
    let store = Store::temporary().unwrap();
    let k = key("A");
    let a = chain(&k, 3);
    store.apply(&a, 100).unwrap();
    let other = sign(&verdict(&k, 1, a[0].id(), artifact(99), Outcome::Good), &k).unwrap();
    let res = store.apply(std::slice::from_ref(&other), 100).unwrap();
    let Applied::Fork {
        proof, existing, ..
    } = res[0].clone()
    else {
        panic!("{res:?}")
    };
    assert_eq!(existing, a[1].id());
    let proofs = store.forks_for(&k.public_key()).unwrap();
    assert_eq!(proofs.len(), 1);
    let checked = ForkProof::open(&proofs[0]).unwrap();
    assert_eq!((checked.id, checked.signer), (proof, k.public_key()));
    // The log is unchanged.
    assert_eq!(store.head(&k.public_key()).unwrap().unwrap().seq, 2);
    assert_eq!(store.check_consistency().unwrap(), 3);

    // A conflict with a held entry is a fork too.
    let x = sign(
        &verdict(&k, 6, Digest::of(b"x"), artifact(6), Outcome::Good),
        &k,
    )
    .unwrap();
    let y = sign(
        &verdict(&k, 6, Digest::of(b"y"), artifact(6), Outcome::Good),
        &k,
    )
    .unwrap();
    assert!(matches!(
        store.apply(&[x], 100).unwrap()[0],
        Applied::Pending { .. }
    ));
    assert!(matches!(
        store.apply(&[y], 100).unwrap()[0],
        Applied::Fork { .. }
    ));
    assert_eq!(store.forks().unwrap().len(), 2);
}

#[test]
fn a_wrong_prev_is_refused() {
    let store = Store::temporary().unwrap();
    let k = key("A");
    let a = chain(&k, 2);
    store.apply(&a[..1], 100).unwrap();
    let stray = sign(
        &verdict(&k, 1, Digest::of(b"elsewhere"), artifact(1), Outcome::Good),
        &k,
    )
    .unwrap();
    let res = store.apply(&[stray], 100).unwrap();
    assert!(
        matches!(
            res[0],
            Applied::Rejected {
                code: "chain.prev_mismatch",
                ..
            }
        ),
        "{res:?}"
    );
    assert_eq!(store.check_consistency().unwrap(), 1);
}

#[test]
fn reopening_keeps_everything_and_foreign_formats_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let a = chain(&key("A"), 5);
    {
        let store = Store::open(&path).unwrap();
        store.apply(&a, 100).unwrap();
        store.put_blob(b"a build log").unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.check_consistency().unwrap(), 5);
    let blob = store.blob(&Digest::of(b"a build log")).unwrap().unwrap();
    assert_eq!(zstd::stream::decode_all(&blob[..]).unwrap(), b"a build log");
    drop(store);

    // A store of another format version is refused, never misread.
    {
        let db = sled::open(&path).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("format", "vouch-store-0")
            .unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(&path).err().unwrap().to_string();
    assert!(
        err.contains("vouch-store-0") && err.contains("refusing"),
        "{err}"
    );

    let other = dir.path().join("other");
    {
        let db = sled::open(&other).unwrap();
        db.open_tree("something").unwrap().insert("k", "v").unwrap();
        db.flush().unwrap();
    }
    assert!(Store::open(&other).is_err());
}
