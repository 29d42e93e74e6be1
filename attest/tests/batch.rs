//! Batch verification names exactly the bad envelopes and keeps the rest.

mod common;

use common::*;
use vouch_attest::*;

fn corrupt_signature(envelope: &[u8]) -> Vec<u8> {
    let mut bytes = envelope.to_vec();
    let n = bytes.len();
    bytes[n - 1] ^= 0x01; // the last byte is inside the signature
    bytes
}

#[test]
fn bad_envelopes_are_named_and_good_ones_kept() {
    let signers = [key("A"), key("B"), key("C")];
    let mut envelopes: Vec<Vec<u8>> = Vec::new();
    for (i, k) in signers.iter().enumerate() {
        for v in chain(k, 100, artifact(i as u32)) {
            envelopes.push(v.envelope().to_vec());
        }
    }
    let bad_at = [0usize, 7, 8, 150, 299];
    for &i in &bad_at {
        envelopes[i] = corrupt_signature(&envelopes[i]);
    }
    envelopes[42] = b"garbage".to_vec();
    let refs: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
    let results = verify_batch(&refs);
    assert_eq!(results.len(), envelopes.len());
    for (i, r) in results.iter().enumerate() {
        if bad_at.contains(&i) {
            assert_eq!(
                r.as_ref().unwrap_err().code(),
                "signature.invalid",
                "index {i}"
            );
        } else if i == 42 {
            assert!(
                r.as_ref().unwrap_err().code().starts_with("decode."),
                "index {i}"
            );
        } else {
            assert_eq!(
                r.as_ref().unwrap().envelope(),
                envelopes[i].as_slice(),
                "index {i}"
            );
        }
    }
}

#[test]
fn batch_and_single_agree() {
    let k = key("A");
    let mut envelopes: Vec<Vec<u8>> = chain(&k, 40, artifact(1))
        .iter()
        .map(|v| v.envelope().to_vec())
        .collect();
    for i in (0..40).step_by(3) {
        envelopes[i] = corrupt_signature(&envelopes[i]);
    }
    let refs: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
    for (bytes, batch) in envelopes.iter().zip(verify_batch(&refs)) {
        let single = open(bytes);
        assert_eq!(batch.is_ok(), single.is_ok());
        if let (Ok(a), Ok(b)) = (batch, single) {
            assert_eq!(a, b);
        }
    }
}

#[test]
fn all_bad_and_empty() {
    assert!(verify_batch(&[]).is_empty());
    let envelopes: Vec<Vec<u8>> = chain(&key("A"), 9, artifact(1))
        .iter()
        .map(|v| corrupt_signature(v.envelope()))
        .collect();
    let refs: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
    assert!(verify_batch(&refs).iter().all(|r| r.is_err()));
}
