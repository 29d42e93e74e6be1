//! Trust policy: files, validation and evaluation.

mod common;

use common::*;
use vouch_attest::*;

const NOW: u64 = 1_795_651_200 + 1000;

fn signer(name: &str, operator: &str) -> TrustedSigner {
    TrustedSigner {
        name: name.into(),
        operator: operator.into(),
        key: key(name).public_key(),
        valid_from: None,
        valid_until: None,
    }
}

fn three(threshold: usize, veto: bool) -> Policy {
    Policy::new(
        threshold,
        veto,
        vec![
            signer("A", "alice"),
            signer("B", "bob"),
            signer("C", "carol"),
        ],
    )
    .unwrap()
}

/// One verdict by `name` at `seq` (its own log, prev faked consistently).
fn said(name: &str, seq: u64, sha: Digest, outcome: Outcome) -> VerifiedVerdict {
    let k = key(name);
    let prev = if seq == 0 {
        Digest::ZERO
    } else {
        Digest::of(&seq.to_be_bytes())
    };
    sign(&verdict(&k, seq, prev, sha, outcome), &k).unwrap()
}

fn good(name: &str, seq: u64) -> VerifiedVerdict {
    said(name, seq, artifact(1), Outcome::Good)
}

fn bad(name: &str, seq: u64) -> VerifiedVerdict {
    said(
        name,
        seq,
        artifact(1),
        Outcome::Bad {
            rebuilt_sha256: artifact(99),
        },
    )
}

#[test]
fn two_of_three_good_is_verified() {
    let p = three(2, true);
    let d = p.evaluate(&artifact(1), &[good("A", 0), good("B", 0)], &[], NOW);
    assert_eq!(d.status, Status::Verified);
    assert_eq!((d.good, d.threshold, d.configured), (2, 2, 3));
    assert!(matches!(d.signers[2].state, SignerState::NoVerdict));
}

#[test]
fn one_of_three_is_unknown_and_the_denominator_is_configured() {
    let p = three(2, true);
    let d = p.evaluate(&artifact(1), &[good("A", 0)], &[], NOW);
    assert_eq!(d.status, Status::Unknown);
    assert_eq!(d.configured, 3);
    let d = p.evaluate(&artifact(1), &[], &[], NOW);
    assert_eq!(d.status, Status::Unknown);
}

#[test]
fn verdicts_about_another_sha256_count_for_nothing() {
    let p = three(2, true);
    let other = said("B", 0, artifact(2), Outcome::Good);
    let d = p.evaluate(&artifact(1), &[good("A", 0), other], &[], NOW);
    assert_eq!(d.status, Status::Unknown);
}

#[test]
fn untrusted_signers_count_for_nothing() {
    let p = three(2, true);
    let d = p.evaluate(
        &artifact(1),
        &[good("A", 0), good("Mallory", 0), good("Eve", 0)],
        &[],
        NOW,
    );
    assert_eq!(d.status, Status::Unknown);
    assert_eq!(d.untrusted_verdicts, 2);
}

#[test]
fn a_trusted_bad_vetoes_or_is_counted() {
    let vs = [good("A", 0), good("B", 0), bad("C", 0)];
    let d = three(2, true).evaluate(&artifact(1), &vs, &[], NOW);
    assert_eq!(d.status, Status::Rejected);
    assert!(d.reasons.iter().any(|r| r.contains("C says BAD")));
    let d = three(2, false).evaluate(&artifact(1), &vs, &[], NOW);
    assert_eq!(d.status, Status::Verified);
    assert!(matches!(d.signers[2].state, SignerState::Bad { .. }));
}

#[test]
fn only_the_latest_verdict_of_a_signer_counts() {
    let p = three(2, true);
    // A said GOOD, then BAD: the BAD counts.
    let d = p.evaluate(
        &artifact(1),
        &[good("A", 0), bad("A", 1), good("B", 0)],
        &[],
        NOW,
    );
    assert_eq!(d.status, Status::Rejected);
    // Order of arrival does not matter, seq does.
    let d = p.evaluate(
        &artifact(1),
        &[bad("A", 0), good("B", 0), good("A", 5)],
        &[],
        NOW,
    );
    assert_eq!(d.status, Status::Verified);
    // Two GOODs by one signer are one vote.
    let d = p.evaluate(&artifact(1), &[good("A", 0), good("A", 1)], &[], NOW);
    assert_eq!(d.good, 1);
}

