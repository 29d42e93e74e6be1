//! The package table behind the rebuilderd-compatible API: stable ids,
//! keyset pages by id and by name, this node's standing per origin moved
//! only by its own verdicts, verdict numbers, and all of it after a reopen.

mod common;

use common::{job, key, verdict};
use vouch_attest::*;
use vouch_node::store::Store;
use vouch_node::store::packages::Order;

/// `n` jobs of one artifact each, named so that name order differs from id
/// order.
fn jobs(n: usize) -> Vec<vouch_node::sync::Job> {
    (0..n)
        .map(|i| {
            let name = format!("p{:05}", (i * 7919) % n);
            let content = format!("content {i}");
            job(
                &name,
                &[(&name, content.as_bytes())],
                "https://m.invalid/core/os/x86_64",
            )
        })
        .collect()
}

fn sign_chain(
    k: &SecretKey,
    outcomes: &[(Digest, Outcome)],
    from: u64,
    prev: Digest,
) -> Vec<VerifiedVerdict> {
    let mut prev = prev;
    let mut out = Vec::new();
    for (i, (sha, o)) in outcomes.iter().enumerate() {
        let v = sign(&verdict(k, from + i as u64, prev, *sha, *o), k).unwrap();
        prev = v.id();
        out.push(v);
    }
    out
}

#[test]
fn pages_by_id_and_by_name_visit_every_package_once_in_order() {
    let store = Store::temporary().unwrap();
    let all = jobs(2500);
    store
        .enqueue_sync(&["archlinux/-/core/x86_64/".into()], &all, 1000)
        .unwrap();
    for order in [Order::Id, Order::Name] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let mut page = Vec::new();
            store
                .walk_packages(order, None, after, |row| {
                    page.push(row);
                    Ok(page.len() < 1000)
                })
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            seen.extend(page);
        }
        assert_eq!(seen.len(), 2500, "{order:?}");
        let keys: Vec<(String, u32)> = seen
            .iter()
            .map(|r| match order {
                Order::Id => (String::new(), r.id),
                Order::Name => (r.name.clone(), r.id),
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(keys, sorted, "{order:?}: out of order or repeated");
    }
    // One name, through its index.
    let mut named = Vec::new();
    store
        .walk_packages(Order::Name, Some("p00042"), None, |row| {
            named.push(row);
            Ok(true)
        })
        .unwrap();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].name, "p00042");
    assert!(
        named[0]
            .url
            .ends_with("/core/os/x86_64/p00042-1.0-1-x86_64.pkg.tar.zst")
    );
    // A second sync of the same index assigns nothing new.
    store
        .enqueue_sync(&["archlinux/-/core/x86_64/".into()], &all, 2000)
        .unwrap();
    let mut count = 0;
    store
        .walk_packages(Order::Id, None, None, |_| {
            count += 1;
            Ok(true)
        })
        .unwrap();
    assert_eq!(count, 2500);
}

#[test]
fn only_this_nodes_verdicts_move_its_standing_and_it_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let own = key("own");
    let outsider = key("outsider");
    let all = jobs(10);
    let sha = |i: usize| all[i].subjects[0].sha256;
    let bad = Outcome::Bad {
        rebuilt_sha256: Digest::of(b"other"),
    };
    let fail = Outcome::Fail {
        reason: FailReason::Timeout,
    };
    let counts = |s: &Store| {
        let c = s.origin_counts()["archlinux/-/core/x86_64"];
        (
            c.published.good,
            c.published.bad,
            c.published.fail,
            c.published.unknown,
            c.all.total(),
        )
    };
    let own_head;
    {
        let store = Store::open(dir.path()).unwrap();
        store.follow_own(&own.public_key()).unwrap();
        store
            .enqueue_sync(&["archlinux/-/core/x86_64/".into()], &all, 1000)
            .unwrap();
        assert_eq!(counts(&store), (0, 0, 0, 10, 10));
        let mine = sign_chain(
            &own,
            &[
                (sha(0), Outcome::Good),
                (sha(1), Outcome::Good),
                (sha(2), bad),
                (sha(3), fail),
            ],
            0,
            Digest::ZERO,
        );
        own_head = mine.last().unwrap().id();
        store.apply(&mine, 16).unwrap();
        assert_eq!(counts(&store), (2, 1, 1, 6, 10));
        // The attack: an outsider signs GOOD for everything, and BAD for
        // what this node found GOOD. Nothing this node says changes.
        let theirs: Vec<(Digest, Outcome)> = (0..10)
            .map(|i| (sha(i), if i == 0 { bad } else { Outcome::Good }))
            .collect();
        store
            .apply(&sign_chain(&outsider, &theirs, 0, Digest::ZERO), 16)
            .unwrap();
        assert_eq!(counts(&store), (2, 1, 1, 6, 10));
        assert_eq!(
            store.own_verdict(&sha(0)).unwrap().outcome,
            OutcomeKind::Good
        );
        assert!(store.own_verdict(&sha(5)).is_none());
        // A later verdict of its own replaces the earlier one.
        store
            .apply(
                &sign_chain(&own, &[(sha(3), Outcome::Good)], 4, own_head),
                16,
            )
            .unwrap();
        assert_eq!(counts(&store), (3, 1, 0, 6, 10));
        // Package 9 leaves the repository: out of the published counts,
        // still in all.
        store
            .enqueue_sync(&["archlinux/-/core/x86_64/".into()], &all[..9], 3000)
            .unwrap();
        assert_eq!(counts(&store), (3, 1, 0, 5, 10));
        assert_eq!(store.last_synced("archlinux/-/core/x86_64").unwrap(), 3000);
        store.flush().unwrap();
    }
    // Reopened, the standing is counted again from what is stored.
    let store = Store::open(dir.path()).unwrap();
    store.follow_own(&own.public_key()).unwrap();
    assert_eq!(counts(&store), (3, 1, 0, 5, 10));
    assert_eq!(store.queued_total(), 10);
}

