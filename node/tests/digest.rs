//! The head digest behind cheap anti-entropy: equal stores have equal
//! roots; a store that differs differs in exactly the buckets of the heads
//! that moved, and the answer to a digest names only those.

mod common;

use std::collections::HashSet;

use common::{chain, key};
use serde_bytes::ByteBuf;
use vouch_attest::*;
use vouch_node::p2p::sync::{self, SyncRequest, SyncResponse};
use vouch_node::store::Store;

fn signers(n: usize) -> Vec<VerifiedVerdict> {
    (0..n)
        .flat_map(|i| chain(&key(&format!("digest signer {i}")), 1))
        .collect()
}

#[test]
fn equal_stores_agree_in_one_message_and_differences_name_their_buckets() {
    let (a, b) = (Store::temporary().unwrap(), Store::temporary().unwrap());
    let all = signers(600);
    a.apply(&all, 16).unwrap();
    b.apply(&all, 16).unwrap();
    let da = a.head_digest().unwrap();
    assert_eq!(da, b.head_digest().unwrap());
    let known = HashSet::new();
    let ask = |s: &Store, root: &Digest| {
        sync::serve(
            s,
            &known,
            SyncRequest::Digest {
                root: ByteBuf::from(root.as_bytes().to_vec()),
            },
        )
    };
    assert_eq!(ask(&b, &da.root), SyncResponse::Same);

    // Three signers move on b only: two new ones and one whose log grows.
    let extra = signers(603).split_off(600);
    b.apply(&extra, 16).unwrap();
    let k = key("digest signer 7");
    let grown = {
        let first = &all[7];
        let v = common::verdict(&k, 1, first.id(), common::artifact(99), Outcome::Good);
        sign(&v, &k).unwrap()
    };
    b.apply(&[grown], 16).unwrap();
    let db = b.head_digest().unwrap();
    assert_ne!(da.root, db.root, "the cached digest followed the writes");
    let SyncResponse::Buckets(theirs) = ask(&b, &da.root) else {
        panic!("expected buckets");
    };
    let mut differ = sync::differing_buckets(&da.buckets, &theirs);
    let mut expected: Vec<u8> = extra
        .iter()
        .map(|v| v.signer().as_bytes()[0])
        .chain([k.public_key().as_bytes()[0]])
        .collect();
    expected.sort();
    expected.dedup();
    differ.sort();
    assert_eq!(differ, expected);
    // Asking for those buckets gives the heads that moved (and their
    // neighbours in the buckets), not the 600.
    let SyncResponse::Heads(heads) = sync::serve(
        &b,
        &known,
        SyncRequest::HeadsIn {
            buckets: ByteBuf::from(differ.clone()),
        },
    ) else {
        panic!("expected heads");
    };
    assert!(heads.len() < 30, "{} heads", heads.len());
    let named: HashSet<Vec<u8>> = heads.iter().map(|h| h.signer.to_vec()).collect();
    for v in &extra {
        assert!(named.contains(v.signer().as_bytes().as_slice()));
    }
    assert!(named.contains(k.public_key().as_bytes().as_slice()));
    // A malformed answer makes every bucket differ (the slow, safe way).
    assert_eq!(sync::differing_buckets(&da.buckets, &[]).len(), 256);
}