#[test]
fn a_forked_signer_counts_for_nothing_and_is_reported() {
    let k = key("B");
    let x = sign(
        &verdict(&k, 0, Digest::ZERO, artifact(1), Outcome::Good),
        &k,
    )
    .unwrap();
    let y = sign(
        &verdict(&k, 0, Digest::ZERO, artifact(7), Outcome::Good),
        &k,
    )
    .unwrap();
    let fork = ForkProof::new(&x, &y).unwrap().check().unwrap();
    let d = three(2, true).evaluate(
        &artifact(1),
        &[good("A", 0), x.clone()],
        std::slice::from_ref(&fork),
        NOW,
    );
    assert_eq!(d.status, Status::Unknown);
    assert!(matches!(d.signers[1].state, SignerState::Forked { .. }));
    assert!(d.reasons.iter().any(|r| r.contains("forked")));
    // With reject_on_fork a fork against a configured signer rejects.
    let text = format!(
        "threshold = 1\nreject_on_fork = true\n{}",
        ["A", "B"]
            .iter()
            .map(|n| format!(
                "[[signer]]\nname = \"{n}\"\noperator = \"{n}\"\nkey = \"{}\"\n",
                key(n).public_key()
            ))
            .collect::<String>()
    );
    let p = Policy::from_toml(&text).unwrap();
    let d = p.evaluate(&artifact(1), &[good("A", 0)], &[fork], NOW);
    assert_eq!(d.status, Status::Rejected);
}

#[test]
fn fail_is_reported_but_not_counted() {
    let fail = said(
        "C",
        0,
        artifact(1),
        Outcome::Fail {
            reason: FailReason::Timeout,
        },
    );
    let d = three(2, true).evaluate(&artifact(1), &[good("A", 0), fail], &[], NOW);
    assert_eq!(d.status, Status::Unknown);
    assert!(matches!(
        d.signers[2].state,
        SignerState::Fail {
            reason: FailReason::Timeout,
            ..
        }
    ));
}

#[test]
fn counting_operators() {
    let p = Policy::from_toml(&format!(
        "threshold = 2\ncount = \"operators\"\n\
         [[signer]]\nname = \"A\"\noperator = \"alice\"\nkey = \"{}\"\n\
         [[signer]]\nname = \"B\"\noperator = \"alice\"\nkey = \"{}\"\n\
         [[signer]]\nname = \"C\"\noperator = \"carol\"\nkey = \"{}\"\n",
        key("A").public_key(),
        key("B").public_key(),
        key("C").public_key()
    ))
    .unwrap();
    assert_eq!(p.configured(), 2);
    let d = p.evaluate(&artifact(1), &[good("A", 0), good("B", 0)], &[], NOW);
    assert_eq!((d.status, d.good), (Status::Unknown, 1));
    let d = p.evaluate(&artifact(1), &[good("A", 0), good("C", 0)], &[], NOW);
    assert_eq!(d.status, Status::Verified);
}

#[test]
fn validity_and_clock_skew() {
    let mut a = signer("A", "alice");
    a.valid_until = Some(1_795_651_200 - 1);
    let p = Policy::new(1, true, vec![a, signer("B", "bob")]).unwrap();
    let d = p.evaluate(&artifact(1), &[good("A", 0)], &[], NOW);
    assert_eq!(d.status, Status::Unknown);
    assert!(matches!(
        d.signers[0].state,
        SignerState::Excluded {
            why: Exclusion::OutsideValidity
        }
    ));
    let d = p.evaluate(&artifact(1), &[good("B", 0)], &[], 1_795_651_200 - 3600);
    assert!(matches!(
        d.signers[1].state,
        SignerState::Excluded {
            why: Exclusion::FutureDated
        }
    ));
}

