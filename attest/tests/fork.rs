//! Fork proofs: built, encoded, decoded and checked with no other context.

mod common;

use common::*;
use vouch_attest::*;

fn equivocation() -> (VerifiedVerdict, VerifiedVerdict) {
    let k = key("A");
    let x = sign(
        &verdict(&k, 0, Digest::ZERO, artifact(1), Outcome::Good),
        &k,
    )
    .unwrap();
    let bad = Outcome::Bad {
        rebuilt_sha256: artifact(2),
    };
    let y = sign(&verdict(&k, 0, Digest::ZERO, artifact(1), bad), &k).unwrap();
    (x, y)
}

#[test]
fn same_seq_is_a_fork() {
    let (x, y) = equivocation();
    let proof = ForkProof::new(&x, &y).unwrap();
    assert_eq!(
        proof,
        ForkProof::new(&y, &x).unwrap(),
        "order does not matter"
    );
    let bytes = proof.encode();
    let checked = ForkProof::open(&bytes).unwrap();
    assert_eq!(checked.signer, key("A").public_key());
    assert_eq!(checked.seq(), 0);
    assert_eq!(checked.id, Digest::of(&bytes));
}

#[test]
fn same_prev_is_a_fork() {
    let k = key("A");
    let base = chain(&k, 2, artifact(1));
    let other = sign(
        &verdict(&k, 2, base[0].id(), artifact(3), Outcome::Good),
        &k,
    )
    .unwrap();
    let checked = ForkProof::open(&ForkProof::new(&base[1], &other).unwrap().encode()).unwrap();
    assert_eq!(checked.seq(), 1);
}

#[test]
fn non_forks_are_refused() {
    let a = chain(&key("A"), 3, artifact(1));
    assert_eq!(
        ForkProof::new(&a[0], &a[2]).unwrap_err().code(),
        "fork.not_conflicting"
    );
    assert_eq!(
        ForkProof::new(&a[1], &a[1]).unwrap_err().code(),
        "fork.same_payload"
    );
    let b = chain(&key("B"), 1, artifact(1));
    assert_eq!(
        ForkProof::new(&a[0], &b[0]).unwrap_err().code(),
        "fork.different_signers"
    );
}

#[test]
fn tampered_proofs_are_refused() {
    let (x, y) = equivocation();
    let bytes = ForkProof::new(&x, &y).unwrap().encode();
    let mut flipped = bytes.clone();
    let n = flipped.len();
    flipped[n - 1] ^= 1;
    assert_eq!(
        ForkProof::open(&flipped).unwrap_err().code(),
        "fork.envelope"
    );
    assert!(ForkProof::open(&bytes[..bytes.len() - 3]).is_err());
    // Swapped order is not canonical.
    let (a, b) = if x.id() < y.id() { (x, y) } else { (y, x) };
    let swapped = Item::Map(vec![
        ("version".into(), Item::Uint(1)),
        ("a".into(), Item::Bytes(b.envelope().to_vec())),
        ("b".into(), Item::Bytes(a.envelope().to_vec())),
    ])
    .encode();
    assert_eq!(ForkProof::open(&swapped).unwrap_err().code(), "fork.order");
}
