//! Signer logs: chains, heads, gaps, forks.

mod common;

use common::*;
use vouch_attest::*;

#[test]
fn an_unbroken_chain_has_a_head() {
    let entries = chain(&key("A"), 5, artifact(1));
    let head = verify_chain(None, &entries).unwrap();
    assert_eq!(head.seq, 4);
    assert_eq!(head.id, entries[4].id());
    let mid = verify_chain(None, &entries[..2]).unwrap();
    assert_eq!(verify_chain(Some(mid), &entries[2..]).unwrap(), head);
}

#[test]
fn breaks_are_named() {
    let a = chain(&key("A"), 5, artifact(1));
    let b = chain(&key("B"), 5, artifact(1));
    let gap = [a[0].clone(), a[2].clone()];
    assert_eq!(
        verify_chain(None, &gap).unwrap_err(),
        ChainError::SeqGap {
            expected: 1,
            found: 2
        }
    );
    assert_eq!(
        verify_chain(None, &a[1..]).unwrap_err().code(),
        "chain.seq_gap"
    );
    let mixed = [a[0].clone(), b[1].clone()];
    assert_eq!(
        verify_chain(None, &mixed).unwrap_err(),
        ChainError::WrongSigner { seq: 1 }
    );
    assert_eq!(verify_chain(None, &[]).unwrap_err(), ChainError::Empty);

    // A seq-1 entry whose prev is not the seq-0 entry.
    let k = key("A");
    let stray = sign(
        &verdict(&k, 1, Digest::of(b"elsewhere"), artifact(1), Outcome::Good),
        &k,
    )
    .unwrap();
    let err = verify_chain(None, &[a[0].clone(), stray]).unwrap_err();
    assert_eq!(err.code(), "chain.prev_mismatch");
}

#[test]
fn placement_against_a_head() {
    let a = chain(&key("A"), 6, artifact(1));
    let head = verify_chain(None, &a[..3]).unwrap();
    assert_eq!(head.place(&a[1]).unwrap(), Placement::AtOrBelowHead);
    assert_eq!(
        head.place(&a[5]).unwrap(),
        Placement::Gap { missing_from: 3 }
    );
    let Placement::Next(next) = head.place(&a[3]).unwrap() else {
        panic!("a[3] is next");
    };
    assert_eq!(next.seq, 3);
    assert_eq!(head.append(&a[3]).unwrap(), next);
    assert!(head.append(&a[4]).is_err());
}
