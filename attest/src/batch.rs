//! Batch verification: many envelopes at once, naming exactly which are bad.

use std::collections::HashMap;

use crate::ed25519::{self, Item, Key};
use crate::envelope::{Envelope, PAYLOAD_TYPE, VerifiedVerdict, pae_prefix, verify_with};
use crate::error::{Error, SignatureError};
use crate::verdict::Verdict;

/// Below this many signatures a failing batch is checked one by one.
const SINGLE_BELOW: usize = 4;

/// Decodes and verifies every envelope in `envelopes`. The result has one
/// entry per input, in order: each envelope is accepted or refused on its own,
/// and a bad one never causes a good one to be refused.
///
/// Each distinct signer key is decompressed once. All signatures that decode
/// are checked in one ed25519 batch under the same cofactored rule as single
/// verification (so a batch accepts exactly what single verification
/// accepts); if the batch fails, it is split in halves until every bad
/// signature is found, and small groups are checked one by one.
pub fn verify_batch(envelopes: &[&[u8]]) -> Vec<Result<VerifiedVerdict, Error>> {
    let mut out: Vec<Option<Result<VerifiedVerdict, Error>>> = Vec::with_capacity(envelopes.len());
    let mut keys: HashMap<[u8; 32], Result<Key, SignatureError>> = HashMap::new();
    let mut pending: Vec<Prepared> = Vec::new();
    for (index, bytes) in envelopes.iter().enumerate() {
        let prepared = Envelope::decode(bytes)
            .map_err(Error::from)
            .and_then(|env| env.prepare().map(|(verdict, sig)| (env, verdict, sig)))
            .and_then(|(envelope, verdict, sig)| {
                let key = keys
                    .entry(*verdict.signer.as_bytes())
                    .or_insert_with(|| verdict.signer.key())
                    .clone()?;
                Ok((envelope, verdict, sig, key))
            });
        match prepared {
            Ok((envelope, verdict, sig, key)) => {
                let prefix = pae_prefix(PAYLOAD_TYPE, envelope.payload().len());
                pending.push(Prepared {
                    index,
                    envelope,
                    verdict,
                    sig,
                    key,
                    prefix,
                });
                out.push(None);
            }
            Err(e) => out.push(Some(Err(e))),
        }
    }
    let mut bad = vec![false; pending.len()];
    find_bad(&pending, 0, &mut bad);
    for (p, is_bad) in pending.into_iter().zip(bad) {
        out[p.index] = Some(if is_bad {
            Err(SignatureError::Invalid.into())
        } else {
            Ok(p.envelope.verified(p.verdict))
        });
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(SignatureError::Invalid.into())))
        .collect()
}

struct Prepared {
    index: usize,
    envelope: Envelope,
    verdict: Verdict,
    sig: [u8; 64],
    key: Key,
    /// The PAE before the payload.
    prefix: String,
}

/// Marks in `bad` (indexed from `offset`) the signatures of `items` that do
/// not verify.
fn find_bad(items: &[Prepared], offset: usize, bad: &mut [bool]) {
    if items.is_empty() {
        return;
    }
    if items.len() < SINGLE_BELOW {
        for (i, p) in items.iter().enumerate() {
            bad[offset + i] = verify_with(p.key, p.envelope.payload(), &p.sig).is_err();
        }
        return;
    }
    let messages: Vec<[&[u8]; 2]> = items
        .iter()
        .map(|p| [p.prefix.as_bytes(), p.envelope.payload()])
        .collect();
    let batch: Vec<Item<'_>> = items
        .iter()
        .zip(&messages)
        .map(|(p, message)| Item {
            key: p.key,
            message,
            sig: &p.sig,
        })
        .collect();
    if ed25519::verify_batch(&batch) {
        return;
    }
    let mid = items.len() / 2;
    find_bad(&items[..mid], offset, bad);
    find_bad(&items[mid..], offset + mid, bad);
}
