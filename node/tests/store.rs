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
        store.latest_by_artifact(&artifact(4), None, 10).unwrap(),
        (vec![a[4].envelope().to_vec()], false)
    );
    assert_eq!(
        store.latest(&artifact(4), &key("A").public_key()).unwrap(),
        Some(a[4].envelope().to_vec())
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
        store
            .latest_by_artifact(&artifact(4), None, 10)
            .unwrap()
            .0
            .is_empty(),
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
    let (kept, count) = store.fork_for(&k.public_key()).unwrap().unwrap();
    assert_eq!(count, 1);
    let checked = ForkProof::open(&kept).unwrap();
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
    // One proof per signer is kept (the lowest id); the others are counted.
    let (pages, more) = store.forks_page(None, 100, 1 << 20).unwrap();
    assert_eq!((pages.len(), more), (1, false));
    assert_eq!(store.fork_for(&k.public_key()).unwrap().unwrap().1, 2);
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

    // A store of another format version is refused, never misread: in
    // this format's keyspace, and as an older sled database.
    {
        let ks = fjall::Config::new(path.join("index")).open().unwrap();
        ks.open_partition("meta", Default::default())
            .unwrap()
            .insert("format", "vouch-store-9")
            .unwrap();
        ks.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let err = Store::open(&path).err().unwrap().to_string();
    assert!(
        err.contains("vouch-store-9") && err.contains("refusing"),
        "{err}"
    );
    let old = dir.path().join("old");
    {
        let db = sled::open(&old).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("format", "vouch-store-0")
            .unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(&old).err().unwrap().to_string();
    assert!(
        err.contains("vouch-store-0") && err.contains("refusing"),
        "{err}"
    );

    // Without a format mark: neither a sled database nor a keyspace with
    // trees is taken for a store.
    let other = dir.path().join("other");
    {
        let db = sled::open(&other).unwrap();
        db.open_tree("something").unwrap().insert("k", "v").unwrap();
        db.flush().unwrap();
    }
    assert!(Store::open(&other).is_err());
    let foreign = dir.path().join("foreign");
    {
        let ks = fjall::Config::new(foreign.join("index")).open().unwrap();
        ks.open_partition("something", Default::default())
            .unwrap()
            .insert("k", "v")
            .unwrap();
        ks.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let err = Store::open(&foreign).err().unwrap().to_string();
    assert!(err.contains("no format mark"), "{err}");
}

/// Issue 8.1: a verdict naming the same prev as a stored entry (at another
/// seq) is a fork (§6), not just a broken chain: the proof is kept.
#[test]
fn a_same_prev_conflict_is_a_fork() {
    let store = Store::temporary().unwrap();
    let k = key("A");
    let a = chain(&k, 3);
    store.apply(&a, 100).unwrap();
    // seq 3 naming a[1] as prev: a[2] names a[1] too.
    let next = sign(&verdict(&k, 3, a[1].id(), artifact(50), Outcome::Good), &k).unwrap();
    let res = store.apply(&[next], 100).unwrap();
    let Applied::Fork {
        existing, stored, ..
    } = res[0].clone()
    else {
        panic!("{res:?}")
    };
    assert_eq!(existing, a[2].id());
    assert!(stored);
    // After a gap too: seq 9 naming a[0] as prev conflicts with a[1].
    let far = sign(&verdict(&k, 9, a[0].id(), artifact(51), Outcome::Good), &k).unwrap();
    assert!(matches!(
        store.apply(&[far], 100).unwrap()[0],
        Applied::Fork { .. }
    ));
    assert_eq!(store.head(&k.public_key()).unwrap().unwrap().seq, 2);
    assert_eq!(store.check_consistency().unwrap(), 3);
}

/// Issue 8.2: 1,500 verdicts about one artifact by free keys whose verdict
/// ids or keys sort low cannot hide a trusted signer's verdict: a lookup that
/// names its signers gets each one's latest verdict, and the all-signers
/// listing is cut by signer, with a flag.
#[test]
fn a_flood_of_signers_cannot_hide_a_named_signer() {
    let store = Store::temporary().unwrap();
    let sha = artifact(7);
    let trusted = key("trusted");
    let bad = sign(
        &verdict(
            &trusted,
            0,
            Digest::ZERO,
            sha,
            Outcome::Bad {
                rebuilt_sha256: artifact(8),
            },
        ),
        &trusted,
    )
    .unwrap();
    let flood: Vec<VerifiedVerdict> = (0..1500)
        .map(|i| {
            let k = key(&format!("sybil {i}"));
            sign(&verdict(&k, 0, Digest::ZERO, sha, Outcome::Good), &k).unwrap()
        })
        .collect();
    store.apply(&flood, 100).unwrap();
    store.apply(std::slice::from_ref(&bad), 100).unwrap();
    assert_eq!(
        store.latest(&sha, &trusted.public_key()).unwrap(),
        Some(bad.envelope().to_vec())
    );
    let (page, more) = store.latest_by_artifact(&sha, None, 1000).unwrap();
    assert_eq!((page.len(), more), (1000, true));
    // Many verdicts of one signer about one artifact cost one entry.
    let k = key("chatty");
    let chatty = chain_about(&k, 50, sha);
    store.apply(&chatty, 100).unwrap();
    let latest = store.latest(&sha, &k.public_key()).unwrap().unwrap();
    assert_eq!(latest, chatty[49].envelope().to_vec());
    // A signer with fewer verdicts about it than a lookup walks before it
    // seeks past them.
    let k3 = key("thrice");
    let thrice = chain_about(&k3, 3, sha);
    store.apply(&thrice, 100).unwrap();
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let (page, more) = store.latest_by_artifact(&sha, after.as_ref(), 300).unwrap();
        after = page.last().map(|e| *open(e).unwrap().signer());
        all.extend(page);
        if !more {
            break;
        }
    }
    assert_eq!(all.len(), 1503, "one per signer, paged by signer");
    for (k, latest) in [(&k, &chatty[49]), (&k3, &thrice[2])] {
        let theirs: Vec<_> = all
            .iter()
            .filter(|e| *open(e).unwrap().signer() == k.public_key())
            .collect();
        assert_eq!(theirs, [&latest.envelope().to_vec()], "only the latest");
    }
}

/// A store of format 1 (one artifact index entry per verdict id, every fork
/// proof kept, envelopes in sled) is refused at open with a message naming
/// `vouchd migrate`, and `vouchd migrate` converts it in place.
#[test]
fn a_format_1_store_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let k = key("A");
    let a = chain(&k, 3);
    let x = sign(&verdict(&k, 1, a[0].id(), artifact(90), Outcome::Good), &k).unwrap();
    let y = sign(&verdict(&k, 2, a[1].id(), artifact(91), Outcome::Good), &k).unwrap();
    let p1 = ForkProof::new(&a[1], &x).unwrap().encode();
    let p2 = ForkProof::new(&a[2], &y).unwrap().encode();
    {
        // Written the way vouch-store-1 laid it out.
        let db = sled::open(&path).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("format", "vouch-store-1")
            .unwrap();
        let (env, log, by_art, heads) = (
            db.open_tree("envelopes-1").unwrap(),
            db.open_tree("log-1").unwrap(),
            db.open_tree("by-artifact-1").unwrap(),
            db.open_tree("heads-1").unwrap(),
        );
        for v in &a {
            let id = v.id();
            env.insert(id.as_bytes(), v.envelope()).unwrap();
            let mut lk = k.public_key().as_bytes().to_vec();
            lk.extend_from_slice(&v.verdict().seq.to_be_bytes());
            log.insert(lk, id.as_bytes()).unwrap();
            let mut ak = v.verdict().subject.sha256.as_bytes().to_vec();
            ak.extend_from_slice(id.as_bytes());
            by_art.insert(ak, &[]).unwrap();
            let sub = &v.verdict().subject;
            let mut nk =
                format!("{}\0{}\0{}\0", sub.distribution, sub.name, sub.version).into_bytes();
            nk.extend_from_slice(id.as_bytes());
            db.open_tree("by-name-1").unwrap().insert(nk, &[]).unwrap();
        }
        let mut hv = 2u64.to_be_bytes().to_vec();
        hv.extend_from_slice(a[2].id().as_bytes());
        heads.insert(k.public_key().as_bytes(), hv).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("verdicts", &3u64.to_be_bytes())
            .unwrap();
        let (forks, fbs) = (
            db.open_tree("forks-1").unwrap(),
            db.open_tree("forks-by-signer-1").unwrap(),
        );
        for p in [&p1, &p2] {
            let id = Digest::of(p);
            forks.insert(id.as_bytes(), p.as_slice()).unwrap();
            let mut key = k.public_key().as_bytes().to_vec();
            key.extend_from_slice(id.as_bytes());
            fbs.insert(key, &[]).unwrap();
        }
        let blob = zstd::bulk::compress(b"an old build log", 3).unwrap();
        db.open_tree("blobs-1")
            .unwrap()
            .insert(Digest::of(b"an old build log").as_bytes(), blob)
            .unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(&path)
        .err()
        .expect("an old store opened")
        .to_string();
    assert!(
        err.contains("vouch-store-1") && err.contains("vouchd migrate"),
        "{err}"
    );
    // A copy into the keyspace that was cut short (no format mark yet): the
    // migration starts it over.
    {
        let ks = fjall::Config::new(path.join("index")).open().unwrap();
        let heads = ks.open_partition("heads-1", Default::default()).unwrap();
        heads.insert([7u8; 32], [0u8; 40]).unwrap();
        ks.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let data = path.parent().unwrap();
    let migrate = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vouchd"))
            .args(["--data-dir", data.to_str().unwrap(), "migrate"])
            .output()
            .unwrap()
    };
    let out = migrate();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("from vouch-store-1") && said.contains("3 verdicts"),
        "{said}"
    );
    for sled_file in ["conf", "db", "blobs"] {
        assert!(!path.join(sled_file).exists(), "sled's {sled_file} is left");
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.check_consistency().unwrap(), 3);
    assert_eq!(
        store.heads().unwrap().len(),
        1,
        "the cut-short copy is gone"
    );
    assert!(
        store.segments_size().unwrap() > 3 * 300,
        "envelopes are in segments"
    );
    let blob = store
        .blob(&Digest::of(b"an old build log"))
        .unwrap()
        .unwrap();
    assert_eq!(
        vouch_node::store::unpack_blob(&blob).unwrap(),
        b"an old build log"
    );
    assert_eq!(store.counts().unwrap().blobs, 1);
    assert_eq!(
        store.latest(&artifact(1), &k.public_key()).unwrap(),
        Some(a[1].envelope().to_vec())
    );
    let (kept, count) = store.fork_for(&k.public_key()).unwrap().unwrap();
    assert_eq!(count, 2);
    assert_eq!(Digest::of(&kept), Digest::of(&p1).min(Digest::of(&p2)));
    drop(store);
    // Migrating again changes nothing.
    let out = migrate();
    assert!(String::from_utf8_lossy(&out.stdout).contains("already has the current format"));
    assert_eq!(Store::open(&path).unwrap().check_consistency().unwrap(), 3);
    // A directory without a store is an error that says so.
    let none = dir.path().join("none");
    let err = Store::migrate(&none.join("store"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no store"), "{err}");
}

#[test]
fn a_store_in_use_is_refused_with_a_message_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let held = Store::open(&path).unwrap();
    let t = std::time::Instant::now();
    let err = Store::open(&path).err().expect("opened twice");
    assert!(t.elapsed() >= vouch_node::store::LOCK_WAIT);
    assert!(err.to_string().contains("is in use"), "{err}");
    drop(held);
    // Once closed, it opens (the lock may outlive the close a moment).
    Store::open(&path).unwrap();
}
