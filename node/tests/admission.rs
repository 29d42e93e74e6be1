//! Admission against free identities: quotas on unknown signers hold in
//! total, pending entries count, and a known signer always gets through.

mod common;

use std::sync::Arc;

use vouch_attest::{Digest, Outcome, PublicKey, sign};
use vouch_node::admission::{Admission, AdmissionConfig};
use vouch_node::ingest::{Ingest, IngestConfig, Status};
use vouch_node::metrics::Metrics;
use vouch_node::store::Store;

/// `n` envelopes of a fresh signer `tag`, from `first` on: seq 0.. is a
/// log, a later first seq leaves a gap (held pending).
fn envelopes(tag: &str, first: u64, n: u64) -> Vec<Vec<u8>> {
    let k = common::key(tag);
    let mut prev = Digest::ZERO;
    let mut out = Vec::new();
    for seq in 0..first + n {
        let v = sign(
            &common::verdict(&k, seq, prev, common::artifact(seq), Outcome::Good),
            &k,
        )
        .unwrap();
        prev = v.id();
        if seq >= first {
            out.push(v.envelope().to_vec());
        }
    }
    out
}

/// A temporary store with an ingest pipeline under `config`.
fn pipeline(
    config: AdmissionConfig,
    known: &[PublicKey],
) -> (Store, Ingest, std::thread::JoinHandle<()>) {
    let store = Store::temporary().unwrap();
    let admission = Arc::new(Admission::new(config, known.iter().copied().collect()));
    let (ingest, writer) = Ingest::start(
        store.clone(),
        IngestConfig::default(),
        Arc::new(Metrics::new()),
        admission,
        None,
    );
    (store, ingest, writer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_fresh_signers_stays_within_the_total_quota() {
    let honest = common::key("honest");
    let (store, ingest, writer) = pipeline(
        AdmissionConfig {
            unknown_signer_max_verdicts: 20,
            unknown_total_max_verdicts: 300,
            ..AdmissionConfig::default()
        },
        &[honest.public_key()],
    );
    // 200 fresh signers, 10 verdicts each, half of them after a gap (held
    // pending), submitted from 8 tasks at once: 2,000 entries offered, each
    // signer within its own quota of 20.
    let mut tasks = Vec::new();
    for t in 0..8 {
        let ingest = ingest.clone();
        tasks.push(tokio::spawn(async move {
            let mut stored = 0usize;
            for s in 0..25 {
                let tag = format!("sybil {t} {s}");
                let first = if s % 2 == 0 { 0 } else { 5 };
                let reports = ingest
                    .submit("gossip", envelopes(&tag, first, 10))
                    .await
                    .unwrap();
                stored += reports
                    .iter()
                    .filter(|r| matches!(r.status, Status::Accepted | Status::Pending))
                    .count();
            }
            stored
        }));
    }
    let mut stored = 0;
    for t in tasks {
        stored += t.await.unwrap();
    }
    let counts = store.counts().unwrap();
    assert!(
        counts.verdicts + counts.pending <= 300,
        "unknown signers hold {} verdicts and {} pending, over the total quota of 300",
        counts.verdicts,
        counts.pending
    );
    assert_eq!(stored as u64, counts.verdicts + counts.pending);
    assert!(counts.pending > 0, "pending entries were offered and count");
    // The refusals name the shared quota.
    let more = ingest
        .submit("http", envelopes("one more", 0, 1))
        .await
        .unwrap();
    assert_eq!(more[0].code.as_deref(), Some("quota.unknown_storage"));
    // The known signer is not held back by the flood.
    let chain: Vec<Vec<u8>> = common::chain(&honest, 50)
        .iter()
        .map(|v| v.envelope().to_vec())
        .collect();
    let reports = ingest.submit("gossip", chain).await.unwrap();
    assert!(reports.iter().all(|r| r.status == Status::Accepted));
    assert_eq!(store.head(&honest.public_key()).unwrap().unwrap().count, 50);
    drop(ingest);
    common::join_writer(writer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_entries_count_against_a_signers_quota() {
    let (store, ingest, writer) = pipeline(
        AdmissionConfig {
            unknown_signer_max_verdicts: 10,
            ..AdmissionConfig::default()
        },
        &[],
    );
    // Seqs 1..=30 with seq 0 missing: all would be held pending.
    let reports = ingest
        .submit("gossip", envelopes("gappy", 1, 30))
        .await
        .unwrap();
    let held = reports
        .iter()
        .filter(|r| r.status == Status::Pending)
        .count();
    assert_eq!(held, 10);
    assert!(
        reports[10..]
            .iter()
            .all(|r| r.code.as_deref() == Some("quota.signer_storage"))
    );
    assert_eq!(store.counts().unwrap().pending, 10);
    drop(ingest);
    common::join_writer(writer);
}