#[test]
fn verdict_numbers_are_small_stable_and_distinct() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("numbers");
    let chain = common::chain(&k, 5);
    let numbers: Vec<u32>;
    {
        let store = Store::open(dir.path()).unwrap();
        store.apply(&chain, 16).unwrap();
        numbers = chain
            .iter()
            .map(|v| store.verdict_number(&v.id()).unwrap())
            .collect();
        assert_eq!(numbers, vec![1, 2, 3, 4, 5]);
        assert_eq!(store.verdict_number(&chain[2].id()).unwrap(), 3);
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    for (v, n) in chain.iter().zip(&numbers) {
        assert_eq!(store.verdict_number(&v.id()).unwrap(), *n);
        assert_eq!(store.numbered_verdict(*n).unwrap(), Some(v.id()));
    }
    assert_eq!(store.numbered_verdict(99).unwrap(), None);
}

#[test]
fn syncs_racing_over_the_same_jobs_queue_each_once_with_distinct_ids() {
    let store = Store::temporary().unwrap();
    // Two jobs' worth of artifacts each, so package ids move by more than
    // job ids.
    let all: Vec<_> = (0..3000)
        .map(|i| {
            let name = format!("q{i:05}");
            let (a, b) = (format!("{name} a"), format!("{name} b"));
            job(
                &name,
                &[
                    (&name, a.as_bytes()),
                    (&format!("{name}-doc"), b.as_bytes()),
                ],
                "https://m.invalid/core/os/x86_64",
            )
        })
        .collect();
    let scope = vec!["archlinux/-/core/x86_64/".to_string()];
    // Four syncs at once, each over the whole index in its own order.
    let queued: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (store, scope) = (store.clone(), scope.clone());
                let mut mine = all.clone();
                mine.rotate_left(t * 700);
                s.spawn(move || store.enqueue_sync(&scope, &mine, 1000).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(queued.iter().sum::<usize>(), all.len(), "{queued:?}");
    assert_eq!(store.queue_counts().unwrap().queued, all.len() as u64);

    let mut job_ids = std::collections::BTreeSet::new();
    let mut package_ids = std::collections::BTreeSet::new();
    for j in &all {
        let ids = store.job_ids(&j.key()).unwrap().expect("every job has ids");
        assert!(job_ids.insert(ids.id), "job id {} given twice", ids.id);
        assert_eq!(ids.packages, 2);
        for p in ids.first_package..ids.first_package + ids.packages {
            assert!(package_ids.insert(p), "package id {p} given twice");
            assert_eq!(store.package(p).unwrap().unwrap().job, j.key());
        }
        assert_eq!(store.job_key(ids.id).unwrap(), Some(j.key()));
    }
    // Ids are dense: none skipped.
    assert_eq!(
        job_ids.iter().copied().collect::<Vec<_>>(),
        (1..=3000).collect::<Vec<u32>>()
    );
    assert_eq!(
        package_ids.iter().copied().collect::<Vec<_>>(),
        (1..=6000).collect::<Vec<u32>>()
    );
    // Walked by name, each artifact is there once.
    let mut rows = 0;
    store
        .walk_packages(Order::Name, None, None, |_| {
            rows += 1;
            Ok(true)
        })
        .unwrap();
    assert_eq!(rows, 6000);
}