#[test]
fn policy_files_are_validated_with_lines() {
    let a = key("A").public_key();
    let ok =
        format!("threshold = 1\n[[signer]]\nname = \"a\"\noperator = \"alice\"\nkey = \"{a}\"\n");
    let p = Policy::from_toml(&ok).unwrap();
    assert!(p.veto_on_bad(), "veto_on_bad defaults to true");

    let cases = [
        (
            "threshold = 2\n[[signer]]\nname = \"a\"\noperator = \"o\"\nkey = \"KEY\"\n",
            "threshold 2",
        ),
        (
            "threshold = 0\n[[signer]]\nname = \"a\"\noperator = \"o\"\nkey = \"KEY\"\n",
            "threshold 0",
        ),
        ("threshold = 1\n", "no signer"),
        (
            "threshold = 1\n[[signer]]\nname = \"a\"\noperator = \"o\"\nkey = \"KEY\"\n[[signer]]\nname = \"b\"\noperator = \"o\"\nkey = \"KEY\"\n",
            "line 6",
        ),
        (
            "threshold = 1\n\n[[signer]]\nname = \"a\"\noperator = \"o\"\nkey = \"ed25519:xx\"\n",
            "line 3",
        ),
        ("threshold = 1\nthreshhold = 2\n", "line 2"),
        ("threshold = \"two\"\n", "line 1"),
    ];
    for (text, want) in cases {
        let err = Policy::from_toml(&text.replace("KEY", &a.to_text()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{text:?}: {err}");
    }
}

/// Issue 8.1: A's GOOD and A's BAD at one seq, seen in either order, make A
/// forked — the answer is a function of the set, not the order.
#[test]
fn conflicting_verdicts_at_one_seq_are_a_fork_in_any_order() {
    let p = three(2, true);
    let a_good = good("A", 0);
    let a_bad = bad("A", 0);
    let b = good("B", 0);
    let c = good("C", 0);
    let orders = [
        vec![a_good.clone(), a_bad.clone(), b.clone(), c.clone()],
        vec![a_bad.clone(), a_good.clone(), c.clone(), b.clone()],
        vec![b.clone(), a_bad.clone(), c.clone(), a_good.clone()],
    ];
    let decisions: Vec<Decision> = orders
        .iter()
        .map(|vs| p.evaluate(&artifact(1), vs, &[], NOW))
        .collect();
    for d in &decisions {
        assert_eq!(d.status, Status::Verified, "{:?}", d.reasons);
        assert!(matches!(d.signers[0].state, SignerState::Forked { .. }));
        assert_eq!(d.signers, decisions[0].signers);
    }
    // The same proof comes out of find_forks, whatever the order.
    let f1 = find_forks(&orders[0]);
    let f2 = find_forks(&orders[1]);
    assert_eq!(f1.len(), 1);
    assert_eq!(f1[0].id, f2[0].id);
    assert_eq!(
        ForkProof::open(&f1[0].proof().encode()).unwrap().id,
        f1[0].id
    );
}

/// Two verdicts at different seqs naming the same prev are a fork too.
#[test]
fn conflicting_verdicts_with_one_prev_are_a_fork() {
    let k = key("A");
    let first = sign(
        &verdict(&k, 0, Digest::ZERO, artifact(1), Outcome::Good),
        &k,
    )
    .unwrap();
    let x = sign(&verdict(&k, 1, first.id(), artifact(2), Outcome::Good), &k).unwrap();
    let mut later = verdict(&k, 2, first.id(), artifact(1), Outcome::Good);
    later.issued_at += 1;
    let y = sign(&later, &k).unwrap();
    let forks = find_forks([&x, &y]);
    assert_eq!(forks.len(), 1);
    assert_eq!(forks[0].signer, k.public_key());
    let d = three(1, true).evaluate(&artifact(1), &[y, first, x], &[], NOW);
    assert!(matches!(d.signers[0].state, SignerState::Forked { .. }));
}

/// With several proofs against one signer, the lowest proof id is reported
/// whatever their order.
#[test]
fn reported_fork_proof_does_not_depend_on_order() {
    let p = three(1, true);
    let g0 = good("A", 0);
    let b0 = bad("A", 0);
    let f0 = said("A", 0, artifact(7), Outcome::Good);
    let x = ForkProof::open(&ForkProof::new(&g0, &b0).unwrap().encode()).unwrap();
    let y = ForkProof::open(&ForkProof::new(&g0, &f0).unwrap().encode()).unwrap();
    let d1 = p.evaluate(&artifact(1), &[], &[x.clone(), y.clone()], NOW);
    let d2 = p.evaluate(&artifact(1), &[], &[y.clone(), x.clone()], NOW);
    let want = x.id.min(y.id);
    for d in [d1, d2] {
        assert_eq!(d.signers[0].state, SignerState::Forked { proof: want });
    }
}
